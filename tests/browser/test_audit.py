"""The access log in a real browser: an MA opens a patient, a supervisor finds that in the log."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice.models import AccessAction, AccessLog, AccessLogPatient, AccessOutcome, Patient, User
from tests.browser.conftest import Screen
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory

pytestmark = pytest.mark.browser


def _earlier(*, user: User | None, patients: list[Patient], minutes_ago: int, **fields: str) -> None:
    """An access row from earlier in the week, as the pages would have written it."""
    at = timezone.now() - dt.timedelta(minutes=minutes_ago)
    entry = AccessLog.objects.create(
        at=at, user=user, username=user.username if user else "", ip=fields.pop("ip", "10.20.4.17"), **fields
    )
    AccessLogPatient.objects.bulk_create([AccessLogPatient(log=entry, patient=p, at=at) for p in patients])


def test_a_supervisor_finds_an_mas_view_of_a_patient_in_the_access_log(
    screen: Screen,
    medical_assistant,
    other_ma,
    clinician,
    lab_tech,
    outsider,
    supervisor,  # type: ignore[no-untyped-def]
) -> None:
    rosa = PatientFactory(mrn="M314159", given_name="Rosa", family_name="Martínez", date_of_birth=dt.date(1961, 4, 12))
    others = [
        PatientFactory(mrn="M271828", given_name="Roberto", family_name="Martin"),
        PatientFactory(mrn="M161803", given_name="Linh", family_name="Nguyễn"),
        PatientFactory(mrn="M141421", given_name="Kwame", family_name="Mensah"),
        PatientFactory(mrn="M173205", given_name="Olga", family_name="Ivanova"),
        PatientFactory(mrn="M223606", given_name="Hodan", family_name="Warsame"),
    ]
    room = ExamRoomFactory(name="Exam 3")
    handoff = HandoffFactory(patient=rosa, ordering_clinician=clinician, created_by=clinician, exam_room=room)
    for patient in others[:3]:
        HandoffFactory(patient=patient, ordering_clinician=clinician, created_by=clinician, exam_room=room)
    # The week so far: the queue listing her with others, a search, a lab look-up, a refused attempt.
    everyone = [rosa, *others]
    _earlier(user=other_ma, patients=everyone, minutes_ago=60 * 50, action=AccessAction.LIST, what="queue")
    _earlier(
        user=clinician,
        patients=[rosa, others[0]],
        minutes_ago=60 * 49,
        action=AccessAction.SEARCH,
        what="patient search",
    )
    _earlier(
        user=clinician,
        patients=[rosa],
        minutes_ago=60 * 49 - 2,
        action=AccessAction.VIEW,
        what="new handoff",
        object_ref=str(handoff.uuid),
    )
    _earlier(
        user=lab_tech,
        patients=[rosa],
        minutes_ago=60 * 26,
        action=AccessAction.VIEW,
        what="handoff detail",
        object_ref=str(handoff.uuid),
    )
    _earlier(
        user=outsider,
        patients=[rosa],
        minutes_ago=60 * 3,
        action=AccessAction.DENIED,
        what="handoff detail",
        object_ref=str(handoff.uuid),
        outcome=AccessOutcome.DENIED,
        ip="10.20.9.201",
    )
    page = screen.page

    # The MA opens Rosa's handoff from the queue.
    screen.login("ma")
    page.get_by_role("link", name="MARTÍNEZ, Rosa").first.click()
    expect(page.get_by_role("heading", name="MARTÍNEZ, Rosa")).to_be_visible()
    screen.logout()

    # The supervisor searches the log by her MRN and sees that view, newest first.
    screen.login("sup")
    page.get_by_role("link", name="Access log").click()
    expect(page.get_by_role("heading", name="Access log")).to_be_visible()
    page.get_by_label("Patient MRN").fill("M314159")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.audit-table tbody tr")
    # Newest first: her own board on signing in, then the MA's view, then the queue that listed Rosa.
    expect(rows.first).to_contain_text("Sam Okafor")
    ma_view = rows.filter(has_text="Maria Alvarez").filter(has_text="handoff detail")
    expect(ma_view).to_have_count(1)
    expect(ma_view.locator(f'[title="{handoff.uuid}"]')).to_have_text(f"{str(handoff.uuid)[:8]}…")
    expect(rows.filter(has_text="Maria Alvarez").filter(has_text="queue")).to_have_count(1)
    expect(rows.filter(has_text="Denied attempt")).to_contain_text("Denied")
    expect(page.locator("#id_patient")).to_have_value("M314159")
    # The MRN went in the POST body, never the URL.
    assert "M314159" not in page.url
    screen.shot("10-access-log")
    screen.assert_accessible()
    screen.assert_no_console_errors()

    # Her search is on the record too, naming the patient it concerned.
    search = AccessLog.objects.filter(user=supervisor, what="access log").get()
    assert rosa in search.patients.all()


def test_a_row_naming_many_patients_lists_ten_and_counts_the_rest(screen: Screen, other_ma, supervisor) -> None:  # type: ignore[no-untyped-def]
    """A queue view names up to 50 patients: the log lists ten of them and says how many more there are."""
    rosa = PatientFactory(mrn="M314159", given_name="Rosa", family_name="Martínez")
    crowd = [PatientFactory(mrn=f"M5000{n:02d}", family_name=f"Queue{n:02d}", given_name="Pat") for n in range(13)]
    _earlier(user=other_ma, patients=[rosa, *crowd], minutes_ago=30, action=AccessAction.LIST, what="queue")
    page = screen.page

    screen.login("sup")
    page.get_by_role("link", name="Access log").click()
    page.get_by_label("Patient MRN").fill("M314159")
    page.get_by_role("button", name="Search").click()
    queue = page.locator("table.audit-table tbody tr").filter(has_text="queue")
    expect(queue).to_have_count(1)
    expect(queue.locator(".audit-patient").first).to_contain_text("MARTÍNEZ, Rosa")  # the one searched for first
    queue.get_by_text("12 more").click()
    expect(queue.locator(".audit-patient")).to_have_count(10)
    expect(queue).to_contain_text("and 4 not listed here: export the search, or search by patient")
    screen.shot("11-access-log-many-patients")
    screen.assert_accessible()
    screen.assert_no_console_errors()

    # Her search's own access row names the patients the page showed: the ten.
    search = AccessLog.objects.filter(user=supervisor, what="access log").get()
    assert search.patients.count() == 10 and rosa in search.patients.all()
