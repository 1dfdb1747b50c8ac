"""Specimens in a real browser: collect at the bedside with positive ID, receive, reject, recollect.

An MA collects CBC, HbA1c and a urine dipstick for one patient (two containers: CBC and HbA1c share
the EDTA tube), prints the labels, scans a label of another patient (refused) and then the right
ones, and hands them over. A lab technician opens the urine cup by scanning it, receives it and
rejects it as contaminated. The recollect item appears on the MA's queue, and the MA recollects.
"""

import datetime as dt

import pytest
from playwright.sync_api import expect

from backoffice import roles
from backoffice.identifiers import as_scanned
from backoffice.models import Handoff, Station
from lab.models import RecollectionCall
from lab.services import test_orders_add
from specimens.models import Specimen
from specimens.workflow import SpecimenStatus
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory, UserFactory
from tests.specimens.helpers import call_back, collected, labelled, received, results_released, tests, verified_handoff

pytestmark = pytest.mark.browser


def test_an_ma_collects_with_positive_id_and_the_lab_rejects_and_the_ma_recollects(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    clinician,  # type: ignore[no-untyped-def]
    medical_assistant,
    lab_tech,
) -> None:
    patient = PatientFactory(
        mrn="M424242",
        given_name="Amara",
        family_name="Okonkwo",
        date_of_birth=dt.date(1972, 9, 3),
        allergies="Latex — hives",
    )
    StationFactory(code="phleb-1", name="Phlebotomy chair 1", kind=Station.Kind.PHLEBOTOMY)
    handoff = HandoffFactory(
        patient=patient,
        ordering_clinician=clinician,
        created_by=clinician,
        exam_room=ExamRoomFactory(name="Exam 5"),
        clinical_note="Diabetes follow-up: CBC, A1c and a urine dipstick for protein.",
    )
    test_orders_add(handoff=handoff, tests=tests("CBC", "HbA1c", "Urine dipstick"), by=clinician)
    # Another patient's tube, labelled at the next chair: the label the MA must not use.
    _, [foreign] = labelled("CBC", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT))
    page = screen.page

    screen.login("ma")
    page.locator("tbody tr", has_text="OKONKWO, Amara").get_by_role("button", name="Claim").click()
    page.get_by_role("combobox", name="Station").select_option(label="Phlebotomy chair 1")
    page.get_by_role("button", name="Assign station").click()
    page.get_by_label("Scan wristband (MRN)").fill(as_scanned("M424242"))  # what the scanner sends
    page.get_by_role("button", name="Verify identity").click()
    panel = page.locator("section.collection-panel")
    expect(panel.locator(".draw-list li").first).to_contain_text("Lavender-top EDTA")
    expect(panel.locator(".draw-list li").nth(1)).to_contain_text("Sterile urine cup")
    screen.shot("s01-containers-to-draw")
    screen.assert_accessible()

    panel.get_by_role("button", name="Start collection: label 2 containers").click()
    expect(page.get_by_text("Print the labels, stick them on at the bedside")).to_be_visible()
    tube, cup = (
        Specimen.objects.filter(handoff=handoff).order_by("container__draw_order").values_list("accession", flat=True)
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Print 2 labels").click()
    assert download.value.suggested_filename.endswith(".pdf")
    assert "Okonkwo" not in download.value.suggested_filename
    page.reload()
    screen.shot("s02-at-the-bedside")
    screen.assert_accessible()

    # The wrong tube: refused loudly, nothing collected.
    page.get_by_label("1. Scan the tube's label").fill(foreign.accession)
    page.get_by_label("2. Scan the patient's wristband").fill(as_scanned("M424242"))
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(".alert-danger", has_text="STOP: label")).to_be_visible()
    screen.shot("s03-wrong-label-refused")
    screen.assert_accessible()
    for accession in (tube, cup):
        page.get_by_label("1. Scan the tube's label").fill(accession)
        page.get_by_label("2. Scan the patient's wristband").fill(as_scanned("M424242"))
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_text(f"{accession} (")).to_be_visible()
    collected = page.locator("section.collection-panel .collected")
    for accession in (tube, cup):
        row = collected.locator("tr", has_text=accession)
        row.get_by_role("combobox").select_option(label="In-house lab bench")
        row.get_by_role("button", name="Hand over").click()
        expect(page.get_by_text(f"{accession} is on its way to the in-house lab bench.")).to_be_visible()
    screen.shot("s04-handed-over")
    screen.logout()

    # The bench: scan the cup to open it, receive it, reject it.
    screen.login("lab")
    page.get_by_role("link", name="Specimens", exact=True).click()
    expect(page.locator("tbody tr", has_text=cup)).to_contain_text("In transit")
    screen.shot("s05-tracking-list")
    screen.assert_accessible()
    page.get_by_role("textbox", name="Scan or type an accession").fill(cup)
    page.get_by_role("button", name="Open").click()
    page.get_by_role("button", name=f"Receive {cup}").click()
    expect(page.get_by_text(f"{cup} received.")).to_be_visible()
    page.get_by_label("Reason").last.select_option(label="RN Contamination")
    page.get_by_label("Note").last.fill("Not a clean catch: paper debris in the cup.")
    page.get_by_role("button", name="Reject and ask for a recollection").click()
    expect(page.get_by_text(f"{cup} rejected")).to_be_visible()
    screen.shot("s06-specimen-rejected")
    screen.assert_accessible()
    screen.logout()

    # Back on the MA's queue: the recollection waits, first.
    screen.login("ma")
    row = page.locator("tbody tr", has_text="OKONKWO, Amara")
    expect(row).to_contain_text("Recollect")
    screen.shot("s07-queue-recollect")
    row.get_by_role("link", name="OKONKWO, Amara").first.click()
    panel = page.locator("section.collection-panel")
    expect(panel).to_contain_text("Recollect")
    panel.get_by_role("button", name="Start collection: label 1 container").click()
    again = Specimen.objects.get(handoff=handoff, status=SpecimenStatus.LABELLED)
    page.get_by_label("1. Scan the tube's label").fill(again.accession)
    page.get_by_label("2. Scan the patient's wristband").fill(as_scanned("M424242"))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text(f"{again.accession} (")).to_be_visible()
    screen.shot("s08-recollected")
    screen.assert_accessible()
    assert Specimen.objects.get(pk=again.pk).recollection_of.accession == cup


def test_a_clinician_calls_back_a_patient_whose_specimen_was_rejected_after_they_left(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    clinician,  # type: ignore[no-untyped-def]
    lab_tech,
) -> None:
    call = call_back(ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech=lab_tech)
    Handoff.objects.filter(pk=call.handoff_id).update(ordering_clinician=clinician)
    RecollectionCall.objects.filter(pk=call.pk).update(clinician=clinician)
    page = screen.page
    screen.login("doc")
    page.get_by_role("link", name="Lab follow-ups", exact=True).click()
    row = page.locator("tbody tr", has_text=call.patient.family_name.upper())
    expect(row).to_contain_text("RC Clotting")
    screen.shot("s09-call-backs")
    screen.assert_accessible()
    row.get_by_role("textbox").fill("Coming back Thursday at 9 for a new CBC")
    row.get_by_role("button", name="Called").click()
    expect(page.get_by_text("was called back")).to_be_visible()
    expect(page.get_by_text("Nobody to call back.")).to_be_visible()
    assert RecollectionCall.objects.get(pk=call.pk).status == RecollectionCall.Status.DONE


def test_a_failed_draw_is_cancelled_and_the_ordering_clinician_sees_it(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    clinician,  # type: ignore[no-untyped-def]
    medical_assistant,
) -> None:
    handoff = verified_handoff("PSA", ma=medical_assistant)
    Handoff.objects.filter(pk=handoff.pk).update(ordering_clinician=clinician)
    page = screen.page
    screen.login("ma")
    screen.goto(f"/handoffs/{handoff.uuid}/")
    panel = page.locator("section.collection-panel")
    panel.get_by_role("button", name="Start collection: label 1 container").click()
    failed = panel.locator("details.failed-draw")
    failed.get_by_text("Couldn't draw it?").click()
    failed.get_by_label("Why not").select_option(label="Patient refused")
    failed.get_by_label("Note").fill("Wants to think about screening first")
    failed.get_by_role("button", name="Record not collected").click()
    expect(panel.get_by_text("Not drawn")).to_be_visible()
    panel.get_by_text("Cancel…").click()
    panel.get_by_label("Why cancel PSA").select_option(label="Patient refused")
    screen.shot("s10-failed-draw-cancel")
    screen.assert_accessible()
    panel.get_by_role("button", name="Cancel test, tell Priya Shah").click()
    expect(page.get_by_text("is told")).to_be_visible()
    expect(page.locator("section.collection-panel s", has_text="Prostate specific antigen")).to_be_visible()
    screen.logout()

    screen.login("doc")
    page.get_by_role("link", name="Lab follow-ups", exact=True).click()
    row = page.locator("table.cancelled-table tbody tr", has_text=handoff.patient.family_name.upper())
    expect(row).to_contain_text("Patient refused")
    screen.shot("s11-cancelled-for-the-clinician")
    screen.assert_accessible()
    row.get_by_role("button", name="Seen").click()
    expect(page.get_by_text("No cancelled tests to see.")).to_be_visible()


def test_a_lab_tech_tests_stores_and_disposes_of_a_specimen(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    medical_assistant,  # type: ignore[no-untyped-def]
    lab_tech,
) -> None:
    _, [cup] = collected("Urine dipstick", ma=medical_assistant)
    received(cup, ma=medical_assistant, lab_tech=lab_tech)
    page = screen.page
    screen.login("lab")
    screen.goto("/specimens/")
    page.get_by_role("textbox", name="Scan or type an accession").fill(cup.accession)
    page.get_by_role("button", name="Open").click()
    screen.shot("s12-received-at-the-bench")
    page.get_by_role("button", name="Start testing").click()
    expect(page.get_by_text(f"Testing started on {cup.accession}.")).to_be_visible()
    # Not "Testing done" while the dipstick has no result: the bench's release marks it done.
    expect(page.get_by_role("button", name="Testing done")).to_have_count(0)
    results_released(Specimen.objects.get(pk=cup.pk), lab_tech=lab_tech)
    page.reload()
    expect(page.get_by_text("Testing done", exact=True).first).to_be_visible()
    page.get_by_label("Kept where").fill("Fridge 2, rack B")
    screen.shot("s13-bench-steps")
    screen.assert_accessible()
    page.get_by_role("button", name="Store").click()
    expect(page.get_by_text("stored: Fridge 2, rack B.")).to_be_visible()
    screen.goto("/specimens/?status=stored")
    expect(page.locator("tbody tr", has_text=cup.accession)).to_contain_text("Stored")
    screen.shot("s14-stored-tab")
    page.locator("tbody tr", has_text=cup.accession).get_by_role("link", name=cup.accession, exact=True).click()
    page.get_by_role("button", name="Dispose of it").click()
    expect(page.get_by_text("disposed of; its record stays.")).to_be_visible()
    assert Specimen.objects.get(pk=cup.pk).status == SpecimenStatus.DISPOSED
