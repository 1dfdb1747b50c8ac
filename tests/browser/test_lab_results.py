"""Results in a real browser: a critical hemoglobin entered by keyboard, confirmed, verified by a second
tech (not the first), and a released glucose amended with its reason, the original shown superseded.
"""

import datetime as dt

import pytest
from playwright.sync_api import expect

from backoffice import roles
from backoffice.models import Patient
from lab.models import CriticalCall, Result
from lab.results import services
from lab.workflow import ResultStatus
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.factories import UserFactory
from tests.lab.helpers import ladder
from tests.lab.results_helpers import at_bench, enter, fresh, passing_lot

pytestmark = pytest.mark.browser


def test_a_critical_is_confirmed_verified_by_a_second_tech_and_a_released_result_is_amended(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    medical_assistant,  # type: ignore[no-untyped-def]
    lab_tech,
) -> None:
    ladder()
    second = UserFactory(username="lab2", first_name="Ana", last_name="Ruiz", role=roles.ROLE_LAB_TECH)
    hgb_tube = at_bench("Hemoglobin", ma=medical_assistant, lab_tech=lab_tech, sex="F")
    patient = Patient.objects.get(pk=hgb_tube.patient_id)
    patient.given_name, patient.family_name, patient.mrn = "Amara", "Okonkwo", "M424242"
    patient.date_of_birth = dt.date(1972, 9, 3)
    patient.save()  # save keeps the search column (update() of a name is refused)
    passing_lot("Hemoglobin", by=lab_tech, lot="HB-1124077")
    glucose_tube = at_bench("POC glucose", ma=medical_assistant, lab_tech=lab_tech)
    [glucose] = enter(
        glucose_tube, "POC glucose", "95", by=lab_tech, lot=passing_lot("POC glucose", by=lab_tech, lot="GL-7731")
    )
    services.result_release(result=fresh(glucose), by=lab_tech)
    page = screen.page

    # The first tech scans the tube at the bench: the entry page opens with the cursor in the value.
    screen.login("lab")
    screen.goto("/lab/results/")
    expect(page.get_by_role("heading", name="In-house bench")).to_be_visible()
    expect(page.locator("tbody tr", has_text=hgb_tube.accession)).to_contain_text("in the clinic")
    screen.assert_accessible()
    screen.shot("results-01-bench")
    page.keyboard.type(hgb_tube.accession)  # the scan box has the focus
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Hemoglobin, blood")).to_be_visible()
    expect(page.get_by_label("Hemoglobin (Hgb)")).to_be_focused()
    screen.assert_accessible()
    screen.shot("results-02-entry")

    # 6.8 g/dL: the page stops her before anything is saved.
    page.keyboard.type("6.8")
    page.keyboard.press("Enter")
    warning = page.get_by_role("alert").filter(has_text="STOP: critical value")
    expect(warning).to_contain_text("Hgb 6.8 g/dL (LL, critically low)")
    expect(page.get_by_role("button", name="Save critical result")).to_be_focused()
    assert not Result.objects.filter(specimen=hgb_tube).exists()
    screen.assert_accessible()
    screen.shot("results-03-critical-warning")
    page.keyboard.press("Enter")
    expect(page.locator(".messages")).to_contain_text("CRITICAL saved: Hgb 6.8 g/dL LL")
    row = page.locator("tr.result-row", has_text="Hgb")
    expect(row).to_contain_text("LL critical")
    expect(page.get_by_role("button", name="Verify and release Hemoglobin")).to_have_count(0)
    expect(page.locator(".verify-why")).to_have_text(
        "You entered this result; a second person verifies it before release."
    )
    screen.shot("results-04-entered")
    screen.logout()

    # The second tech finds it on her list and verifies it; the critical call opens on release.
    screen.login("lab2")
    screen.goto("/lab/results/to-verify/")
    page.locator("tbody tr", has_text="OKONKWO, Amara").get_by_role("link", name="Review").click()
    page.get_by_role("button", name="Verify and release Hemoglobin").click()
    expect(page.locator(".messages")).to_contain_text("Hemoglobin verified and released")
    expect(page.locator(".alert-stop")).to_contain_text("CRITICAL Hgb 6.8 g/dL (LL) released: call the ordering")
    expect(page.locator("tr.result-row", has_text="Hgb")).to_contain_text("Released")
    assert CriticalCall.objects.filter(result__specimen=hgb_tube).exists()
    assert Result.objects.get(specimen=hgb_tube).verified_by == second
    screen.assert_accessible()
    screen.shot("results-05-verified")

    # She amends the released glucose, with the reason; the first tech verifies the correction.
    screen.goto(f"/lab/results/specimens/{glucose_tube.uuid}/")
    page.locator("details.amend summary").click()
    page.get_by_label("Corrected Glucose").fill("59")
    page.get_by_label("Reason (printed with the amended result)").fill("Strip from another patient's reading; repeated")
    page.get_by_role("button", name="Enter the correction").click()
    expect(page.locator(".messages")).to_contain_text("Correction of Glucose entered")
    screen.logout()
    screen.login("lab")
    screen.goto(f"/lab/results/specimens/{glucose_tube.uuid}/")
    page.get_by_role("button", name="Verify and release POC glucose").click()
    original = page.locator("tr.result-superseded")
    expect(original.locator("del")).to_have_text("95 mg/dL")
    expect(page.locator("tr.result-released", has_text="59 mg/dL")).to_contain_text("Corrects 95 mg/dL")
    assert fresh(glucose).status == ResultStatus.SUPERSEDED
    screen.assert_accessible()
    screen.shot("results-06-amended")
    page.locator("tr.result-released", has_text="59 mg/dL").get_by_role("link", name="Released").click()
    expect(page.locator("table.result-history del")).to_have_text("95 mg/dL")
    screen.assert_accessible()
    screen.shot("results-07-history")
    screen.assert_no_console_errors()
