"""The results inbox in a real browser: a critical result first, acknowledged, then back as corrected.

A clinician has three new results: a normal glucose from this morning, a low hemoglobin, and a
critically low hemoglobin released minutes ago. The critical one is first and loud. The clinician
acknowledges the three. The lab corrects the critical value; it comes back to the inbox marked
corrected, showing the value it replaced. The patient's results show both hemoglobins over time
with a trend chart. The supervisor sees a colleague's result left unsigned too long on the board
and signs it for him while he is away.
"""

import datetime as dt

import pytest
from playwright.sync_api import expect

from backoffice import roles
from lab.models import Result
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.factories import UserFactory
from tests.lab.inbox_helpers import adult, collected_for, corrected, order_for, released

pytestmark = pytest.mark.browser


def test_the_clinician_sees_a_critical_first_acknowledges_and_sees_its_correction(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    clinician,  # type: ignore[no-untyped-def]
    supervisor,
) -> None:
    patient = adult(given_name="Amara", family_name="Okonkwo", mrn="M424242", date_of_birth=dt.date(1979, 9, 3))
    other = adult(given_name="Tomás", family_name="Reyes", mrn="M515151")
    released(order_for(collected_for(clinician, "POC glucose", patient=other), "POC glucose"), "88", ago_minutes=180)
    released(
        order_for(collected_for(clinician, "Hemoglobin", patient=patient), "Hemoglobin"),
        "11.1",
        ago_minutes=60 * 24 * 14,
    )
    critical = released(
        order_for(collected_for(clinician, "Hemoglobin", patient=patient), "Hemoglobin"), "6.8", ago_minutes=4
    )
    # A colleague's result, unsigned for five hours: the supervisor's board shows it.
    colleague = UserFactory(role=roles.ROLE_CLINICIAN, first_name="Omar", last_name="Haddad")
    released(order_for(collected_for(colleague, "Hemoglobin"), "Hemoglobin"), "10.2", ago_minutes=300)
    page = screen.page

    screen.login("doc")
    page.get_by_role("link", name="Results inbox").click()
    rows = page.locator("tbody tr.inbox-row")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("Hgb 6.8 g/dL")
    expect(rows.first).to_contain_text("LL critical")
    expect(rows.nth(1)).to_contain_text("Hgb 11.1 g/dL")  # low: abnormal, before the normal glucose
    expect(rows.nth(2)).to_contain_text("Glucose 88 mg/dL")
    screen.shot("r01-inbox-critical-first")
    screen.assert_accessible()

    page.get_by_role("button", name="Acknowledge these 3 results").click()
    expect(page.get_by_text("Acknowledged 3 results.")).to_be_visible()
    expect(page.get_by_text("No new results to acknowledge.")).to_be_visible()
    screen.shot("r02-inbox-acknowledged")

    fixed = corrected(critical, "11.8", reason="Clotted capillary sample; repeat from a fresh stick")
    page.reload()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Hgb 11.8 g/dL")
    expect(rows.first).to_contain_text("Corrected")
    expect(rows.first.locator("s")).to_have_text("6.8 g/dL")
    screen.shot("r03-inbox-corrected")
    screen.assert_accessible()

    rows.first.get_by_role("link", name="OKONKWO, Amara").click()
    expect(page.get_by_role("heading", name="OKONKWO, Amara")).to_be_visible()
    history = page.locator("section.result-history", has_text="Hemoglobin")
    expect(history.locator("tbody tr")).to_have_count(3)
    expect(history).to_contain_text("Superseded")
    expect(history.locator("svg circle")).to_have_count(2)
    expect(history.locator("figcaption")).to_contain_text("Hemoglobin, 2 results oldest first")
    screen.shot("r04-patient-results")
    screen.assert_accessible()

    page.get_by_role("link", name="Results inbox").click()
    page.get_by_role("button", name="Acknowledge this result").click()
    expect(page.get_by_text("Acknowledged 1 result.")).to_be_visible()
    assert Result.objects.get(pk=fixed.pk).acknowledged_by == clinician
    screen.assert_no_console_errors()
    screen.logout()

    screen.login("sup")
    panel = page.locator("section.stale-results")
    expect(panel).to_contain_text("Results not acknowledged after 240 minutes")
    expect(panel).to_contain_text("Hgb 10.2 g/dL")
    expect(panel).to_contain_text("Omar Haddad")
    # The board's cards show each released result as it is released (the correction replaced 6.8).
    expect(page.locator(".board-card", has_text="Hgb 11.8 g/dL")).to_contain_text("OKONKWO, Amara")
    expect(page.locator(".board-card", has_text="Hgb 11.1 g/dL L")).to_contain_text("OKONKWO, Amara")
    screen.shot("r05-board-unsigned-results")
    screen.assert_accessible()

    # Dr Haddad is away: the supervisor opens his inbox from the board and signs for him.
    panel.get_by_role("link", name="Open inbox of Omar Haddad").click()
    expect(page.get_by_role("heading", name="Results inbox: Omar Haddad")).to_be_visible()
    expect(page.get_by_label("Inbox of (a clinician who is away)")).to_have_value(str(colleague.pk))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("hours ago")
    screen.shot("r06-supervisor-signs-for-an-away-clinician")
    screen.assert_accessible()
    page.get_by_role("button", name="Acknowledge this result").click()
    expect(page.get_by_text("Acknowledged 1 result.")).to_be_visible()
    expect(page.get_by_role("heading", name="Results inbox: Omar Haddad")).to_be_visible()
    screen.assert_no_console_errors()
