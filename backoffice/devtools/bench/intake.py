"""The bench's HL7 intake and send-out desk data, set up in a Django process (``manage.py shell``).

``prepare_intake`` brings open send-outs in the way a clinic does (lab.sendouts.carried_over, as
``import_open_send_outs`` would): scale patients, a provider of the bench's own, spread across the
three demo reference labs (one per shipped dialect profile) and their lab panels, under placer
numbers and accessions marked with the run's tag. Then it writes, with backoffice.devtools.oru, the
ORU^R01 each lab would send back for each one: a lipid panel, a CMP, a CBC, a TSH or a PSA with NM
values, units, ranges and the flags the ranges call for, an SN now and then (eGFR ``>60``, PSA
``<0.1``), an ST comment, NTE on the report and on rows. The file batch is what the bench times
``hl7_import`` on; the MLLP batch is what it sends the listener, one message at a time.

No value is critical (none beyond the lab's H/L): a critical opens a call-back the pages would show,
and the runs would pile them up. ``prepare_desk`` tops the send-out desk up to a working day's tubes
(waiting, packed in open shipments, sent awaiting results), so every run's desk row measures the same.

Benchmark data only: the desk's waiting tubes are written as the visits left them (a closed visit,
its specimen received at the desk) and then go through the services: ``send_out_open`` puts each on
the desk, ``shipment_create``/``shipment_pack`` pack them; the sent ones are imported as carried over.
"""

from __future__ import annotations

import csv
import io
import json
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice.devtools.oru import Obs, oru_for
from backoffice.devtools.seed.common import seeded_rng
from backoffice.devtools.seed.scale import SCALE_MRN_PREFIX
from backoffice.devtools.seed.sendouts import DEMO_LABS
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, User
from backoffice.services import system_user
from backoffice.transitions import record
from backoffice.workflow import HandoffStatus
from lab.models import SendOut, Shipment, TestDefinition, TestOrder, TestOrderEvent
from lab.sendouts import shipments
from lab.sendouts.carried_over import COLUMNS, IMPORT_ROOM, open_send_outs_import
from lab.sendouts.services import questions_of, send_out_answer, send_out_open
from lab.workflow import SendOutStatus, ShipmentStatus, TestOrderStatus
from specimens.accession import SEQUENCE, format_accession
from specimens.models import Specimen, SpecimenEvent
from specimens.workflow import Location, SpecimenStatus

# The provider the bench's send-outs are ordered by: their results fill nobody's inbox the pages show.
BENCH_PROVIDER = ("1245319508", "Benchmark", "Reference")
INTAKE_PLACER = "BI"  # + the run's tag + a number: the intake's send-outs
INTAKE_ACCESSION = "BX"
DESK_PLACER = "BD"  # the desk's sent send-outs (imported once, kept awaiting results)
DESK_ACCESSION = "BDX"
DESK_NOTE = "Benchmark: a send-out tube at the desk."
# A working day at the desk: tubes waiting to be packed, tubes in the open shipments, sent ones.
DESK_WAITING = 40
DESK_PACKED = 24
DESK_SENT = 300

# --- What the labs report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Analyte:
    loinc: str
    name: str
    unit: str
    unit_text: str
    low: float  # the lab's range
    high: float
    mean: float  # where the clinic's patients are, and how far they spread
    spread: float
    decimals: int = 0
    upper_only: bool = False  # the range is "<high" (lipids)
    lower_only: bool = False  # ">low" (HDL)

    def value(self, rng: random.Random) -> tuple[str, str, str]:
        """(value, range, flag) for one patient; never beyond what the lab calls H or L."""
        number = max(rng.gauss(self.mean, self.spread), self.low * 0.5 if self.low else 0.0)
        text = f"{number:.{self.decimals}f}"
        number = float(text)
        if self.upper_only:
            shown = f"<{self.high:g}"
            flag = "H" if number >= self.high else ""
        elif self.lower_only:
            shown = f">{self.low:g}"
            flag = "L" if number <= self.low else ""
        else:
            shown = f"{self.low:.{self.decimals}f}-{self.high:.{self.decimals}f}"
            flag = "H" if number > self.high else "L" if number < self.low else ""
        return text, shown, flag


MGDL, MMOL, UL, GDL = ("mg/dL", "milligram per deciliter"), ("mmol/L", "millimole per liter"), ("U/L", "unit per liter"), ("g/dL", "gram per deciliter")  # fmt: skip
KUL = ("10*3/uL", "thousand per microliter")

LIPIDS = (
    Analyte("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", *MGDL, 100, 200, 195, 35, upper_only=True),
    Analyte("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", *MGDL, 0, 150, 135, 50, upper_only=True),
    Analyte("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", *MGDL, 39, 100, 52, 12, lower_only=True),
    Analyte(
        "13457-7",
        "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
        *MGDL,
        0,
        100,
        115,
        30,
        upper_only=True,
    ),
    Analyte("43396-1", "Cholesterol non HDL [Mass/volume] in Serum or Plasma", *MGDL, 0, 130, 140, 32, upper_only=True),
)
CMP = (
    Analyte("2345-7", "Glucose [Mass/volume] in Serum or Plasma", *MGDL, 70, 99, 96, 12),
    Analyte("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", *MGDL, 7, 20, 14, 4),
    Analyte("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", *MGDL, 0.57, 1.00, 0.86, 0.15, 2),
    Analyte("2951-2", "Sodium [Moles/volume] in Serum or Plasma", *MMOL, 134, 144, 139, 2),
    Analyte("2823-3", "Potassium [Moles/volume] in Serum or Plasma", *MMOL, 3.5, 5.2, 4.3, 0.3, 1),
    Analyte("2075-0", "Chloride [Moles/volume] in Serum or Plasma", *MMOL, 96, 106, 101, 2),
    Analyte("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", *MMOL, 20, 29, 24, 2),
    Analyte("17861-6", "Calcium [Mass/volume] in Serum or Plasma", *MGDL, 8.7, 10.3, 9.4, 0.4, 1),
    Analyte("2885-2", "Protein [Mass/volume] in Serum or Plasma", *GDL, 6.0, 8.5, 7.1, 0.5, 1),
    Analyte("1751-7", "Albumin [Mass/volume] in Serum or Plasma", *GDL, 3.9, 4.9, 4.4, 0.3, 1),
    Analyte("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", *MGDL, 0.0, 1.2, 0.6, 0.25, 1),
    Analyte("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", *UL, 44, 121, 80, 20),
    Analyte("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", *UL, 0, 40, 22, 7),
    Analyte("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", *UL, 0, 32, 21, 8),
)
EGFR = ("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] by CKD-EPI 2021")
CBC = (
    Analyte("6690-2", "Leukocytes [#/volume] in Blood by Automated count", *KUL, 3.4, 10.8, 6.8, 1.6, 1),
    Analyte(
        "789-8",
        "Erythrocytes [#/volume] in Blood by Automated count",
        "10*6/uL",
        "million per microliter",
        3.77,
        5.28,
        4.6,
        0.35,
        2,
    ),
    Analyte("718-7", "Hemoglobin [Mass/volume] in Blood", *GDL, 11.1, 15.9, 13.6, 1.1, 1),
    Analyte(
        "4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", "percent", 34.0, 46.6, 40.5, 3.0, 1
    ),
    Analyte("787-2", "MCV [Entitic volume] by Automated count", "fL", "femtoliter", 79, 97, 89, 4),
    Analyte("785-6", "MCH [Entitic mass] by Automated count", "pg", "picogram", 26.6, 33.0, 29.8, 1.3, 1),
    Analyte("786-4", "MCHC [Mass/volume] by Automated count", *GDL, 31.5, 35.7, 33.4, 0.8, 1),
    Analyte(
        "788-0", "Erythrocyte distribution width [Ratio] by Automated count", "%", "percent", 11.7, 15.4, 13.2, 0.8, 1
    ),
    Analyte("777-3", "Platelets [#/volume] in Blood by Automated count", *KUL, 150, 450, 260, 55),
)
TSH = Analyte("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", "milli-international unit per liter", 0.45, 4.5, 2.0, 0.9, 3)  # fmt: skip
PSA = Analyte("2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "ng/mL", "nanogram per milliliter", 0.0, 4.0, 1.4, 0.9, 1)  # fmt: skip

# Our test (LOINC) → how often the clinic sends it out, of every hundred.
TEST_MIX = {"24331-1": 35, "24323-8": 35, "58410-2": 15, "3016-3": 10, "2857-1": 5}
LAB_CODES = {lab.name: {loinc: code for loinc, (code, *_rest) in lab.codes.items()} for lab in DEMO_LABS}


def _nm(analyte: Analyte, rng: random.Random, **more: Any) -> Obs:
    value, shown, flag = analyte.value(rng)
    unit, unit_text = analyte.unit, analyte.unit_text
    return Obs.nm(analyte.loinc, analyte.name, value, unit, unit_text=unit_text, range=shown, flag=flag, **more)


def observations(loinc: str, rng: random.Random) -> tuple[list[Obs], list[str]]:
    """What the lab reports for one of our tests: its rows, and the notes on the whole report."""
    notes: list[str] = []
    rows: list[Obs] = []
    if loinc == "24331-1":
        rows = [_nm(a, rng) for a in LIPIDS]
        if rng.random() < 0.6:
            notes.append("FASTING: YES" if rng.random() < 0.8 else "FASTING: NO, interpret triglycerides accordingly")
        if rng.random() < 0.3:
            rows.append(
                Obs.st("", "Lipid comment", "Desirable LDL for high-risk patients is <70 mg/dL.", lab_code="LCOM")
            )
    elif loinc == "24323-8":
        rows = [_nm(a, rng) for a in CMP]
        if rng.random() < 0.7:  # eGFR above 60 is reported as ">60": an SN
            rows.append(Obs.sn(*EGFR, ">", "60", "mL/min/{1.73_m2}", range=">59"))
        else:
            rows.append(Obs.nm(*EGFR, str(rng.randrange(45, 60)), "mL/min/{1.73_m2}", range=">59", flag="L"))
        if rng.random() < 0.15:
            rows[0] = _nm(CMP[0], rng, notes=("Non-fasting specimen per the requisition.",))
        if rng.random() < 0.2:
            notes.append("Specimen received refrigerated; processed within stability limits.")
    elif loinc == "58410-2":
        rows = [_nm(a, rng) for a in CBC]
        if rng.random() < 0.1:
            rows[-1] = _nm(CBC[-1], rng, notes=("Platelet clumps seen; count may be falsely low.",))
    elif loinc == "3016-3":
        rows = [_nm(TSH, rng)]
    elif loinc == "2857-1":
        if rng.random() < 0.2:
            rows = [Obs.sn(PSA.loinc, PSA.name, "<", "0.1", PSA.unit, unit_text=PSA.unit_text, range="0.0-4.0")]
        else:
            rows = [_nm(PSA, rng)]
        notes.append(
            "Roche ECLIA methodology. Values obtained with different assay methods can't be used interchangeably."
        )
    else:
        raise ValueError(f"no panel for {loinc}")
    return rows, notes


# --- Open send-outs, carried over ---------------------------------------------------------------------


def scale_patients(count: int, *, offset: int = 0) -> list[Patient]:
    """``count`` scale patients by MRN from ``offset`` on, round the list again if it is shorter: the
    same ones every run (a patient may have many orders)."""
    scale = Patient.objects.filter(mrn__startswith=SCALE_MRN_PREFIX).order_by("mrn")
    total = scale.count()
    if not total:
        raise SystemExit("no scale patients: seed_demo --scale first")
    start = offset % total
    found = list(scale[start : start + count])
    while len(found) < count:
        found += list(scale[: count - len(found)])
    return found


def send_outs_csv(*, placer: str, accession: str, count: int, patients: list[Patient], now: datetime, seed: int) -> str:
    """The CSV ``import_open_send_outs`` reads: ``count`` orders across the three labs, sent 6 to 60 hours ago."""
    rng = seeded_rng(seed)
    labs = [lab.name for lab in DEMO_LABS]
    tests = [loinc for loinc, weight in TEST_MIX.items() for _ in range(weight)]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    npi, family, given = BENCH_PROVIDER
    for n in range(count):
        patient = patients[n % len(patients)]
        lab = labs[n % len(labs)]
        sent = now - timedelta(hours=rng.uniform(6, 60))
        collected = sent - timedelta(hours=rng.uniform(1, 8))
        writer.writerow(
            {
                "mrn": patient.mrn,
                "family_name": patient.family_name,
                "given_name": patient.given_name,
                "date_of_birth": patient.date_of_birth.isoformat(),
                "sex": patient.sex,
                "provider_npi": npi,
                "provider_family_name": family,
                "provider_given_name": given,
                "reference_lab": lab,
                "test": LAB_CODES[lab][rng.choice(tests)],
                "placer_number": f"{placer}{n:06d}",
                "accession": f"{accession}{n:06d}",
                "collected_at": timezone.localtime(collected).strftime("%Y-%m-%d %H:%M"),
                "sent_at": timezone.localtime(sent).strftime("%Y-%m-%d %H:%M"),
                "diagnosis_codes": "",
            }
        )
    return out.getvalue()


def _send_outs(placer: str) -> list[SendOut]:
    return list(
        SendOut.objects.filter(placer_number__startswith=placer)
        .select_related(
            "reference_lab__profile",
            "orderable",
            "order__test__specimen_type",
            "order__specimen",
            "order__handoff__patient",
            "order__handoff__ordering_clinician",
        )
        .order_by("placer_number")
    )


def _rows_filed(rows: list[Obs]) -> int:
    """The results a message files: one per observation (a TX narrative's rows are one)."""
    return len(rows)


def prepare_intake(*, count: int, mllp: int, tag: str, folder: str, files: int = 10) -> dict[str, Any]:
    """``count`` + ``mllp`` open send-outs under this run's tag, and a result message for each, written
    as ``files`` files of the file batch (intake-NN.hl7) and one message a line for MLLP (mllp.txt)."""
    now = timezone.now()
    system = system_user()
    placer, accession = f"{INTAKE_PLACER}{tag}", f"{INTAKE_ACCESSION}{tag}"
    started = time.monotonic()
    text = send_outs_csv(
        placer=placer,
        accession=accession,
        count=count + mllp,
        patients=scale_patients(min(count + mllp, 5000)),
        now=now,
        seed=zlib.crc32(tag.encode()),
    )
    imported = open_send_outs_import(text=text, by=system, source=f"bench run {tag}")
    import_seconds = time.monotonic() - started
    started = time.monotonic()
    send_outs = _send_outs(placer)
    if len(send_outs) != count + mllp:
        raise SystemExit(f"{len(send_outs)} send-outs under {placer}, {count + mllp} imported")
    messages: list[tuple[str, str]] = []  # control id, text
    expected = 0
    by_lab: Counter[str] = Counter()
    by_test: Counter[str] = Counter()
    for n, send_out in enumerate(send_outs):
        rng = seeded_rng(zlib.crc32(send_out.placer_number.encode()))
        rows, notes = observations(send_out.order.test.loinc_code, rng)
        control_id = f"{tag}{n:07d}"
        message = oru_for(send_out, observations=rows, status="F", control_id=control_id, notes=notes)
        messages.append((control_id, message))
        if n < count:
            expected += _rows_filed(rows)
            by_lab[send_out.reference_lab.name] += 1
            by_test[send_out.order.test.short_name] += 1
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    batch = messages[:count]
    per_file = -(-count // files)
    paths = []
    for index in range(0, count, per_file):
        path = out / f"intake-{index // per_file:02d}.hl7"
        path.write_text("".join(m for _, m in batch[index : index + per_file]), encoding="utf-8")
        paths.append(str(path))
    mllp_path = out / "mllp.txt"
    mllp_path.write_text("\n".join(m.replace("\r", "\\r") for _, m in messages[count:]), encoding="utf-8")
    segments = sum(m.count("\r") for _, m in batch)
    return {
        "send_outs_imported": imported.created,
        "import_seconds": round(import_seconds, 1),
        "generate_seconds": round(time.monotonic() - started, 1),
        "files": paths,
        "mllp_file": str(mllp_path),
        "messages": len(batch),
        "mllp_messages": len(messages) - count,
        "observations_in_batch": expected,
        "segments_in_batch": segments,
        "bytes_in_batch": sum(len(m.encode()) for _, m in batch),
        "placer_prefix": placer,
        "by_lab": dict(by_lab),
        "by_test": dict(by_test),
    }


# --- The send-out desk ---------------------------------------------------------------------------------


def _desk_waiting(count: int, *, tech: User, now: datetime) -> None:
    """``count`` more tubes received at the desk: closed visits of scale patients, each test's send-out
    opened by the service as collection opens it."""
    if count <= 0:
        return
    clinician = User.objects.filter(username__startswith="scale-clin-").order_by("username").first() or tech
    room, _ = ExamRoom.objects.get_or_create(name=IMPORT_ROOM, defaults={"is_active": False})
    tests = list(TestDefinition.objects.filter(loinc_code__in=[*TEST_MIX, "630-4"]).select_related("specimen_type", "container"))  # fmt: skip
    done = Handoff.objects.filter(clinical_note=DESK_NOTE).count()
    patients = scale_patients(count, offset=50_000 + done)
    rng = seeded_rng(done)
    with transaction.atomic():
        for n, patient in enumerate(patients):
            test = tests[(done + n) % len(tests)]
            received = now - timedelta(minutes=rng.randrange(5, 300))
            at = received - timedelta(minutes=rng.randrange(20, 90))
            handoff = Handoff.objects.create(
                patient=patient, ordering_clinician=clinician, exam_room=room, clinical_note=DESK_NOTE,
                status=HandoffStatus.COMPLETED, claimed_by=tech, claimed_at=at, identity_verified_at=at,
                identity_verified_by=tech, identity_method="wristband", closed_at=at, created_at=at, created_by=tech,
            )  # fmt: skip
            record(handoff, by=tech, action=HandoffEvent.Action.CREATED, created=True, note=DESK_NOTE)
            with transaction.get_connection().cursor() as cursor:
                cursor.execute("SELECT nextval(%s)", [SEQUENCE])
                (number,) = cursor.fetchone()
            specimen = Specimen.objects.create(
                accession=format_accession(int(number)), handoff=handoff, patient=patient,
                specimen_type=test.specimen_type, container=test.container,
                collection_method=test.specimen_type.collection_method, tests_label=test.short_name,
                status=SpecimenStatus.RECEIVED, location=Location.SEND_OUT_DESK, status_changed_at=received,
                labelled_at=at, labelled_by=tech, collected_at=at, collected_by=tech, verified_at=at, verified_by=tech,
                verify_method="wristband", received_at=received, received_by=tech, received_acceptable=True,
            )  # fmt: skip
            record(specimen, by=tech, action=SpecimenEvent.Action.RECEIVED, created=True, note=DESK_NOTE)
            order = TestOrder.objects.create(
                handoff=handoff, test=test, status=TestOrderStatus.COLLECTED, specimen=specimen,
                status_changed_at=at, created_at=at, created_by=clinician,
            )  # fmt: skip
            record(order, by=clinician, action=TestOrderEvent.Action.ORDERED, created=True, note=DESK_NOTE)
            send_out_open(order=order, by=tech)


def _desk_send_outs(status: str) -> Any:
    return SendOut.objects.filter(order__handoff__clinical_note=DESK_NOTE, status=status)


def _desk_pack(count: int, *, tech: User, now: datetime) -> None:
    """Pack ``count`` of the desk's waiting tubes, each into an open shipment for its lab and temperature."""
    waiting = list(_desk_send_outs(SendOutStatus.WAITING).select_related("order__specimen__container", "reference_lab"))
    for send_out in waiting[:count]:
        if questions_of(send_out):
            choices: Callable[[Any], str] = lambda q: str(q.choices[0][0])  # noqa: E731
            send_out_answer(send_out=send_out, answers={q.loinc_code: choices(q) for q in questions_of(send_out)}, by=tech)  # fmt: skip
        specimen = send_out.order.specimen
        assert specimen is not None
        handling = specimen.container.handling
        box = Shipment.objects.filter(
            status=ShipmentStatus.OPEN, reference_lab=send_out.reference_lab, handling=handling
        ).first() or shipments.shipment_create(
            reference_lab=send_out.reference_lab,
            handling=handling,
            courier=send_out.reference_lab.courier or "Lab courier",
            pickup_at=now + timedelta(hours=3),
            by=tech,
        )
        shipments.shipment_pack(shipment=box, specimen=specimen, by=tech)


def prepare_desk(*, waiting: int = DESK_WAITING, packed: int = DESK_PACKED, sent: int = DESK_SENT) -> dict[str, int]:
    """Top the desk's benchmark tubes up to ``waiting`` at the desk, ``packed`` in open shipments and
    ``sent`` awaiting results; return what the desk holds (every send-out, the demo's too)."""
    now = timezone.now()
    tech = User.objects.get(username="labtech")
    short_packed = packed - _desk_send_outs(SendOutStatus.PACKED).count()
    _desk_waiting(waiting + max(short_packed, 0) - _desk_send_outs(SendOutStatus.WAITING).count(), tech=tech, now=now)
    _desk_pack(short_packed, tech=tech, now=now)
    text = send_outs_csv(
        placer=DESK_PLACER, accession=DESK_ACCESSION, count=sent, patients=scale_patients(sent, offset=60_000),
        now=now, seed=1,
    )  # fmt: skip
    open_send_outs_import(text=text, by=system_user(), source="bench desk")
    counts = Counter(SendOut.objects.values_list("status", flat=True))
    return {
        "desk_waiting": counts[SendOutStatus.WAITING],
        "desk_packed": counts[SendOutStatus.PACKED],
        "desk_sent": counts[SendOutStatus.SENT] + counts[SendOutStatus.PRELIMINARY],
        "open_shipments": Shipment.objects.filter(status=ShipmentStatus.OPEN).count(),
    }


def dump(data: Any, path: str) -> None:
    Path(path).write_text(json.dumps(data))


__all__ = ["observations", "prepare_desk", "prepare_intake", "send_outs_csv"]
