"""The handoff's end as the staff found it, in a real browser: what still holds the patient, a refusal on
the patient's page, an MA handing a patient back to the clinician, and the performer told of co-signs."""

import pytest
from playwright.sync_api import expect

from backoffice import services
from backoffice.models import Handoff, User
from backoffice.workflow import HandoffStatus
from lab.models import TestDefinition
from lab.services import test_orders_add
from procedures import services as procedure_services
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - the fixture
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory
from tests.procedures.helpers import awaiting_cosign, credentialed, new_supervisor, procedure_type, ready_handoff

pytestmark = pytest.mark.browser


def _rosa(clinician: User) -> Handoff:
    return HandoffFactory(
        patient=PatientFactory(mrn="M271801", given_name="Rosa", family_name="Martínez", allergies="Latex"),
        ordering_clinician=clinician,
        created_by=clinician,
        exam_room=ExamRoomFactory(name="Exam 3"),
        clinical_note="Fasting labs; CBC today.",
    )


def test_an_ma_hands_a_patient_back_and_the_clinician_sends_her_back_to_the_queue(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    clinician: User,
    medical_assistant: User,
) -> None:
    handoff, _ = ready_handoff("36415", ma=credentialed(medical_assistant), handoff=_rosa(clinician))
    services.handoff_start(handoff=handoff, by=medical_assistant)
    test_orders_add(handoff=handoff, tests=[TestDefinition.objects.get(loinc_code="58410-2")], by=clinician)
    page = screen.page

    # The MA's page: no "Complete handoff" while the draw and the CBC hold her; it says which do.
    screen.login("ma")
    screen.goto(f"/handoffs/{handoff.uuid}/")
    expect(page.get_by_role("button", name="Complete handoff")).to_have_count(0)
    expect(page.locator(".complete-blocked")).to_have_text(
        "Rosa Martínez still has 2 open items: Venipuncture (ordered); CBC (to collect). "
        "Finish or close each one, then complete the handoff."
    )
    screen.shot("hb01-what-still-holds-the-patient")
    screen.assert_accessible()

    # She refuses the draw: the MA hands her back to Dr. Shah with the reason.
    page.get_by_text("Hand the patient back: left, refused, or the order changed").click()
    form = page.get_by_role("form", name="Hand the patient back")
    form.get_by_label("Why").select_option(label="Patient refused")
    screen.shot("hb02-hand-back")
    form.get_by_role("button", name="Hand back to Priya Shah").click()
    expect(page.get_by_text("Rosa Martínez is handed back to Priya Shah: Patient refused.")).to_be_visible()
    expect(page.locator("tbody")).not_to_contain_text("MARTÍNEZ, Rosa")  # off the back office's queue
    screen.assert_accessible()
    screen.logout()

    # The clinician finds her on her start page and decides: back on the queue.
    screen.login("doc")
    card = page.locator("section.handed-back-card")
    expect(card).to_contain_text("Handed back to you (1)")
    expect(card).to_contain_text("MARTÍNEZ, Rosa")
    expect(card).to_contain_text("Patient refused")
    screen.shot("hb03-clinician-handed-back")
    screen.assert_accessible()
    card.get_by_role("link", name="Decide").click()
    expect(page.locator(".handed-back")).to_contain_text("Handed back to Priya Shah by Maria Alvarez at")
    expect(page.get_by_role("button", name="Cancel handoff")).to_be_visible()
    screen.shot("hb04-clinician-decides")
    screen.assert_accessible()
    page.get_by_role("button", name="Send back to the queue").click()
    expect(page.get_by_text("Rosa Martínez is back on the back-office queue.")).to_be_visible()
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.WAITING
    screen.assert_no_console_errors()


def test_a_refused_complete_stays_on_the_patients_page_and_says_what_is_open(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    clinician: User,
    medical_assistant: User,
) -> None:
    handoff = _rosa(clinician)
    station = StationFactory(code="phleb-1", name="Phlebotomy chair 1")
    services.handoff_claim(handoff=handoff, by=medical_assistant)
    services.handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)
    services.handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn="M271801")
    services.handoff_start(handoff=handoff, by=medical_assistant)
    page = screen.page

    screen.login("ma")
    screen.goto(f"/handoffs/{handoff.uuid}/")
    # Meanwhile, from the exam room, the clinician adds a draw.
    procedure_services.procedure_orders_add(handoff=handoff, procedure_types=[procedure_type("36415")], by=clinician)
    page.get_by_role("button", name="Complete handoff").click()

    expect(page).to_have_url(f"{screen.base_url}/handoffs/{handoff.uuid}/")
    expect(page.locator(".messages .alert-danger")).to_have_text(
        "Rosa Martínez still has 1 open item: Venipuncture (ordered). Finish or close it, then complete the handoff."
    )
    expect(page.get_by_role("button", name="Complete handoff")).to_have_count(0)
    screen.shot("hb05-refused-complete-on-the-patients-page")
    screen.assert_accessible()
    screen.assert_no_console_errors()


def test_the_performer_is_told_on_their_queue_when_their_work_is_cosigned_or_returned(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    medical_assistant: User,
) -> None:
    ma = credentialed(medical_assistant)
    sup = new_supervisor(first_name="Samira", last_name="Okafor")
    draw = awaiting_cosign("36415", ma=ma)
    injection = awaiting_cosign("96372", ma=ma)
    # Sent for co-sign, each was done for its patient: the handoffs closed, the stations freed.
    assert Handoff.objects.get(pk=draw.handoff_id).status == HandoffStatus.COMPLETED
    procedure_services.procedure_cosign(order=draw, by=sup)
    procedure_services.procedure_return(order=injection, by=sup, comment="Add the time given.")
    page = screen.page

    screen.login("ma")
    screen.goto("/procedures/queue/")
    reviews = page.locator("section.reviews-card")
    expect(reviews).to_contain_text("Your work reviewed today")
    expect(reviews.locator("li").first).to_contain_text("Returned")
    expect(reviews.locator("li").first).to_contain_text("Add the time given.")
    expect(reviews.locator("li").nth(1)).to_contain_text("Co-signed")
    expect(reviews.locator("li").nth(1)).to_contain_text("Venipuncture")
    expect(reviews.locator("li").nth(1)).to_contain_text("by Samira Okafor")
    screen.shot("hb06-performer-told-of-reviews")
    screen.assert_accessible()
    reviews.get_by_role("link", name="Correct").click()
    expect(page.get_by_role("alert").first).to_contain_text("Returned for correction")
    screen.assert_no_console_errors()
