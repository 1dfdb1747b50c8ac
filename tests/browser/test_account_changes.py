"""The account-change log in a real browser: a superuser gives an MA a role and resets her password, an auditor reads it."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from backoffice import roles
from backoffice.models import User
from tests.browser.conftest import Screen

pytestmark = pytest.mark.browser


def test_an_auditor_reads_a_role_change_and_a_password_reset(
    screen: Screen,
    medical_assistant: User,
    auditor: User,  # type: ignore[no-untyped-def]
) -> None:
    root = User.objects.create_superuser("root", "root@clinic.test", "correct-horse-battery-staple")
    admin_site = Client()
    admin_site.force_login(root)
    supervisor = Group.objects.get(name=roles.ROLE_SUPERVISOR)
    ma_group = Group.objects.get(name=roles.ROLE_MEDICAL_ASSISTANT)
    profile = {
        "username": medical_assistant.username,
        "first_name": medical_assistant.first_name,
        "last_name": medical_assistant.last_name,
        "email": medical_assistant.email,
        "is_active": "on",
        "groups": [ma_group.pk, supervisor.pk],
        "date_joined_0": "2026-01-05",
        "date_joined_1": "08:00:00",
        "credentials-TOTAL_FORMS": "0",
        "credentials-INITIAL_FORMS": "0",
    }
    assert (
        admin_site.post(reverse("admin:backoffice_user_change", args=[medical_assistant.pk]), profile).status_code
        == 302
    )
    new_password = {
        "password1": "a-fresh-passphrase-2026",
        "password2": "a-fresh-passphrase-2026",
        "usable_password": "true",
    }
    change_password = reverse("admin:auth_user_password_change", args=[medical_assistant.pk])
    assert admin_site.post(change_password, new_password).status_code == 302

    page = screen.page
    screen.login(auditor.username)
    page.get_by_role("link", name="Account changes").click()
    expect(page.get_by_role("heading", name="Account changes")).to_be_visible()
    page.get_by_label("Staff username").fill(medical_assistant.username)
    page.get_by_label("Kind of change").select_option(label="Role added")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.audit-table tbody tr")
    expect(rows).to_have_count(2)  # the fixture's role, then the superuser's
    expect(rows.first).to_contain_text("Supervisor")
    expect(rows.first).to_contain_text("root")
    expect(rows.first).to_contain_text(f"/admin/backoffice/user/{medical_assistant.pk}/change/")

    page.get_by_label("Kind of change").select_option(label="Any change")
    page.get_by_role("button", name="Filter").click()
    expect(rows.first).to_contain_text("Password set by someone else")
    expect(rows.first).to_contain_text("Maria Alvarez")
    screen.shot("ac01-account-changes")
    screen.assert_accessible()
    screen.assert_no_console_errors()
