"""The demo and scale seeds: idempotent, consistent with the workflow and the database constraints."""

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count, Q
from django.test import Client
from django.utils import timezone
from pytest_django import Settings

from backoffice import roles
from backoffice.devtools.seed.catalogs import DEMO_PASSWORD, DEMO_USERS
from backoffice.models import (
    Credential,
    ExamRoom,
    Handoff,
    HandoffEvent,
    Patient,
    Station,
    StationEvent,
    User,
)
from backoffice.workflow import OPEN_STATUSES, HandoffStatus, StationState
from lab.models import TestOrder
from procedures.models import ProcedureOrder

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


def row_counts() -> dict[str, int]:
    models = (User, Credential, ExamRoom, Station, Patient, Handoff, HandoffEvent, StationEvent)
    counts = {model.__name__: model.objects.count() for model in models}
    counts["ProcedureOrder"] = ProcedureOrder.objects.count()
    counts["TestOrder"] = TestOrder.objects.count()
    return counts


def test_running_twice_changes_nothing() -> None:
    seed()
    first = row_counts()
    states = dict(Station.objects.values_list("code", "state"))

    output = seed()

    assert row_counts() == first
    assert dict(Station.objects.values_list("code", "state")) == states
    assert "demo handoffs already there" in output
    assert first["Patient"] == 200
    assert first["ExamRoom"] == 8


def test_every_role_has_a_demo_user_who_can_log_in() -> None:
    output = seed()

    for role in roles.ROLES:
        users = User.objects.filter(groups__name=role, is_active=True)
        assert users.exists(), role
        for user in users:
            assert Client().login(username=user.username, password=DEMO_PASSWORD), user.username
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    # The login table is printed on every run, not only the first.
    output += seed()
    for spec in DEMO_USERS:
        assert output.count(spec.username) >= 2
    assert output.count(DEMO_PASSWORD) == 2 * len(DEMO_USERS)


def test_a_changed_demo_password_is_put_back() -> None:
    seed()
    user = User.objects.get(username="ma")
    user.set_password("something-else-entirely-42")
    user.save()

    seed()

    assert Client().login(username="ma", password=DEMO_PASSWORD)


def test_staff_credentials_include_one_expiring_soon() -> None:
    seed()

    today = timezone.localdate()
    kinds = set(Credential.objects.values_list("user__username", "kind"))
    assert {("ma", "CMA"), ("ma2", "RMA"), ("supervisor", "RN"), ("labtech", "MLT")} <= kinds
    assert {("clinician", "MD"), ("clinician2", "NP")} <= kinds
    soon = Credential.objects.filter(expires_on__gte=today, expires_on__lte=today + timedelta(days=30))
    assert soon.filter(user__groups__name=roles.ROLE_MEDICAL_ASSISTANT).exists()


def test_patients_are_varied_and_consistent() -> None:
    seed()

    patients = Patient.objects.filter(mrn__regex=r"^M[0-9]{6}$")
    assert patients.count() == 200
    with_allergies = patients.exclude(allergies="").count()
    assert 40 <= with_allergies <= 80  # about 30%
    assert not patients.exclude(allergies="").filter(no_known_allergies=True).exists()
    assert patients.filter(allergies="", no_known_allergies=True).count() > 100
    languages = Counter(patients.values_list("preferred_language", flat=True))
    assert languages.most_common(1)[0][0] == "English"
    assert len(languages) >= 5
    assert not patients.filter(interpreter_needed=True, preferred_language="English").exists()
    assert not patients.filter(interpreter_needed=False).exclude(preferred_language="English").exists()
    assert patients.values("family_name").distinct().count() > 100


def test_handoffs_exist_in_every_status_with_real_events() -> None:
    seed()

    by_status = dict(Handoff.objects.values_list("status").annotate(n=Count("pk")).order_by())
    assert by_status == {
        HandoffStatus.WAITING: 12,
        HandoffStatus.CLAIMED: 3,
        HandoffStatus.IDENTITY_VERIFIED: 2,
        HandoffStatus.IN_PROGRESS: 2,
        HandoffStatus.COMPLETED: 20,
        HandoffStatus.CANCELLED: 3,
    }
    waiting = Handoff.objects.filter(status=HandoffStatus.WAITING)
    assert waiting.filter(priority=1).exists() and waiting.filter(priority=2).exists()
    assert waiting.filter(interpreter_needed=True).exists()
    assert waiting.filter(mobility=Handoff.Mobility.WHEELCHAIR).exists()
    assert waiting.exclude(isolation=Handoff.Isolation.NONE).exists()
    assert waiting.exclude(companion="").exists()
    assert waiting.filter(aide_needed=True).exists()
    now = timezone.now()
    for handoff in waiting:
        assert timedelta(minutes=2) <= now - handoff.created_at <= timedelta(minutes=41)
    # Open work has its ordered items; every handoff's story starts with "created" at its created_at.
    for handoff in Handoff.objects.open():
        assert handoff.procedure_orders.exists() or handoff.test_orders.exists()
    for handoff in Handoff.objects.all():
        events = list(handoff.events.all())
        assert events[0].action == HandoffEvent.Action.CREATED
        assert events[0].at == handoff.created_at
        assert events[-1].to_status == handoff.status
        assert [e.at for e in events] == sorted(e.at for e in events)
    completed = Handoff.objects.filter(status=HandoffStatus.COMPLETED)
    assert all(h.events.filter(action=HandoffEvent.Action.COMPLETED).exists() for h in completed)
    assert not Handoff.objects.filter(status=HandoffStatus.CANCELLED, cancel_reason="").exists()


def test_occupied_stations_are_the_ones_open_handoffs_sit_in() -> None:
    seed()

    occupied = set(Station.objects.filter(state=StationState.OCCUPIED).values_list("pk", flat=True))
    in_use = set(
        Handoff.objects.filter(status__in=OPEN_STATUSES, station__isnull=False).values_list("station", flat=True)
    )
    assert occupied == in_use
    assert len(occupied) == 4
    assert Station.objects.filter(state=StationState.NEEDS_TURNOVER).count() == 1
    assert Station.objects.filter(state=StationState.READY).exists()
    # The stations' recorded history ends in their current state.
    for station in Station.objects.all():
        last = station.events.order_by("-at", "-pk").first()
        assert last is None or last.to_status == station.state


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
