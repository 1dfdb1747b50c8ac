"""The queue's 15-second refresh in a real browser: the rows are morphed in place (idiomorph), so the
MA's focus on a Claim button and the page's scroll stay where they were while a changed row shows
its news; accessible, no CSP errors."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice import services
from backoffice.models import Handoff
from tests.browser.conftest import Screen
from tests.factories import HandoffFactory, PatientFactory
from tests.procedures.helpers import new_ma

pytestmark = pytest.mark.browser


def test_the_refresh_keeps_focus_and_scroll_and_shows_what_changed(screen: Screen) -> None:
    ma = new_ma(username="ma", first_name="Ana", last_name="Reyes")
    colleague = new_ma(first_name="Jordan", last_name="Lee")
    # Fifteen patients waiting, the longest 70 minutes.
    waiting = []
    for i in range(15):
        handoff = HandoffFactory(patient=PatientFactory(given_name=f"Patient{i:02}", family_name="Waiting"))
        Handoff.objects.filter(pk=handoff.pk).update(created_at=timezone.now() - dt.timedelta(minutes=70 - 4 * i))
        waiting.append(handoff)
    page = screen.page
    page.set_viewport_size({"width": 1366, "height": 768})
    page.clock.install()  # the refresh's 15 s timer, run forward below instead of waited for
    screen.login("ma")
    screen.goto("/queue/")
    expect(page.locator(".queue-table tbody tr")).to_have_count(15)

    # The MA tabs to the twelfth patient's Claim button, below the first screen, and scrolls to it.
    target = waiting[11]
    claim = page.locator(f"#handoff-{target.uuid} button", has_text="Claim")
    claim.focus()
    claim.scroll_into_view_if_needed()
    page.mouse.wheel(0, 120)
    page.wait_for_timeout(200)
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    before = page.locator("#queue-live p").first.inner_text()

    # Meanwhile a colleague claims the first patient.
    services.handoff_claim(handoff=waiting[0], by=colleague)
    with page.expect_response(lambda r: "/queue/" in r.url and r.request.headers.get("hx-request") == "true"):
        page.clock.run_for(16_000)
    page.wait_for_timeout(300)  # the swap settles

    first_row = page.locator(f"#handoff-{waiting[0].uuid}")
    expect(first_row).to_contain_text("Jordan Lee")
    expect(first_row.locator("button", has_text="Claim")).to_have_count(0)
    expect(page.locator("#queue-live p").first).not_to_have_text(before)  # 14 waiting now
    expect(page.locator("#queue-live p").first).to_contain_text("14 waiting")
    # The same button still has the focus (the element itself, not a copy), and the page didn't move.
    assert page.evaluate("document.activeElement.closest('tr')?.id") == f"handoff-{target.uuid}"
    expect(claim).to_be_focused()
    assert page.evaluate("window.scrollY") == scrolled
    page.set_viewport_size({"width": 1366, "height": 768})
    path = screen.shot("queue-refresh-keeps-focus")
    page.screenshot(path=str(path.with_name("queue-refresh-viewport.png")))
    screen.assert_accessible()
    screen.assert_no_console_errors()

    # Enter on the kept button claims the patient it names.
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/handoffs/{target.uuid}/")
    target.refresh_from_db()
    assert target.claimed_by == ma
