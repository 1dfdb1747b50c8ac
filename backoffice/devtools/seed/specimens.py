"""Demo specimens: label printers per station, and visits whose specimens reach every state.

Each visit is a new demo handoff with lab tests, worked through the services in order (claim, a
ready station, wristband, labels, the bedside check, hand-over, receipt, rejection), so every
specimen and test has the events a real one would have. The services stamp everything with the
real time; afterwards only those timestamps are moved back, step by step (_Timeline), so the
tracking list shows realistic ages. Statuses are never written here.
"""

import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import pgtrigger
from django.core.management.base import CommandError, OutputWrapper
from django.db import connection, models
from django.utils import timezone

from backoffice.devtools.seed.catalogs import PATIENT_STATION_KINDS, STATIONS, OrderTemplate
from backoffice.devtools.seed.clinic_day import (
    DEMO_MRN_START,
    DEMO_NAMESPACE,
    DEMO_PATIENTS,
    PatientPicker,
    ready_station,
)
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, Station, StationEvent, User
from backoffice.services import (
    Needs,
    handoff_assign_station,
    handoff_claim,
    handoff_complete,
    handoff_create,
    handoff_verify_identity,
    station_turnover,
)
from backoffice.workflow import Priority
from lab.models import RecollectionCall, RecollectionCallEvent, TestDefinition, TestOrder, TestOrderEvent
from lab.services import test_order_cancel, test_orders_add, tests_start_collection
from lab.workflow import CancelReason
from specimens.models import LabelPrint, LabelPrinter, RejectionReason, Specimen, SpecimenEvent
from specimens.services import (
    specimen_confirm,
    specimen_dispose,
    specimen_hand_over,
    specimen_labels_printed,
    specimen_not_collected,
    specimen_receive,
    specimen_reject,
    specimen_start_testing,
    specimen_store,
)
from specimens.workflow import FailedDrawReason, Location, SpecimenStatus

S = SpecimenStatus
PDF = LabelPrinter.Transport.PDF

# --- Label printers ------------------------------------------------------------------------------

BENCH_STATION = next(s.code for s in STATIONS if s.kind == Station.Kind.LAB_BENCH)
ZPL_EXAMPLE_NAME = "Example Zebra at the bench: set its address, then activate"
ZPL_EXAMPLE_HOST = "zebra-bench.clinic.local"


def seed_label_printers(stdout: OutputWrapper) -> None:
    """A "download PDF" printer per patient station; an inactive Zebra example on the lab bench.

    Keyed on the station and the transport, so a printer someone renamed or configured is kept.
    """
    added = 0
    for spec in STATIONS:
        station = Station.objects.get(code=spec.code)
        if spec.kind in PATIENT_STATION_KINDS and not station.label_printers.filter(transport=PDF).exists():
            LabelPrinter.objects.create(
                station=station,
                name=f"{spec.name} labels (PDF)",
                transport=PDF,
                width_in=Decimal("2.00"),
                height_in=Decimal("1.00"),
                dpi=LabelPrinter.Dpi.DPI_203,
            )
            added += 1
        elif spec.code == BENCH_STATION and not station.label_printers.filter(transport="zpl_tcp").exists():
            LabelPrinter.objects.create(
                station=station,
                name=ZPL_EXAMPLE_NAME,
                transport=LabelPrinter.Transport.ZPL_TCP,
                host=ZPL_EXAMPLE_HOST,
                port=9100,
                width_in=Decimal("2.00"),
                height_in=Decimal("1.00"),
                dpi=LabelPrinter.Dpi.DPI_300,
                is_active=False,
            )
            added += 1
    total = LabelPrinter.objects.count()
    stdout.write(f"Label printers: {added} added, {total - added} already there.")


# --- Demo visits ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    """Why the lab can't test a specimen, with the note the lab tech writes."""

    code: str  # RejectionReason.code
    note: str
    at_receipt: bool = False  # found when receiving it (received in bad condition), or afterwards


@dataclass(frozen=True)
class DemoDraw:
    """What becomes of one container of a round: how far it gets, and whether the lab rejects it."""

    specimen_type: str  # SpecimenType.code: one container per type in a round
    reach: str  # labelled, collected, in transit or received; not collected: a failed draw
    rejection: Rejection | None = None  # only after it was received
    body_site: str = ""  # a specimens.workflow.BODY_SITES key
    failed_note: str = ""
    failed_reason: str = FailedDrawReason.NO_VEIN
    # After receipt at the bench: into testing, then (once its results are released) stored or
    # disposed of; a rejected one is disposed of.
    beyond: str = ""


@dataclass(frozen=True)
class DemoRound:
    """One tests_start_collection: the containers it labels, drawn by the visit's MA or someone stepping in."""

    draws: tuple[DemoDraw, ...]
    by: str = ""


@dataclass(frozen=True)
class DemoVisit:
    template: OrderTemplate
    minutes_ago: int  # when the clinician handed the patient off
    rounds: tuple[DemoRound, ...]
    clinician: str = "clinician"
    worker: str = "ma"
    waited: int = 8  # minutes on the queue before the MA claimed the patient
    priority: int = Priority.ROUTINE  # a STAT visit shows on the turnaround dashboard's STAT figures
    completed: bool = True  # False: still open, the patient still needed
    preferred_station: str = "phleb-1"
    needs: Needs = field(default_factory=Needs)
    # Found by the lab after the patient left: the ordering clinician gets a call-back.
    rejected_after_leaving: Rejection | None = None
    # The tests still waiting after the rounds are cancelled by the MA, for this reason and note;
    # the ordering clinician finds them on Lab follow-ups.
    cancelled: tuple[str, str] | None = None


LAC = "median_cubital_left"  # specimens.workflow.BODY_SITES keys
DEMO_VISITS = (
    # Point-of-care tests at the bench: a shaky diabetic's glucose (it comes back critical), and a
    # warfarin check whose INR the bench corrects after a late second drop.
    DemoVisit(
        OrderTemplate("Type 1 diabetes, shaky and sweaty in the exam room. POC glucose now.", tests=("41653-7",)),
        minutes_ago=330,
        priority=Priority.STAT,
        preferred_station="proc-3",
        rounds=(DemoRound((DemoDraw("capillary_blood", S.RECEIVED, body_site="finger_left"),)),),
    ),
    DemoVisit(
        OrderTemplate(
            "On warfarin for atrial fibrillation, bruising easily. PT/INR now.", tests=("34714-6",), min_age=40
        ),
        minutes_ago=300,
        clinician="clinician2",
        worker="ma2",
        preferred_station="proc-2",
        rounds=(DemoRound((DemoDraw("capillary_blood", S.RECEIVED, body_site="finger_right"),)),),
    ),
    # The serum came back hemolysed from the send-out desk while the patient was still there: drawn again.
    DemoVisit(
        OrderTemplate(
            "Annual physical, fasting since 8 pm: CMP and lipid panel to send out.",
            tests=("24323-8", "24331-1"),
            min_age=18,
        ),
        minutes_ago=245,
        rounds=(
            DemoRound(
                (
                    DemoDraw(
                        "serum",
                        S.RECEIVED,
                        Rejection(
                            "RH", "Pink serum after the spin; potassium would read falsely high.", at_receipt=True
                        ),
                        body_site=LAC,
                        beyond=S.DISPOSED,
                    ),
                )
            ),
            DemoRound((DemoDraw("serum", S.RECEIVED, body_site="median_cubital_right"),)),
        ),
    ),
    DemoVisit(
        OrderTemplate(
            "Sore throat and fever for 2 days, tender nodes, no cough. Rapid strep.", tests=("78012-2",), max_age=60
        ),
        minutes_ago=200,
        clinician="clinician2",
        worker="ma2",
        preferred_station="bay-1",
        rounds=(DemoRound((DemoDraw("throat_swab", S.RECEIVED, beyond=S.DISPOSED),)),),
    ),
    DemoVisit(
        OrderTemplate(
            "Burning on urination for 3 days. Clean-catch urine: dipstick now, culture to send out.",
            tests=("24357-6", "630-4"),
        ),
        minutes_ago=160,
        preferred_station="bay-1",
        rounds=(DemoRound((DemoDraw("urine", S.RECEIVED),)),),
        rejected_after_leaving=Rejection("LOC-LEAK", "The cup leaked into the bag on the way to the bench."),
    ),
    DemoVisit(
        OrderTemplate(
            "Fever, cough and body aches since yesterday. Rapid COVID and flu A/B swabs.",
            tests=("94558-4", "80382-5", "80383-3"),
        ),
        minutes_ago=122,
        clinician="clinician2",
        worker="ma2",
        preferred_station="bay-1",
        needs=Needs(interpreter_needed=True),
        rounds=(
            DemoRound(
                (
                    DemoDraw("np_swab", S.RECEIVED, beyond=S.IN_TESTING),
                    DemoDraw("nasal_swab", S.RECEIVED, beyond=S.STORED),
                )
            ),
        ),
    ),
    # The MA still training on venipuncture couldn't find a vein; the supervisor stepped in.
    DemoVisit(
        OrderTemplate("Tired and cold all the time, hair thinning. TSH to send out.", tests=("3016-3",), min_age=18),
        minutes_ago=86,
        worker="ma2",
        rounds=(
            DemoRound(
                (
                    DemoDraw(
                        "serum",
                        S.NOT_COLLECTED,
                        failed_note="Two attempts, no vein in either arm; asked the supervisor.",
                    ),
                )
            ),
            DemoRound((DemoDraw("serum", S.IN_TRANSIT, body_site="median_cubital_right"),), by="supervisor"),
        ),
    ),
    # The patient wouldn't have blood drawn today; the MA cancelled the PSA and the clinician is told.
    DemoVisit(
        OrderTemplate(
            "Routine screening visit, discussed PSA screening. PSA to send out.",
            tests=("2857-1",),
            sex=Patient.Sex.MALE,
            min_age=50,
        ),
        minutes_ago=70,
        clinician="clinician",
        worker="ma2",
        preferred_station="phleb-2",
        rounds=(
            DemoRound(
                (
                    DemoDraw(
                        "serum",
                        S.NOT_COLLECTED,
                        failed_reason=FailedDrawReason.PATIENT_REFUSED,
                        failed_note="Wants to think about screening first.",
                    ),
                )
            ),
        ),
        cancelled=(CancelReason.PATIENT_REFUSED, "Will decide at the next visit."),
    ),
    # The patient has left; the EDTA tube is on its way to the send-out desk, the SST not yet.
    DemoVisit(
        OrderTemplate(
            "Hypertension follow-up on lisinopril. CBC and CMP to send out.", tests=("58410-2", "24323-8"), min_age=30
        ),
        minutes_ago=50,
        clinician="clinician2",
        rounds=(
            DemoRound(
                (DemoDraw("serum", S.COLLECTED, body_site=LAC), DemoDraw("venous_blood", S.IN_TRANSIT, body_site=LAC))
            ),
        ),
    ),
    # Still with the MA: the urine cup was contaminated and must be given again; the EDTA tube is
    # labelled and waits for the bedside check.
    DemoVisit(
        OrderTemplate(
            "Type 2 diabetes follow-up. CBC and A1c, urine dipstick for protein.",
            tests=("58410-2", "4548-4", "24357-6"),
            min_age=18,
        ),
        minutes_ago=30,
        waited=10,
        completed=False,
        rounds=(
            DemoRound(
                (
                    DemoDraw("venous_blood", S.LABELLED),
                    DemoDraw(
                        "urine",
                        S.RECEIVED,
                        Rejection("RN", "Not a clean catch: stool and paper debris in the cup. Recollect midstream."),
                    ),
                )
            ),
        ),
    ),
)
DEMO_VISIT_KEYS = tuple(uuid.uuid5(DEMO_NAMESPACE, f"demo-specimen-visit-{n}") for n in range(len(DEMO_VISITS)))

# Minutes each step takes, for the demo's clock.
STEP_MINUTES = {
    "verify": 1,
    "label": 1,
    "draw": 3,
    "failed": 4,
    "hand_over": 3,
    "receive": 5,
    "reject": 3,
    "complete": 2,
    "turnover": 6,
    "cancel": 2,
    "testing": 4,
    "dispose": 20,
}


class _Timeline:
    """Stamps each step of the demo with the time it should appear to have happened.

    The services stamp rows with the real time. at() notes the real interval a step ran in and the
    time it should show; apply() moves every timestamp written inside each interval to its step's
    time, in one UPDATE per table (so one history snapshot per row). Seed data only, on rows the
    services wrote a moment ago; the event tables' append-only triggers are lifted for this
    connection's transaction alone, as clinic_day does.
    """

    STAMPED: tuple[tuple[type[models.Model], tuple[str, ...]], ...] = (
        (Handoff, ("created_at", "claimed_at", "identity_verified_at", "closed_at", "patient_left_at")),
        (HandoffEvent, ("at",)),
        (Station, ("state_changed_at",)),
        (StationEvent, ("at",)),
        (TestOrder, ("created_at", "status_changed_at")),
        (TestOrderEvent, ("at",)),
        (
            Specimen,
            (
                "labelled_at",
                "verified_at",
                "collected_at",
                "received_at",
                "rejected_at",
                "stored_at",
                "disposed_at",
                "status_changed_at",
            ),
        ),
        (SpecimenEvent, ("at",)),
        (LabelPrint, ("printed_at",)),
        (RecollectionCall, ("created_at", "status_changed_at")),
        (RecollectionCallEvent, ("at",)),
    )
    APPEND_ONLY: tuple[str, ...] = (
        "backoffice.HandoffEvent:append_only",
        "backoffice.StationEvent:append_only",
        "lab.TestOrderEvent:append_only",
        "specimens.SpecimenEvent:append_only",
        "specimens.LabelPrint:append_only",
        "lab.RecollectionCallEvent:append_only",
    )

    def __init__(self, start: datetime) -> None:
        self.now = start  # the demo clock: when the next step happens
        self.latest = start - timedelta(days=1)  # the latest step so far
        self.turned_over: dict[int, datetime] = {}  # when each station was last made ready
        self._steps: list[tuple[datetime, datetime, datetime]] = []

    @contextmanager
    def step(self, minutes: int = 0, *, not_before: datetime | None = None) -> Iterator[None]:
        """Advance the clock by ``minutes`` (and to ``not_before``); what the services write inside happens then."""
        self.now += timedelta(minutes=minutes)
        if not_before is not None and self.now <= not_before:
            self.now = not_before + timedelta(minutes=1)
        self.latest = max(self.latest, self.now)
        started = timezone.now()
        yield
        self._steps.append((started, timezone.now(), self.now))

    def apply(self) -> None:
        """One UPDATE per table: each timestamp written inside a step's real interval becomes that step's
        time. The steps go to a temporary table first: each value finds its step by an index probe (the
        latest step begun by then, if it had not ended), where a CASE of every step grew with the steps."""
        if not self._steps:
            return
        first = self._steps[0][0]
        began, ended, shown = (list(column) for column in zip(*self._steps, strict=True))
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS seed_timeline (began timestamptz, ended timestamptz, shown timestamptz)"
                " ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE seed_timeline")
            cursor.execute(
                "INSERT INTO seed_timeline SELECT * FROM unnest(%s::timestamptz[], %s::timestamptz[], %s::timestamptz[])",
                [began, ended, shown],
            )
            cursor.execute("CREATE INDEX IF NOT EXISTS seed_timeline_began ON seed_timeline (began)")
            cursor.execute("ANALYZE seed_timeline")
        with connection.cursor() as cursor, pgtrigger.ignore(*self.APPEND_ONLY):
            for model, names in self.STAMPED:
                table = connection.ops.quote_name(model._meta.db_table)
                fields = [model._meta.get_field(n) for n in names]
                columns = [
                    connection.ops.quote_name(f.get_attname_column()[1] or f.name)
                    for f in fields
                    if isinstance(f, models.Field)
                ]
                # Names from the models' own metadata, quoted; the times are parameters.
                moved = ", ".join(f"{c} = coalesce(({_shown(f'{table}.{c}')}), {c})" for c in columns)
                written = " OR ".join(f"{c} >= %s" for c in columns)
                cursor.execute(f"UPDATE {table} SET {moved} WHERE {written}", [first] * len(columns))  # noqa: S608


def _shown(value: str) -> str:
    """The demo time of the step ``value`` (a quoted column) was written in: the latest step begun by then,
    if it had not ended yet; no row when it was written outside every step."""
    latest = f"SELECT * FROM seed_timeline WHERE began <= {value} ORDER BY began DESC LIMIT 1"  # noqa: S608
    return f"SELECT s.shown FROM ({latest}) s WHERE s.ended >= {value}"  # noqa: S608


def seed_specimens(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    seed_label_printers(stdout)
    if Handoff.objects.filter(uuid__in=DEMO_VISIT_KEYS).exists():
        stdout.write("Specimens: demo specimens already there; none added.")
        return
    # Demo patients no handoff has used yet: each visit is a new patient.
    mrns = [f"M{DEMO_MRN_START + n}" for n in range(DEMO_PATIENTS)]
    picker = PatientPicker(
        patients=list(Patient.objects.filter(mrn__in=mrns, handoffs__isnull=True).order_by("mrn")),
        today=timezone.localdate(),
    )
    rooms = list(ExamRoom.objects.order_by("name"))
    stations = {s.code: s for s in Station.objects.all()}
    tests = {t.loinc_code: t for t in TestDefinition.objects.filter(is_active=True)}
    reasons = {r.code: r for r in RejectionReason.objects.filter(is_active=True)}
    now = timezone.now()
    timeline = _Timeline(now)
    for n, (visit, key) in enumerate(zip(DEMO_VISITS, DEMO_VISIT_KEYS, strict=True)):
        patient = picker.pick(template=visit.template, interpreter=visit.needs.interpreter_needed)
        timeline.now = now - timedelta(minutes=visit.minutes_ago)
        _play(
            visit=visit,
            key=key,
            patient=patient,
            room=rooms[n % len(rooms)],
            users=users,
            stations=stations,
            tests=[tests[code] for code in visit.template.tests],
            reasons=reasons,
            timeline=timeline,
        )
    if timeline.latest >= now:
        raise CommandError("The demo visits run past the present; start them earlier.")
    timeline.apply()
    by_status = Counter(Specimen.objects.filter(handoff__uuid__in=DEMO_VISIT_KEYS).values_list("status", flat=True))
    summary = ", ".join(f"{by_status[s.value]} {s.value.replace('_', ' ')}" for s in S if by_status[s.value])
    still_open = sum(not v.completed for v in DEMO_VISITS)
    stdout.write(f"Specimens: {summary} ({len(DEMO_VISITS)} visits, {still_open} still with the MA).")


def _play(
    *,
    visit: DemoVisit,
    key: uuid.UUID,
    patient: Patient,
    room: ExamRoom,
    users: dict[str, User],
    stations: dict[str, Station],
    tests: list[TestDefinition],
    reasons: dict[str, RejectionReason],
    timeline: _Timeline,
) -> None:
    """One visit through the services, each step at its time on the demo clock."""
    clinician, worker, lab_tech = users[visit.clinician], users[visit.worker], users["labtech"]
    with timeline.step():
        handoff = handoff_create(
            patient=patient,
            ordering_clinician=clinician,
            exam_room=room,
            priority=visit.priority,
            clinical_note=visit.template.note,
            diagnosis_codes=visit.template.diagnoses,
            needs=visit.needs,
            by=clinician,
        )
        test_orders_add(handoff=handoff, tests=tests, by=clinician)
    Handoff.objects.filter(pk=handoff.pk).update(uuid=key)  # the marker that the demo specimens exist
    station = ready_station(stations=stations, preferred=visit.preferred_station, handoff=handoff)
    # Claimed once the station is free: after the visit before it there, or the station's last change.
    with timeline.step(visit.waited, not_before=timeline.turned_over.get(station.pk, station.state_changed_at)):
        handoff_claim(handoff=handoff, by=worker)
        handoff_assign_station(handoff=handoff, station=station, by=worker)
    with timeline.step(STEP_MINUTES["verify"]):
        handoff_verify_identity(handoff=handoff, by=worker, scanned_mrn=patient.mrn)
    printer = station.label_printers.filter(transport=PDF, is_active=True).first()
    at_bench: list[tuple[Specimen, str]] = []  # tested and kept after the patient has gone on
    for demo_round in visit.rounds:
        by = users[demo_round.by] if demo_round.by else worker
        with timeline.step(STEP_MINUTES["label"]):
            labelled = tests_start_collection(handoff=handoff, by=by)
            specimen_labels_printed(specimens=labelled, by=by, output=PDF, printer=printer)
        by_type = {s.specimen_type.code: s for s in labelled}
        if set(by_type) != {d.specimen_type for d in demo_round.draws}:
            raise CommandError(f"The demo expected {[d.specimen_type for d in demo_round.draws]}, not {list(by_type)}.")
        draws = [(d, by_type[d.specimen_type]) for d in demo_round.draws]
        # At the bedside: the label and the wristband read together, or a failed draw.
        for draw, specimen in draws:
            if draw.reach == S.NOT_COLLECTED:
                with timeline.step(STEP_MINUTES["failed"]):
                    specimen_not_collected(specimen=specimen, by=by, reason=draw.failed_reason, note=draw.failed_note)
            elif draw.reach != S.LABELLED:
                with timeline.step(STEP_MINUTES["draw"]):
                    specimen_confirm(
                        handoff=handoff,
                        scanned_label=specimen.accession,
                        scanned_wristband=patient.mrn,
                        by=by,
                        body_site=draw.body_site,
                    )
        # Carried to the bench for in-house tests, to the send-out desk for tests a reference lab runs.
        handed_over = [(d, s) for d, s in draws if d.reach in (S.IN_TRANSIT, S.RECEIVED)]
        if handed_over:
            with timeline.step(STEP_MINUTES["hand_over"]):
                for _draw, specimen in handed_over:
                    specimen_hand_over(specimen=specimen, to=_destination(specimen), by=by)
        for draw, specimen in handed_over:
            if draw.reach == S.RECEIVED:
                _receive(specimen, rejection=draw.rejection, by=lab_tech, reasons=reasons, timeline=timeline)
                if draw.beyond:
                    at_bench.append((specimen, draw.beyond))
    if visit.cancelled is not None:
        cancel_reason, cancel_note = visit.cancelled
        with timeline.step(STEP_MINUTES["cancel"]):
            for order in TestOrder.objects.filter(handoff=handoff, status=TestOrder.Status.ORDERED):
                test_order_cancel(order=order, reason=cancel_reason, note=cancel_note, by=worker)
    if visit.completed:
        with timeline.step(STEP_MINUTES["complete"]):
            handoff_complete(handoff=handoff, by=worker)
        with timeline.step(STEP_MINUTES["turnover"]):
            station_turnover(station=station, by=worker)
        timeline.turned_over[station.pk] = timeline.now
    bench_clock = timeline.now
    for specimen, reach in at_bench:
        _beyond(specimen, reach, by=lab_tech, timeline=timeline)
    timeline.now = bench_clock  # the bench's work takes no station time
    late = visit.rejected_after_leaving
    if late is not None:
        late_specimen = Specimen.objects.filter(handoff=handoff, status=S.RECEIVED).order_by("id").first()
        if late_specimen is None:
            raise CommandError("The demo expected a received specimen to reject after the patient left.")
        with timeline.step(STEP_MINUTES["reject"]):
            specimen_reject(specimen=late_specimen, reason=reasons[late.code], by=lab_tech, note=late.note)


def _receive(
    specimen: Specimen,
    *,
    rejection: Rejection | None,
    by: User,
    reasons: dict[str, RejectionReason],
    timeline: _Timeline,
) -> None:
    """Scanned in at the bench or the send-out desk; rejected there, or on a closer look afterwards."""
    with timeline.step(STEP_MINUTES["receive"]):
        if rejection is not None and rejection.at_receipt:
            specimen_receive(
                specimen=specimen,
                at=specimen.location,
                by=by,
                acceptable=False,
                reason=reasons[rejection.code],
                note=rejection.note,
            )
        else:
            specimen_receive(specimen=specimen, at=specimen.location, by=by)
    if rejection is not None and not rejection.at_receipt:
        with timeline.step(STEP_MINUTES["reject"]):
            specimen_reject(specimen=specimen, reason=reasons[rejection.code], by=by, note=rejection.note)


def _beyond(specimen: Specimen, reach: str, *, by: User, timeline: _Timeline) -> None:
    """After receipt: a rejected specimen is disposed of; any other goes into testing at the bench.

    Its results are entered next (lab_results), which makes it "testing done"; seed_specimen_storage
    then stores it or disposes of it, as far as ``reach``.
    """
    specimen.refresh_from_db()
    if specimen.status == S.REJECTED:
        with timeline.step(STEP_MINUTES["dispose"]):
            specimen_dispose(specimen=specimen, by=by, note="Biohazard bin, bench")
        return
    with timeline.step(STEP_MINUTES["testing"]):
        specimen_start_testing(specimen=specimen, by=by)


def seed_specimen_storage(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    """After the bench's results: the demo specimens meant to be kept are stored, the others disposed of."""
    tech = users["labtech"]
    moved = Counter[str]()
    for visit, key in zip(DEMO_VISITS, DEMO_VISIT_KEYS, strict=True):
        for demo_round in visit.rounds:
            for draw in demo_round.draws:
                if draw.beyond not in (S.STORED, S.DISPOSED) or draw.rejection is not None:
                    continue
                specimen = Specimen.objects.filter(
                    handoff__uuid=key, specimen_type__code=draw.specimen_type, status=S.DONE
                ).first()
                if specimen is None:
                    continue  # its results aren't all released yet: it stays at the bench
                if draw.beyond == S.STORED:
                    specimen_store(specimen=specimen, place="Fridge 1, rack A", by=tech)
                else:
                    specimen_dispose(specimen=specimen, by=tech, note="Biohazard bin, bench")
                moved[draw.beyond] += 1
    stdout.write(f"Specimens after testing: {moved[S.STORED]} stored, {moved[S.DISPOSED]} disposed of.")


def _destination(specimen: Specimen) -> str:
    """The bench if any of its tests is run in-house (it goes on from there), else the send-out desk."""
    performed = set(TestOrder.objects.filter(specimen=specimen).values_list("test__performed", flat=True))
    if TestDefinition.Performed.IN_HOUSE in performed:
        return Location.IN_HOUSE_BENCH
    return Location.SEND_OUT_DESK
