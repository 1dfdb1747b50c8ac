"""The demo clinic day: patients, open handoffs in each state, cancelled and completed ones.

Demo data goes through the services (backoffice.services, procedures.services, lab.services), so
every handoff has the events a real one would have; afterwards only the timestamps of the demo rows
are moved back, so the queue shows realistic waiting times.
"""

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import pgtrigger
from django.core.management.base import CommandError, OutputWrapper
from django.db import models
from django.utils import timezone

from backoffice.devtools.seed.catalogs import (
    PATIENT_STATION_KINDS,
    STATIONS,
    TEMPLATES,
    WALK_IN_STATION,
    OrderTemplate,
)
from backoffice.devtools.seed.common import IP, IV, Action, C, W, patient_fields, seeded_rng
from backoffice.devtools.seed.medications import ORDERED_WITH
from backoffice.models import (
    ExamRoom,
    Handoff,
    HandoffEvent,
    Patient,
    Station,
    StationEvent,
    User,
)
from backoffice.selectors import station_picker
from backoffice.services import (
    Needs,
    handoff_assign_station,
    handoff_cancel,
    handoff_claim,
    handoff_complete,
    handoff_create,
    handoff_hand_back,
    handoff_start,
    handoff_verify_identity,
    station_turnover,
)
from backoffice.workflow import HandBackReason, HandoffStatus, Priority, StationState
from lab.models import TestDefinition, TestOrder
from lab.services import test_orders_add
from procedures.models import Medication, ProcedureDocumentation, ProcedureEvent, ProcedureOrder, ProcedureType
from procedures.services import (
    AllergyStop,
    Documentation,
    medications_order,
    procedure_document,
    procedure_finish,
    procedure_orders_add,
    procedure_return,
    procedure_start,
)
from procedures.workflow import ProcedureStatus, Supervision

DEMO_PATIENTS = 200
DEMO_MRN_START = 500001  # clear of the ranges the test factories use (M1xxxxx, M2xxxxx)
DEMO_SEED = 2026
# Demo handoffs get UUIDs derived from this namespace: a marker that they exist, and stable URLs.
DEMO_NAMESPACE = uuid.UUID("6f1c2a8e-0d7b-4d0c-9a51-3c2f5e8b7a10")


# --- Demo handoffs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoHandoff:
    """One demo handoff: what was ordered, and how far the services take it."""

    template: str
    status: str
    minutes_ago: int = 0  # open ones: how long the patient has waited
    days_ago: int = 0  # closed ones
    priority: int = Priority.ROUTINE
    clinician: str = "clinician"
    creator: str = ""  # an MA entering the handoff on the clinician's behalf; blank: the clinician
    worker: str = ""
    station: str = ""
    identity: str = "wristband"
    needs: Needs = field(default_factory=Needs)
    cancel_from: str = HandoffStatus.WAITING
    cancelled_by: str = ""
    cancel_reason: str = ""
    ordered: bool = True  # closed demo handoffs order nothing: their items could not be closed through services
    leave_for_turnover: bool = False  # the room it closes in stays waiting for cleaning
    # The worker, not yet signed off, performs the procedures with a co-sign afterwards: they wait for the
    # supervisor ("awaiting_cosign") or come back to be corrected ("returned"), the patient long gone.
    cosign: str = ""
    return_comment: str = ""
    hand_back: str = ""  # a HandBackReason: the worker hands the patient back (returned to the clinician)


STAT = Priority.STAT
Mob, Iso = Handoff.Mobility, Handoff.Isolation
INTERPRETER = Needs(interpreter_needed=True)

OPEN_HANDOFFS = (
    DemoHandoff("chest_pain", W, minutes_ago=4, priority=STAT),
    DemoHandoff("wheeze", W, minutes_ago=9, priority=STAT, needs=Needs(companion="Mother", mobility=Mob.WHEELCHAIR)),
    DemoHandoff("laceration", W, minutes_ago=2, priority=STAT, clinician="clinician2", creator="ma"),
    DemoHandoff("annual_labs", W, minutes_ago=38, needs=INTERPRETER),
    DemoHandoff("sore_throat", W, minutes_ago=31, needs=Needs(isolation=Iso.DROPLET)),
    DemoHandoff("cerumen", W, minutes_ago=27, needs=Needs(interpreter_needed=True, companion="Son")),
    DemoHandoff(
        "diabetes",
        W,
        minutes_ago=22,
        clinician="clinician2",
        needs=Needs(mobility=Mob.WHEELCHAIR, aide_needed=True),
    ),
    DemoHandoff("uti", W, minutes_ago=18),
    DemoHandoff("flu", W, minutes_ago=15, clinician="clinician2", needs=Needs(isolation=Iso.DROPLET)),
    DemoHandoff("b12", W, minutes_ago=12, needs=Needs(mobility=Mob.WALKER)),
    DemoHandoff("inr", W, minutes_ago=7, clinician="clinician2", needs=INTERPRETER),
    DemoHandoff("flu_vaccine", W, minutes_ago=3, creator="ma2", needs=Needs(companion="Daughter")),
    DemoHandoff("wound_check", C, minutes_ago=24, worker="ma", needs=Needs(isolation=Iso.CONTACT)),
    DemoHandoff("psa", C, minutes_ago=19, worker="ma2", clinician="clinician2"),
    DemoHandoff("pregnancy", C, minutes_ago=14, worker="ma", needs=INTERPRETER),
    DemoHandoff("fatigue", IV, minutes_ago=21, worker="ma2", station="phleb-2", identity="name+dob"),
    DemoHandoff("suture_removal", IV, minutes_ago=17, worker="ma", station="proc-2", needs=Needs(companion="Husband")),
    DemoHandoff("fna", IP, minutes_ago=33, worker="ma", station="proc-1", identity="name+dob"),
    DemoHandoff("tb", IP, minutes_ago=16, worker="ma2", station="phleb-1", clinician="clinician2"),
    # Handed back to the demo clinician: the patient wouldn't have the draw today.
    DemoHandoff(
        "annual_labs", HandoffStatus.RETURNED, minutes_ago=11, worker="ma", hand_back=HandBackReason.PATIENT_REFUSED
    ),
)

# Earlier today, by the MA in training: done for the patient (the handoffs completed), not yet for the supervisor.
COSIGN_HANDOFFS = (
    DemoHandoff("ecg", HandoffStatus.COMPLETED, worker="ma2", station="proc-1", cosign="awaiting_cosign"),
    DemoHandoff(
        "ecg",
        HandoffStatus.COMPLETED,
        worker="ma2",
        station="proc-1",
        cosign="returned",
        return_comment="Give the rate and rhythm you read off the tracing, and whether the clinician saw it.",
    ),
)

CANCELLED_HANDOFFS = (
    DemoHandoff(
        "vision",
        HandoffStatus.CANCELLED,
        days_ago=3,
        cancelled_by="clinician",
        cancel_reason="Patient left before being seen; will come back on Thursday.",
        ordered=False,
    ),
    DemoHandoff(
        "annual_labs",
        HandoffStatus.CANCELLED,
        days_ago=2,
        worker="ma",
        cancel_from=C,
        cancelled_by="supervisor",
        cancel_reason="Patient had eaten breakfast; fasting labs rebooked for next week.",
        ordered=False,
    ),
    DemoHandoff(
        "fatigue",
        HandoffStatus.CANCELLED,
        days_ago=1,
        worker="ma2",
        station="bay-1",
        cancel_from=IP,
        cancelled_by="supervisor",
        cancel_reason="Patient felt faint during the draw; stopped, observed, and rescheduled.",
        ordered=False,
    ),
)
COMPLETED_COUNT = 20

TURNOVER_STATION = "proc-3"  # the last completed handoff leaves this room waiting for cleaning

_REACHED: dict[str, int] = {W: 0, C: 1, IV: 2, IP: 3}


# --- Loading -------------------------------------------------------------------------------------


def seed_patients(stdout: OutputWrapper) -> list[Patient]:
    rng = seeded_rng(DEMO_SEED)
    born_before = date(timezone.localdate().year, 1, 1)
    patients: list[Patient] = []
    created = 0
    for n in range(DEMO_PATIENTS):
        fields = patient_fields(rng, mrn=f"M{DEMO_MRN_START + n}", born_before=born_before)
        patient, is_new = Patient.objects.get_or_create(mrn=fields.pop("mrn"), defaults=fields)
        patients.append(patient)
        created += is_new
    stdout.write(f"Patients: {created} created, {DEMO_PATIENTS - created} already there.")
    return patients


def _order_medications(orders: list[ProcedureOrder], *, clinician: User) -> None:
    """The drug each injection, vaccine or nebulizer gives, ordered by the clinician and checked against the
    patient's allergies; where one runs into an allergy, the clinician's override is recorded with it."""
    catalog = {m.name: m for m in Medication.objects.filter(is_active=True)}
    for order in orders:
        product = catalog.get(ORDERED_WITH.get(order.procedure_type.code, ""))
        if product is None:
            continue
        try:
            medications_order(order=order, medications=[product], by=clinician)
        except AllergyStop:
            medications_order(
                order=order,
                medications=[product],
                by=clinician,
                override_reason="Tolerated it last year; benefit outweighs the risk. Watch 30 minutes after.",
            )


def seed_handoffs(stdout: OutputWrapper, *, users: dict[str, User], patients: list[Patient]) -> None:
    specs = _demo_plan()
    keys = [uuid.uuid5(DEMO_NAMESPACE, f"demo-handoff-{n}") for n in range(len(specs))]
    if Handoff.objects.filter(uuid__in=keys).exists():
        stdout.write("Handoffs: demo handoffs already there; none added.")
        return
    now = timezone.now()
    picker = PatientPicker(patients=patients, today=timezone.localdate())
    rooms = list(ExamRoom.objects.order_by("name"))
    stations = {s.code: s for s in Station.objects.all()}
    procedure_types = {p.code: p for p in ProcedureType.objects.filter(is_active=True)}
    tests = {t.loinc_code: t for t in TestDefinition.objects.filter(is_active=True)}
    rng = seeded_rng(DEMO_SEED)
    for n, (spec, key) in enumerate(zip(specs, keys, strict=True)):
        template = TEMPLATES[spec.template]
        patient = picker.pick(template=template, interpreter=spec.needs.interpreter_needed)
        creator = users[spec.creator or spec.clinician]
        handoff = handoff_create(
            patient=patient,
            ordering_clinician=users[spec.clinician],
            exam_room=rooms[n % len(rooms)],
            priority=spec.priority,
            clinical_note=template.note,
            diagnosis_codes=template.diagnoses,
            needs=spec.needs,
            by=creator,
        )
        if spec.ordered:
            chosen_procedures = [procedure_types[c] for c in template.procedures if c in procedure_types]
            chosen_tests = [tests[c] for c in template.tests if c in tests]
            if chosen_procedures:
                orders = procedure_orders_add(handoff=handoff, procedure_types=chosen_procedures, by=creator)
                _order_medications(orders, clinician=users[spec.clinician])
            if chosen_tests:
                test_orders_add(handoff=handoff, tests=chosen_tests, by=creator)
        at = _demo_times(spec=spec, now=now, rng=rng)
        station_mark = StationEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        _play(spec=spec, handoff=handoff, users=users, stations=stations)
        _backdate(handoff=handoff, key=key, at=at, station_mark=station_mark)
        _backdate_procedures(handoff=handoff, at=at)
    # A station's clock starts at its latest event, which the backdating moved.
    for station in Station.objects.all():
        latest = station.events.order_by("-at", "-pk").values_list("at", flat=True).first()
        if latest is not None:
            Station.objects.filter(pk=station.pk).update(state_changed_at=latest)
    by_status = dict(
        Handoff.objects.filter(uuid__in=keys).values_list("status").annotate(n=models.Count("pk")).order_by()
    )
    summary = ", ".join(f"{by_status.get(s.value, 0)} {s.label.lower()}" for s in HandoffStatus)
    stdout.write(f"Handoffs: {summary}.")


def _demo_plan() -> list[DemoHandoff]:
    """Closed ones first, oldest first, so event ids run with time; then today's open work."""
    templates = [k for k in TEMPLATES if k not in {"catheter", "fna", "ecg"}]
    workers = ("ma", "ma2", "ma", "ma2", "supervisor")
    patient_stations = [
        s.code
        for s in STATIONS
        if s.kind in PATIENT_STATION_KINDS and s.code not in (TURNOVER_STATION, WALK_IN_STATION)
    ]
    completed = [
        DemoHandoff(
            templates[n % len(templates)],
            HandoffStatus.COMPLETED,
            days_ago=max(0, 12 - n * 12 // (COMPLETED_COUNT - 1)),
            clinician="clinician" if n % 3 else "clinician2",
            worker=workers[n % len(workers)],
            station=TURNOVER_STATION if n == COMPLETED_COUNT - 1 else patient_stations[n % len(patient_stations)],
            leave_for_turnover=n == COMPLETED_COUNT - 1,
            identity="wristband" if n % 4 else "name+dob",
            priority=STAT if n % 7 == 3 else Priority.ROUTINE,
            ordered=False,
        )
        for n in range(COMPLETED_COUNT)
    ]
    closed = sorted([*completed, *CANCELLED_HANDOFFS, *COSIGN_HANDOFFS], key=lambda s: -s.days_ago)
    return [*closed, *OPEN_HANDOFFS]


def _play(
    *,
    spec: DemoHandoff,
    handoff: Handoff,
    users: dict[str, User],
    stations: dict[str, Station],
) -> None:
    """Move a new handoff through the services to the state its spec asks for."""
    if spec.status == HandoffStatus.CANCELLED:
        reach = _REACHED[spec.cancel_from]
    elif spec.status == HandoffStatus.RETURNED:
        reach = _REACHED[C]
    elif spec.status == HandoffStatus.COMPLETED:
        reach = _REACHED[IP]
    else:
        reach = _REACHED[spec.status]
    worker = users[spec.worker] if spec.worker else None
    if reach >= _REACHED[C] and worker is not None:
        handoff_claim(handoff=handoff, by=worker)
        if spec.station:
            station = ready_station(stations=stations, preferred=spec.station, handoff=handoff)
            handoff_assign_station(handoff=handoff, station=station, by=worker)
        if reach >= _REACHED[IV]:
            patient = handoff.patient
            if spec.identity == "wristband":
                handoff_verify_identity(handoff=handoff, by=worker, scanned_mrn=patient.mrn)
            else:
                handoff_verify_identity(
                    handoff=handoff, by=worker, full_name=patient.full_name, date_of_birth=patient.date_of_birth
                )
        if reach >= _REACHED[IP]:
            handoff_start(handoff=handoff, by=worker)
    if spec.cosign and worker is not None:
        _perform_for_cosign(spec=spec, handoff=handoff, worker=worker, users=users)
        handoff.refresh_from_db()  # completed by the procedures' own services, on their copy
    elif spec.hand_back and worker is not None:
        handoff_hand_back(handoff=handoff, by=worker, reason=spec.hand_back)
    elif spec.status == HandoffStatus.COMPLETED and worker is not None:
        handoff_complete(handoff=handoff, by=worker)
    elif spec.status == HandoffStatus.CANCELLED:
        handoff_cancel(handoff=handoff, by=users[spec.cancelled_by], reason=spec.cancel_reason)
    # Rooms of past work were cleaned long ago; one is left for the demo user to turn over.
    if handoff.station is not None and not handoff.is_open and not spec.leave_for_turnover:
        station_turnover(station=handoff.station, by=worker or users["ma"])


def _perform_for_cosign(*, spec: DemoHandoff, handoff: Handoff, worker: User, users: dict[str, User]) -> None:
    """Each procedure performed and documented, to be co-signed afterwards; returned when the spec says so."""
    for order in ProcedureOrder.objects.filter(handoff=handoff).select_related("procedure_type").order_by("id"):
        procedure_start(order=order, by=worker, supervision=Supervision.COSIGN)
        ptype = order.procedure_type
        steps = frozenset(ptype.steps.values_list("pk", flat=True))
        data = Documentation(
            site="Left antecubital fossa" if ptype.documents_site else "",
            laterality="left" if ptype.documents_site else "",
            findings="Tracing recorded, no artefact; handed to the clinician." if ptype.documents_findings else "",
            specimen_note="1 lavender EDTA" if ptype.documents_specimen else "",
            tolerance=ProcedureDocumentation.Tolerance.WELL,
            steps_done=steps,
        )
        version = ProcedureDocumentation.objects.get(order=order).version
        doc = procedure_document(order=order, by=worker, version=version, data=data)
        procedure_finish(order=order, by=worker, version=doc.version)
        if spec.cosign == ProcedureStatus.RETURNED:
            procedure_return(order=order, by=users["supervisor"], comment=spec.return_comment)


class PatientPicker:
    """Hands out each demo patient once, matching the order's sex, age and interpreter need."""

    def __init__(self, *, patients: Sequence[Patient], today: date) -> None:
        self._patients = list(patients)
        self._used: set[int] = set()
        self._today = today

    def pick(self, *, template: OrderTemplate, interpreter: bool) -> Patient:
        for patient in self._patients:
            if patient.pk in self._used or patient.interpreter_needed != interpreter:
                continue
            if template.sex and patient.sex != template.sex:
                continue
            if not template.min_age <= patient.age_on(self._today) <= template.max_age:
                continue
            self._used.add(patient.pk)
            return patient
        raise CommandError(f"No demo patient left for {template.note[:40]!r}.")


def ready_station(*, stations: dict[str, Station], preferred: str, handoff: Handoff | None = None) -> Station:
    """The preferred station, or any ready patient station if someone is using it already; for a handoff,
    one with the equipment its procedures need (as the page offers them), the preferred one if it has it.
    Never the walk-in lab draw chair: it is kept for the past weeks' lab visits (seed.lab_history)."""
    if handoff is not None:
        fitting = [
            c.station
            for c in station_picker(handoff).fitting
            if c.station.kind in PATIENT_STATION_KINDS and c.station.code != WALK_IN_STATION
        ]
        if not fitting:
            raise CommandError("No ready station has what the demo handoff needs; turn some over and run again.")
        return next((s for s in fitting if s.pk == stations[preferred].pk), fitting[0])
    choice = Station.objects.get(pk=stations[preferred].pk)
    if choice.state == StationState.READY and choice.is_active:
        return choice
    fallback = (
        Station.objects.filter(state=StationState.READY, is_active=True, kind__in=PATIENT_STATION_KINDS)
        .exclude(code=WALK_IN_STATION)
        .order_by("code")
        .first()
    )
    if fallback is None:
        raise CommandError("No ready station left for the demo handoffs; turn some over and run again.")
    return fallback


def _demo_times(*, spec: DemoHandoff, now: datetime, rng: random.Random) -> dict[str, datetime]:
    """When each step of a demo handoff should appear to have happened."""
    if spec.minutes_ago:
        created = now - timedelta(minutes=spec.minutes_ago, seconds=rng.randrange(60))
        # Open work: each step a share of the time since the handoff, so none lies in the future.
        age = now - created
        return {
            Action.CREATED: created,
            Action.CLAIMED: created + age * 0.45,
            Action.STATION_ASSIGNED: created + age * 0.55,
            Action.IDENTITY_VERIFIED: created + age * 0.65,
            Action.STARTED: created + age * 0.8,
        }
    if spec.days_ago:
        day = timezone.localtime(now).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=spec.days_ago)
        created = day + timedelta(minutes=rng.randrange(0, 480), seconds=rng.randrange(60))
    else:
        # Earlier today: recent enough that the room it left is still waiting to be cleaned.
        created = now - timedelta(minutes=70 + rng.randrange(20))
    claimed = created + timedelta(minutes=rng.randrange(3, 18))
    verified = claimed + timedelta(minutes=3)
    started = verified + timedelta(minutes=1)
    closed = started + timedelta(minutes=rng.randrange(8, 30))
    if spec.status == HandoffStatus.CANCELLED and spec.cancel_from == W:
        closed = created + timedelta(minutes=rng.randrange(10, 40))
    elif spec.status == HandoffStatus.CANCELLED and spec.cancel_from == C:
        closed = claimed + timedelta(minutes=4)
    closing = Action.COMPLETED if spec.status == HandoffStatus.COMPLETED else Action.CANCELLED
    return {
        Action.CREATED: created,
        Action.CLAIMED: claimed,
        Action.STATION_ASSIGNED: claimed + timedelta(minutes=2),
        Action.IDENTITY_VERIFIED: verified,
        Action.STARTED: started,
        closing: closed,
        "turnover": closed + timedelta(minutes=rng.randrange(4, 12)),
    }


def _backdate(*, handoff: Handoff, key: uuid.UUID, at: dict[str, datetime], station_mark: int) -> None:
    """Move a demo handoff, its items and events back in time; also gives it its marker UUID.

    Seed data only: the rows were written by the services a moment ago, and only their times change.
    """
    row = Handoff.objects.get(pk=handoff.pk)
    closing = at.get(Action.COMPLETED) or at.get(Action.CANCELLED)
    Handoff.objects.filter(pk=handoff.pk).update(
        uuid=key,
        created_at=at[Action.CREATED],
        claimed_at=at[Action.CLAIMED] if row.claimed_at else None,
        identity_verified_at=at[Action.IDENTITY_VERIFIED] if row.identity_verified_at else None,
        closed_at=closing if row.closed_at else None,
    )
    ProcedureOrder.objects.filter(handoff=handoff).update(created_at=at[Action.CREATED])
    TestOrder.objects.filter(handoff=handoff).update(created_at=at[Action.CREATED])
    station_times = {
        StationState.OCCUPIED: at.get(Action.STATION_ASSIGNED),
        StationState.NEEDS_TURNOVER: closing,
        StationState.READY: at.get("turnover"),
    }
    # Event rows are append-only: a trigger refuses UPDATE. Only this seed, on rows it wrote a moment
    # ago, lifts that for its own connection (pgtrigger.ignore sets a transaction-local flag the
    # trigger reads); no code path serving users does.
    with pgtrigger.ignore("backoffice.HandoffEvent:append_only", "backoffice.StationEvent:append_only"):
        for action, when in at.items():
            HandoffEvent.objects.filter(handoff=handoff, action=action).update(at=when)
        # The items were ordered with the handoff, under its lock, in the same moment.
        HandoffEvent.objects.filter(handoff=handoff, action=Action.ITEMS_ORDERED).update(at=at[Action.CREATED])
        for state, moved_at in station_times.items():
            if moved_at is not None:
                StationEvent.objects.filter(pk__gt=station_mark, to_status=state).update(at=moved_at)


def _backdate_procedures(*, handoff: Handoff, at: dict[str, datetime]) -> None:
    """Move a demo handoff's procedure orders and their events back with the handoff: ordered with it,
    performed while it was worked, sent for co-sign as it closed, returned by the supervisor a while after."""
    created = at[Action.CREATED]
    ProcedureOrder.objects.filter(handoff=handoff, status=ProcedureOrder.Status.ORDERED).update(
        status_changed_at=created
    )
    PE = ProcedureEvent.Action
    started, closed = at.get(Action.STARTED), at.get(Action.COMPLETED)
    # Seed data only, on rows written a moment ago, as _backdate does for the handoff's events.
    with pgtrigger.ignore("procedures.ProcedureEvent:append_only"):
        ProcedureEvent.objects.filter(order__handoff=handoff, action=PE.ORDERED).update(at=created)
        if started is None or closed is None:
            return
        returned = closed + timedelta(minutes=25)
        performed = ProcedureOrder.objects.filter(handoff=handoff, performer__isnull=False)
        performed.update(started_at=started, performed_at=closed, status_changed_at=closed)
        performed.filter(status=ProcedureOrder.Status.RETURNED).update(returned_at=returned, status_changed_at=returned)
        ProcedureDocumentation.objects.filter(order__in=performed).update(updated_at=closed)
        events = ProcedureEvent.objects.filter(order__handoff=handoff)
        events.filter(action=PE.STARTED).update(at=started)
        events.filter(action__in=(PE.DOCUMENTED, PE.PERFORMED, PE.COSIGN_REQUESTED)).update(at=closed)
        events.filter(action=PE.RETURNED).update(at=returned)
