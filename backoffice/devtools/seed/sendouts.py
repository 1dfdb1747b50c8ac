"""Demo send-outs: three reference labs (one per shipped dialect profile), what each is asked for under
its own codes, and send-outs in every state the desk shows.

``seed_reference_labs`` runs before the specimen visits (backoffice/management/commands/seed_demo.py),
so their send-out tests join the desk as they are collected, the way they would in the clinic.
``seed_sendouts`` runs right after it, before the specimen visits, because its visits need a ready
station (the specimen seed leaves every patient station busy or waiting for cleaning) and happen
earlier in the day than those: new visits whose tubes reach the send-out desk, worked
through the services in order (collected, handed over, received, packed, printed, dispatched, sent),
each step at its time on the demo clock (the specimen seed's _Timeline moves the timestamps back
afterwards, as it does for the specimen visits). What the labs answered is played through the
sending code: an AA built with lab.hl7.build for the national lab, a real refused connection for
the legacy interface (nobody listens on 127.0.0.1:12576, so the worker keeps retrying with backoff
until it gives up), a real file written in the outreach lab's folder.
The "resulted" visits were sent yesterday and taken by each lab (an AA played for the MLLP labs, the
file written for St. Brendan's): what the labs send back for them is seed/sendout_results.py's.

Both are idempotent: labs, orderables and questions are keyed on their natural keys (an admin's
changes to a lab are kept), the visits on fixed UUIDs.
"""

import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.core.management.base import CommandError, OutputWrapper
from django.utils import timezone

from backoffice.devtools.seed.catalogs import OrderTemplate
from backoffice.devtools.seed.clinic_day import (
    DEMO_MRN_START,
    DEMO_NAMESPACE,
    DEMO_PATIENTS,
    PatientPicker,
    ready_station,
)
from backoffice.devtools.seed.specimens import _Timeline, seed_label_printers
from backoffice.models import ExamRoom, Handoff, Patient, Station, User
from backoffice.services import (
    handoff_assign_station,
    handoff_claim,
    handoff_complete,
    handoff_create,
    handoff_verify_identity,
    station_turnover,
)
from backoffice.workflow import Priority
from lab.hl7.build import Endpoint, HierarchicDesignator, build_ack, read_header
from lab.models import (
    AskAtOrderEntry,
    DialectProfile,
    Orderable,
    OutboundMessage,
    ReferenceLab,
    SendOut,
    SendOutEvent,
    Shipment,
    ShipmentEvent,
    TestDefinition,
)
from lab.sendouts import prints, shipments
from lab.sendouts.selectors import shipment_tubes
from lab.sendouts.sending import Delivery, transmit
from lab.sendouts.services import send_out_answer, send_outs_flag_overdue
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import MessageStatus
from specimens.models import LabelPrinter, Specimen
from specimens.services import specimen_confirm, specimen_hand_over, specimen_labels_printed, specimen_receive
from specimens.workflow import Location

PDF = LabelPrinter.Transport.PDF
FASTING = "49541-6"  # LOINC: Fasting status - Reported
FASTING_CHOICES = [["Y", "Yes", "HL70136"], ["N", "No", "HL70136"]]

# --- Reference labs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLab:
    name: str
    profile: str  # DialectProfile.name (lab/migrations/0014_example_dialect_profiles.py)
    address: str
    phone: str
    clia: str
    their_ids: tuple[str, str]  # MSH-3, MSH-4 of its messages
    version: str
    transport: str
    mllp_port: int | None
    courier: str
    turnaround_hours: int
    # LOINC → (its code, its name, its turnaround in hours or None, default lab for the test)
    codes: dict[str, tuple[str, str, int | None, bool]]


OUTBOX = Path(tempfile.gettempdir()) / "clinic-backoffice" / "hl7-outbox" / "st-brendans"

DEMO_LABS = (
    DemoLab(
        name="Meridian Reference Laboratories",
        profile="National reference lab, HL7 2.5.1 LRI",
        address="4100 Harbor Gateway Drive, Suite 200, Torrance, CA 90501",
        phone="(800) 555-0142",
        clia="05D2045871",
        their_ids=("MERIDIAN-LIS", "MRL"),
        version=ReferenceLab.Version.V251,
        transport=ReferenceLab.Transport.MLLP,
        mllp_port=12575,
        courier="Meridian courier, route 14",
        turnaround_hours=24,
        codes={
            "58410-2": ("005009", "CBC With Differential/Platelet", 12, False),
            "24323-8": ("322000", "Comp. Metabolic Panel (14)", None, True),
            "24331-1": ("303756", "Lipid Panel", None, True),
            "3016-3": ("004259", "TSH", None, True),
            "2857-1": ("010322", "Prostate-Specific Ag", 36, True),
            "630-4": ("008847", "Urine Culture, Routine", 72, False),
        },
    ),
    DemoLab(
        name="Bayside Clinical Laboratory",
        profile="Legacy HL7 2.3 interface",
        address="880 Embarcadero Road, Building C, Oakland, CA 94606",
        phone="(510) 555-0187",
        clia="05D0987334",
        their_ids=("BAYLAB", "BAYSIDE"),
        version=ReferenceLab.Version.V23,
        transport=ReferenceLab.Transport.MLLP,
        mllp_port=12576,
        courier="Bayside runner, afternoon loop",
        turnaround_hours=24,
        codes={
            "58410-2": ("CBCD", "CBC W/DIFF", None, True),
            "24323-8": ("CMP14", "COMPREHENSIVE METABOLIC", None, False),
            "24331-1": ("LIPID", "LIPID PROFILE", None, False),
            "3016-3": ("TSH3", "TSH 3RD GEN", None, False),
            "2857-1": ("PSAT", "PSA TOTAL", None, False),
            "630-4": ("UCX", "URINE CULTURE", 72, False),
        },
    ),
    DemoLab(
        name="St. Brendan's Hospital Outreach Laboratory",
        profile="Hospital outreach LIS, HL7 2.3.1",
        address="1500 Cathedral Hill Boulevard, San Francisco, CA 94109",
        phone="(415) 555-0163",
        clia="05D0654318",
        their_ids=("SBH-LAB", "STBRENDANS"),
        version=ReferenceLab.Version.V23,
        transport=ReferenceLab.Transport.FOLDER,
        mllp_port=None,
        courier="Hospital shuttle, 4 pm",
        turnaround_hours=48,
        codes={
            "58410-2": ("HEM100", "CBC with differential", None, False),
            "24323-8": ("CHE220", "Comprehensive metabolic panel", None, False),
            "24331-1": ("CHE310", "Lipid panel", None, False),
            "3016-3": ("END410", "Thyroid stimulating hormone", None, False),
            "2857-1": ("URO520", "PSA, total", None, False),
            "630-4": ("MIC700", "Culture, urine", 48, True),
        },
    ),
)


def seed_reference_labs(stdout: OutputWrapper) -> dict[str, ReferenceLab]:
    """The three demo labs, their orderables for every send-out test, and the fasting question for lipids."""
    OUTBOX.mkdir(parents=True, exist_ok=True)
    tests = {t.loinc_code: t for t in TestDefinition.objects.filter(performed=TestDefinition.Performed.SEND_OUT)}
    labs: dict[str, ReferenceLab] = {}
    added = 0
    for spec in DEMO_LABS:
        lab, created = ReferenceLab.objects.get_or_create(
            name=spec.name,
            defaults={
                "address": spec.address,
                "phone": spec.phone,
                "clia_number": spec.clia,
                "their_application": spec.their_ids[0],
                "their_facility": spec.their_ids[1],
                "our_application": "CLINICBO",
                "our_facility": "CLINIC",
                "receiving_application": spec.their_ids[0],
                "receiving_facility": spec.their_ids[1],
                "hl7_version": spec.version,
                # Demo interfaces: training messages, never taken for real orders.
                "processing_id": ReferenceLab.ProcessingId.TRAINING,
                "transport": spec.transport,
                "mllp_host": "127.0.0.1" if spec.mllp_port else "",
                "mllp_port": spec.mllp_port,
                "drop_folder": str(OUTBOX) if spec.transport == ReferenceLab.Transport.FOLDER else "",
                "profile": DialectProfile.objects.get(name=spec.profile),
                "courier": spec.courier,
                "turnaround_hours": spec.turnaround_hours,
            },
        )
        added += created
        labs[spec.name] = lab
        for loinc, (code, name, hours, default) in spec.codes.items():
            test = tests.get(loinc)
            if test is None:
                continue
            taken = Orderable.objects.filter(test=test, is_default=True).exclude(reference_lab=lab).exists()
            orderable, _ = Orderable.objects.get_or_create(
                reference_lab=lab,
                test=test,
                defaults={
                    "lab_code": code,
                    "lab_name": name,
                    "turnaround_hours": hours,
                    "is_default": default and not taken,
                },
            )
            if test.short_name == "Lipids":
                AskAtOrderEntry.objects.get_or_create(
                    orderable=orderable,
                    loinc_code=FASTING,
                    defaults={"question": "Fasting status", "choices": FASTING_CHOICES, "position": 1},
                )
    stdout.write(f"Reference labs: {added} added, {len(DEMO_LABS) - added} already there; order files go to {OUTBOX}.")
    return labs


# --- Send-outs in every state -------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSendOut:
    """One visit whose send-out tubes reach the desk, and how far the desk takes them."""

    template: OrderTemplate
    lab: str
    reach: str  # waiting, packed, acknowledged, retrying, overdue, resulted
    hours_ago: float  # when the clinician handed the patient off
    stat: bool = False
    clinician: str = "clinician"
    fasting: str = ""  # the answer to the lipid panel's question ("" leaves it for the desk)
    # reach "resulted": sent and taken by the lab (an AA played, a file written); what the lab sends
    # back is played through the intake by seed/sendout_results.py, which finds the visit by this name.
    results: str = ""


MERIDIAN, BAYSIDE, ST_BRENDANS = (lab.name for lab in DEMO_LABS)
DEMO_SENDOUTS = (
    # At the desk: a STAT lipid panel whose fasting status nobody asked yet, a TSH, and a CBC for
    # Bayside whose clinician gave no diagnosis.
    DemoSendOut(
        OrderTemplate(
            "Chest tightness on exertion, father had an MI at 52. Lipids and CMP today.",
            tests=("24331-1", "24323-8"),
            min_age=35,
            diagnoses=("R07.89", "Z82.49"),
        ),
        lab=MERIDIAN,
        reach="waiting",
        hours_ago=8,
        stat=True,
    ),
    DemoSendOut(
        OrderTemplate("Weight gain and constipation. TSH.", tests=("3016-3",), min_age=18, diagnoses=("R63.5",)),
        lab=MERIDIAN,
        reach="waiting",
        hours_ago=7.5,
        clinician="clinician2",
    ),
    DemoSendOut(
        OrderTemplate("Easy bruising for a month. CBC.", tests=("58410-2",), min_age=18),
        lab=BAYSIDE,
        reach="waiting",
        hours_ago=7,
    ),
    # Packed in the afternoon's refrigerated pickup for Meridian.
    DemoSendOut(
        OrderTemplate(
            "Annual physical, PSA discussed and wanted.",
            tests=("2857-1",),
            sex=Patient.Sex.MALE,
            min_age=50,
            diagnoses=("Z12.5",),
        ),
        lab=MERIDIAN,
        reach="packed",
        hours_ago=9,
    ),
    DemoSendOut(
        OrderTemplate(
            "Statin started 3 months ago, fasting since last night. Lipid panel.",
            tests=("24331-1",),
            min_age=30,
            diagnoses=("E78.5",),
        ),
        lab=MERIDIAN,
        reach="packed",
        hours_ago=9.5,
        clinician="clinician2",
        fasting="Y",
    ),
    # Last night's pickup, acknowledged by Meridian (AA), results due this afternoon.
    DemoSendOut(
        OrderTemplate("Palpitations and heat intolerance. TSH.", tests=("3016-3",), min_age=18, diagnoses=("R00.2",)),
        lab=MERIDIAN,
        reach="acknowledged",
        hours_ago=20,
    ),
    # This morning's Bayside run: its interface refused the order; the worker retries.
    DemoSendOut(
        OrderTemplate("Fatigue and pallor. CBC.", tests=("58410-2",), min_age=18, diagnoses=("R53.83",)),
        lab=BAYSIDE,
        reach="retrying",
        hours_ago=10.5,
        clinician="clinician2",
    ),
    # Three days ago to St. Brendan's (a file for its interface engine): no results yet, overdue.
    DemoSendOut(
        OrderTemplate(
            "Recurrent urinary symptoms after antibiotics. Urine culture.", tests=("630-4",), diagnoses=("N39.0",)
        ),
        lab=ST_BRENDANS,
        reach="overdue",
        hours_ago=74,
    ),
    # Sent yesterday and taken by the labs; their results come back today (seed/sendout_results.py).
    DemoSendOut(
        OrderTemplate("Dysuria and frequency for a week, no fever. Urine culture.", tests=("630-4",), min_age=18,
                      diagnoses=("R30.0",)),
        lab=ST_BRENDANS,
        reach="resulted",
        hours_ago=30,
        results="culture",
    ),
    DemoSendOut(
        OrderTemplate("Annual physical, PSA discussed and wanted; father had prostate cancer.", tests=("2857-1",),
                      sex=Patient.Sex.MALE, min_age=55, diagnoses=("Z12.5", "Z80.42")),
        lab=MERIDIAN,
        reach="resulted",
        hours_ago=26,
        clinician="clinician2",
        results="psa",
    ),
    DemoSendOut(
        OrderTemplate("Hypertension and hyperlipidemia follow-up, fasting since last night. Lipid panel.",
                      tests=("24331-1",), min_age=40, diagnoses=("E78.5", "I10")),
        lab=MERIDIAN,
        reach="resulted",
        hours_ago=22,
        fasting="Y",
        results="lipids",
    ),
    DemoSendOut(
        OrderTemplate("Bruises easily since starting a new supplement. CBC.", tests=("58410-2",), min_age=18,
                      diagnoses=("R23.3",)),
        lab=BAYSIDE,
        reach="resulted",
        hours_ago=20,
        results="corrected",
    ),
    DemoSendOut(
        OrderTemplate("Fatigue, heavy periods. CBC.", tests=("58410-2",), sex=Patient.Sex.FEMALE, min_age=18,
                      diagnoses=("R53.83", "N92.0")),
        lab=BAYSIDE,
        reach="resulted",
        hours_ago=19,
        clinician="clinician2",
        results="identity",
    ),
    DemoSendOut(
        OrderTemplate("CKD stage 3 on lisinopril and spironolactone; routine labs. CMP.", tests=("24323-8",),
                      min_age=50, diagnoses=("N18.30", "I10")),
        lab=MERIDIAN,
        reach="resulted",
        hours_ago=18,
        results="critical",
    ),
)  # fmt: skip
DEMO_SENDOUT_KEYS = tuple(uuid.uuid5(DEMO_NAMESPACE, f"demo-sendout-visit-{n}") for n in range(len(DEMO_SENDOUTS)))


class _DeskTimeline(_Timeline):
    """The specimen seed's clock, over the desk's rows too."""

    STAMPED = (
        *_Timeline.STAMPED,
        (SendOut, ("created_at", "status_changed_at", "sent_at")),
        (SendOutEvent, ("at",)),
        (Shipment, ("created_at", "status_changed_at", "dispatched_at")),
        (ShipmentEvent, ("at",)),
        (OutboundMessage, ("created_at", "last_attempt_at", "acked_at")),
    )
    APPEND_ONLY = (
        *_Timeline.APPEND_ONLY,
        "lab.SendOutEvent:append_only",
        "lab.ShipmentEvent:append_only",
    )


def _acknowledged(at: datetime) -> Callable[[ReferenceLab, OutboundMessage], Delivery]:
    """What Meridian's interface answers an order at ``at``: an AA, built the way we answer labs."""

    def answer(lab: ReferenceLab, message: OutboundMessage) -> Delivery:
        ack = build_ack(
            read_header(message.text),
            code="AA",
            sender=Endpoint(HierarchicDesignator(lab.their_application), HierarchicDesignator(lab.their_facility)),
            control_id=f"A{message.control_id}"[:20],
            now=timezone.localtime(at),
        )
        return Delivery(ack=ack)

    return answer


def seed_sendouts(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    if Handoff.objects.filter(uuid__in=DEMO_SENDOUT_KEYS).exists():
        stdout.write("Send-outs: demo send-outs already there; none added.")
        return
    seed_label_printers(stdout)  # the stations' printers the labels are printed on (idempotent)
    labs = {lab.name: lab for lab in ReferenceLab.objects.filter(name__in=[d.name for d in DEMO_LABS])}
    if len(labs) != len(DEMO_LABS):
        raise CommandError("Seed the reference labs first (seed_reference_labs).")
    mrns = [f"M{DEMO_MRN_START + n}" for n in range(DEMO_PATIENTS)]
    picker = PatientPicker(
        patients=list(Patient.objects.filter(mrn__in=mrns, handoffs__isnull=True).order_by("mrn")),
        today=timezone.localdate(),
    )
    tests = {t.loinc_code: t for t in TestDefinition.objects.filter(is_active=True)}
    rooms = list(ExamRoom.objects.order_by("name"))
    stations = {s.code: s for s in Station.objects.all()}
    now = timezone.now()
    timeline = _DeskTimeline(now)
    tech = users["labtech"]
    # Each shipment: the tubes the visits put in it, by (lab, reach).
    tubes: dict[tuple[str, str], list[Specimen]] = {}
    # Oldest first: the visits share stations, one after another.
    played = sorted(enumerate(zip(DEMO_SENDOUTS, DEMO_SENDOUT_KEYS, strict=True)), key=lambda v: -v[1][0].hours_ago)
    for n, (visit, key) in played:
        patient = picker.pick(template=visit.template, interpreter=False)
        timeline.now = now - timedelta(hours=visit.hours_ago)
        specimens = _collect(
            visit=visit, key=key, patient=patient, room=rooms[n % len(rooms)], tests=tests, users=users,
            stations=stations, timeline=timeline,
        )  # fmt: skip
        if visit.fasting:
            with timeline.step(1):
                for send_out in SendOut.objects.filter(order__handoff=Handoff.objects.get(uuid=key)):
                    if send_out.orderable.questions.exists():
                        send_out_answer(send_out=send_out, answers={FASTING: visit.fasting}, by=tech)
        tubes.setdefault((visit.lab, visit.reach), []).extend(specimens)
    for (lab_name, reach), packed in tubes.items():
        if reach == "waiting":
            continue
        lab = labs[lab_name]
        # Packed half an hour after the group's last tube was received.
        latest = min(v.hours_ago for v in DEMO_SENDOUTS if (v.lab, v.reach) == (lab_name, reach))
        timeline.now = now - timedelta(hours=latest) + timedelta(minutes=30)
        with timeline.step():
            box = shipments.shipment_create(
                reference_lab=lab,
                handling=packed[0].container.handling,
                courier=lab.courier or "Lab courier",
                # The open one is picked up this morning; the others were, after printing and packing.
                pickup_at=now + timedelta(hours=1) if reach == "packed" else timeline.now + timedelta(minutes=25),
                by=tech,
                now=timeline.now,
            )
            for specimen in packed:
                shipments.shipment_pack(shipment=box, specimen=specimen, by=tech)
        if reach == "packed":
            continue
        with timeline.step(10):
            # The manifest and the requisitions, printed before the courier comes.
            tubes_in = shipment_tubes(box)
            prints.print_manifest(shipment=box, tubes=tubes_in, by=tech)
            prints.print_requisitions(
                send_outs=[s for t in tubes_in for s in t.send_outs], by=tech, name=prints.reference(box)
            )
        with timeline.step(15):
            shipments.shipment_dispatch(shipment=box, by=tech, now=timeline.now)
        with timeline.step(1):
            for message in OutboundMessage.objects.filter(send_out__shipment=box).order_by("id"):
                # Meridian's answer is played; Bayside's refused port and St. Brendan's folder are real.
                # A lab whose results come back took its orders: an MLLP lab's AA, a folder lab's file.
                answered = reach == "acknowledged" or (
                    reach == "resulted" and lab.transport == ReferenceLab.Transport.MLLP
                )
                transmit(message.pk, now=timeline.now, through=_acknowledged(timeline.now) if answered else None)
    if timeline.latest >= now:
        raise CommandError("The demo send-outs run past the present; start them earlier.")
    timeline.apply()
    # The worker has tried the refused order again just now: the desk shows when it tries next.
    for message in OutboundMessage.objects.filter(
        send_out__order__handoff__uuid__in=DEMO_SENDOUT_KEYS, status=MessageStatus.RETRYING
    ):
        OutboundMessage.objects.filter(pk=message.pk).update(next_attempt_at=now)
        transmit(message.pk)
    flagged = send_outs_flag_overdue()
    by_status = Counter(
        SendOut.objects.filter(order__handoff__uuid__in=DEMO_SENDOUT_KEYS).values_list("status", flat=True)
    )
    messages = Counter(
        OutboundMessage.objects.filter(send_out__order__handoff__uuid__in=DEMO_SENDOUT_KEYS).values_list(
            "status", flat=True
        )
    )
    stdout.write(
        "Send-outs: "
        + ", ".join(f"{count} {status}" for status, count in sorted(by_status.items()))
        + f"; order messages {dict(sorted(messages.items()))}; {flagged} flagged overdue."
    )


def _collect(
    *,
    visit: DemoSendOut,
    key: uuid.UUID,
    patient: Patient,
    room: ExamRoom,
    tests: dict[str, TestDefinition],
    users: dict[str, User],
    stations: dict[str, Station],
    timeline: _DeskTimeline,
) -> list[Specimen]:
    """One visit through the services: handed off, drawn, handed to the send-out desk, received there."""
    clinician, ma, tech = users[visit.clinician], users["ma"], users["labtech"]
    with timeline.step():
        handoff = handoff_create(
            patient=patient,
            ordering_clinician=clinician,
            exam_room=room,
            priority=Priority.STAT if visit.stat else Priority.ROUTINE,
            clinical_note=visit.template.note,
            diagnosis_codes=visit.template.diagnoses,
            by=clinician,
        )
        test_orders_add(handoff=handoff, tests=[tests[code] for code in visit.template.tests], by=clinician)
    Handoff.objects.filter(pk=handoff.pk).update(uuid=key)  # the marker that the demo send-outs exist
    station = ready_station(stations=stations, preferred="phleb-2", handoff=handoff)
    # Claimed once the station is free: after the visit before it there, or the station's last change.
    # After this seed's visit before it there; the station's real history is today's, later than these.
    with timeline.step(6, not_before=timeline.turned_over.get(station.pk)):
        handoff_claim(handoff=handoff, by=ma)
        handoff_assign_station(handoff=handoff, station=station, by=ma)
    with timeline.step(1):
        handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=patient.mrn)
    printer = station.label_printers.filter(transport=PDF, is_active=True).first()
    with timeline.step(1):
        labelled = tests_start_collection(handoff=handoff, by=ma)
        specimen_labels_printed(specimens=labelled, by=ma, output=PDF, printer=printer)
    with timeline.step(3):
        for specimen in labelled:
            specimen_confirm(handoff=handoff, scanned_label=specimen.accession, scanned_wristband=patient.mrn, by=ma)
    with timeline.step(2):
        handoff_complete(handoff=handoff, by=ma)
        for specimen in labelled:
            specimen_hand_over(specimen=specimen, to=Location.SEND_OUT_DESK, by=ma)
    with timeline.step(4):
        station_turnover(station=station, by=ma)
        for specimen in labelled:
            specimen_receive(specimen=specimen, at=Location.SEND_OUT_DESK, by=tech)
    timeline.turned_over[station.pk] = timeline.now
    return [Specimen.objects.select_related("container").get(pk=s.pk) for s in labelled]


__all__ = ["DEMO_LABS", "DEMO_SENDOUTS", "DEMO_SENDOUT_KEYS", "seed_reference_labs", "seed_sendouts"]
