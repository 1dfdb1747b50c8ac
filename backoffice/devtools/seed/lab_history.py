"""Four weeks of finished in-house lab work, so the turnaround dashboard (/lab/turnaround/) has a month.

Each past clinic day (Monday to Saturday, the four weeks before today) has a few visits whose
point-of-care tests went the whole way through the services: ordered at the exam room, claimed,
identified, drawn and scanned at the bedside, handed to the bench and received, resulted, verified
and released, signed by the ordering clinician, the tube disposed of and the handoff completed.
About one visit in five is STAT (seen and run faster); a few have a critical value, called to the
ordering clinician and closed with a read-back, one of them after a first call that didn't reach them.
Then every timestamp is moved to its demo time (seed.specimens._Timeline), so each segment, the trend
by day and the histogram have real rows to show. Run last, on the walk-in lab draw chair (kept for them),
left ready again. Idempotent: keyed on the visits' uuids, a second run adds none.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.management.base import OutputWrapper
from django.db.models import F
from django.utils import timezone

from backoffice.devtools.seed.catalogs import WALK_IN_STATION
from backoffice.devtools.seed.clinic_day import DEMO_MRN_START, DEMO_NAMESPACE, DEMO_PATIENTS, DEMO_SEED
from backoffice.devtools.seed.common import seeded_rng
from backoffice.devtools.seed.lab_results import CRITICAL, _normal
from backoffice.devtools.seed.specimens import _Timeline
from backoffice.models import ExamRoom, Handoff, Patient, Station, User
from backoffice.services import (
    handoff_assign_station,
    handoff_claim,
    handoff_complete,
    handoff_create,
    handoff_start,
    handoff_verify_identity,
    station_turnover,
)
from backoffice.workflow import OPEN_STATUSES, Priority, StationState
from lab.criticals.services import critical_call_attempt, notification_limit_minutes
from lab.inbox.services import results_acknowledge
from lab.models import (
    CriticalCall,
    CriticalCallAttempt,
    CriticalCallEvent,
    KitLot,
    Result,
    ResultEvent,
    TestDefinition,
    TestOrder,
)
from lab.results import selectors as result_selectors
from lab.results import services as result_services
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import CallOutcome, EscalationTarget, ResultStatus
from specimens.models import LabelPrinter, Specimen
from specimens.services import (
    specimen_confirm,
    specimen_dispose,
    specimen_hand_over,
    specimen_labels_printed,
    specimen_receive,
)
from specimens.workflow import Location

WEEKS = 4
VISITS_A_DAY = {5: 2, 6: 0}  # Saturday mornings are shorter; closed on Sundays; else WEEKDAY_VISITS
WEEKDAY_VISITS = 4
STAT_ONE_IN = 5
CRITICAL_ONE_IN = 8  # of the visits with a test that has a demo critical value
# Run on the bench, as the demo's results are: the point-of-care tests a morning clinic orders most.
TESTS = ("POC glucose", "Hemoglobin", "Urine hCG", "Rapid strep", "HbA1c", "PT/INR", "COVID-19 Ag", "Flu A Ag")
NOTES = (
    "Annual visit; point-of-care tests before the clinician sees the results.",
    "Follow-up: fingerstick before the medication review.",
    "Sore throat two days, fever; swab to the bench.",
    "Dizzy this morning; check before discharge.",
)
HISTORY_KEYS_NAME = "demo-lab-history-{day}-{n}"


class _HistoryTimeline(_Timeline):
    """The specimen visits' timeline, and the bench's own times: results, calls, sign-offs."""

    STAMPED = (
        *_Timeline.STAMPED,
        (TestOrder, ("created_at", "status_changed_at", "resulted_at", "released_at", "acknowledged_at")),
        (
            Result,
            ("status_changed_at", "observed_at", "entered_at", "verified_at", "released_at", "acknowledged_at"),
        ),
        (ResultEvent, ("at",)),
        (CriticalCall, ("status_changed_at", "opened_at", "closed_at")),
        (CriticalCallAttempt, ("at",)),
        (CriticalCallEvent, ("at",)),
    )
    APPEND_ONLY = (
        *_Timeline.APPEND_ONLY,
        "lab.ResultEvent:append_only",
        "lab.CriticalCallAttempt:append_only",
        "lab.CriticalCallEvent:append_only",
    )


@dataclass(frozen=True)
class _Visit:
    key: uuid.UUID
    start: datetime
    tests: tuple[str, ...]
    stat: bool
    critical: bool


def _visit_key(day: date, n: int) -> uuid.UUID:
    """The uuid of the day's n-th history visit: the same on every run, so a second run finds it."""
    return uuid.uuid5(DEMO_NAMESPACE, HISTORY_KEYS_NAME.format(day=day.isoformat(), n=n))


def history_keys(today: date | None = None) -> list[uuid.UUID]:
    """Every uuid a history visit may have (the days' visit counts vary): what tests leave out or pick."""
    today = today or timezone.localdate()
    most = max(WEEKDAY_VISITS, *VISITS_A_DAY.values())
    return [_visit_key(today - timedelta(days=back), n) for back in range(1, WEEKS * 7 + 1) for n in range(most)]


def _plan(today: date, rng: random.Random, available: list[str]) -> list[_Visit]:
    visits = []
    for back in range(WEEKS * 7, 0, -1):
        day = today - timedelta(days=back)
        count = VISITS_A_DAY.get(day.weekday(), WEEKDAY_VISITS)
        opens = timezone.make_aware(datetime.combine(day, time(8)))
        # Spread over the clinic's hours (08:00 to about 15:30), in order.
        minutes = sorted(rng.randrange(0, 450 if count > 2 else 200) for _ in range(count))
        for n, offset in enumerate(minutes):
            tests = tuple(rng.sample(available, k=1 if rng.random() < 0.6 else 2))
            stat = rng.randrange(STAT_ONE_IN) == 0
            critical = any(t in CRITICAL for t in tests) and rng.randrange(CRITICAL_ONE_IN) == 0
            visits.append(_Visit(_visit_key(day, n), opens + timedelta(minutes=offset), tests, stat, critical))
    return visits


def seed_lab_history(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    today = timezone.localdate()
    rng = seeded_rng(DEMO_SEED)
    tests = {
        t.short_name: t
        for t in TestDefinition.objects.filter(
            short_name__in=TESTS, is_active=True, performed=TestDefinition.Performed.IN_HOUSE
        )
    }
    lots: dict[str, KitLot] = {}
    for name, test in tests.items():
        usable = [c.lot for c in result_selectors.lot_choices(test) if c.blocked is None]
        if usable:
            lots[name] = usable[0]
    available = [name for name in TESTS if name in lots]
    if not available:
        stdout.write("Lab history: no in-house test has a lot that passes QC; none added.")
        return
    visits = _plan(today, rng, available)
    if Handoff.objects.filter(uuid__in=[v.key for v in visits]).exists():
        stdout.write("Lab history: the past four weeks are already there; none added.")
        return
    station = Station.objects.filter(code=WALK_IN_STATION, state=StationState.READY, is_active=True).first()
    if station is None:
        stdout.write(f"Lab history: the walk-in lab draw chair ({WALK_IN_STATION}) isn't ready; none added.")
        return
    printer = station.label_printers.filter(is_active=True).order_by("id").first()
    mrns = [f"M{DEMO_MRN_START + n}" for n in range(DEMO_PATIENTS)]
    patients = list(Patient.objects.filter(mrn__in=mrns).exclude(handoffs__status__in=OPEN_STATUSES).order_by("mrn"))
    rng.shuffle(patients)
    rooms = list(ExamRoom.objects.order_by("name"))
    clinicians = [users["clinician"], users["clinician2"]]
    worker, tech, verifier = users["ma"], users["labtech"], users["supervisor"]
    timeline = _HistoryTimeline(visits[0].start)
    criticals: list[int] = []
    freed_at = visits[0].start
    for n, visit in enumerate(visits):
        patient, clinician = patients[n % len(patients)], clinicians[n % len(clinicians)]
        fast = visit.stat
        timeline.now = visit.start
        with timeline.step():
            handoff = handoff_create(
                patient=patient,
                ordering_clinician=clinician,
                exam_room=rooms[n % len(rooms)],
                priority=Priority.STAT if visit.stat else Priority.ROUTINE,
                clinical_note=NOTES[n % len(NOTES)],
                by=clinician,
            )
            test_orders_add(handoff=handoff, tests=[tests[name] for name in visit.tests], by=clinician)
        Handoff.objects.filter(pk=handoff.pk).update(uuid=visit.key)
        handoff.refresh_from_db()
        # Claimed when the station is free again (turned over after the visit before).
        with timeline.step(rng.randint(1, 6) if fast else rng.randint(3, 25), not_before=freed_at):
            handoff_claim(handoff=handoff, by=worker)
            handoff_assign_station(handoff=handoff, station=station, by=worker)
        with timeline.step(rng.randint(1, 3)):
            handoff_verify_identity(handoff=handoff, by=worker, scanned_mrn=patient.mrn)
            handoff_start(handoff=handoff, by=worker)
            tubes = tests_start_collection(handoff=handoff, by=worker)
            specimen_labels_printed(
                specimens=tubes, by=worker, output=printer.transport if printer else LabelPrinter.Transport.PDF,
                printer=printer,
            )  # fmt: skip
        with timeline.step(rng.randint(2, 6)):
            for tube in tubes:
                specimen_confirm(
                    handoff=handoff, scanned_label=tube.accession, scanned_wristband=patient.mrn, by=worker
                )
        with timeline.step(1):
            for tube in tubes:
                specimen_hand_over(specimen=tube, to=Location.IN_HOUSE_BENCH, by=worker)
            handoff.refresh_from_db()
            handoff_complete(handoff=handoff, by=worker)  # the tests on the bench no longer need the patient
        with timeline.step(rng.randint(1, 3)):
            station.refresh_from_db()
            station_turnover(station=station, by=worker)
        freed_at = timeline.now
        with timeline.step(rng.randint(1, 4) if fast else rng.randint(2, 14)):
            for tube in tubes:
                tube.refresh_from_db()
                specimen_receive(specimen=tube, at=tube.location, by=tech)
        for order in TestOrder.objects.filter(handoff=handoff).select_related("test", "specimen").order_by("id"):
            name = order.test.short_name
            analytes = list(order.test.analytes.all())
            typed = {a.pk: _normal(a, name) for a in analytes}
            if visit.critical and name in CRITICAL:
                typed[analytes[0].pk] = CRITICAL[name]
            with timeline.step(rng.randint(4, 12) if fast else rng.randint(8, 35)):
                entered = result_services.results_enter(order=order, values=typed, kit_lot=lots[name], by=tech)
            with timeline.step(rng.randint(1, 6) if fast else rng.randint(2, 25)):
                result_services.result_verify(result=entered[0], by=verifier)
            # A critical value released is called at once, before the bench goes on.
            for call in CriticalCall.objects.filter(result__order=order).select_related("result__analyte"):
                if len(criticals) % 3 == 1:  # now and then the first call doesn't reach them
                    with timeline.step(rng.randint(2, 6)):
                        critical_call_attempt(
                            call=call, by=tech, contact_name=str(clinician),
                            contact_role=EscalationTarget.ORDERING.label, outcome=CallOutcome.NOT_REACHED,
                            note="With a patient; the front desk will pass it on",
                        )  # fmt: skip
                with timeline.step(rng.randint(3, 15)):
                    critical_call_attempt(
                        call=call, by=tech, contact_name=str(clinician),
                        contact_role=EscalationTarget.ORDERING.label, outcome=CallOutcome.READ_BACK,
                        read_back_identifiers=f"{patient.full_name}, DOB {patient.date_of_birth:%m/%d/%Y}",
                        read_back_value=f"{call.result.analyte.short_name} {call.result.display_value}",
                    )  # fmt: skip
                criticals.append(call.pk)
        with timeline.step(rng.randint(20, 150)):
            signed = Result.objects.filter(order__handoff=handoff, status=ResultStatus.RELEASED)
            results_acknowledge(shown=[(r.uuid, r.version) for r in signed], by=clinician)
        with timeline.step(rng.randint(60, 240)):
            for tube in Specimen.objects.filter(handoff=handoff).order_by("id"):
                specimen_dispose(specimen=tube, by=tech, note="Biohazard bin, bench")
    timeline.apply()
    # A call's due time was set ahead of the real clock, outside every step: from its demo opening.
    CriticalCall.objects.filter(pk__in=criticals).update(
        due_at=F("opened_at") + timedelta(minutes=notification_limit_minutes())
    )
    stat = sum(v.stat for v in visits)
    count = sum(len(v.tests) for v in visits)
    stdout.write(
        f"Lab history: {len(visits)} visits over the past {WEEKS} weeks ({stat} STAT), {count} tests resulted, "
        f"released and signed, {len(criticals)} critical values read back."
    )
