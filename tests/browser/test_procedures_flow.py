"""Procedures in a real browser: a trainee performs under supervision, the supervisor reviews, billing sees it.

An MA not yet signed off for venipuncture or IM injections performs both for one patient, to be
co-signed afterwards, and records the medication lot; sent for co-sign, both are done for the patient:
the handoff completes and the chair is turned over at once. The supervisor co-signs the draw and returns
the injection; the MA adds the correction and resubmits; the supervisor co-signs it, and the day's
charge list shows both CPT codes.
"""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone
from playwright.sync_api import expect

from backoffice.identifiers import as_scanned
from backoffice.models import Handoff, Station
from backoffice.workflow import HandoffStatus, StationState
from procedures.models import ChargeLine, Competency, ProcedureOrder, ProcedureType
from procedures.services import procedure_orders_add
from procedures.workflow import ProcedureStatus
from tests.browser.conftest import Screen
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory
from tests.factories import medication as catalog_drug
from tests.procedures.helpers import credentialed, equipped, procedure_type, signed_off

pytestmark = pytest.mark.browser


@pytest.fixture
def seeded_by_migrations(screen: Screen) -> None:
    """Put back the roles and catalogs migrations seeded, if a transactional test before this one flushed them.

    Serialized rollback should do that, but Playwright's session fixture leaves an asyncio loop
    running on the main thread; asgiref then hands Django a per-context connection object that
    lacks the test database's serialized contents, and the restore is silently skipped. The
    contents are still on the main thread's connection. A no-op whenever the rows are there.
    """
    if Group.objects.exists() and ProcedureType.objects.exists():
        return
    main = getattr(connections._connections._storage, DEFAULT_DB_ALIAS)  # type: ignore[attr-defined]
    connection.creation.deserialize_db_from_string(main._test_serialized_contents)


def test_a_trainee_performs_under_supervision_and_the_supervisor_cosigns_and_returns(
    screen: Screen,
    seeded_by_migrations: None,
    clinician,  # type: ignore[no-untyped-def]
    medical_assistant,
    supervisor,
) -> None:
    ma = credentialed(medical_assistant)
    signed_off(credentialed(supervisor), by=clinician)
    signed_off(ma, "69209", "94760", by=supervisor)  # competent for other things, not for these two
    patient = PatientFactory(
        mrn="M271801",
        given_name="Rosa",
        family_name="Martínez",
        date_of_birth=dt.date(1961, 4, 12),
        allergies="Penicillin — hives\nLatex",
    )
    station = equipped(StationFactory(code="phleb-1", name="Phlebotomy chair 1", kind=Station.Kind.PHLEBOTOMY))
    handoff = HandoffFactory(
        patient=patient,
        ordering_clinician=clinician,
        created_by=clinician,
        exam_room=ExamRoomFactory(name="Exam 3"),
        clinical_note="Fasting labs today; ceftriaxone 250 mg IM for gonorrhea per CDC.",
    )
    procedure_orders_add(
        handoff=handoff, procedure_types=[procedure_type("36415"), procedure_type("96372")], by=clinician
    )
    catalog_drug("Ceftriaxone", "250 mg/mL", hcpcs_code="J0696", billing_unit_amount=250, billing_unit="mg")
    page = screen.page
    lot_expiry = (timezone.localdate() + dt.timedelta(days=240)).isoformat()

    # The MA claims the patient, brings her to the chair and scans the wristband.
    screen.login("ma")
    page.locator("tbody tr", has_text="MARTÍNEZ, Rosa").get_by_role("button", name="Claim").click()
    page.get_by_role("combobox", name="Station").select_option(label="Phlebotomy chair 1")
    page.get_by_role("button", name="Assign station").click()
    page.get_by_label("Scan wristband (MRN)").fill(as_scanned("M271801"))  # what the scanner sends
    page.get_by_role("button", name="Verify identity").click()
    expect(page.get_by_text("Identity verified for Rosa Martínez.")).to_be_visible()
    panel = page.locator("section.procedure-panel")
    expect(panel).to_contain_text("Venipuncture")
    expect(panel).to_contain_text("Therapeutic injection, IM or SC")
    screen.shot("p01-handoff-procedures")
    screen.assert_accessible()

    # Venipuncture: not yet signed off, so a supervisor co-signs afterwards.
    panel.get_by_role("link", name="Start Venipuncture").click()
    expect(page.get_by_text("You aren't signed off as competent for this procedure yet.")).to_be_visible()
    screen.shot("p02-start-needs-supervision")
    screen.assert_accessible()
    page.get_by_label("A supervisor co-signs my documentation afterwards").check()
    page.get_by_role("button", name="Start Venipuncture").click()
    expect(page.get_by_text("Venipuncture started.")).to_be_visible()
    for box in page.locator(".checklist input[type=checkbox]").all():
        box.check()
    page.get_by_label("Body site").fill("Antecubital fossa")
    page.get_by_label("Laterality").select_option(label="Left")
    page.get_by_label("Specimen collected").fill("1 lavender EDTA, 1 gold SST")
    page.get_by_label("Tolerated well").check()
    screen.shot("p03-venipuncture-documentation")
    screen.assert_accessible()
    page.get_by_role("button", name="Save and send for co-sign").click()
    expect(page.get_by_text("Venipuncture is done and waits for a supervisor's co-sign.")).to_be_visible()

    # IM injection, with the medication lot.
    page.get_by_role("link", name="Handoff from Exam 3").click()
    page.locator("section.procedure-panel").get_by_role("link", name="Start Therapeutic injection, IM or SC").click()
    page.get_by_label("A supervisor co-signs my documentation afterwards").check()
    page.get_by_role("button", name="Start Therapeutic injection, IM or SC").click()
    medication = page.locator("form.med-form")
    medication.get_by_label("Drug").select_option(label="Ceftriaxone 250 mg/mL")  # from the catalog, not typed
    medication.get_by_label("Dose").fill("250")
    medication.get_by_label("Unit").select_option("mg")
    medication.get_by_label("Route").select_option("IM")
    medication.get_by_label("Site").fill("Right ventrogluteal")
    medication.get_by_label("Lot number").fill("CX4471B")
    medication.get_by_label("Lot expiry").fill(lot_expiry)
    medication.get_by_role("button", name="Record medication").click()
    expect(page.get_by_text("Recorded: Ceftriaxone 250 mg/mL 250 mg IM (lot CX4471B).")).to_be_visible()
    for box in page.locator(".checklist input[type=checkbox]").all():
        box.check()
    page.get_by_label("Consent obtained").check()
    page.get_by_label("Body site").fill("Ventrogluteal")
    page.get_by_label("Laterality").select_option(label="Right")
    page.get_by_label("Tolerated well").check()
    screen.shot("p04-injection-documentation")
    screen.assert_accessible()
    page.get_by_role("button", name="Save and send for co-sign").click()
    expect(page.get_by_text("waits for a supervisor's co-sign")).to_be_visible()
    # Done for the patient: the handoff completes, and the chair is cleaned, before any co-sign.
    expect(page.get_by_text("Every ordered item is done: Rosa Martínez's handoff is complete.")).to_be_visible()
    expect(page.get_by_text("Phlebotomy chair 1 needs turnover.")).to_be_visible()
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.COMPLETED
    page.get_by_role("button", name="Cleaned & restocked").click()
    expect(page.get_by_text("Phlebotomy chair 1 is clean, restocked and ready.")).to_be_visible()
    assert Station.objects.get(pk=station.pk).state == StationState.READY
    screen.logout()

    # The supervisor's queue: co-sign the draw inline, return the injection with a comment.
    screen.login("sup")
    page.get_by_role("link", name="Procedures", exact=True).click()
    draw = page.locator("tbody tr", has_text="Venipuncture")
    injection = page.locator("tbody tr", has_text="Therapeutic injection")
    expect(draw).to_contain_text("Awaiting co-sign")
    expect(injection).to_contain_text("lot CX4471B")
    expect(page.locator("tbody tr").first).to_contain_text("Oldest")
    screen.shot("p05-supervisor-queue")
    screen.assert_accessible()
    draw.get_by_role("button", name="Co-sign").click()
    expect(page.get_by_text("Co-signed: Venipuncture for Rosa Martínez.")).to_be_visible()
    injection = page.locator("tbody tr", has_text="Therapeutic injection")
    injection.get_by_label("What needs correcting").fill("Add the time given and confirm the lot against the vial.")
    injection.get_by_role("button", name="Return").click()
    expect(page.get_by_text("Returned to the performer: Therapeutic injection, IM or SC")).to_be_visible()
    expect(page.locator("tbody tr", has_text="Therapeutic injection")).to_contain_text("Returned for correction")
    screen.logout()

    # The MA sees the return, adds the correction as an addendum and resubmits.
    screen.login("ma")
    page.get_by_role("link", name="Procedures", exact=True).click()
    returned = page.locator("tbody tr", has_text="Therapeutic injection")
    expect(returned).to_contain_text("Add the time given and confirm the lot against the vial.")
    screen.shot("p06-ma-returned")
    screen.assert_accessible()
    returned.get_by_role("link", name="Correct").click()
    expect(page.get_by_role("alert")).to_contain_text("Returned for correction")
    page.get_by_label("Addendum").fill("Given at 10:42. Lot CX4471B confirmed against the vial label.")
    page.get_by_role("button", name="Add addendum").click()
    expect(page.get_by_text("Addendum added; the original documentation is unchanged.")).to_be_visible()
    page.get_by_label("What you corrected (optional)").fill("Time given and lot confirmed")
    screen.shot("p07-correction")
    screen.assert_accessible()
    page.get_by_role("button", name="Resubmit").click()
    expect(page.get_by_text("is back in the co-sign queue.")).to_be_visible()
    screen.logout()

    # The supervisor co-signs the correction from the procedure page; the handoff completes.
    screen.login("sup")
    page.get_by_role("link", name="Procedures", exact=True).click()
    page.locator("tbody tr", has_text="Therapeutic injection").get_by_role("link", name="Review").click()
    expect(page.locator("section", has_text="Addenda")).to_contain_text("Lot CX4471B confirmed")
    screen.shot("p08-review-with-addendum")
    screen.assert_accessible()
    page.get_by_role("button", name="Co-sign").click()
    expect(page.get_by_text("Co-signed: Therapeutic injection, IM or SC for Rosa Martínez.")).to_be_visible()
    screen.shot("p09-cosigned-after-the-patient-left")
    screen.assert_accessible()

    # Billing's list for the day shows both codes; the competency page counts the supervised work.
    page.goto(f"{screen.base_url}/procedures/charges/")
    charges = page.locator("table.charge-table")
    expect(charges).to_contain_text("36415")
    expect(charges).to_contain_text("96372")
    expect(charges).to_contain_text("MARTÍNEZ, Rosa")
    screen.shot("p10-charges")
    screen.assert_accessible()
    page.get_by_role("link", name="Staff competency").click()
    expect(page.locator("tr", has_text="Maria Alvarez")).to_contain_text("1\u00d7")  # one supervised performance
    screen.shot("p11-competency")
    screen.assert_accessible()
    screen.assert_no_console_errors()

    assert set(ChargeLine.objects.values_list("code", flat=True)) == {"36415", "96372"}
    assert set(ProcedureOrder.objects.values_list("status", flat=True)) == {ProcedureStatus.COMPLETED}
    counts = dict(Competency.objects.filter(user=ma).values_list("procedure_type__code", "supervised_count"))
    assert (counts["36415"], counts["96372"]) == (1, 1)
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.COMPLETED
