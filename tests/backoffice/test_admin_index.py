"""Django admin as ours (issue 14, point 15): the clinic's name, sections as an admin thinks of them,
names that read right, and the machinery kept to superusers."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from backoffice.admin_site import SECTIONS, SUPERUSERS_ONLY, model_key
from backoffice.models import User

pytestmark = pytest.mark.django_db

INTERNAL_LISTS = [
    "admin:otp_totp_totpdevice_changelist",
    "admin:pghistory_middlewareevents_changelist",
    "admin:django_tasks_database_dbtaskresult_changelist",
]


def _sections(client: Client) -> list[str]:
    return [section["name"] for section in client.get(reverse("admin:index")).context["app_list"]]


def test_every_registered_model_has_its_place_in_a_section() -> None:
    placed = [key for _, keys in SECTIONS for key in keys]
    assert len(placed) == len(set(placed))
    assert sorted(model_key(model) for model in admin.site._registry) == sorted(placed)


def test_the_admin_role_sees_catalogs_staff_stations_and_audit_under_the_clinic_s_name(
    client: Client, admin_user: User
) -> None:
    client.force_login(admin_user)
    response = client.get(reverse("admin:index"))
    content = response.content.decode()
    assert _sections(client) == ["Catalogs", "Staff", "Stations", "Audit"]
    assert "<title>Catalogs, staff and stations | Clinic back office admin</title>" in content
    assert "Clinic back office · admin</a>" in content
    assert "Django administration" not in content and "Site administration" not in content
    catalogs = response.context["app_list"][0]["models"]
    assert [m["name"] for m in catalogs][:3] == ["Procedure types", "Procedure steps", "Test definitions"]
    staff = [m["name"] for m in response.context["app_list"][1]["models"]]
    assert staff[0] == "Users" and "Sign-in pauses (unlock here)" in staff and "Groups" not in staff
    # The sidebar of every other page lists the same sections.
    sidebar = client.get(reverse("admin:procedures_proceduretype_changelist")).content.decode()
    assert sidebar.index(">Catalogs<") < sidebar.index(">Staff<") < sidebar.index(">Stations<")


def test_a_superuser_also_sees_patients_records_and_the_internals(client: Client) -> None:
    client.force_login(User.objects.create_superuser("root", "root@clinic.test", "correct-horse-battery-staple"))
    assert _sections(client) == ["Catalogs", "Staff", "Stations", "Patients' records", "Audit", "Internals"]
    content = client.get(reverse("admin:index")).content.decode()
    assert "Handoff histories" in content and "Send-outs" in content
    assert "historys" not in content.lower() and "Send outs" not in content
    assert ">Roles</a>" in content and ">Authenticators (TOTP devices)</a>" in content and ">Groups</a>" not in content
    for name in INTERNAL_LISTS:
        assert client.get(reverse(name)).status_code == 200


def test_internals_stay_hidden_from_staff_whatever_permissions_they_hold(client: Client, admin_user: User) -> None:
    app_labels = {key.split(".")[0] for key in SUPERUSERS_ONLY}
    admin_user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=app_labels))
    client.force_login(admin_user)
    assert "Internals" not in _sections(client)
    for name in INTERNAL_LISTS:
        assert client.get(reverse(name)).status_code == 403
