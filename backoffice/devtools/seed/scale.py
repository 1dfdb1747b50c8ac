"""The `--scale` bulk loader for benchmarks.

`--scale` bypasses the services and writes with COPY: closed historical handoffs plus plain
waiting/claimed ones, built to satisfy every database constraint. Skipping the services is
acceptable for benchmark data only; nothing else may write statuses this way.
"""

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from django.contrib.auth.models import Group
from django.core.management.base import CommandError, OutputWrapper
from django.db import connection, models
from django.utils import timezone
from psycopg import sql

from backoffice import roles
from backoffice.devtools.seed.catalogs import PATIENT_STATION_KINDS, TEMPLATES
from backoffice.devtools.seed.common import IP, IV, Action, C, W, patient_fields, seeded_rng
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, Station, User
from backoffice.text import patient_search_text
from backoffice.workflow import HandoffStatus, Priority
from lab.models import TestDefinition, TestOrder
from lab.workflow import CancelReason
from procedures.models import ProcedureOrder, ProcedureType

SCALE_MRN_PREFIX = "S"
SCALE_SEED = 7
SCALE_HISTORY_DAYS = 730
# Username prefix: (role, title, how many).
SCALE_STAFF = {
    "scale-ma": (roles.ROLE_MEDICAL_ASSISTANT, "Medical assistant", 20),
    "scale-clin": (roles.ROLE_CLINICIAN, "Physician", 15),
}


# --- Scale rows ----------------------------------------------------------------------------------


class ScaleHandoff(NamedTuple):
    """What the event and item writers need to know about one generated handoff."""

    id: int
    status: str
    template: int
    created_at: datetime
    created_by: int
    ordering_clinician: int
    worker: int | None
    claimed_at: datetime | None
    verified_at: datetime | None
    closed_at: datetime | None
    closed_by: int | None
    cancel_reason: str
    identity_method: str


SCALE_CANCEL_REASONS = (
    "Patient left before being seen.",
    "Clinician changed the plan.",
    "Ordered on the wrong visit; reordered.",
    "Patient declined the procedure.",
    "Rescheduled: patient had eaten before fasting labs.",
)


def seed_scale(
    stdout: OutputWrapper, *, users: dict[str, User], patients: int, historical: int, open_count: int
) -> None:
    """Bulk rows for benchmarks, written with COPY in the surrounding transaction."""
    existing = Patient.objects.filter(mrn__startswith=SCALE_MRN_PREFIX).count()
    if existing:
        stdout.write(
            f"Scale data already present ({existing:,} patients with MRN prefix {SCALE_MRN_PREFIX!r}); nothing added."
        )
        return
    stdout.write(f"Scale load: {patients:,} patients, {historical:,} historical and {open_count:,} open handoffs…")
    progress = _Progress(stdout)
    # COPY is not part of the DB-API; Django's wrapper hands us the psycopg cursor underneath.
    with connection.cursor() as wrapper:
        # Django's foreign keys are deferred to COMMIT; checking them as rows arrive keeps the
        # progress lines honest instead of a silent pause at the end.
        wrapper.execute("SET CONSTRAINTS ALL IMMEDIATE")
        writer = _ScaleWriter(cursor=wrapper.cursor, rng=seeded_rng(SCALE_SEED), now=timezone.now(), users=users)
        progress.step("patients", writer.patients(patients))
        progress.step("handoffs", writer.handoff_rows(historical=historical, open_count=open_count))
        procedure_count, test_count = writer.item_rows()
        progress.step("procedure/test orders", procedure_count + test_count)
        progress.step("handoff events", writer.event_rows())
        # Fresh statistics, so the first benchmark queries don't plan against empty tables.
        tables = [m._meta.db_table for m in (Patient, Handoff, HandoffEvent, ProcedureOrder, TestOrder)]
        wrapper.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))
        progress.step("analyze", 0)


# --- scale load ----------------------------------------------------------------------------------


def _reserve_ids(cursor: Any, *, model: type[models.Model], count: int) -> list[int]:
    """Take ids from the table's own sequence, so rows written later by the app never collide."""
    pk = model._meta.pk
    assert pk is not None
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [model._meta.db_table, pk.column, count],
    )
    return sorted(row[0] for row in cursor.fetchall())


def _copy(cursor: Any, *, model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """COPY rows into a model's table; columns not given get the model's defaults, as Model() would."""
    fields = {f.attname: f for f in model._meta.concrete_fields}
    unknown = set(columns) - fields.keys()
    if unknown:
        raise CommandError(f"{model.__name__} has no field(s) {', '.join(sorted(unknown))}.")
    rest = [f for f in model._meta.concrete_fields if f.attname not in columns and not f.primary_key]
    per_row = [f for f in rest if f.has_default() and callable(f.default)]
    fixed = [f for f in rest if f not in per_row]
    fixed_values = tuple(f.get_default() for f in fixed)
    # A column added later without a default would fail deep inside COPY; say which one instead.
    unfillable = [f.name for f, v in zip(fixed, fixed_values, strict=True) if v is None and not f.null]
    if unfillable:
        raise CommandError(f"The scale loader doesn't fill {model.__name__}.{', '.join(unfillable)}; add it.")
    names = [fields[c].column for c in columns] + [f.column for f in (*fixed, *per_row)]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table), sql.SQL(", ").join(sql.Identifier(str(name)) for name in names)
    )
    defaults: list[Callable[[], Any]] = [f.get_default for f in per_row]
    count = 0
    with cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row((*row, *fixed_values, *(make() for make in defaults)))
            count += 1
    return count


class _Progress:
    """Prints one line per table with its row count and time."""

    def __init__(self, stdout: OutputWrapper) -> None:
        self._stdout = stdout
        self._started = time.monotonic()

    def step(self, label: str, count: int) -> None:
        elapsed = time.monotonic() - self._started
        self._stdout.write(f"  {label:<22} {count:>10,} rows  ({elapsed:5.1f}s)")
        self._stdout.flush()
        self._started = time.monotonic()


def _seed_scale_staff() -> tuple[list[int], list[int]]:
    """Extra MAs and clinicians so scale work spreads over realistic staff; they cannot log in."""
    ids: dict[str, list[int]] = {}
    rng = seeded_rng(SCALE_SEED + 1)
    born_before = date(timezone.localdate().year, 1, 1)
    for prefix, (role, title, count) in SCALE_STAFF.items():
        group = Group.objects.get(name=role)
        ids[role] = []
        for n in range(1, count + 1):
            # Staff names come from the same pools as patients' names.
            person = patient_fields(rng, mrn="", born_before=born_before)
            user, created = User.objects.get_or_create(
                username=f"{prefix}-{n:02d}",
                defaults={"first_name": person["given_name"], "last_name": person["family_name"], "title": title},
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
                user.groups.add(group)
            ids[role].append(user.pk)
    return ids[roles.ROLE_MEDICAL_ASSISTANT], ids[roles.ROLE_CLINICIAN]


def _scale_patients(
    rng: random.Random, *, ids: Sequence[int], now: datetime, interpreter_language: list[str]
) -> Iterator[tuple[Any, ...]]:
    born_before = date(timezone.localdate().year, 1, 1)
    for n, pk in enumerate(ids, start=1):
        f = patient_fields(rng, mrn=f"{SCALE_MRN_PREFIX}{n:07d}", born_before=born_before)
        interpreter_language.append(f["preferred_language"] if f["interpreter_needed"] else "")
        yield (
            pk,
            f["mrn"],
            f["family_name"],
            f["given_name"],
            f["date_of_birth"],
            f["sex"],
            f["preferred_language"],
            f["interpreter_needed"],
            f["allergies"],
            f["no_known_allergies"],
            f["phone"],
            now - timedelta(days=rng.randrange(1, 3650)),
            # COPY skips Patient.save, which keeps the search column: filled here the same way.
            patient_search_text(given_name=f["given_name"], family_name=f["family_name"], mrn=f["mrn"]),
        )


PATIENT_COLUMNS = (
    "id",
    "mrn",
    "family_name",
    "given_name",
    "date_of_birth",
    "sex",
    "preferred_language",
    "interpreter_needed",
    "allergies",
    "no_known_allergies",
    "phone",
    "created_at",
    "search_text",
)
HANDOFF_COLUMNS = (
    "id",
    "patient_id",
    "ordering_clinician_id",
    "exam_room_id",
    "priority",
    "clinical_note",
    "interpreter_needed",
    "interpreter_language",
    "companion",
    "aide_needed",
    "mobility",
    "isolation",
    "status",
    "station_id",
    "claimed_by_id",
    "claimed_at",
    "identity_verified_at",
    "identity_verified_by_id",
    "identity_method",
    "closed_at",
    "cancel_reason",
    "created_at",
    "created_by_id",
    "version",
)
EVENT_COLUMNS = ("handoff_id", "at", "actor_id", "action", "from_status", "to_status", "note")
PROCEDURE_ORDER_COLUMNS = (
    "handoff_id",
    "procedure_type_id",
    "status",
    "created_at",
    "created_by_id",
    "status_changed_at",
    "not_done_reason",
)
TEST_ORDER_COLUMNS = (
    "handoff_id",
    "test_id",
    "status",
    "created_at",
    "created_by_id",
    "cancel_reason",
    "cancelled_by_id",
    "acknowledged_at",
    "acknowledged_by_id",
)
_VERSION = {HandoffStatus.WAITING: 1, HandoffStatus.CLAIMED: 2, HandoffStatus.CANCELLED: 2, HandoffStatus.COMPLETED: 5}


class _ScaleWriter:
    """Generates and COPYs the scale rows; one instance per run, all in the caller's transaction."""

    def __init__(self, *, cursor: Any, rng: random.Random, now: datetime, users: dict[str, User]) -> None:
        self.cursor = cursor
        self.rng = rng
        self.now = now
        scale_mas, scale_clinicians = _seed_scale_staff()
        self.workers = [users["ma"].pk, users["ma2"].pk, *scale_mas]
        self.clinicians = [users["clinician"].pk, users["clinician2"].pk, *scale_clinicians]
        # The created event names the clinician when someone else entered the handoff, as the service does.
        self.names = {u.pk: str(u) for u in User.objects.filter(pk__in=[*self.clinicians])}
        self.cancellers = [users["supervisor"].pk, *self.clinicians]
        self.rooms = list(ExamRoom.objects.values_list("pk", flat=True))
        # Closed handoffs name the room they were done in; with no stations at all, none.
        self.stations: list[int | None] = [
            *Station.objects.filter(kind__in=PATIENT_STATION_KINDS).values_list("pk", flat=True)
        ] or [None]
        procedure_ids = dict(ProcedureType.objects.filter(is_active=True).values_list("code", "pk"))
        test_ids = dict(TestDefinition.objects.filter(is_active=True).values_list("loinc_code", "pk"))
        # Per template: its note and its items as ("p"|"t", id), keeping only what the catalog offers.
        self.templates: list[tuple[str, list[tuple[str, int]]]] = []
        for template in TEMPLATES.values():
            items = [("p", procedure_ids[c]) for c in template.procedures if c in procedure_ids]
            items += [("t", test_ids[c]) for c in template.tests if c in test_ids]
            if items:
                self.templates.append((template.note, items))
        if not self.templates:
            raise CommandError("The procedure and test catalogs are empty; run migrate first.")
        self.patient_ids: list[int] = []
        self.patient_language: list[str] = []
        self.handoffs: list[ScaleHandoff] = []

    def patients(self, count: int) -> int:
        self.patient_ids = _reserve_ids(self.cursor, model=Patient, count=count)
        rows = _scale_patients(self.rng, ids=self.patient_ids, now=self.now, interpreter_language=self.patient_language)
        return _copy(self.cursor, model=Patient, columns=PATIENT_COLUMNS, rows=rows)

    def handoff_rows(self, *, historical: int, open_count: int) -> int:
        rng, now = self.rng, self.now
        ids = _reserve_ids(self.cursor, model=Handoff, count=historical + open_count)
        midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        # Clinic hours, 08:00 to 17:30, over the past two years; sorted so ids rise with time as in real use.
        history = sorted(
            midnight - timedelta(days=rng.randint(1, SCALE_HISTORY_DAYS), minutes=-480 - rng.randrange(570))
            for _ in range(historical)
        )
        recent = sorted(
            now - timedelta(minutes=rng.randrange(1, 240), seconds=rng.randrange(60)) for _ in range(open_count)
        )
        open_patients = (
            rng.sample(range(len(self.patient_ids)), open_count)
            if open_count <= len(self.patient_ids)
            else [rng.randrange(len(self.patient_ids)) for _ in range(open_count)]
        )
        plan = [(created, None) for created in history] + list(zip(recent, open_patients, strict=True))
        rows = (
            self._handoff(pk=pk, created=created, patient_index=index)
            for pk, (created, index) in zip(ids, plan, strict=True)
        )
        return _copy(self.cursor, model=Handoff, columns=HANDOFF_COLUMNS, rows=rows)

    def _handoff(self, *, pk: int, created: datetime, patient_index: int | None) -> tuple[Any, ...]:
        rng = self.rng
        historical = patient_index is None
        index = rng.randrange(len(self.patient_ids)) if patient_index is None else patient_index
        language = self.patient_language[index]
        clinician = rng.choice(self.clinicians)
        creator = clinician if rng.random() < 0.8 else rng.choice(self.workers)
        template = rng.randrange(len(self.templates))
        worker = claimed = verified = closed = closer = station = None
        method = reason = ""
        if historical:
            status = HandoffStatus.COMPLETED if rng.random() < 0.92 else HandoffStatus.CANCELLED
        else:
            status = HandoffStatus.WAITING if rng.random() < 0.7 else HandoffStatus.CLAIMED
        if status == HandoffStatus.CANCELLED:
            closed = created + timedelta(minutes=rng.randrange(5, 60))
            closer = rng.choice(self.cancellers)
            reason = rng.choice(SCALE_CANCEL_REASONS)
        elif status != HandoffStatus.WAITING:
            worker = rng.choice(self.workers)
            claimed = created + timedelta(minutes=rng.randrange(1, 25), seconds=rng.randrange(60))
            if status == HandoffStatus.CLAIMED:
                claimed = min(claimed, self.now)
            else:
                verified = claimed + timedelta(minutes=rng.randrange(1, 6))
                closed = verified + timedelta(minutes=rng.randrange(5, 45))
                closer = worker
                method = "wristband" if rng.random() < 0.7 else "name+dob"
                station = rng.choice(self.stations)
        self.handoffs.append(
            ScaleHandoff(
                pk,
                status,
                template,
                created,
                creator,
                clinician,
                worker,
                claimed,
                verified,
                closed,
                closer,
                reason,
                method,
            )
        )
        return (
            pk,
            self.patient_ids[index],
            clinician,
            rng.choice(self.rooms),
            Priority.STAT if rng.random() < 0.12 else Priority.ROUTINE,
            self.templates[template][0],
            bool(language),
            language,
            "",
            False,
            Handoff.Mobility.INDEPENDENT,
            Handoff.Isolation.NONE,
            status,
            station,
            worker,
            claimed,
            verified,
            worker if verified else None,
            method,
            closed,
            reason,
            created,
            creator,
            _VERSION[status],
        )

    def item_rows(self) -> tuple[int, int]:
        procedures: list[tuple[Any, ...]] = []
        tests: list[tuple[Any, ...]] = []
        rng = self.rng
        for h in self.handoffs:
            items = self.templates[h.template][1]
            for kind, item_id in rng.sample(items, rng.randint(1, min(2, len(items)))):
                if kind == "p":
                    status = _procedure_status(h.status, rng)
                    # A not-done procedure names why (a database constraint); closed history changed at closing.
                    reason = "deferred" if status == ProcedureOrder.Status.NOT_DONE else ""
                    changed = h.closed_at or h.created_at
                    procedures.append((h.id, item_id, status, h.created_at, h.created_by, changed, reason))
                else:
                    status = _test_status(h.status, rng)
                    # History: a cancelled test was cancelled by whoever closed the visit, and long since seen.
                    cancelled = (
                        (
                            CancelReason.NOT_NEEDED,
                            h.closed_by or h.created_by,
                            h.closed_at or h.created_at,
                            h.ordering_clinician,
                        )
                        if status == TestOrder.Status.CANCELLED
                        else ("", None, None, None)
                    )
                    tests.append((h.id, item_id, status, h.created_at, h.created_by, *cancelled))
        return (
            _copy(self.cursor, model=ProcedureOrder, columns=PROCEDURE_ORDER_COLUMNS, rows=procedures),
            _copy(self.cursor, model=TestOrder, columns=TEST_ORDER_COLUMNS, rows=tests),
        )

    def event_rows(self) -> int:
        return _copy(self.cursor, model=HandoffEvent, columns=EVENT_COLUMNS, rows=self._events())

    def _events(self) -> Iterator[tuple[Any, ...]]:
        for h in self.handoffs:
            note = "" if h.created_by == h.ordering_clinician else f"On behalf of {self.names[h.ordering_clinician]}"
            yield (h.id, h.created_at, h.created_by, Action.CREATED, "", W, note)
            if h.status == HandoffStatus.CANCELLED:
                yield (h.id, h.closed_at, h.closed_by, Action.CANCELLED, W, h.status, h.cancel_reason)
            if h.worker is None:
                continue
            yield (h.id, h.claimed_at, h.worker, Action.CLAIMED, W, C, "")
            if h.verified_at is None or h.closed_at is None:
                continue
            checked = "Wristband scanned" if h.identity_method == "wristband" else "Name and date of birth confirmed"
            yield (h.id, h.verified_at, h.worker, Action.IDENTITY_VERIFIED, C, IV, checked)
            yield (h.id, h.verified_at + timedelta(minutes=1), h.worker, Action.STARTED, IV, IP, "")
            yield (h.id, h.closed_at, h.worker, Action.COMPLETED, IP, HandoffStatus.COMPLETED, "")


def _procedure_status(status: str, rng: random.Random) -> str:
    if status == HandoffStatus.COMPLETED:
        return ProcedureOrder.Status.COMPLETED if rng.random() < 0.96 else ProcedureOrder.Status.NOT_DONE
    if status == HandoffStatus.CANCELLED:
        return ProcedureOrder.Status.NOT_DONE
    return ProcedureOrder.Status.ORDERED


def _test_status(status: str, rng: random.Random) -> str:
    if status == HandoffStatus.COMPLETED:
        return TestOrder.Status.RESULTED if rng.random() < 0.97 else TestOrder.Status.CANCELLED
    if status == HandoffStatus.CANCELLED:
        return TestOrder.Status.CANCELLED
    return TestOrder.Status.ORDERED
