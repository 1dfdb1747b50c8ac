"""The in-house lab end to end in a real browser, every step through the pages a tech or clinician uses.

One visit: Dr Shah ordered a rapid strep, a hemoglobin and a fingerstick glucose for Amara Okonkwo;
the tubes are at the bench and the glucose was released earlier. Then, through the pages only, Lee
and Ana at the bench and Dr Shah in clinic each at her own browser:

1. Lee runs QC on a new strep kit lot: the positive control reads Negative and fails, so the strep
   swab's entry page is locked for that lot and says why; the negative and positive run again and
   pass, and the lot opens for patient testing.
2. Lee enters a hemoglobin of 6.8 g/dL: the page computes LL and stops her before saving; she confirms.
3. Ana, a second lab tech, verifies and releases it; the critical call-back opens on Critical calls.
4. Lee calls Dr Shah, who reads back two identifiers and the value; the call closes.
5. Dr Shah finds the result in her inbox, critical first, and acknowledges it.
6. Lee amends the released glucose with a reason, Ana verifies the correction, and Dr Shah's inbox
   shows it corrected, the value it replaced struck through; her patient's results show it superseded.
"""

import datetime as dt
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from backoffice import roles
from backoffice.models import Handoff, Patient, User
from backoffice.services import handoff_assign_station, handoff_claim, handoff_verify_identity
from lab.models import CriticalCall, QCRun, Result, TestOrder
from lab.results import services
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import CallOutcome, CriticalCallStatus, ResultStatus
from specimens.models import Specimen
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.factories import HandoffFactory, PatientFactory, StationFactory, UserFactory
from tests.lab.helpers import kit_lot, ladder, qualitative_qc
from tests.lab.results_helpers import enter, fresh, passing_lot
from tests.specimens.helpers import confirm, received, tests

pytestmark = pytest.mark.browser

STREP_LOT = "Acme Diagnostics Rapid strep kit lot STA-24117"


def visit_at_the_bench(*, clinician: User, ma: User, lab_tech: User) -> Handoff:
    """Dr Shah's orders for Amara Okonkwo, drawn at the bedside (a throat swab, a fingerstick) and received."""
    patient = PatientFactory(
        given_name="Amara",
        family_name="Okonkwo",
        mrn="M424242",
        date_of_birth=dt.date(1972, 9, 3),
        sex=Patient.Sex.FEMALE,
    )
    handoff = HandoffFactory(patient=patient, ordering_clinician=clinician, created_by=clinician)
    test_orders_add(handoff=handoff, tests=tests("Rapid strep", "Hemoglobin", "POC glucose"), by=clinician)
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=StationFactory(), by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=patient.mrn)
    for tube in tests_start_collection(handoff=handoff, by=ma):
        confirm(tube, ma)
        received(tube, ma=ma, lab_tech=lab_tech)
    return handoff


def tube_for(handoff: Handoff, short_name: str) -> Specimen:
    specimen = TestOrder.objects.select_related("specimen").get(handoff=handoff, test__short_name=short_name).specimen
    assert specimen is not None
    return specimen


def test_qc_lockout_to_critical_call_to_inbox_and_an_amended_result(
    screen: Screen,
    new_context: Callable[..., BrowserContext],
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    clinician,  # type: ignore[no-untyped-def]
    medical_assistant,
    lab_tech,
) -> None:
    ladder()
    second = UserFactory(username="lab2", first_name="Ana", last_name="Ruiz", role=roles.ROLE_LAB_TECH)
    qualitative_qc("Rapid strep")
    strep_lot = kit_lot("Rapid strep", lot="STA-24117", received_days_ago=0)
    hgb_lot = passing_lot("Hemoglobin", by=lab_tech, lot="HB-1124077")
    handoff = visit_at_the_bench(clinician=clinician, ma=medical_assistant, lab_tech=lab_tech)
    swab, fingerstick = tube_for(handoff, "Rapid strep"), tube_for(handoff, "Hemoglobin")
    assert tube_for(handoff, "POC glucose") == fingerstick  # glucose and hemoglobin share the capillary tube
    [glucose] = enter(
        fingerstick, "POC glucose", "95", by=lab_tech, lot=passing_lot("POC glucose", by=lab_tech, lot="GL-7731")
    )
    services.result_release(result=fresh(glucose), by=lab_tech)  # the performer may release a glucose

    # Three people at three workstations, each signed in once: Lee and Ana at the bench, Dr Shah in clinic.
    lee = screen
    ana, priya = (Screen(new_context().new_page(), screen.base_url) for _ in range(2))

    # --- 1. QC on the new strep lot: the positive control fails, the swab is locked out, then it passes.
    lee.login("lab")
    page = lee.page
    page.get_by_role("link", name="QC", exact=True).click()
    lot = page.locator(f"#lot-{strep_lot.pk}")
    expect(lot.locator(".badge")).to_have_text("Locked")
    expect(lot).to_contain_text(f"Run the negative control on {STREP_LOT} first")
    lee.shot("e2e-01-qc-new-strep-lot-locked")
    lee.assert_accessible()

    negative, positive = lot.locator("tr", has_text="lot N-1"), lot.locator("tr", has_text="lot P-1")
    negative.get_by_role("button", name="Negative").click()
    expect(page.get_by_text("read Negative on lot STA-24117: passed. Still locked")).to_be_visible()
    positive.get_by_label("Note for Rapid strep Positive control").fill("No test line")
    positive.get_by_role("button", name="Negative").click()
    expect(page.locator(".alert-danger", has_text="FAILED")).to_contain_text(
        "Patient testing on this lot is locked until it passes."
    )
    expect(lot).to_contain_text(f"The positive control failed on {STREP_LOT}")
    assert list(QCRun.objects.filter(kit_lot=strep_lot).order_by("id").values_list("passed", flat=True)) == [
        True,
        False,
    ]
    lee.shot("e2e-02-qc-positive-control-failed")
    lee.assert_accessible()

    # The throat swab at the bench: no entry on the lot, and the page says why.
    page.get_by_role("link", name="Bench", exact=True).click()
    page.get_by_role("link", name=f"Enter results for {swab.accession}").click()
    strep_panel = page.locator("section.result-panel", has_text="Streptococcus pyogenes")
    lockout = strep_panel.locator(".qc-lockout")
    expect(lockout).to_contain_text("QC lockout: no kit lot for Rapid strep may be used for patients now.")
    expect(lockout).to_contain_text(f"Lot STA-24117: The positive control failed on {STREP_LOT}")
    expect(lockout).to_contain_text("find the cause and run it again")
    expect(page.get_by_role("form", name="Enter Rapid strep")).to_have_count(0)
    lee.shot("e2e-03-bench-strep-locked-out")
    lee.assert_accessible()

    # Both controls again, and both pass: the lot opens.
    page.get_by_role("link", name="QC", exact=True).click()
    negative.get_by_role("button", name="Negative").click()
    expect(
        page.get_by_text("read Negative on lot STA-24117: passed. Still locked: The positive control")
    ).to_be_visible()
    positive.get_by_role("button", name="Positive").click()
    expect(page.get_by_text("read Positive on lot STA-24117: passed. Patient testing is unlocked.")).to_be_visible()
    expect(lot.locator(".badge")).to_have_text("Unlocked")
    assert list(QCRun.objects.filter(kit_lot=strep_lot).order_by("id").values_list("passed", flat=True)) == [
        True,
        False,
        True,
        True,
    ]
    lee.shot("e2e-04-qc-strep-lot-unlocked")
    lee.assert_accessible()

    lee.goto(f"/lab/results/specimens/{swab.uuid}/")
    expect(strep_panel.locator(".qc-lockout")).to_have_count(0)
    strep_form = page.get_by_role("form", name="Enter Rapid strep")
    expect(strep_form.get_by_label("Kit lot").locator("option:checked")).to_contain_text("STA-24117")
    expect(strep_form.get_by_role("radio", name="Positive")).to_be_enabled()
    lee.shot("e2e-05-bench-strep-unlocked")
    lee.assert_accessible()

    # --- 2. The hemoglobin: scanned, typed, LL computed, stopped before saving, confirmed.
    page.get_by_role("link", name="Bench", exact=True).click()
    expect(page.locator("tbody tr", has_text=fingerstick.accession)).to_contain_text("Hemoglobin")
    page.keyboard.type(fingerstick.accession)  # the scan box has the focus
    page.keyboard.press("Enter")
    expect(page.get_by_label("Hemoglobin (Hgb)")).to_be_focused()
    page.keyboard.type("6.8")
    page.keyboard.press("Enter")
    warning = page.get_by_role("alert").filter(has_text="STOP: critical value")
    expect(warning).to_contain_text("Hgb 6.8 g/dL (LL, critically low)")
    expect(page.get_by_role("button", name="Save critical result")).to_be_focused()
    assert not Result.objects.filter(specimen=fingerstick, analyte__short_name="Hgb").exists()
    lee.shot("e2e-06-critical-hemoglobin-stop")
    lee.assert_accessible()

    page.get_by_role("button", name="Save critical result").click()
    expect(page.locator(".messages")).to_contain_text("CRITICAL saved: Hgb 6.8 g/dL LL")
    hgb_row = page.locator("tr.result-row", has_text="Hgb")
    expect(hgb_row).to_contain_text("LL critical")
    expect(hgb_row).to_contain_text("Entered")
    expect(page.locator(".verify-why")).to_have_text(
        "You entered this result; a second person verifies it before release."
    )
    hgb = Result.objects.get(specimen=fingerstick, analyte__short_name="Hgb")
    assert (hgb.status, hgb.flag, hgb.is_critical) == (ResultStatus.ENTERED, "LL", True)
    assert (hgb.entered_by, hgb.kit_lot) == (lab_tech, hgb_lot)
    assert not CriticalCall.objects.exists()  # the call opens on release, not before
    lee.shot("e2e-07-critical-hemoglobin-entered")
    lee.assert_accessible()

    # --- 3. A second tech verifies it; the call-back opens.
    ana.login("lab2")
    page = ana.page
    page.get_by_role("link", name="Bench", exact=True).click()
    page.get_by_role("link", name="Results to verify").click()
    waiting = page.locator("tbody tr", has_text="OKONKWO, Amara")
    expect(waiting).to_contain_text("Hemoglobin: Hgb 6.8 g/dL")
    expect(waiting).to_contain_text("Lee Chen")
    ana.assert_accessible()
    waiting.get_by_role("link", name="Review").click()
    page.get_by_role("button", name="Verify and release Hemoglobin").click()
    expect(page.locator(".messages")).to_contain_text("Hemoglobin verified and released")
    expect(page.locator(".alert-stop")).to_contain_text("CRITICAL Hgb 6.8 g/dL (LL) released: call the ordering")
    expect(page.locator("tr.result-row", has_text="Hgb")).to_contain_text("Released")
    hgb.refresh_from_db()
    assert (hgb.status, hgb.verified_by, hgb.released_by) == (ResultStatus.RELEASED, second, second)
    call = CriticalCall.objects.get(result=hgb)
    assert call.status == CriticalCallStatus.OPEN and call.clinician == clinician
    ana.shot("e2e-08-hemoglobin-verified-by-second-tech")
    ana.assert_accessible()

    page.get_by_role("link", name="Critical calls").click()
    open_call = page.locator("table.critical-calls tbody tr", has_text="OKONKWO, Amara")
    expect(open_call).to_contain_text("Hgb 6.8 g/dL")
    expect(open_call).to_contain_text("LL")
    expect(open_call).to_contain_text("Priya Shah")
    expect(open_call).to_contain_text("due in")
    ana.shot("e2e-09-critical-call-open")
    ana.assert_accessible()

    # --- 4. The first tech calls Dr Shah, who reads back two identifiers and the value.
    page = lee.page
    page.get_by_role("link", name="Critical calls").click()
    open_call = page.locator("table.critical-calls tbody tr", has_text="OKONKWO, Amara")
    open_call.get_by_role("link", name=re.compile(r"^Call\W+Okonkwo, Hgb$")).click()
    expect(page.get_by_label("Whom you called")).to_have_value("Priya Shah")
    expect(page.get_by_label("Their role")).to_have_value("Ordering clinician")
    page.get_by_label("Reached, value read back").check()
    page.get_by_label("Identifiers they read back").fill("Amara Okonkwo, DOB 09/03/1972")
    page.get_by_label("Value they read back").fill("hemoglobin 6.8 g/dL")
    lee.shot("e2e-10-read-back-typed")
    lee.assert_accessible()
    page.get_by_role("button", name="Record call").click()
    expect(page.get_by_text("Closed: Priya Shah read back Hgb 6.8 g/dL for Amara Okonkwo")).to_be_visible()
    expect(page.locator("tbody tr", has_text="OKONKWO, Amara")).to_have_count(0)
    call.refresh_from_db()
    assert (call.status, call.closed_how, call.closed_by) == (CriticalCallStatus.CLOSED, "read back", lab_tech)
    [attempt] = call.attempts.all()
    assert attempt.outcome == CallOutcome.READ_BACK
    assert (attempt.read_back_identifiers, attempt.read_back_value) == (
        "Amara Okonkwo, DOB 09/03/1972",
        "hemoglobin 6.8 g/dL",
    )
    lee.shot("e2e-11-critical-call-closed")
    lee.assert_accessible()

    # --- 5. Dr Shah signs in, sees the critical first in her inbox and acknowledges.
    priya.login("doc")
    page = priya.page
    page.get_by_role("link", name="Results inbox").click()
    rows = page.locator("tbody tr.inbox-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Hgb 6.8 g/dL")
    expect(rows.first).to_contain_text("LL critical")
    expect(rows.first).to_contain_text("OKONKWO, Amara")
    expect(rows.nth(1)).to_contain_text("Glucose 95 mg/dL")
    expect(rows.nth(1)).to_contain_text("normal")
    priya.shot("e2e-12-inbox-critical-first")
    priya.assert_accessible()
    page.get_by_role("button", name="Acknowledge these 2 results").click()
    expect(page.get_by_text("Acknowledged 2 results.")).to_be_visible()
    expect(page.get_by_text("No new results to acknowledge.")).to_be_visible()
    assert set(Result.objects.filter(pk__in=[hgb.pk, glucose.pk]).values_list("acknowledged_by", flat=True)) == {
        clinician.pk
    }

    # --- 6. The tech amends the released glucose; a second tech verifies; the inbox shows the correction.
    reason = "Strip read from another patient's fingerstick; repeated"
    page = lee.page
    lee.goto(f"/lab/results/specimens/{fingerstick.uuid}/")
    glucose_row = page.locator("tr.result-row", has_text="Glucose")
    glucose_row.locator("details.amend summary").click()
    glucose_row.get_by_label("Corrected Glucose").fill("59")
    glucose_row.get_by_label("Reason (printed with the amended result)").fill(reason)
    lee.shot("e2e-13-glucose-amend-typed")
    glucose_row.get_by_role("button", name="Enter the correction").click()
    expect(page.locator(".messages")).to_contain_text("Correction of Glucose entered")
    amended = Result.objects.get(amends=glucose)
    assert (amended.status, amended.amend_reason, amended.entered_by) == (ResultStatus.ENTERED, reason, lab_tech)
    assert fresh(glucose).status == ResultStatus.RELEASED  # until the correction is verified
    lee.assert_accessible()

    page = ana.page
    page.get_by_role("link", name="Bench", exact=True).click()
    page.get_by_role("link", name="Results to verify").click()
    waiting = page.locator("tbody tr", has_text="OKONKWO, Amara")
    expect(waiting).to_contain_text("Glucose 59 mg/dL")
    expect(waiting).to_contain_text("correction of 95 mg/dL")
    waiting.get_by_role("link", name="Review").click()
    page.get_by_role("button", name="Verify and release POC glucose").click()
    expect(page.locator("tr.result-superseded", has_text="Glucose").locator("del")).to_have_text("95 mg/dL")
    expect(page.locator("tr.result-released", has_text="59 mg/dL")).to_contain_text(f"Corrects 95 mg/dL: {reason}")
    amended.refresh_from_db()
    assert (amended.status, amended.verified_by) == (ResultStatus.RELEASED, second)
    assert fresh(glucose).status == ResultStatus.SUPERSEDED
    ana.shot("e2e-14-glucose-correction-verified")
    ana.assert_accessible()

    page = priya.page
    page.get_by_role("link", name="Results inbox").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Glucose 59 mg/dL")
    expect(rows.first).to_contain_text("Corrected")
    expect(rows.first).to_contain_text(reason)
    expect(rows.first.locator("s")).to_have_text("95 mg/dL")
    priya.shot("e2e-15-inbox-correction")
    priya.assert_accessible()

    rows.first.get_by_role("link", name="OKONKWO, Amara").click()
    history = page.locator("section.result-history", has_text="Glucose")
    expect(history.locator("tbody tr")).to_have_count(2)
    expect(history.locator("tbody tr", has_text="Superseded").locator("s")).to_have_text("95 mg/dL")
    expect(history.locator("tbody tr", has_text="Corrected")).to_contain_text("59 mg/dL")
    priya.shot("e2e-16-patient-results-superseded")
    priya.assert_accessible()

    page.get_by_role("link", name="Results inbox").click()
    page.get_by_role("button", name="Acknowledge this result").click()
    expect(page.get_by_text("Acknowledged 1 result.")).to_be_visible()
    amended.refresh_from_db()
    assert amended.acknowledged_by == clinician
    for person in (lee, ana, priya):
        person.assert_no_console_errors()
