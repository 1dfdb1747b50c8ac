"""Stations as an MA with a full queue finds them: the picker offers first the stations that have what the
procedures need and says what the others lack; the patient is moved after identity is verified; the
stations page shows who is where and takes the turnover."""

import pytest
from playwright.sync_api import expect

from backoffice import services
from backoffice.models import Equipment, Handoff, Station, User
from backoffice.workflow import HandoffStatus, StationState
from procedures import services as procedure_services
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - the fixture
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory
from tests.procedures.helpers import procedure_type

pytestmark = pytest.mark.browser


def _station(code: str, name: str, *equipment: str, kind: str = Station.Kind.PROCEDURE_ROOM) -> Station:
    station = StationFactory(code=code, name=name, kind=kind)
    station.equipment.set(Equipment.objects.filter(code__in=equipment))
    return station


def _clinic(clinician: User, ma: User) -> Handoff:
    """Fifteen patients waiting, six stations, and Rosa's laceration repair claimed by the MA."""
    room = ExamRoomFactory(name="Exam 3")
    for n in range(15):
        HandoffFactory(
            patient=PatientFactory(given_name=f"Waiting{n + 1}", family_name="Patient"),
            ordering_clinician=clinician,
            created_by=clinician,
            exam_room=room,
        )
    _station("proc-1", "Procedure room 1", "exam-table", "suture-kit", "ecg")
    _station("bay-2", "Treatment bay 2", "exam-table", kind=Station.Kind.TREATMENT_BAY)
    _station("chair-1", "Phlebotomy chair 1", "phlebotomy-chair", kind=Station.Kind.PHLEBOTOMY)
    _station("chair-2", "Phlebotomy chair 2", "phlebotomy-chair", kind=Station.Kind.PHLEBOTOMY)
    _station("proc-5", "Procedure room 5", "exam-table", "suture-kit")
    busy = _station("proc-3", "Procedure room 3", "exam-table", "suture-kit")
    other = HandoffFactory(ordering_clinician=clinician, created_by=clinician, exam_room=room)
    services.handoff_claim(handoff=other, by=ma)
    services.handoff_assign_station(handoff=other, station=busy, by=ma)
    rosa = HandoffFactory(
        patient=PatientFactory(mrn="M271801", given_name="Rosa", family_name="Martínez", allergies="Latex"),
        ordering_clinician=clinician,
        created_by=clinician,
        exam_room=room,
        clinical_note="2 cm laceration, left forearm.",
    )
    procedure_services.procedure_orders_add(handoff=rosa, procedure_types=[procedure_type("12001")], by=clinician)
    services.handoff_claim(handoff=rosa, by=ma)
    return rosa


def test_the_picker_offers_stations_with_the_equipment_first_and_the_patient_moves_after_verification(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    clinician: User,
    medical_assistant: User,
) -> None:
    rosa = _clinic(clinician, medical_assistant)
    page = screen.page
    screen.login("ma")
    screen.goto(f"/handoffs/{rosa.uuid}/")

    picker = page.locator("select#id_station")
    expect(page.locator(".station-needs")).to_contain_text(
        "Simple laceration repair (sutures), up to 2.5 cm needs exam table and suture and laceration tray."
    )
    expect(picker.locator("optgroup").first).to_have_attribute("label", "Has what's needed")
    expect(picker.locator("optgroup").first.locator("option")).to_have_text(["Procedure room 1", "Procedure room 5"])
    expect(picker.locator("option[disabled]")).to_have_text(
        [
            "Phlebotomy chair 1 (no exam table, suture and laceration tray)",
            "Phlebotomy chair 2 (no exam table, suture and laceration tray)",
            "Treatment bay 2 (no suture and laceration tray)",
        ]
    )
    expect(picker.locator("option", has_text="Procedure room 3")).to_have_count(0)  # occupied
    screen.shot("st01-picker-stations-with-equipment-first")
    screen.assert_accessible()

    picker.select_option(label="Procedure room 1")
    page.get_by_role("button", name="Assign station").click()
    expect(page.get_by_text("Rosa Martínez is at Procedure room 1.")).to_be_visible()

    # Verified at Procedure room 1, then the ECG cart is needed there: she moves to Procedure room 5.
    services.handoff_verify_identity(handoff=rosa, by=medical_assistant, scanned_mrn="M271801")
    screen.goto(f"/handoffs/{rosa.uuid}/")
    page.get_by_text("Move the patient to another station").click()
    move = page.get_by_role("form", name="Move to another station")
    expect(move.locator("option[disabled]", has_text="Treatment bay 2")).to_have_count(1)
    move.get_by_label("Station").select_option(label="Procedure room 5")
    screen.shot("st02-move-after-verification")
    screen.assert_accessible()
    move.get_by_role("button", name="Move to this station").click()
    expect(page.get_by_text("Rosa Martínez is at Procedure room 5.")).to_be_visible()
    expect(page.get_by_text("Identity verified", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Start work at Procedure room 5")).to_be_visible()
    screen.shot("st03-moved-identity-still-verified")
    rosa.refresh_from_db()
    assert rosa.status == HandoffStatus.IDENTITY_VERIFIED
    assert Station.objects.get(code="proc-1").state == StationState.NEEDS_TURNOVER

    # The stations page: who is where, and Procedure room 1 to turn over.
    page.get_by_role("link", name="Stations").click()
    expect(page.get_by_role("heading", name="Stations")).to_be_visible()
    expect(page.get_by_text("To turn over: Procedure room 1.", exact=False)).to_be_visible()
    row = page.get_by_role("row", name="Procedure room 5")
    expect(row).to_contain_text("MARTÍNEZ, Rosa")
    screen.shot("st04-stations-page")
    screen.assert_accessible()
    page.get_by_role("row", name="Procedure room 1").get_by_role("button", name="Cleaned & restocked").click()
    expect(page.get_by_text("Procedure room 1 is clean, restocked and ready.")).to_be_visible()
    expect(page.get_by_role("row", name="Procedure room 1")).to_contain_text("Ready")
    screen.shot("st05-stations-page-after-turnover")
    screen.assert_accessible()
    screen.assert_no_console_errors()
