"""A critical value in a real browser: the call-back appears on the bench's list, the lab technician
records a call that didn't reach the clinician, then the call with the read-back, and it closes.

Keyboard first: the call page starts on the outcome, the arrow keys choose it, and Enter in the
read-back value records the call.
"""

import re

import pytest
from playwright.sync_api import expect

from lab.models import CriticalCall
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.lab.helpers import ladder
from tests.lab.test_criticals import glucose_lot, past_due, released

pytestmark = pytest.mark.browser


def test_the_tech_calls_a_critical_value_not_reached_then_read_back_and_it_closes(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    clinician,  # type: ignore[no-untyped-def]
    medical_assistant,
    lab_tech,
    supervisor,
) -> None:
    ladder()
    lot = glucose_lot(lab_tech)
    result = released(
        "520",
        ma=medical_assistant,
        lab_tech=lab_tech,
        lot=lot,
        clinician=clinician,
        mrn="M515151",
        given_name="Grace",
        family_name="Whitfield",
    )
    # Another patient's, whose ordering clinician's time has run out: the board shows it overdue.
    other = CriticalCall.objects.get(
        result=released("31", ma=medical_assistant, lab_tech=lab_tech, lot=lot, given_name="Tomas", family_name="Berg")
    )
    past_due(other, minutes=4)
    call = CriticalCall.objects.get(result=result)
    page = screen.page

    screen.login("sup")
    screen.goto("/board/")
    panel = page.locator("section.critical-calls-panel")
    expect(panel).to_contain_text("2 open")
    expect(panel).to_contain_text("1 overdue")
    expect(panel.locator("tbody tr").first).to_contain_text("BERG, Tomas")
    screen.shot("c00-board-critical-calls")
    screen.assert_accessible()
    screen.logout()

    screen.login("lab")
    screen.goto("/lab/criticals/")
    row = page.locator("tbody tr", has_text="WHITFIELD, Grace")
    expect(row).to_contain_text("Glucose 520 mg/dL")
    expect(row).to_contain_text("Priya Shah")
    expect(row).to_contain_text("due in 2")  # 29 or 30 minutes left
    expect(page.locator("tbody tr").first).to_contain_text("Overdue 4 min")
    screen.shot("c01-critical-calls")
    screen.assert_accessible()

    row.get_by_role("link", name=re.compile(r"^Call")).click()
    expect(page.get_by_label("Whom you called")).to_have_value("Priya Shah")
    expect(page.get_by_label("Their role")).to_have_value("Ordering clinician")
    # Focus starts on the outcome; the arrow keys move down to "Not reached".
    expect(page.get_by_label("Reached, value read back")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Not reached")).to_be_checked()
    page.get_by_label("Note").fill("Paged twice, in a procedure")
    screen.shot("c02-not-reached-typed")
    screen.assert_accessible()
    page.get_by_role("button", name="Record call").click()
    expect(page.get_by_text("stays open")).to_be_visible()
    expect(page.locator("table.attempts tbody tr")).to_have_count(1)
    expect(page.locator("table.attempts")).to_contain_text("Paged twice, in a procedure")

    # A read-back without the identifiers is refused, and says what is missing.
    page.get_by_label("Reached, value read back").check()
    page.get_by_label("Value they read back").fill("glucose 520")
    page.get_by_role("button", name="Record call").click()
    expect(page.get_by_text("A read-back needs the two patient identifiers they repeated.")).to_be_visible()
    screen.shot("c03-read-back-incomplete")
    screen.assert_accessible()

    page.get_by_label("Reached, value read back").check()
    page.get_by_label("Identifiers they read back").fill("Grace Whitfield, MRN M515151")
    page.get_by_label("Value they read back").fill("glucose 520 mg/dL")
    page.get_by_label("Value they read back").press("Enter")
    expect(page.get_by_text("Closed: Priya Shah read back Glucose 520 mg/dL for Grace Whitfield")).to_be_visible()
    expect(page.locator("tbody tr", has_text="WHITFIELD, Grace")).to_have_count(0)
    screen.shot("c04-closed")
    screen.assert_accessible()

    call.refresh_from_db()
    assert call.status == "closed" and call.closed_how == "read back"
    assert list(call.attempts.values_list("outcome", flat=True)) == ["not_reached", "read_back"]

    screen.goto(f"/lab/criticals/{call.uuid}/")
    expect(page.locator("table.attempts tbody tr")).to_have_count(2)
    expect(page.get_by_text("Read back by Priya Shah")).to_be_visible()
    screen.shot("c05-call-history")
    screen.assert_accessible()

    screen.goto("/lab/criticals/report/")
    row = page.locator("table.notification-times tbody tr", has_text="WHITFIELD, Grace")
    expect(row).to_contain_text("Priya Shah (Ordering clinician)")
    expect(page.locator("table.notification-times tbody tr", has_text="BERG, Tomas")).to_contain_text("so far")
    expect(page.locator(".report-summary")).to_contain_text("1 over the 30-minute limit")
    screen.shot("c06-time-to-notification")
    screen.assert_accessible()
    screen.assert_no_console_errors()
