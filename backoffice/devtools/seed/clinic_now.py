"""Demo patients for "In the clinic now" (/clinic-now/) beyond what the clinic day gives it.

The clinic day fills the board with open handoffs in every state, a recollection to draw on an open
handoff and a patient still waiting for a rapid strep after the back office finished. These two visits
add what it lacks: a patient done in the back office who waits for a urine hCG while their TSH is
packaged for the reference lab, and a patient who left before their COVID-19 antigen result, recorded
as gone (backoffice.services.handoff_patient_left), so the ordering clinician's follow-ups
(/lab/call-backs/) have a "call the patient with the result". Both through the services in order, on
the procedure room the clinic day left for turnover (turned over first, and left for turnover again by
the patient who left), their timestamps moved back afterwards as the specimen visits' are. Run last:
the demo's results are entered before, so these tests stay on the bench.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.core.management.base import CommandError, OutputWrapper
from django.utils import timezone

from backoffice.devtools.seed.clinic_day import DEMO_MRN_START, DEMO_NAMESPACE, DEMO_PATIENTS
from backoffice.devtools.seed.specimens import _Timeline as Timeline
from backoffice.models import ExamRoom, Handoff, Patient, Station, User
from backoffice.services import (
    handoff_assign_station,
    handoff_claim,
    handoff_complete,
    handoff_create,
    handoff_patient_left,
    handoff_start,
    handoff_verify_identity,
    station_turnover,
)
from backoffice.workflow import StationState
from lab.models import SendOut, Shipment, TestDefinition
from lab.sendouts import shipments
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import SendOutStatus, ShipmentStatus
from specimens.models import LabelPrinter, Specimen
from specimens.services import (
    specimen_confirm,
    specimen_hand_over,
    specimen_labels_printed,
    specimen_receive,
    specimen_start_testing,
)
from specimens.workflow import Location

STATION = "proc-3"


@dataclass(frozen=True)
class NowVisit:
    minutes_ago: int
    tests: tuple[str, ...]  # short names
    note: str
    left: bool  # the patient left before the in-house result: recorded as gone


NOW_VISITS = (
    NowVisit(
        minutes_ago=40,
        tests=("Urine hCG", "TSH"),
        note="Missed period, fatigue. Pregnancy test before imaging; TSH to the reference lab.",
        left=False,
    ),
    NowVisit(
        minutes_ago=25,
        tests=("COVID-19 Ag",),
        note="Fever and cough since yesterday. Rapid antigen; patient may go home to wait.",
        left=True,
    ),
)
NOW_VISIT_KEYS = tuple(uuid.uuid5(DEMO_NAMESPACE, f"demo-clinic-now-{n}") for n in range(len(NOW_VISITS)))


def seed_clinic_now(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    if Handoff.objects.filter(uuid__in=NOW_VISIT_KEYS).exists():
        stdout.write("Clinic now: demo visits already there; none added.")
        return
    mrns = [f"M{DEMO_MRN_START + n}" for n in range(DEMO_PATIENTS)]
    patients = list(
        Patient.objects.filter(mrn__in=mrns, handoffs__isnull=True, sex=Patient.Sex.FEMALE).order_by("-mrn")[
            : len(NOW_VISITS)
        ]
    )
    if len(patients) < len(NOW_VISITS):
        raise CommandError("No demo patient left for the clinic-now visits.")
    station = Station.objects.get(code=STATION)
    rooms = list(ExamRoom.objects.order_by("name"))
    tests = {t.short_name: t for t in TestDefinition.objects.filter(is_active=True)}
    clinician, worker, tech = users["clinician"], users["ma"], users["labtech"]
    now = timezone.now()
    timeline = Timeline(now - timedelta(minutes=NOW_VISITS[0].minutes_ago))
    freed_at = station.state_changed_at
    for n, (visit, key, patient) in enumerate(zip(NOW_VISITS, NOW_VISIT_KEYS, patients, strict=True)):
        timeline.now = now - timedelta(minutes=visit.minutes_ago)
        if station.state == StationState.NEEDS_TURNOVER:
            # After the patient before left it (the demo clock's time; the row has the real one until apply()).
            with timeline.step(not_before=freed_at):
                station_turnover(station=station, by=worker)
        with timeline.step():
            handoff = handoff_create(
                patient=patient,
                ordering_clinician=clinician,
                exam_room=rooms[n % len(rooms)],
                clinical_note=visit.note,
                by=clinician,
            )
            test_orders_add(handoff=handoff, tests=[tests[name] for name in visit.tests], by=clinician)
        Handoff.objects.filter(pk=handoff.pk).update(uuid=key)
        handoff.refresh_from_db()
        # Quick visits (the station was waiting to be turned over): claimed and drawn within minutes.
        with timeline.step(1):
            handoff_claim(handoff=handoff, by=worker)
            handoff_assign_station(handoff=handoff, station=station, by=worker)
        with timeline.step(1):
            handoff_verify_identity(handoff=handoff, by=worker, scanned_mrn=patient.mrn)
            handoff_start(handoff=handoff, by=worker)
            tubes = tests_start_collection(handoff=handoff, by=worker)
            printer = station.label_printers.filter(transport=LabelPrinter.Transport.PDF, is_active=True).first()
            specimen_labels_printed(specimens=tubes, by=worker, output=LabelPrinter.Transport.PDF, printer=printer)
        with timeline.step(2):
            for tube in tubes:
                specimen_confirm(
                    handoff=handoff, scanned_label=tube.accession, scanned_wristband=patient.mrn, by=worker
                )
        with timeline.step(1):
            for tube in tubes:
                in_house = tube.test_orders.filter(test__performed=TestDefinition.Performed.IN_HOUSE).exists()
                specimen_hand_over(
                    specimen=tube, to=Location.IN_HOUSE_BENCH if in_house else Location.SEND_OUT_DESK, by=worker
                )
        with timeline.step(2):
            for tube in tubes:
                tube.refresh_from_db()
                specimen_receive(specimen=tube, at=tube.location, by=tech)
        with timeline.step(1):
            for tube in tubes:
                tube.refresh_from_db()
                if tube.location == Location.IN_HOUSE_BENCH:
                    specimen_start_testing(specimen=tube, by=tech)
                else:
                    _pack(tube=tube, by=tech)
        with timeline.step(1):
            handoff.refresh_from_db()
            if visit.left:
                handoff_patient_left(handoff=handoff, by=worker)  # completed: nothing else needed them
            else:
                handoff_complete(handoff=handoff, by=worker)
        station.refresh_from_db()
        freed_at = timeline.now
    if timeline.latest >= now:
        raise CommandError(f"The clinic-now visits run past the present ({timeline.latest - now}); start them earlier.")
    timeline.apply()
    stdout.write(
        f"Clinic now: {len(NOW_VISITS)} visits: one waiting for a urine hCG with its TSH packaged, one who left "
        "before a COVID-19 antigen result (a call on the clinician's follow-ups)."
    )


def _pack(*, tube: Specimen, by: User) -> None:
    """Into the open shipment to the send-out's reference lab, if the desk has one; else it waits at the desk."""
    for send_out in SendOut.objects.filter(order__specimen=tube, status=SendOutStatus.WAITING):
        box = Shipment.objects.filter(reference_lab=send_out.reference_lab, status=ShipmentStatus.OPEN).first()
        if box is not None:
            shipments.shipment_pack(shipment=box, specimen=tube, by=by)
            return
