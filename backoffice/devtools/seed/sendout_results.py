"""Demo results from the reference labs: what Meridian, Bayside and St. Brendan's send back for the
demo's send-outs, played through the real intake so the desk's inbound pages, the clinician's inbox
and the patient's results have something in them.

The send-outs are the demo's "resulted" visits (seed/sendouts.py: sent yesterday, taken by the labs).
Each message is written by the dev tool backoffice.devtools.oru in its lab's dialect and received by
``lab.sendouts.intake.receive`` as the interface would: over MLLP for Meridian and Bayside, from a
file in St. Brendan's folder for St. Brendan's (the file is written, then read back, as
``hl7_import`` reads it), by the system user the intake acts as. What the intake decides is its own:
nothing here files, matches or holds anything. In the order they arrive:

- St. Brendan's urine culture: a preliminary (growth, identification to follow) overnight, then the
  final (E. coli, with the colony count and a comment) that supersedes it;
- Bayside's CBC: a final with a low platelet count, then a correction after the smear showed platelet
  clumping (amended: the clinician is told again);
- Bayside's second CBC comes for a patient whose date of birth the lab keyed wrong: on identity hold;
- a Bayside result for an order that isn't ours (unknown placer and accession): unmatched, kept whole;
- Meridian's lipid panel, high LDL and low HDL (H/L flags), then the same message again when its
  interface missed our ACK: a duplicate;
- Meridian's PSA, high, with the lab's comments (NTE) and its interpretation as a narrative (TX);
- Meridian's CMP with a critical potassium (HH): its call-back opens, as an in-house critical's does.

Times are the demo clock's (the specimen seed's _Timeline over the intake's rows); the critical call
is moved with its result, so it is due a quarter of an hour from now. Run once: a second run finds the
demo's messages there and adds none (a re-sent message is by design stored again as a duplicate, so
the whole step is guarded, not each message).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from django.core.management.base import OutputWrapper
from django.db.models import F, Q
from django.utils import timezone

from backoffice.devtools.oru import Director, Obs, PatientAs, oru_for
from backoffice.devtools.seed.sendouts import DEMO_SENDOUT_KEYS, DEMO_SENDOUTS, ST_BRENDANS, _DeskTimeline
from backoffice.models import User
from lab.models import (
    CriticalCall,
    CriticalCallEvent,
    InboundMessage,
    InboundMessageEvent,
    ReferenceLab,
    Result,
    ResultEvent,
    SendOut,
)
from lab.sendouts.intake import Received, receive, summary
from lab.workflow import IntakeChannel
from specimens.accession import format_accession

INBOX = Path(tempfile.gettempdir()) / "clinic-backoffice" / "hl7-inbox" / "st-brendans"
# The HL7 version each demo lab answers in, where it isn't the one we send it (St. Brendan's LIS is 2.3.1).
VERSIONS = {ST_BRENDANS: "2.3.1"}
# Meridian names its medical director in OBX-25 (LRI); the 2.3 interfaces have no place for one.
DIRECTORS = {"Meridian Reference Laboratories": Director("1604827539", "Okafor", "Adaeze", "N")}
# The visits whose results come back (DemoSendOut.results), by that name.
RESULT_KEYS = {v.results: key for v, key in zip(DEMO_SENDOUTS, DEMO_SENDOUT_KEYS, strict=True) if v.results}

# --- What the labs report ------------------------------------------------------------------------------

UCUM = {
    "mg/dL": "milligram per deciliter",
    "mmol/L": "millimole per liter",
    "g/dL": "gram per deciliter",
    "U/L": "unit per liter",
    "ng/mL": "nanogram per milliliter",
    "mL/min/{1.73_m2}": "milliliter per minute per 1.73 square meter",
}


def _meridian(
    loinc: str, name: str, value: str, unit: str, range_: str, flag: str, code: str, short: str, **more: object
) -> Obs:
    """A Meridian row: LOINC with its long name, UCUM unit with its text, the lab's own code."""
    return Obs.nm(loinc, name, value, unit, unit_text=UCUM.get(unit, ""), range=range_, flag=flag, lab_code=code,
                  lab_name=short, **more)  # fmt: skip


LIPIDS = (
    _meridian("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "246", "mg/dL", "100-199", "H", "001065",
              "Cholesterol, Total"),
    _meridian("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "188", "mg/dL", "0-149", "H", "001172",
              "Triglycerides"),
    _meridian("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "36", "mg/dL", ">39", "L", "011817",
              "HDL Cholesterol"),
    _meridian("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "172", "mg/dL",
              "0-99", "H", "012059", "LDL Chol Calc (NIH)"),
)  # fmt: skip
PSA = (
    _meridian("2857-1", "Prostate specific Ag [Mass/volume] in Serum or Plasma", "6.8", "ng/mL", "0.0-4.0", "H",
              "010322", "Prostate Specific Ag",
              notes=("Roche ECLIA methodology.",
                     "Values obtained with different assay methods or kits cannot be used interchangeably.")),
    Obs.tx("", "PSA interpretation", "PSA above the reference interval for age.\n"
           "Interpret with the digital rectal exam, prostate volume and prior values;\n"
           "consider a repeat in 6 to 8 weeks before referral.\n\n"
           "  Reference: AUA/SUO guideline, early detection of prostate cancer (2023).",
           lab_code="010323", lab_name="PSA interpretation"),
)  # fmt: skip
CMP_CRITICAL = (
    _meridian("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "118", "mg/dL", "70-99", "H", "001032", "Glucose"),
    _meridian("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "46", "mg/dL", "8-27", "H", "001040", "BUN"),
    _meridian("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "2.38", "mg/dL", "0.76-1.27", "H", "001370",
              "Creatinine"),
    _meridian("98979-8", "Glomerular filtration rate/1.73 sq M.predicted by Creatinine-based formula (CKD-EPI 2021)",
              "29", "mL/min/{1.73_m2}", ">59", "L", "100791", "eGFR"),
    _meridian("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "136", "mmol/L", "134-144", "N", "001198", "Sodium"),
    _meridian("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "6.9", "mmol/L", "3.5-5.2", "HH", "001180",
              "Potassium", notes=("Critical value. No visible hemolysis; repeated and confirmed.",)),
    _meridian("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "104", "mmol/L", "96-106", "N", "001206",
              "Chloride"),
    _meridian("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "18", "mmol/L", "20-29", "L",
              "001578", "Carbon Dioxide, Total"),
    _meridian("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "9.1", "mg/dL", "8.6-10.2", "N", "001016",
              "Calcium"),
    _meridian("2885-2", "Protein [Mass/volume] in Serum or Plasma", "6.9", "g/dL", "6.0-8.5", "N", "001073",
              "Protein, Total"),
    _meridian("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "4.0", "g/dL", "3.8-4.9", "N", "001081",
              "Albumin"),
    _meridian("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "0.5", "mg/dL", "0.0-1.2", "N", "001099",
              "Bilirubin, Total"),
    _meridian("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "82", "U/L", "44-121",
              "N", "001107", "Alkaline Phosphatase"),
    _meridian("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "21", "U/L",
              "0-40", "N", "001123", "AST (SGOT)"),
    _meridian("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "19", "U/L", "0-44",
              "N", "001545", "ALT (SGPT)"),
)  # fmt: skip

# Bayside's CBC rows: its code, LOINC, name, free-text unit, range (2.3: its own code first, no UCUM).
CBC_ROWS = (
    ("WBC", "6690-2", "WBC", "K/uL", "4.0-10.5"),
    ("RBC", "789-8", "RBC", "M/uL", "3.80-5.80"),
    ("HGB", "718-7", "HEMOGLOBIN", "g/dL", "12.0-17.0"),
    ("HCT", "4544-3", "HEMATOCRIT", "%", "36.0-50.0"),
    ("MCV", "787-2", "MCV", "fL", "80-100"),
    ("MCH", "785-6", "MCH", "pg", "27.0-33.0"),
    ("MCHC", "786-4", "MCHC", "g/dL", "32.0-36.0"),
    ("RDW", "788-0", "RDW", "%", "11.5-15.0"),
    ("PLT", "777-3", "PLATELETS", "K/uL", "150-400"),
    ("NEUT", "770-8", "NEUTROPHILS %", "%", "40-74"),
    ("LYMPH", "736-9", "LYMPHOCYTES %", "%", "14-46"),
    ("MONO", "5905-5", "MONOCYTES %", "%", "4-12"),
    ("EOS", "713-8", "EOSINOPHILS %", "%", "0-7"),
    ("BASO", "706-2", "BASOPHILS %", "%", "0-2"),
)


def _cbc(values: str, flags: dict[str, str] | None = None) -> tuple[Obs, ...]:
    """Bayside's CBC: ``values`` in CBC_ROWS order, space-separated; ``flags`` by its code."""
    flags = flags or {}
    numbers = values.split()
    assert len(numbers) == len(CBC_ROWS)
    return tuple(
        Obs.nm(loinc, name, value, unit, range=range_, flag=flags.get(code, ""), lab_code=code, lab_name=name)
        for (code, loinc, name, unit, range_), value in zip(CBC_ROWS, numbers, strict=True)
    )


CBC_LOW_PLATELETS = _cbc("7.4 4.61 13.9 41.2 89 30.2 33.7 13.1 96 61 28 7 3 1", {"PLT": "L"})
CBC_CORRECTED = tuple(
    replace(row, value="214", flag="", status="C",
            notes=("Corrected: platelet clumps seen on smear review; recounted on a citrate tube. "
                   "Previously reported 96 K/uL.",))
    if row.lab_code == "PLT" else row
    for row in CBC_LOW_PLATELETS
)  # fmt: skip
CBC_IRON_DEFICIENT = _cbc(
    "6.1 4.02 10.1 32.6 76 25.1 31.0 16.8 388 58 31 8 2 1", {"HGB": "L", "HCT": "L", "MCV": "L", "MCH": "L",
                                                           "MCHC": "L", "RDW": "H"}
)  # fmt: skip
CBC_NORMAL = _cbc("5.8 4.70 14.2 42.5 90 30.2 33.4 12.9 251 57 33 7 2 1")

CULTURE = ("630-4", "Bacteria identified in Urine by Culture", "MIC700", "Culture, urine")
CULTURE_PRELIMINARY = (
    Obs.st(CULTURE[0], CULTURE[1], ">100,000 CFU/mL gram-negative rods; identification and susceptibility to follow.",
           lab_code=CULTURE[2], lab_name=CULTURE[3], status="P"),
)  # fmt: skip
CULTURE_FINAL = (
    Obs.cwe(CULTURE[0], CULTURE[1], "112283007", "Escherichia coli", flag="A", lab_code=CULTURE[2],
            lab_name=CULTURE[3], notes=("Colony count: >100,000 CFU/mL.",)),
    Obs.tx("", "Susceptibility (MIC)",
           "Escherichia coli            MIC (ug/mL)   Interpretation\n"
           "  Ampicillin                >=32          R\n"
           "  Cefazolin                 <=4           S\n"
           "  Ciprofloxacin             <=0.25        S\n"
           "  Nitrofurantoin            <=16          S\n"
           "  Trimethoprim/Sulfa        >=320         R",
           lab_code="MIC710", lab_name="Susceptibility (MIC)"),
)  # fmt: skip


@dataclass(frozen=True)
class Reply:
    """One message a demo lab sends back, about the visit ``visit`` names (DemoSendOut.results)."""

    visit: str
    hours_ago: float
    observations: tuple[Obs, ...]
    status: str = "F"
    notes: tuple[str, ...] = ()
    kind: str = ""  # "identity" (the lab keyed the date of birth wrong), "unknown" (no order of ours), "resend"


REPLIES = (
    Reply("culture", 14, CULTURE_PRELIMINARY, status="P"),
    Reply("corrected", 6, CBC_LOW_PLATELETS),
    Reply("identity", 5, CBC_IRON_DEFICIENT, kind="identity"),
    Reply("identity", 4.5, CBC_NORMAL, kind="unknown"),
    Reply("lipids", 3, LIPIDS, notes=("Fasting: yes (12 hours, per the requisition).",)),
    Reply("lipids", 2.5, LIPIDS, kind="resend"),
    Reply("psa", 2, PSA, notes=("Specimen received refrigerated; processed within stability limits.",)),
    Reply("culture", 1.5, CULTURE_FINAL, notes=("Specimen: clean-catch midstream urine, received refrigerated.",)),
    Reply("corrected", 0.75, CBC_CORRECTED, status="C"),
    Reply("critical", 0.25, CMP_CRITICAL),
)
# Someone else's patient, whose result Bayside sent us under keys that are no order of ours.
STRANGER = PatientAs(family="Delgado", given="Marisol", middle="", birth_date=date(1979, 6, 12), sex="F", mrn="")


# --- Playing them through the intake -------------------------------------------------------------------------


class _IntakeTimeline(_DeskTimeline):
    """The desk's clock over what the intake writes too: the messages, the results, their events."""

    STAMPED = (
        *(
            (model, (*names, "final_at")) if model is SendOut else (model, names)
            for model, names in _DeskTimeline.STAMPED
        ),
        (InboundMessage, ("received_at", "processed_at")),
        (InboundMessageEvent, ("at",)),
        (Result, ("status_changed_at", "entered_at", "released_at")),
        (ResultEvent, ("at",)),
        (CriticalCallEvent, ("at",)),
    )
    APPEND_ONLY = (
        *_DeskTimeline.APPEND_ONLY,
        "lab.InboundMessageEvent:append_only",
        "lab.ResultEvent:append_only",
        "lab.CriticalCallEvent:append_only",
    )


def _keyed_wrong(born: date) -> date:
    """A date of birth as a lab mistypes it: day and month swapped, else the year one off."""
    if born.day <= 12 and born.day != born.month:
        return born.replace(month=born.day, day=born.month)
    return born.replace(year=born.year - 1, day=min(born.day, 28))


def _unknown_keys(send_out: SendOut) -> tuple[str, str]:
    """A placer number and an accession written like ours (a valid check digit) that no order has."""
    placer = send_out.placer_number
    base = int(placer) if placer.isdigit() else 0
    for n in range(40_000, 40_100):
        unknown = (f"{base + n:0{len(placer)}d}", format_accession(base + n))
        if not SendOut.objects.filter(Q(placer_number=unknown[0]) | Q(order__specimen__accession=unknown[1])).exists():
            return unknown
    raise AssertionError(f"no placer number or accession free near {placer}")


def _deliver(text: str, lab: ReferenceLab, control_id: str) -> list[Received]:
    """As the lab's transport brings it: MLLP bytes to the listener, or a file in its folder, imported."""
    if lab.transport == ReferenceLab.Transport.FOLDER:
        INBOX.mkdir(parents=True, exist_ok=True)
        path = INBOX / f"ORU_{control_id}.hl7"
        path.write_bytes(text.encode("utf-8"))
        return receive(path.read_bytes(), channel=IntakeChannel.FILE, source=str(path))
    return receive(text.encode("utf-8"), channel=IntakeChannel.MLLP, source=f"{lab.name} interface (demo)")


def seed_sendout_results(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    """Play what the demo's reference labs send back through the intake (see the module docstring)."""
    ours = InboundMessage.objects.filter(send_out__order__handoff__uuid__in=RESULT_KEYS.values())
    if ours.exists():
        stdout.write("Inbound results: the demo labs' messages are already there; none added.")
        return
    send_outs = {
        name: SendOut.objects.select_related(
            "reference_lab__profile", "order__handoff__patient", "order__handoff__ordering_clinician",
            "order__specimen", "order__test__specimen_type", "orderable",
        ).filter(order__handoff__uuid=key).first()
        for name, key in RESULT_KEYS.items()
    }  # fmt: skip
    if not all(send_outs.values()):
        stdout.write(
            "Inbound results: the demo's sent send-outs aren't there (seed_sendouts skipped them); none added."
        )
        return
    now = timezone.now()
    timeline = _IntakeTimeline(now)
    received: list[Received] = []
    last: str = ""
    for reply in sorted(REPLIES, key=lambda r: -r.hours_ago):
        send_out = send_outs[reply.visit]
        assert send_out is not None
        lab = send_out.reference_lab
        patient = send_out.order.handoff.patient
        timeline.now = now - timedelta(hours=reply.hours_ago)
        if reply.kind == "resend":
            text = last  # the interface missed our ACK and sends the same message again
            timeline.apply()  # the copy's "already received at" names the original's demo time
        else:
            keys: dict[str, object] = {}
            if reply.kind == "identity":
                keys["identity_override"] = PatientAs(birth_date=_keyed_wrong(patient.date_of_birth))
            elif reply.kind == "unknown":
                keys["placer_override"], keys["accession_override"] = _unknown_keys(send_out)
                keys["identity_override"] = STRANGER
            text = oru_for(
                send_out,
                observations=reply.observations,
                status=reply.status,
                at=timeline.now,
                notes=reply.notes,
                version=VERSIONS.get(lab.name),
                director=DIRECTORS.get(lab.name),
                **keys,  # type: ignore[arg-type]
            )
        with timeline.step():
            got = _deliver(text, lab, control_id=text.split("|", 10)[9])
        received.extend(got)
        last = text
    timeline.apply()
    # A critical call opened with its result: moved with it, so it is due when the ladder says.
    for call in CriticalCall.objects.filter(result__inbound__in=[r.message.pk for r in received]).select_related(
        "result__inbound"
    ):
        assert call.result.inbound is not None
        shift = call.opened_at - call.result.inbound.received_at
        CriticalCall.objects.filter(pk=call.pk).update(
            opened_at=F("opened_at") - shift,
            due_at=F("due_at") - shift,
            status_changed_at=F("status_changed_at") - shift,
        )
    stdout.write(f"Inbound results: {summary(received)}.")
