"""The scale seed's result-entry pool: throat swabs at the in-house bench, each with a rapid strep to enter.

`make bench` measures result entry with a POST per specimen, and a panel is entered once, so every
request needs a specimen nobody has entered yet. ``seed_entry_pool`` tops the pool up to the number
of pending specimens asked for, written with COPY like the rest of the scale load (benchmark data
only): a completed visit of a scale patient, ordered by a scale clinician, its events as the scale
loader writes them, a rapid strep collected on a throat swab the bench received earlier today. First
it makes sure a strep kit lot passes QC today, through the QC service (the bench's morning controls).

``finish_entry_pool`` takes every pool specimen to the end of its work through the services: what
is still pending is entered (Negative), what is entered is verified and released by the supervisor,
and each ordering clinician signs what was released. The bench, the tracking list, the verification
list and the board's unsigned results are then as they were before the pool was seeded, so the
next run's pages measure the same data; the pool's visits stay as completed history.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from backoffice.devtools.seed.catalogs import PATIENT_STATION_KINDS
from backoffice.devtools.seed.common import IP, IV, Action, C, W, seeded_rng
from backoffice.devtools.seed.scale import (
    HANDOFF_COLUMNS,
    SCALE_MRN_PREFIX,
    SCALE_SEED,
    _copy,
    _reserve_ids,
    _seed_scale_staff,
)
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, Station, User
from backoffice.workflow import HandoffStatus, Priority
from lab.inbox.services import results_acknowledge
from lab.models import Analyte, ControlLot, KitLot, Result, TestDefinition, TestOrder
from lab.qc.lockout import current_controls, qc_block
from lab.qc.services import qc_run_record
from lab.results import services as results
from lab.workflow import ResultStatus, TestOrderStatus
from specimens.accession import SEQUENCE, format_accession
from specimens.models import Specimen
from specimens.workflow import Location, SpecimenStatus

RAPID_STREP = "78012-2"  # LOINC: one ordinal analyte, Negative or Positive; never critical
ENTRY_VALUE = "Negative"
# The marker of the pool's visits (the scale templates' sore throat says "for 3 days").
ENTRY_POOL_NOTE = "Sore throat and fever since yesterday, no cough. Rapid strep, swab to the bench."

ORDER_COLUMNS = (
    "id",
    "uuid",
    "handoff_id",
    "test_id",
    "status",
    "specimen_id",
    "status_changed_at",
    "version",
    "created_at",
    "created_by_id",
)
SPECIMEN_COLUMNS = (
    "id",
    "uuid",
    "accession",
    "handoff_id",
    "patient_id",
    "specimen_type_id",
    "container_id",
    "collection_method",
    "tests_label",
    "status",
    "location",
    "status_changed_at",
    "labelled_at",
    "labelled_by_id",
    "verified_at",
    "verified_by_id",
    "verify_method",
    "collected_at",
    "collected_by_id",
    "received_at",
    "received_by_id",
    "received_acceptable",
    "version",
)
EVENT_COLUMNS = ("handoff_id", "at", "actor_id", "action", "from_status", "to_status", "note")


@dataclass(frozen=True)
class PoolItem:
    """What a request needs: the specimen in the URL, the order in the form and its pk in the field prefix."""

    specimen_uuid: uuid.UUID
    order_uuid: uuid.UUID
    order_id: int


@dataclass(frozen=True)
class EntryPool:
    """The pending pool, and the kit lot and analyte every panel is entered with."""

    kit_lot_id: int
    analyte_id: int
    value: str
    items: list[PoolItem]


def pool_orders() -> Any:
    """Every rapid strep of the pool, whatever became of it."""
    return TestOrder.objects.filter(handoff__clinical_note=ENTRY_POOL_NOTE, test__loinc_code=RAPID_STREP)


def pending_items() -> list[PoolItem]:
    """The pool's specimens still waiting at the bench with nothing entered, oldest first."""
    rows = (
        pool_orders()
        .filter(
            status=TestOrderStatus.COLLECTED,
            results__isnull=True,
            specimen__status=SpecimenStatus.RECEIVED,
            specimen__location=Location.IN_HOUSE_BENCH,
        )
        .order_by("id")
        .values_list("specimen__uuid", "uuid", "id")
    )
    return [PoolItem(s, o, pk) for s, o, pk in rows]


def strep_test() -> TestDefinition:
    try:
        return TestDefinition.objects.get(loinc_code=RAPID_STREP, performed=TestDefinition.Performed.IN_HOUSE)
    except TestDefinition.DoesNotExist:
        raise CommandError("No in-house rapid strep in the catalog: run migrate first.") from None


def ensure_passing_lot(test: TestDefinition, *, by: User) -> KitLot:
    """A kit lot of the test that passes QC now; today's controls run on it through the service if due."""
    today = timezone.localdate()
    lots = KitLot.objects.filter(kit__tests=test, is_active=True, expiry_date__gte=today).select_related("kit")
    lots = lots.order_by("expiry_date", "id")
    for lot in lots:
        if qc_block(test, lot) is None:
            return lot
    first = lots.first()
    if first is None:
        raise CommandError(f"No unexpired {test.short_name} kit lot: run seed_demo (its QC seed), or reload --fresh.")
    lot = first
    for control in current_controls(list(ControlLot.objects.filter(test=test).select_related("analyte")), today):
        qc_run_record(kit_lot=lot, control_lot=control, value=control.expected_value, by=by)
    why = qc_block(test, lot)
    if why is not None:
        raise CommandError(f"{test.short_name}'s QC still locks lot {lot.lot_number}: {why}")
    return lot


def seed_entry_pool(count: int) -> EntryPool:
    """Top the pool up to ``count`` pending specimens; return the pending ones with the lot to enter them on."""
    if count < 0:
        raise CommandError("The pool size must be zero or more.")
    users = {u.username: u for u in User.objects.filter(username__in=("labtech", "supervisor"))}
    if len(users) != 2:
        raise CommandError("The pool needs the demo's labtech and supervisor: run seed_demo first.")
    test = strep_test()
    lot = ensure_passing_lot(test, by=users["labtech"])
    analyte = Analyte.objects.filter(test=test).order_by("position").first()
    if analyte is None or ENTRY_VALUE not in analyte.choices:
        raise CommandError(f"{test.short_name} has no analyte that reads {ENTRY_VALUE!r}.")
    with transaction.atomic():
        missing = count - len(pending_items())
        if missing > 0:
            _write_pool(missing, test=test, tech=users["labtech"])
    return EntryPool(kit_lot_id=lot.pk, analyte_id=analyte.pk, value=ENTRY_VALUE, items=pending_items()[:count])


def _write_pool(count: int, *, test: TestDefinition, tech: User) -> None:
    patients = list(
        Patient.objects.filter(mrn__startswith=SCALE_MRN_PREFIX).order_by("id").values_list("id", flat=True)
    )
    if not patients:
        raise CommandError("The pool's visits are for scale patients: run seed_demo --scale first.")
    assert test.specimen_type is not None and test.container is not None, "an in-house test names both"
    mas, clinicians = _seed_scale_staff()  # not the demo's: their pages, inbox and queue stay as they are
    rooms = list(ExamRoom.objects.values_list("pk", flat=True))
    # Each visit names the room it was done in, as the scale loader's do; with no stations at all, none.
    stations: list[int | None] = [
        *Station.objects.filter(kind__in=PATIENT_STATION_KINDS).values_list("pk", flat=True)
    ] or [None]
    rng = seeded_rng(SCALE_SEED + 2 + pool_orders().count())
    now = timezone.now()
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        wrapper.execute("SET CONSTRAINTS ALL IMMEDIATE")
        handoff_ids = _reserve_ids(cursor, model=Handoff, count=count)
        order_ids = _reserve_ids(cursor, model=TestOrder, count=count)
        specimen_ids = _reserve_ids(cursor, model=Specimen, count=count)
        cursor.execute("SELECT nextval(%s) FROM generate_series(1, %s)", [SEQUENCE, count])
        accessions = sorted(format_accession(int(row[0])) for row in cursor.fetchall())
        visits = []
        for n in range(count):
            # Seen over the last three hours; received at the bench before now, the visit closed.
            created = now - timedelta(minutes=rng.randrange(30, 180), seconds=rng.randrange(60))
            claimed = created + timedelta(minutes=rng.randrange(1, 15))
            verified = claimed + timedelta(minutes=rng.randrange(1, 4))
            swabbed = verified + timedelta(minutes=2)
            visits.append(
                _Visit(
                    handoff=handoff_ids[n],
                    order=order_ids[n],
                    specimen=specimen_ids[n],
                    accession=accessions[n],
                    patient=rng.choice(patients),
                    clinician=rng.choice(clinicians),
                    worker=rng.choice(mas),
                    room=rng.choice(rooms),
                    station=rng.choice(stations),
                    created=created,
                    claimed=claimed,
                    verified=verified,
                    swabbed=swabbed,
                    received=swabbed + timedelta(minutes=rng.randrange(3, 8)),
                    closed=swabbed + timedelta(minutes=rng.randrange(4, 10)),
                )
            )
        _copy(cursor, model=Handoff, columns=HANDOFF_COLUMNS, rows=(v.handoff_row() for v in visits))
        _copy(cursor, model=HandoffEvent, columns=EVENT_COLUMNS, rows=(e for v in visits for e in v.events()))
        specimen_rows = (v.specimen_row(test=test, tech=tech) for v in visits)
        _copy(cursor, model=Specimen, columns=SPECIMEN_COLUMNS, rows=specimen_rows)
        _copy(cursor, model=TestOrder, columns=ORDER_COLUMNS, rows=(v.order_row(test=test) for v in visits))


@dataclass(frozen=True)
class _Visit:
    handoff: int
    order: int
    specimen: int
    accession: str
    patient: int
    clinician: int
    worker: int
    room: int
    station: int | None
    created: datetime
    claimed: datetime
    verified: datetime
    swabbed: datetime
    received: datetime
    closed: datetime

    def handoff_row(self) -> tuple[Any, ...]:
        """A completed visit, as the scale loader writes its history (scale.HANDOFF_COLUMNS)."""
        return (
            self.handoff,
            self.patient,
            self.clinician,
            self.room,
            Priority.ROUTINE,
            ENTRY_POOL_NOTE,
            False,
            "",
            "",
            False,
            Handoff.Mobility.INDEPENDENT,
            Handoff.Isolation.NONE,
            HandoffStatus.COMPLETED,
            self.station,
            self.worker,
            self.claimed,
            self.verified,
            self.worker,
            "wristband",
            self.closed,
            "",
            self.created,
            self.clinician,
            5,
        )

    def events(self) -> Iterator[tuple[Any, ...]]:
        h, worker, verified = self.handoff, self.worker, self.verified
        yield (h, self.created, self.clinician, Action.CREATED, "", W, "")
        yield (h, self.claimed, worker, Action.CLAIMED, W, C, "")
        yield (h, verified, worker, Action.IDENTITY_VERIFIED, C, IV, "Wristband scanned")
        yield (h, verified + timedelta(minutes=1), worker, Action.STARTED, IV, IP, "")
        yield (h, self.closed, worker, Action.COMPLETED, IP, HandoffStatus.COMPLETED, "")

    def specimen_row(self, *, test: TestDefinition, tech: User) -> tuple[Any, ...]:
        """A throat swab labelled, checked against the wristband, swabbed and received at the bench."""
        assert test.specimen_type is not None and test.container is not None
        return (
            self.specimen,
            uuid.uuid4(),
            self.accession,
            self.handoff,
            self.patient,
            test.specimen_type_id,
            test.container_id,
            test.specimen_type.collection_method,
            test.short_name,
            SpecimenStatus.RECEIVED,
            Location.IN_HOUSE_BENCH,
            self.received,
            self.swabbed - timedelta(minutes=1),
            self.worker,
            self.swabbed,
            self.worker,
            "scanned",
            self.swabbed,
            self.worker,
            self.received,
            tech.pk,
            True,
            4,  # labelled 1, collected 2, in transit 3, received 4: as the services leave it
        )

    def order_row(self, *, test: TestDefinition) -> tuple[Any, ...]:
        return (
            self.order,
            uuid.uuid4(),
            self.handoff,
            test.pk,
            TestOrderStatus.COLLECTED,
            self.specimen,
            self.swabbed,
            2,  # ordered 1, collected 2
            self.created,
            self.clinician,
        )


# --- After the benchmark -------------------------------------------------------------------------


def finish_entry_pool() -> dict[str, int]:
    """Every pool specimen's work done through the services: entered, verified and released, signed."""
    users = {u.username: u for u in User.objects.filter(username__in=("labtech", "supervisor"))}
    tech, supervisor = users["labtech"], users["supervisor"]
    counts = {"entered_now": 0, "released": 0, "signed": 0}
    pending = pool_orders().filter(status=TestOrderStatus.COLLECTED, results__isnull=True)
    if pending.exists():
        test = strep_test()
        lot = ensure_passing_lot(test, by=tech)
        analyte = Analyte.objects.filter(test=test).order_by("position").first()
        assert analyte is not None
        for order in pending.select_related("test").order_by("id"):
            results.results_enter(order=order, values={analyte.pk: ENTRY_VALUE}, kit_lot=lot, by=tech)
            counts["entered_now"] += 1
    # A panel is verified and released as one: one of its entered results stands for the order.
    entered = Result.objects.filter(order__in=pool_orders(), status=ResultStatus.ENTERED)
    for order_id in sorted(set(entered.values_list("order_id", flat=True))):
        result = entered.filter(order_id=order_id).order_by("id").first()
        assert result is not None
        counts["released"] += len(results.result_verify(result=result, by=supervisor))
    unsigned = Result.objects.filter(
        order__in=pool_orders(), status=ResultStatus.RELEASED, acknowledged_at__isnull=True
    ).values_list("uuid", "version", "order__handoff__ordering_clinician")
    by_clinician: dict[int, list[tuple[uuid.UUID, int]]] = defaultdict(list)
    for ref, version, clinician in unsigned:
        by_clinician[clinician].append((ref, version))
    signers = User.objects.in_bulk(list(by_clinician))
    for clinician, shown in by_clinician.items():
        for start in range(0, len(shown), 200):
            counts["signed"] += len(results_acknowledge(shown=shown[start : start + 200], by=signers[clinician]))
    return counts
