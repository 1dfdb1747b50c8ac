"""The admin site's access rows (backoffice.admin_access) and the way to a row's patient (backoffice.audit.patients)."""

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice import services
from backoffice.audit.patients import patient_path, patients_of, patients_of_rows
from backoffice.models import AccessLog, Handoff, HandoffEvent, Patient, Station, StationEvent, User
from lab.models import InboundMessageEvent, SendOut
from procedures.models import ProcedureOrder, ProcedureType, VitalSigns
from procedures.services import procedure_orders_add
from tests.factories import HandoffFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client: Client, settings: Any) -> Client:
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False
    client.force_login(User.objects.create_superuser("root", "root@clinic.test", "correct-horse-battery-staple"))
    return client


def latest(what: str) -> AccessLog:
    return AccessLog.objects.filter(what=what).latest("id")


def patients(entry: AccessLog) -> set[int]:
    return set(entry.patients.values_list("pk", flat=True))


def test_the_way_to_a_patient_is_read_from_the_models() -> None:
    def names(model: type) -> list[str] | None:
        path = patient_path(model)
        return None if path is None else [field.name for field in path]

    assert names(Patient) == []
    assert names(Handoff) == ["patient"]
    assert names(StationEvent) == ["patient"]
    assert names(VitalSigns) == ["documentation", "order", "handoff", "patient"]
    assert names(SendOut) == ["order", "handoff", "patient"]
    assert names(InboundMessageEvent) == ["message", "send_out", "order", "handoff", "patient"]
    assert names(Station) is None and names(ProcedureType) is None and names(User) is None


def test_patients_of_rows_read_loaded_rows_without_a_query_and_others_in_one(handoff: Handoff) -> None:
    other = HandoffFactory()
    services_by = handoff.ordering_clinician
    services.handoff_claim(handoff=handoff, by=User.objects.create_superuser("s", "s@clinic.test", "x-y-z-w-1"))
    rows = list(HandoffEvent.objects.select_related("handoff"))
    with CaptureQueriesContext(connection) as loaded:
        assert set(patients_of_rows(HandoffEvent, rows)) == {handoff.patient_id}
    assert len(loaded) == 0  # the rows carry their handoff

    procedure_orders_add(
        handoff=other, procedure_types=list(ProcedureType.objects.filter(is_active=True)[:2]), by=services_by
    )
    plain = list(ProcedureOrder.objects.all())
    with CaptureQueriesContext(connection) as read:
        assert patients_of_rows(ProcedureOrder, plain) == [other.patient_id, other.patient_id]
    assert len(read) == 1  # SELECT handoff.patient_id FROM the orders joined to their handoffs


def test_patients_of_several_models_is_one_query(handoff: Handoff) -> None:
    [order] = procedure_orders_add(
        handoff=handoff,
        procedure_types=[ProcedureType.objects.filter(is_active=True)[0]],
        by=handoff.ordering_clinician,
    )
    other = HandoffFactory()
    refs = [(Handoff, other.pk), (ProcedureOrder, order.pk), (Patient, str(handoff.patient_id)), (Station, 1)]
    with CaptureQueriesContext(connection) as ctx:
        found = patients_of([*refs, (Handoff, "not-an-id")])
    assert sorted(found) == sorted([other.patient_id, handoff.patient_id, handoff.patient_id])
    assert len(ctx) == 1  # one UNION ALL over the models that lead to a patient; a station leads to none


def test_a_patients_history_and_delete_pages_log_the_patient(root: Client, patient: Patient) -> None:
    assert root.get(reverse("admin:backoffice_patient_history", args=[patient.pk])).status_code == 200
    entry = latest("admin patient history")
    assert (entry.action, entry.object_ref, patients(entry)) == ("view", str(patient.uuid), {patient.pk})

    assert root.get(reverse("admin:backoffice_patient_delete", args=[patient.pk])).status_code == 200
    entry = latest("admin patient delete")
    assert (entry.action, patients(entry)) == ("view", {patient.pk})


def test_delete_selecteds_confirmation_logs_the_patients_it_lists(root: Client) -> None:
    """The "delete selected" action's confirmation lists each chosen patient (and what would go with them)."""
    chosen = [
        Patient.objects.create(mrn=f"M30000{n}", family_name=f"Okoro{n}", given_name="Ada", date_of_birth="1990-01-01")
        for n in (1, 2)
    ]
    url = reverse("admin:backoffice_patient_changelist")

    response = root.post(url, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [p.pk for p in chosen]})

    assert response.status_code == 200
    assert all(p.mrn in response.content.decode() for p in chosen)
    entry = latest("admin patient delete")
    assert (entry.action, patients(entry)) == ("view", {p.pk for p in chosen})
    assert Patient.objects.filter(pk__in=[p.pk for p in chosen]).count() == 2


def test_a_delete_page_naming_only_kinds_of_records_logs_no_patient(root: Client, handoff: Handoff) -> None:
    """A clinician's account: the handoffs they ordered may not be deleted, and the page names only their kind."""
    response = root.get(reverse("admin:backoffice_user_delete", args=[handoff.ordering_clinician.pk]))

    assert response.status_code == 200
    assert handoff.patient.family_name not in response.content.decode()
    assert not AccessLog.objects.filter(what="admin user delete").exists()


def test_a_confirmed_delete_logs_nothing_and_deletes(root: Client) -> None:
    """Only the confirmation page is a view: the deletion itself shows nothing (and a row would protect it)."""
    patient = Patient.objects.create(mrn="M300001", family_name="Okoro", given_name="Ada", date_of_birth="1990-01-01")

    response = root.post(reverse("admin:backoffice_patient_delete", args=[patient.pk]), {"post": "yes"})

    assert response.status_code == 302
    assert not Patient.objects.filter(pk=patient.pk).exists()
    assert not AccessLog.objects.filter(what="admin patient delete").exists()


def test_a_catalog_page_logs_nothing(root: Client) -> None:
    assert root.get(reverse("admin:procedures_proceduretype_changelist")).status_code == 200
    station = Station.objects.create(code="bench-9", name="Bench 9", kind=Station.Kind.LAB_BENCH)
    assert root.get(reverse("admin:backoffice_station_change", args=[station.pk])).status_code == 200
    assert root.get(reverse("admin:backoffice_station_delete", args=[station.pk])).status_code == 200
    assert not AccessLog.objects.exists()


def test_the_events_page_logs_the_patients_of_every_clinical_models_changes(root: Client, handoff: Handoff) -> None:
    [order] = procedure_orders_add(
        handoff=handoff,
        procedure_types=[ProcedureType.objects.filter(is_active=True)[0]],
        by=handoff.ordering_clinician,
    )
    events = reverse("admin:pghistory_middlewareevents_changelist")

    response = root.get(events, {"obj": f"procedures.ProcedureOrder:{order.pk}", "method": "tracks"})

    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1
    assert patients(latest("admin history list")) == {handoff.patient_id}
