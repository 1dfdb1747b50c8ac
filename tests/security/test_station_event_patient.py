"""Station events point at the patient who arrived or left, and never name them in free text."""

import importlib

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from backoffice import services
from backoffice.models import AccessLog, Handoff, Patient, Station, StationEvent, User

pytestmark = pytest.mark.django_db

backfill = importlib.import_module("backoffice.migrations.0014_stationevent_patient")


def _arrive_and_leave(handoff: Handoff, station: Station, ma: User, supervisor: User) -> None:
    services.handoff_claim(handoff=handoff, by=ma)
    services.handoff_assign_station(handoff=handoff, station=station, by=ma)
    services.handoff_cancel(handoff=handoff, by=supervisor, reason="Went home")


def test_arrival_and_departure_point_at_the_patient_with_no_mrn_in_the_note(
    handoff: Handoff, station: Station, medical_assistant: User, supervisor: User
) -> None:
    _arrive_and_leave(handoff, station, medical_assistant, supervisor)
    services.station_turnover(station=station, by=medical_assistant)

    events = list(StationEvent.objects.filter(station=station).order_by("at", "id"))
    assert [(e.action, e.patient_id) for e in events] == [
        (StationEvent.Action.OCCUPIED, handoff.patient_id),
        (StationEvent.Action.VACATED, handoff.patient_id),
        (StationEvent.Action.TURNED_OVER, None),
    ]
    patient = handoff.patient
    assert not any(patient.mrn in e.note or patient.family_name in e.note for e in events)


def test_the_migration_fills_the_patient_of_old_rows_from_their_note(
    patient: Patient, station: Station, medical_assistant: User
) -> None:
    old = [
        StationEvent.objects.create(
            station=station, actor=medical_assistant, action=StationEvent.Action.OCCUPIED, note=f"Patient {patient.mrn}"
        ),
        StationEvent.objects.create(
            station=station,
            actor=medical_assistant,
            action=StationEvent.Action.VACATED,
            note=f"Patient {patient.mrn} left",
        ),
        # No patient on file with this MRN, and a turnover's note: both stay without one.
        StationEvent.objects.create(
            station=station, actor=medical_assistant, action=StationEvent.Action.VACATED, note="Patient M999999 left"
        ),
        StationEvent.objects.create(
            station=station,
            actor=medical_assistant,
            action=StationEvent.Action.TURNED_OVER,
            note=f"Patient {patient.mrn}",
        ),
    ]

    class Editor:  # what RunPython hands the function: the schema editor, for its connection
        pass

    editor = Editor()
    editor.connection = connection  # type: ignore[attr-defined]
    backfill.fill_patients_from_notes(None, editor)

    filled = dict(StationEvent.objects.filter(pk__in=[e.pk for e in old]).values_list("pk", "patient_id"))
    assert [filled[e.pk] for e in old] == [patient.pk, patient.pk, None, None]


def test_the_station_event_list_logs_the_patients_it_shows(
    client: Client, settings: object, handoff: Handoff, station: Station, medical_assistant: User, supervisor: User
) -> None:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False  # type: ignore[attr-defined]
    _arrive_and_leave(handoff, station, medical_assistant, supervisor)
    root = User.objects.create_superuser("root", "root@clinic.test", "correct-horse-battery-staple")
    client.force_login(root)
    url = reverse("admin:backoffice_stationevent_changelist")

    # Searched by MRN: posted, and followed to the list holding a token (tests/security/test_phi_in_urls.py).
    response = client.post(url, {"_search": "1", "q": handoff.patient.mrn}, follow=True)

    assert response.status_code == 200
    assert response.context["cl"].result_count == 2
    assert handoff.patient.mrn in response.content.decode()  # shown through the patient, not a note
    entry = AccessLog.objects.filter(user=root, what="admin station event list").latest("id")
    assert list(entry.patients.all()) == [handoff.patient]
