"""Patient-level needs carry over in a real browser: picking a patient on New handoff fills in their
interpreter and the precautions of their open handoff; a patient already on the queue is sent a
second time only with Hand off again ticked; accessible, no CSP errors."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from backoffice.models import Handoff
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - the fixture
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory

pytestmark = pytest.mark.browser


def test_picking_a_patient_fills_their_needs_and_a_second_handoff_is_confirmed(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    clinician,  # type: ignore[no-untyped-def]
) -> None:
    patient = PatientFactory(
        mrn="M424242",
        given_name="Rosa",
        family_name="Martínez",
        date_of_birth=dt.date(1961, 4, 12),
        preferred_language="Spanish",
        interpreter_needed=True,
    )
    first = HandoffFactory(patient=patient, ordering_clinician=clinician, isolation=Handoff.Isolation.DROPLET)
    PatientFactory(mrn="M424243", given_name="Roberto", family_name="Martin", no_known_allergies=True)
    ExamRoomFactory(name="Exam 3")
    page = screen.page
    page.set_viewport_size({"width": 1366, "height": 768})

    screen.login("doc")
    expect(page).to_have_url(f"{screen.base_url}/handoffs/new/")
    # Roberto first (no needs), then Rosa: each pick brings that patient's needs.
    page.get_by_label("Scan the wristband or type MRN or name").fill("mart")
    page.get_by_role("radio", name="MARTIN, Roberto").check()
    expect(page.locator(".needs-carried")).to_contain_text("no interpreter on their record")
    expect(page.get_by_label("Interpreter needed")).not_to_be_checked()
    page.get_by_role("radio", name="MARTÍNEZ, Rosa").check()
    expect(page.get_by_label("Interpreter needed")).to_be_checked()
    expect(page.get_by_label("Interpreter language")).to_have_value("Spanish")
    expect(page.get_by_label("Isolation")).to_have_value("droplet")
    warning = page.locator(".second-handoff")
    expect(warning).to_contain_text("Rosa Martínez is already on the back-office queue")
    again = page.get_by_label("Hand off again: a second handoff for Rosa Martínez")
    expect(again).not_to_be_checked()
    page.locator("#needs").scroll_into_view_if_needed()
    screen.shot("new-handoff-needs-carried")
    screen.assert_accessible()

    # Sent without ticking it: refused, naming the patient and the open handoff; the box is there.
    page.get_by_label("Exam room").select_option(label="Exam 3")
    page.get_by_label("Venipuncture").check()
    page.get_by_role("button", name="Send to back office").click()
    expect(page.locator(".alert-danger, .form-errors, [role=alert]").first).to_contain_text(
        "Rosa Martínez is already on the back-office queue: handed off at"
    )
    assert Handoff.objects.filter(patient=patient).count() == 1
    screen.shot("new-handoff-second-refused")
    screen.assert_accessible()

    # Ticked, it goes, keeping the first one's droplet precautions.
    page.get_by_label("Hand off again: a second handoff for Rosa Martínez").check()
    page.get_by_role("button", name="Send to back office").click()
    page.wait_for_url("**/handoffs/*-*/")
    second = Handoff.objects.exclude(pk=first.pk).get(patient=patient)
    assert second.isolation == Handoff.Isolation.DROPLET
    assert (second.interpreter_needed, second.interpreter_language) == (True, "Spanish")
    screen.assert_no_console_errors()
