"""Swapped ids in URLs and hidden fields: refused, nothing changes, and 403/404s are access-logged."""

import uuid as uuid_lib

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import services
from backoffice.identifiers import as_scanned
from backoffice.models import AccessLog, AccessOutcome, Handoff, HandoffEvent, User
from backoffice.workflow import HandoffStatus
from procedures.models import ProcedureType
from tests.factories import HandoffFactory, StationFactory
from tests.security.conftest import sign_in_verified

pytestmark = pytest.mark.django_db


def _snapshot(handoff: Handoff) -> tuple[object, ...]:
    fresh = Handoff.objects.get(pk=handoff.pk)
    return (fresh.status, fresh.claimed_by_id, fresh.station_id, fresh.identity_verified_at, fresh.events.count())


@pytest.fixture
def claimed_by_other(other_ma: User) -> Handoff:
    handoff = HandoffFactory()
    services.handoff_claim(handoff=handoff, by=other_ma)
    return handoff


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("handoff_claim", {}),
        ("handoff_release", {}),
        ("handoff_start", {}),
        ("handoff_complete", {}),
        ("handoff_verify", {"scanned_mrn": as_scanned("M999999")}),
        ("handoff_station", {"station": "proc-77"}),
    ],
)
def test_an_ma_cannot_act_on_a_handoff_another_ma_claimed(  # type: ignore[no-untyped-def]
    client: Client, medical_assistant: User, claimed_by_other: Handoff, action: str, data: dict[str, str]
) -> None:
    StationFactory(code="proc-77")
    before = _snapshot(claimed_by_other)
    client.force_login(medical_assistant)
    response = client.post(reverse(action, args=[claimed_by_other.uuid]), data, follow=True)
    assert response.status_code in (200, 403, 404, 422)
    assert _snapshot(claimed_by_other) == before
    if response.status_code == 200:
        # A workflow refusal is shown as an error message, never as a success.
        levels = [m.level_tag for m in response.context["messages"]]
        assert "success" not in levels
        assert "error" in levels or response.redirect_chain == []


@pytest.mark.parametrize("action", ["handoff_claim", "handoff_release", "handoff_start", "handoff_complete"])
def test_a_role_without_the_permission_is_refused_and_logged(  # type: ignore[no-untyped-def]
    client: Client, lab_tech: User, claimed_by_other: Handoff, action: str
) -> None:
    before = _snapshot(claimed_by_other)
    client.force_login(lab_tech)
    assert client.post(reverse(action, args=[claimed_by_other.uuid])).status_code == 403
    assert _snapshot(claimed_by_other) == before
    row = AccessLog.objects.filter(user=lab_tech).latest("id")
    assert row.outcome == AccessOutcome.DENIED
    assert row.object_ref == str(claimed_by_other.uuid)
    assert list(row.patients.all()) == [claimed_by_other.patient]


def test_a_clinician_cannot_claim(client: Client, clinician: User, claimed_by_other: Handoff) -> None:
    before = _snapshot(claimed_by_other)
    client.force_login(clinician)
    assert client.post(reverse("handoff_claim", args=[claimed_by_other.uuid])).status_code == 403
    assert _snapshot(claimed_by_other) == before
    assert AccessLog.objects.filter(user=clinician, outcome=AccessOutcome.DENIED).exists()


@pytest.mark.parametrize("action", ["handoff_detail", "handoff_claim", "handoff_cancel"])
def test_an_unknown_uuid_is_not_found_and_logged(client: Client, supervisor: User, action: str) -> None:
    missing = str(uuid_lib.uuid4())
    sign_in_verified(client, supervisor)
    method = client.get if action == "handoff_detail" else client.post
    assert method(reverse(action, args=[missing])).status_code == 404
    row = AccessLog.objects.filter(user=supervisor).latest("id")
    assert row.outcome == AccessOutcome.NOT_FOUND
    assert row.object_ref == missing


def test_a_procedure_uuid_swapped_for_a_handoff_uuid_is_not_found(
    client: Client, medical_assistant: User, handoff: Handoff
) -> None:
    client.force_login(medical_assistant)
    # A real handoff's uuid is not a procedure order's.
    assert client.get(reverse("procedures:detail", args=[handoff.uuid])).status_code == 404
    assert AccessLog.objects.filter(user=medical_assistant, outcome=AccessOutcome.NOT_FOUND).exists()


def test_an_outsider_cannot_open_a_handoff_and_is_logged(client: Client, outsider: User, handoff: Handoff) -> None:
    client.force_login(outsider)
    assert client.get(reverse("handoff_detail", args=[handoff.uuid])).status_code == 403
    row = AccessLog.objects.filter(user=outsider).latest("id")
    assert row.outcome == AccessOutcome.DENIED
    assert list(row.patients.all()) == [handoff.patient]


def test_cancel_by_a_role_without_the_permission_changes_nothing(
    client: Client, medical_assistant: User, handoff: Handoff
) -> None:
    client.force_login(medical_assistant)
    response = client.post(reverse("handoff_cancel", args=[handoff.uuid]), {"reason": "swapped"})
    assert response.status_code == 403
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.WAITING
    assert AccessLog.objects.filter(user=medical_assistant, outcome=AccessOutcome.DENIED).exists()


def test_new_handoff_with_a_tampered_patient_uuid_writes_nothing(client: Client, clinician: User, exam_room) -> None:  # type: ignore[no-untyped-def]
    ptype = ProcedureType.objects.filter(is_active=True).first()
    assert ptype is not None
    handoffs, events = Handoff.objects.count(), HandoffEvent.objects.count()
    client.force_login(clinician)
    for patient_ref in (str(uuid_lib.uuid4()), "1", "not-a-uuid", "' OR 1=1 --"):
        response = client.post(
            reverse("handoff_new"),
            {
                "patient": patient_ref,
                "ordering_clinician": clinician.pk,
                "exam_room": exam_room.pk,
                "priority": 1,
                "procedures": [ptype.pk],
                "mobility": "independent",
                "isolation": "none",
            },
        )
        assert response.status_code == 422, patient_ref
        assert "Select the patient again." in response.content.decode()
    assert Handoff.objects.count() == handoffs
    assert HandoffEvent.objects.count() == events


def test_acting_on_another_mas_handoff_is_logged_as_a_denied_attempt(
    client,
    medical_assistant,
    other_ma,
    handoff,  # type: ignore[no-untyped-def]
) -> None:
    services.handoff_claim(handoff=handoff, by=other_ma)
    client.force_login(medical_assistant)
    client.post(reverse("handoff_release", args=[handoff.uuid]))
    row = AccessLog.objects.get(user=medical_assistant, outcome=AccessOutcome.DENIED)
    assert row.object_ref == str(handoff.uuid)
    assert list(row.patients.all()) == [handoff.patient]
    handoff.refresh_from_db()
    assert handoff.claimed_by == other_ma
