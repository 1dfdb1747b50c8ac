"""The walking skeleton in a real browser: exam room → queue → claim → identity → board."""

import datetime as dt
import logging
import urllib.parse

import pytest
from playwright.sync_api import expect

from backoffice.models import Handoff, HandoffEvent
from procedures.services import procedure_not_done
from procedures.workflow import NotDoneReason
from tests.browser.conftest import Screen
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory
from tests.procedures.helpers import credentialed, equipped, ready_handoff, start

pytestmark = pytest.mark.browser


def test_a_clinician_hands_off_and_an_ma_claims_verifies_and_the_board_shows_it(
    screen: Screen,
    clinician,
    medical_assistant,
    supervisor,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    patient = PatientFactory(
        mrn="M314159",
        given_name="Rosa",
        family_name="Martínez",
        date_of_birth=dt.date(1961, 4, 12),
        preferred_language="Spanish",
        interpreter_needed=True,
        allergies="Penicillin — hives\nLatex",
    )
    PatientFactory(mrn="M271828", given_name="Roberto", family_name="Martin", no_known_allergies=True)
    ExamRoomFactory(name="Exam 3")
    equipped(StationFactory(code="phleb-1", name="Phlebotomy chair 1"))  # the draw and the ECG can be done there
    page = screen.page
    caplog.set_level(logging.DEBUG)  # everything any logger says while the live server runs the flow
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    # The clinician hands the patient off from the exam room.
    screen.login("doc")
    expect(page).to_have_url(f"{screen.base_url}/handoffs/new/")
    page.get_by_label("Scan the wristband or type MRN or name").fill("mart")
    expect(page.locator("#patient-results")).to_contain_text("MARTÍNEZ, Rosa")
    expect(page.locator("#patient-results")).to_contain_text("Allergies: Penicillin — hives; Latex")
    page.get_by_role("radio", name="MARTÍNEZ, Rosa").check()
    page.get_by_label("Exam room").select_option(label="Exam 3")
    page.get_by_label("STAT").check()
    page.get_by_label("Clinical note").fill("Fasting labs; ECG for palpitations.")
    page.get_by_label("Interpreter needed").check()
    page.get_by_label("Mobility").select_option(label="Wheelchair")
    page.get_by_label("Venipuncture").check()
    page.get_by_label("Electrocardiogram, 12-lead, with interpretation").check()
    page.get_by_label("CMP").check()
    screen.shot("01-new-handoff")
    screen.assert_accessible()
    page.get_by_role("button", name="Send to back office").click()
    expect(page.get_by_text("Rosa Martínez is on the back-office queue.")).to_be_visible()
    handoff = Handoff.objects.get(patient=patient)
    assert handoff.interpreter_language == "Spanish"
    screen.logout()

    # The MA sees the handoff on the queue, STAT first, with allergies and needs, and claims it.
    screen.login("ma")
    expect(page).to_have_url(f"{screen.base_url}/queue/")
    row = page.locator("tbody tr", has_text="MARTÍNEZ, Rosa")
    expect(row).to_contain_text("STAT")
    expect(row).to_contain_text("Allergies: Penicillin — hives; Latex")
    expect(row).to_contain_text("Interpreter: Spanish")
    expect(row).to_contain_text("Wheelchair")
    expect(row).to_contain_text("Venipuncture")
    screen.shot("02-queue")
    screen.assert_accessible()
    row.get_by_role("button", name="Claim").click()
    expect(page.get_by_text("You claimed Rosa Martínez.")).to_be_visible()

    # At the detail page: bring the patient to a station, fail an identity check once, then pass.
    page.get_by_role("combobox", name="Station").select_option(label="Phlebotomy chair 1")
    page.get_by_role("button", name="Assign station").click()
    expect(page.get_by_text("Rosa Martínez is at Phlebotomy chair 1.")).to_be_visible()
    page.get_by_label("Full name, as the patient says it").fill("Rosa Martinez")
    page.get_by_label("Date of birth, as the patient says it").fill("1961-12-04")
    page.get_by_role("button", name="Verify identity").click()
    expect(page.get_by_role("alert")).to_contain_text("The date of birth given does not match this patient.")
    screen.shot("03-identity-mismatch")
    screen.assert_accessible()
    assert HandoffEvent.objects.filter(handoff=handoff, action=HandoffEvent.Action.IDENTITY_MISMATCH).count() == 1

    page.get_by_label("Full name, as the patient says it").fill("martinez, rosa")
    page.get_by_label("Date of birth, as the patient says it").fill("1961-04-12")
    page.get_by_role("button", name="Verify identity").click()
    expect(page.get_by_text("Identity verified for Rosa Martínez.")).to_be_visible()
    expect(page.get_by_role("button", name="Start work at Phlebotomy chair 1")).to_be_visible()
    screen.shot("04-identity-verified")
    screen.assert_accessible()
    handoff.refresh_from_db()
    assert handoff.status == "identity_verified"
    screen.logout()

    # The supervisor board shows the patient under "Identity verified" and the station occupied.
    screen.login("sup")
    expect(page).to_have_url(f"{screen.base_url}/board/")
    column = page.locator("section", has=page.get_by_role("heading", name="Identity verified"))
    expect(column).to_contain_text("MARTÍNEZ, Rosa")
    station_card = page.locator(".station", has_text="Phlebotomy chair 1")
    expect(station_card).to_contain_text("Occupied")
    screen.shot("05-supervisor-board")
    screen.assert_accessible()
    screen.assert_no_console_errors()

    # No patient data in URLs' query strings or in the logs (HIPAA: logs are not access-controlled).
    identifiers = ["Martínez", "Martinez", "MARTÍNEZ", "Rosa", "M314159", "1961-04-12", "Penicillin"]
    query_strings = [urllib.parse.urlsplit(url).query for url in requested]
    assert not [q for q in query_strings if any(i.lower() in q.lower() for i in identifiers)], query_strings
    assert caplog.records, "the flow logged nothing at all, so this check would prove nothing"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert not [i for i in identifiers if i in logged], logged


def test_the_ordering_clinician_is_told_why_cancel_waits_for_a_procedure_being_performed(
    screen: Screen,
    clinician,
    medical_assistant,  # type: ignore[no-untyped-def]
) -> None:
    # The page asks the apps what the cancel's handlers would refuse (hooks.handoff_cancel_blockers):
    # no "Cancel handoff" while the MA performs the venipuncture, the reason instead; once she
    # records it as not done, Cancel is offered and goes through.
    patient = PatientFactory(mrn="M314170", given_name="Rosa", family_name="Martínez")
    handoff = HandoffFactory(
        patient=patient, ordering_clinician=clinician, created_by=clinician, exam_room=ExamRoomFactory(name="Exam 3")
    )
    handoff, orders = ready_handoff("36415", "96372", ma=credentialed(medical_assistant), handoff=handoff)
    start(orders["36415"], medical_assistant, cosign=True)
    page = screen.page

    screen.login("doc")
    screen.goto(f"/handoffs/{handoff.uuid}/")
    cancel_card = page.locator("section", has=page.get_by_role("heading", name="Cancel this handoff"))
    expect(cancel_card).to_contain_text(
        "Venipuncture is being performed; finish it or record it as not done before cancelling the handoff."
    )
    expect(page.get_by_role("button", name="Cancel handoff")).to_have_count(0)
    screen.shot("06-cancel-waits-for-a-procedure")
    screen.assert_accessible()

    procedure_not_done(order=orders["36415"], by=medical_assistant, reason=NotDoneReason.PATIENT_DECLINED)
    page.reload()
    page.get_by_label("Reason").fill("Patient left before the injection")
    page.get_by_role("button", name="Cancel handoff").click()
    expect(page.get_by_text("Cancelled at")).to_be_visible()
    assert Handoff.objects.get(pk=handoff.pk).status == "cancelled"
    screen.assert_no_console_errors()
