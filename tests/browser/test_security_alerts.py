"""The supervisor's confirmation in a real browser: no password to save, its own pause after three
wrong tries, and the alert on the supervisor board; accessible, no CSP errors."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - the fixture
from tests.procedures.helpers import new_ma, new_supervisor, ready_handoff

pytestmark = pytest.mark.browser


def test_wrong_confirmations_pause_that_pair_and_the_board_says_so(screen: Screen, seeded_by_migrations: None) -> None:  # noqa: F811
    trainee = new_ma(username="trainee", first_name="Jordan", last_name="Lee")
    new_supervisor(username="boss", first_name="Samira", last_name="Okafor")
    _, orders = ready_handoff("36415", ma=trainee)
    page = screen.page

    screen.login("trainee")
    screen.goto(reverse("procedures:detail", args=[orders["36415"].uuid]))
    page.get_by_label("A supervisor is with me now").check()
    page.get_by_role("combobox", name="Supervisor").select_option(label="Samira Okafor")
    secret = page.get_by_label("Supervisor's password or authenticator code")
    expect(secret).to_have_attribute("autocomplete", "one-time-code")
    expect(page.locator("form:has(#id_supervisor_password) input[name=username]")).to_have_count(0)
    for _ in range(3):
        secret.fill("not-her-password")
        page.get_by_role("button", name="Start Venipuncture").click()
        page.wait_for_load_state("networkidle")
    expect(page.get_by_text("confirming Samira Okafor here is paused for 1 minute")).to_be_visible()
    screen.shot("sa01-confirmation-paused")
    screen.assert_accessible()
    screen.logout()

    # Her own sign-in is not paused, and her board shows what happened.
    screen.login("boss")
    expect(page.get_by_role("heading", name="Sign-in alerts")).to_be_visible()
    expect(page.locator(".security-alert")).to_contain_text(
        "Confirming Samira Okafor at Jordan Lee's workstation paused after 3 wrong tries"
    )
    screen.shot("sa02-board-alert")
    screen.assert_accessible()
    screen.assert_no_console_errors()
