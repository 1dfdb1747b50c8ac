"""Sign-in & security's "Your sessions" in a real browser: the list, ending one, all others, everywhere."""

import re
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from backoffice.models import User
from tests.browser.conftest import Screen
from tests.conftest import PASSWORD
from tests.security.conftest import PRODUCTION_OTP_ROLES, current_code, enroll

pytestmark = pytest.mark.browser

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def elsewhere(username: str, agent: str, ip: str) -> Client:
    """The same person signed in at another workstation (password only: the code step not done)."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert client.post(reverse("login"), {"username": username, "password": PASSWORD}).status_code == 302
    return client


def signed_out(client: Client) -> bool:
    client.get(reverse("account_security"))
    return SESSION_KEY not in client.session


def test_a_supervisor_sees_their_sessions_and_ends_them(screen: Screen, settings: Any, supervisor: User) -> None:
    settings.OTP_REQUIRED_ROLES = PRODUCTION_OTP_ROLES
    device = enroll(supervisor)
    page = screen.page
    screen.login("sup")
    page.get_by_label("6-digit code").fill(current_code(device))
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Supervisor board")).to_be_visible()

    # Someone with the password at another address, stopped at the code step; and another workstation.
    intruder = elsewhere("sup", CHROME_WINDOWS, "10.20.0.7")
    other_desk = elsewhere("sup", FIREFOX_LINUX, "10.20.0.8")
    device.refresh_from_db()
    assert other_desk.post(reverse("otp_verify"), {"code": current_code(device, offset_steps=1)}).status_code == 302

    page.get_by_role("link", name="Sign-in & security").click()
    expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
    table = page.get_by_role("table", name="Your active sessions")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("This session")
    intruder_row = rows.filter(has_text="10.20.0.7")
    expect(intruder_row).to_contain_text("Chrome 140 on Windows")
    expect(intruder_row).to_contain_text("Code not entered yet")
    expect(rows.filter(has_text="10.20.0.8")).not_to_contain_text("Code not entered yet")
    expect(rows.filter(has_text="10.20.0.8")).to_contain_text("just now")
    expect(page.get_by_role("button", name="End all other sessions")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out everywhere")).to_be_visible()
    screen.shot("account-sessions")
    screen.assert_accessible()

    # End the intruder's session: its browser is signed out, the others stay.
    page.get_by_role("button", name="End the session in Chrome 140 on Windows at 10.20.0.7").click()
    expect(page.get_by_text("Ended the session in Chrome 140 on Windows at 10.20.0.7.")).to_be_visible()
    expect(rows).to_have_count(2)
    assert signed_out(intruder)
    assert not signed_out(other_desk)
    screen.shot("account-sessions-ended")
    screen.assert_accessible()

    # All the others, then everywhere: back at the sign-in page, every session gone.
    page.get_by_role("button", name="End all other sessions").click()
    expect(page.get_by_text("Ended 1 other session.")).to_be_visible()
    expect(rows).to_have_count(1)
    expect(page.get_by_role("button", name="End all other sessions")).to_have_count(0)
    assert signed_out(other_desk)
    another = elsewhere("sup", FIREFOX_LINUX, "10.20.0.9")
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page).to_have_url(re.compile(r"/login/$"))
    assert signed_out(another)
    screen.assert_no_console_errors()
