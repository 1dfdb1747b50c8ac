"""An unattended shared workstation: the warning, then the login page with no patient data left."""

from typing import Any

import pytest
from playwright.sync_api import expect

from backoffice.models import Handoff, User
from tests.browser.conftest import Screen

pytestmark = pytest.mark.browser


@pytest.fixture
def short_idle_timeout(settings: Any) -> None:
    # The middleware and the page read these per request: 12 s idle, a warning 6 s before the end.
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 12
    settings.SESSION_IDLE_WARNING_SECONDS = 6


def test_an_idle_screen_warns_then_goes_to_the_login_page_without_patient_data(
    screen: Screen, short_idle_timeout: None, medical_assistant: User, handoff: Handoff
) -> None:
    page = screen.page
    screen.login("ma")
    expect(page.locator("tbody tr", has_text="MARTÍNEZ, Rosa")).to_be_visible()

    dialog = page.get_by_role("alertdialog", name="Are you still there?")
    expect(dialog).to_be_visible(timeout=12_000)
    expect(dialog).to_contain_text("you'll be signed out in")
    expect(dialog.get_by_role("button", name="Stay signed in")).to_be_focused()
    screen.shot("session-timeout-warning")
    screen.assert_accessible()

    page.wait_for_url(f"{screen.base_url}/login/", timeout=12_000)
    expect(page.get_by_text("You were signed out after 12 seconds without activity.")).to_be_visible()
    assert "Martínez" not in page.content()
    assert "MARTÍNEZ" not in page.content()
    screen.shot("session-timeout-signed-out")
    screen.assert_accessible()

    # Back does not bring the queue back from the browser's cache.
    page.go_back()
    page.wait_for_load_state("networkidle")
    assert "MARTÍNEZ" not in page.content()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    screen.assert_no_console_errors()


def test_stay_signed_in_keeps_the_session(
    screen: Screen, short_idle_timeout: None, medical_assistant: User, handoff: Handoff
) -> None:
    page = screen.page
    screen.login("ma")
    dialog = page.get_by_role("alertdialog", name="Are you still there?")
    expect(dialog).to_be_visible(timeout=12_000)
    dialog.get_by_role("button", name="Stay signed in").click()
    expect(dialog).to_be_hidden()

    # Past the first deadline, still signed in and still on the queue.
    page.wait_for_timeout(7_000)
    assert page.url == f"{screen.base_url}/queue/"
    expect(page.locator("tbody tr", has_text="MARTÍNEZ, Rosa")).to_be_visible()
    screen.assert_no_console_errors()


def test_at_the_end_of_its_lifetime_the_session_cannot_be_extended(
    screen: Screen, settings: Any, medical_assistant: User, handoff: Handoff
) -> None:
    settings.SESSION_ABSOLUTE_LIFETIME_SECONDS = 12
    settings.SESSION_IDLE_WARNING_SECONDS = 6
    page = screen.page
    screen.login("ma")
    dialog = page.get_by_role("alertdialog", name="Are you still there?")
    expect(dialog).to_be_visible(timeout=12_000)
    expect(dialog).to_contain_text("Sessions end 12 seconds after sign-in")
    expect(dialog.get_by_role("button", name="Stay signed in")).to_be_hidden()
    expect(dialog.get_by_role("button", name="Sign out now")).to_be_focused()
    screen.assert_accessible()

    page.wait_for_url(f"{screen.base_url}/login/", timeout=12_000)
    expect(page.get_by_text("sessions end 12 seconds after sign-in")).to_be_visible()
    assert "MARTÍNEZ" not in page.content()
    screen.assert_no_console_errors()
