"""After a failed QC, in a real browser: the verifier's list shows what the failure put up for review, a
result not yet released is held (no verify button, the reason instead), and a released one's review is
closed with what it found.
"""

import pytest
from playwright.sync_api import expect

from backoffice import roles
from lab.models import ControlLot, Result
from lab.qc.services import qc_run_record
from lab.results import services
from lab.workflow import ControlLevel
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.factories import UserFactory
from tests.lab.results_helpers import at_bench, enter, fresh, passing_lot

pytestmark = pytest.mark.browser


def test_a_failed_qc_holds_one_result_and_puts_a_released_one_up_for_review(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    medical_assistant,  # type: ignore[no-untyped-def]
    lab_tech,
) -> None:
    second = UserFactory(username="lab2", first_name="Ana", last_name="Ruiz", role=roles.ROLE_LAB_TECH)
    lot = passing_lot("Rapid strep", by=lab_tech, lot="STR-2611")
    released_tube = at_bench("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
    [released] = enter(released_tube, "Rapid strep", "Negative", by=lab_tech, lot=lot)
    services.result_verify(result=fresh(released), by=second)
    held_tube = at_bench("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
    [held] = enter(held_tube, "Rapid strep", "Positive", by=lab_tech, lot=lot)
    positive = ControlLot.objects.get(test=lot.kit.tests.get(), level=ControlLevel.POSITIVE)
    qc_run_record(kit_lot=lot, control_lot=positive, value="Negative", by=lab_tech)
    page = screen.page

    screen.login("lab2")
    screen.goto("/lab/results/to-verify/")
    review = page.locator("table.review-table tbody tr")
    expect(review).to_have_count(2)
    expect(review.filter(has_text=held_tube.accession)).to_contain_text("Held, not released")
    expect(review.filter(has_text=released_tube.accession)).to_contain_text("Released, under review")
    expect(page.locator("tbody tr", has_text=held_tube.accession).first).to_contain_text("held: QC failed")
    screen.assert_accessible()
    screen.shot("review-01-list")

    # The held one: no verify button; the page says why and what to do.
    review.filter(has_text=held_tube.accession).get_by_role("link", name="Open").click()
    expect(page.get_by_role("button", name="Verify and release Rapid strep")).to_have_count(0)
    expect(page.locator(".verify-why")).to_contain_text(
        "Strep A is held: a control failed on lot STR-2611 after it was run."
    )
    expect(page.locator(".verify-why")).to_contain_text("Repeat it once the lot's QC passes and correct the value")
    expect(page.locator(".needs-review .badge")).to_have_text("Held")
    screen.assert_accessible()
    screen.shot("review-02-held")

    # The released one: its review is closed, saying what it found.
    screen.goto("/lab/results/to-verify/")
    review.filter(has_text=released_tube.accession).get_by_role("link", name="Open").click()
    page.locator("details.close-review summary").click()
    page.get_by_label("What the review found (the result stands)").fill("Repeated after QC passed: negative again")
    screen.shot("review-03-close")
    page.get_by_role("button", name="Close the review").click()
    expect(page.locator(".messages")).to_contain_text("Review of Strep A closed: the result stands as released.")
    expect(page.locator(".needs-review")).to_have_count(0)
    assert Result.objects.get(pk=released.pk).needs_review is False
    assert Result.objects.get(pk=held.pk).needs_review is True
    screen.assert_accessible()
    screen.assert_no_console_errors()
