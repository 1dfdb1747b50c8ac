"""The second-factor pages and the lockout page in a real browser: usable, accessible, no CSP errors."""

import re
from typing import Any

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from backoffice.models import User
from tests.browser.conftest import Screen
from tests.conftest import PASSWORD
from tests.security.conftest import current_code

pytestmark = pytest.mark.browser


@pytest.fixture
def admins_need_a_second_factor(settings: Any) -> None:
    settings.OTP_REQUIRED_ROLES = ["Admin"]


def test_an_admin_sets_up_an_authenticator_app_then_reaches_admin(
    screen: Screen, admins_need_a_second_factor: None, admin_user: User
) -> None:
    page = screen.page
    screen.login("admin")
    expect(page.get_by_role("heading", name="Set up two-step sign-in")).to_be_visible()
    expect(
        page.get_by_role("img", name="QR code that adds Clinic back office to your authenticator app")
    ).to_be_visible()
    screen.shot("otp-setup")
    screen.assert_accessible()

    # The password again (the cursor starts there), and the code.
    expect(page.get_by_label("Your password")).to_be_focused()
    page.get_by_label("6-digit code").fill("000000")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_text("This field is required.")).to_be_visible()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("6-digit code").fill("000000")
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_text("That code isn't right.")).to_be_visible()
    screen.assert_accessible()
    page.wait_for_timeout(1_100)  # django-otp's 1-second wait after a wrong code

    device = TOTPDevice.objects.get(user=admin_user)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("6-digit code").fill(current_code(device))
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(page.get_by_text("Two-step sign-in is on.")).to_be_visible()
    # The Admin role's start page is Django admin: no clinical page is theirs.
    expect(page).to_have_url(re.compile(r"/admin/$"))
    screen.logout()

    # The next sign-in asks for a code from the app.
    screen.login("admin")
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    screen.shot("otp-verify")
    screen.assert_accessible()
    device.refresh_from_db()
    page.get_by_label("6-digit code").fill(current_code(device, offset_steps=1))
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))  # past the code page, into admin
    screen.assert_no_console_errors()


def test_the_account_page_and_the_lockout_page(screen: Screen, medical_assistant: User) -> None:
    page = screen.page
    screen.login("ma")
    page.get_by_role("link", name="Sign-in & security").click()
    expect(page.get_by_role("heading", name="Sign-in and security")).to_be_visible()
    screen.shot("account-security")
    screen.assert_accessible()
    screen.logout()

    for _ in range(5):
        screen.login("ma", "not-the-password")
    expect(page.get_by_role("heading", name="Sign-in paused")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("paused for 1 minute")
    screen.shot("lockout")
    screen.assert_accessible()
