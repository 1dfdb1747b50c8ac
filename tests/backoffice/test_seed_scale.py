"""The scale seed: exactly the volumes asked for, idempotent, and beside the demo."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Q
from pytest_django import Settings

from backoffice.models import (
    Handoff,
    HandoffEvent,
    Patient,
)
from backoffice.workflow import OPEN_STATUSES, HandoffStatus
from lab.models import TestOrder
from procedures.models import ProcedureOrder
from tests.backoffice.test_seed_demo import row_counts

pytestmark = pytest.mark.django_db

SCALE_ARGS = ("--scale", "--patients", "300", "--handoffs", "500", "--open", "20")


@pytest.fixture(autouse=True)
def fast_hashing(settings: Settings) -> None:
    # The seed hashes seven passwords per run; the real hasher would make these tests slow.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_scale_creates_exactly_the_requested_volumes() -> None:
    output = seed(*SCALE_ARGS)

    assert "patients" in output and "handoff events" in output
    assert Patient.objects.filter(mrn__startswith="S").count() == 300
    scale = Handoff.objects.filter(patient__mrn__startswith="S")
    assert scale.count() == 520
    assert scale.filter(status__in=OPEN_STATUSES).count() == 20
    assert scale.filter(status__in=[HandoffStatus.COMPLETED, HandoffStatus.CANCELLED]).count() == 500
    assert not scale.filter(status__in=OPEN_STATUSES, station__isnull=False).exists()
    assert set(scale.filter(status__in=OPEN_STATUSES).values_list("status", flat=True)) <= {
        HandoffStatus.WAITING,
        HandoffStatus.CLAIMED,
    }
    items = scale.annotate(
        n=Count("procedure_orders", distinct=True) + Count("test_orders", distinct=True)
    ).values_list("n", flat=True)
    assert set(items) <= {1, 2}
    expected_events: dict[str, list[str]] = {
        HandoffStatus.WAITING: [HandoffEvent.Action.CREATED],
        HandoffStatus.CLAIMED: [HandoffEvent.Action.CREATED, HandoffEvent.Action.CLAIMED],
        HandoffStatus.CANCELLED: [HandoffEvent.Action.CREATED, HandoffEvent.Action.CANCELLED],
        HandoffStatus.COMPLETED: [
            HandoffEvent.Action.CREATED,
            HandoffEvent.Action.CLAIMED,
            HandoffEvent.Action.IDENTITY_VERIFIED,
            HandoffEvent.Action.STARTED,
            HandoffEvent.Action.COMPLETED,
        ],
    }
    for handoff in scale.prefetch_related("events"):
        assert [e.action for e in handoff.events.all()] == expected_events[handoff.status]
    # Closed work has no item left open; open work has all of its items still to do.
    closed_items = Q(handoff__status__in=[HandoffStatus.COMPLETED, HandoffStatus.CANCELLED])
    assert not ProcedureOrder.objects.filter(closed_items, status=ProcedureOrder.Status.ORDERED).exists()
    assert not TestOrder.objects.filter(closed_items, status=TestOrder.Status.ORDERED).exists()
    # The ids came from the tables' sequences, so the app can keep inserting.
    patient = Patient.objects.create(
        mrn="M999999", given_name="New", family_name="Patient", date_of_birth="1990-01-01", sex="F"
    )
    assert patient.pk > max(Patient.objects.exclude(pk=patient.pk).values_list("pk", flat=True))


def test_scale_is_idempotent() -> None:
    seed(*SCALE_ARGS)
    first = row_counts()

    output = seed(*SCALE_ARGS)

    assert "already present" in output
    assert row_counts() == first


def test_scale_and_demo_live_side_by_side() -> None:
    seed()
    demo = row_counts()

    seed(*SCALE_ARGS)

    assert Patient.objects.count() == demo["Patient"] + 300
    assert Handoff.objects.count() == demo["Handoff"] + 520
    assert (
        not Handoff.objects.filter(status__in=OPEN_STATUSES, station__isnull=False)
        .exclude(patient__mrn__startswith="M")
        .exists()
    )


def test_scale_refuses_nonsense_volumes() -> None:
    with pytest.raises(CommandError):
        seed("--scale", "--patients", "0", "--handoffs", "10", "--open", "0")
    with pytest.raises(CommandError):
        seed("--scale", "--patients", "-1")


# --- Specimens -----------------------------------------------------------------------------------
