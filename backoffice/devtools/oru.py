"""What a reference lab would send back: ORU^R01 results for one of our send-outs, in that lab's dialect.

A developer tool (the demo seed, the intake benchmark): it writes the message a reference lab's
interface would send for a send-out we made, so that it can be played through the real intake
(``lab.sendouts.intake.receive``), read, matched and filed exactly like the corpus in
tests/lab/hl7/corpus/ is. Nothing in the product imports it.

The API, kept stable for the seed and the benchmark::

    from backoffice.devtools.oru import Director, Obs, PatientAs, oru_for

    text = oru_for(
        send_out,                      # a lab.models.SendOut (its order, specimen, patient, lab and profile are read)
        observations=[
            Obs.nm("2093-3", "Cholesterol, total", "236", "mg/dL", range="100-199", flag="H"),
            Obs.sn("2339-0", "Glucose", ">=", "500", "mg/dL", flag="HH"),
            Obs.cwe("630-4", "Urine culture", "264868006", "No growth"),
            Obs.tx("22637-3", "Final diagnosis", "A. SKIN, BIOPSY:\\n   - NEVUS."),
        ],
        status="F",                    # OBR-25 and every row's OBX-11 unless the row says otherwise: P, F, C, X
        control_id=None,               # MSH-10; default: unique, from the time and a random part (20 characters)
        at=None,                       # when the lab reported (MSH-7, ORC-9, OBR-22, OBX-19); default now
        notes=(),                      # NTE after the OBR: comments on the whole report
        identity_override=None,        # PatientAs(...): what PID says instead of the order's patient
        accession_override=None,       # another accession where the profile puts it (ORC-4, OBR-18, SPM-2 ...)
        placer_override=None,          # another placer order number where the profile puts it
        filler=None,                   # the lab's own order number; default derived from the send-out
        version=None,                  # MSH-12: "2.5.1", "2.3.1" or "2.3"; default the lab's hl7_version
        director=None,                 # Director(...): OBX-25 on 2.5.1 (the performing lab's medical director)
    ) -> str                           # ER7 text, CR segment ends, ending with a CR

``Obs`` is one observation (OBX), made with ``Obs.nm``, ``Obs.sn``, ``Obs.cwe``, ``Obs.tx`` or
``Obs.st``; every field can be given by name, and ``dataclasses.replace`` makes a corrected row
(``replace(row, value="5.9", status="C", notes=("Corrected: was 6.8",))``). ``PatientAs`` overrides
parts of the PID (``None`` keeps the order's patient's; ``mrn=""`` leaves our MRN out).

Where things go follows the send-out's reference lab and its dialect profile
(``ReferenceLab.profile.as_profile()``, lab.hl7.profiles):

- MSH-3/MSH-4 are the ids the lab is recognised by (``their_application``/``their_facility``, with its
  CLIA as MSH-4's universal id on 2.5.1), MSH-5/MSH-6 ours, MSH-11 the lab's processing id, MSH-12 the
  version; MSH-9 ``ORU^R01^ORU_R01`` on 2.5.1, ``ORU^R01`` before; MSH-18 ``UNICODE UTF-8`` when any
  text is not ASCII.
- Our MRN at the profile's first MRN place (PID-3, PID-2 or PID-4, with the place's identifier type and
  assigning authority when it names them). When that place is not PID-3, PID-3 holds the lab's own
  patient id typed MR under the lab's facility, as a hospital or legacy lab sends it.
- The placer number, our accession and the lab's filler number at every place the profile lists for
  them (``ORC-2``, ``OBR-18``, ``SPM-2`` ...). On 2.5.1 they are EIs with their namespace (ours:
  ``our_application`` and the clinic's OID, as the ORM sent them; the filler's: the lab's); before
  2.5 plain ids. An ORC is written only when the profile reads something from it (the legacy 2.3
  style has none); then ORC-1 RE, ORC-9 the report time and ORC-12 the ordering provider by NPI.
- OBR-4 the test (LOINC and the lab's code: the LOINC first on 2.5.1, the lab's code first before),
  OBR-7 the collection time, OBR-16 the ordering provider, OBR-22 the report time, OBR-25 ``status``.
- OBX rows: NM with units (UCUM code and text on 2.5.1), range and flag; SN as comparator^number or
  number^separator^number; CWE (CE before 2.5) code^text^system with an alternate triplet; ST; TX one
  row per line under the same OBX-3/OBX-4 (blank lines as empty OBX-5), which the reader merges back.
  OBX-11 the row's status, OBX-14 the collection time; the performing lab in OBX-23/24 (name with its
  CLIA, the lab's address) and OBX-25 (``director``) on 2.5.1, in OBX-15 before. NTE after a row are
  its notes.
- SPM on 2.5.1: SPM-2 our accession and the lab's specimen id, SPM-17 the collection time.

Texts go through ``lab.hl7.build.escape`` (ST positions) and ``lab.hl7.er7`` (TX lines, FT notes);
times through ``lab.hl7.build.timestamp``.
"""

from __future__ import annotations

import re
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from lab.hl7 import er7
from lab.hl7.build import HierarchicDesignator, escape, is_valid_npi, timestamp
from lab.hl7.profiles import CLINIC_OID, MrnPlace
from lab.models import ReferenceLab, SendOut

__all__ = ["VERSIONS", "Director", "Obs", "PatientAs", "oru_for"]

VERSIONS = ("2.5.1", "2.3.1", "2.3")
VALUE_TYPES = ("NM", "SN", "CWE", "ST", "TX")
STATUSES = ("P", "F", "C", "X")  # what OBR-25 says of the whole report (OBX-11 may say more: R, S, I, W ...)
SN_COMPARATORS = ("", "<", ">", "<=", ">=", "=", "<>")
SN_SEPARATORS = ("", "-", "+", "/", ".", ":")
CLIA_AUTHORITY = "CLIA&2.16.840.1.113883.4.7&ISO"  # CMS's CLIA OID, as LRI names a performing lab
NPI_AUTHORITY = "NPI&2.16.840.1.113883.4.6&ISO"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_OID = re.compile(r"\d+(\.\d+)+")
_STATE_ZIP = re.compile(r"([A-Z]{2}) (\d{5}(-\d{4})?)")
# The fields this writer fills itself: a profile can't send a key there.
_OWN_FIELDS = {
    "ORC": {1, 9, 12},
    "OBR": {1, 4, 7, 16, 22, 25},
    "SPM": {1, 4, 17},
}


@dataclass(frozen=True)
class Obs:
    """One observation (OBX) as the lab reports it; see the classmethods for each value type.

    ``value`` is what OBX-5 holds, as text: NM and SN the number as the lab writes it (``0.90`` keeps
    its precision), CWE the code, ST the text, TX the lines of the narrative (``\\n`` between them).
    """

    value_type: str
    loinc: str
    name: str
    value: str = ""
    unit: str = ""  # UCUM code, or the lab's free-text unit
    unit_text: str = ""  # its name, written beside the code on 2.5.1
    range: str = ""  # OBX-7 as text: "70-99", "<200", ">39"
    flag: str = ""  # OBX-8: L, H, LL, HH, A, AA, N ("" for none)
    comparator: str = ""  # SN: <, >, <=, >=, =, <>
    separator: str = ""  # SN: -, +, /, ., : between value and value2
    value2: str = ""  # SN's second number
    code_text: str = ""  # CWE: the code's text
    code_system: str = "SCT"  # CWE: its coding system
    alt_code: str = ""  # CWE: the alternate triplet (a lab's local code)
    alt_text: str = ""
    alt_system: str = ""
    lab_code: str = ""  # OBX-3's local triplet: the lab's own code and name
    lab_name: str = ""
    status: str = ""  # OBX-11; "" takes the message's status
    sub_id: str = ""  # OBX-4
    notes: tuple[str, ...] = ()  # NTE after the row

    def __post_init__(self) -> None:
        if self.value_type not in VALUE_TYPES:
            raise ValueError(f"value type {self.value_type!r}: one of {', '.join(VALUE_TYPES)}")
        if not (self.loinc or self.lab_code):
            raise ValueError("an observation needs its LOINC or the lab's code (OBX-3)")
        if self.value_type in ("NM", "SN") and self.value and not _NUMBER.fullmatch(self.value):
            raise ValueError(f"{self.value!r} is not a number as HL7 writes one")
        if self.value_type == "SN":
            if self.comparator not in SN_COMPARATORS or self.separator not in SN_SEPARATORS:
                raise ValueError(f"SN {self.comparator!r}/{self.separator!r}: not an SN comparator or separator")
            if bool(self.separator) != bool(self.value2) or (self.value2 and not _NUMBER.fullmatch(self.value2)):
                raise ValueError("an SN range or ratio needs its separator and its second number")
        if self.value_type == "CWE" and self.value and not self.code_system:
            raise ValueError("a coded value needs its coding system")
        object.__setattr__(self, "notes", tuple(self.notes))

    @classmethod
    def nm(cls, loinc: str, name: str, value: str, unit: str = "", **more: object) -> Obs:
        """A number: ``Obs.nm("2345-7", "Glucose", "112", "mg/dL", range="70-99", flag="H")``."""
        return cls("NM", loinc, name, value, unit, **more)  # type: ignore[arg-type]

    @classmethod
    def sn(cls, loinc: str, name: str, comparator: str, value: str, unit: str = "", **more: object) -> Obs:
        """A structured number: ``<^0.5`` is ``Obs.sn(..., "<", "0.5")``; a titer ``^1^:^160`` is
        ``Obs.sn(..., "", "1", separator=":", value2="160")``."""
        return cls("SN", loinc, name, value, unit, comparator=comparator, **more)  # type: ignore[arg-type]

    @classmethod
    def cwe(cls, loinc: str, name: str, code: str, text: str, system: str = "SCT", **more: object) -> Obs:
        """A coded value: ``Obs.cwe("630-4", "Urine culture", "264868006", "No growth")``."""
        return cls("CWE", loinc, name, code, code_text=text, code_system=system, **more)  # type: ignore[arg-type]

    @classmethod
    def st(cls, loinc: str, name: str, text: str, **more: object) -> Obs:
        """A short text (one row)."""
        return cls("ST", loinc, name, text, **more)  # type: ignore[arg-type]

    @classmethod
    def tx(cls, loinc: str, name: str, text: str, **more: object) -> Obs:
        """A narrative: one OBX row per line of ``text``, leading spaces and blank lines kept."""
        return cls("TX", loinc, name, text, **more)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PatientAs:
    """What the lab's PID says instead of the order's patient; ``None`` keeps the patient's own."""

    family: str | None = None
    given: str | None = None
    middle: str | None = None
    birth_date: date | None = None
    sex: str | None = None
    mrn: str | None = None  # "" sends no MRN of ours at all


@dataclass(frozen=True)
class Director:
    """The performing lab's medical director (OBX-25 on 2.5.1), by NPI."""

    npi: str
    family: str
    given: str
    middle: str = ""
    degree: str = "MD"

    def __post_init__(self) -> None:
        if not is_valid_npi(self.npi):
            raise ValueError(f"{self.npi!r} is not an NPI")


# --- Pieces ------------------------------------------------------------------------------------------


def _hd(namespace: str, oid: str = "", *, separator: str = er7.COMPONENT) -> str:
    return HierarchicDesignator(namespace, oid, "ISO" if oid else "").encode(separator)


def _authority(authority: str, *, v251: bool) -> str:
    """A CX-4 assigning authority as subcomponents: a namespace (with our OID when it is ours, on
    2.5.1), or an OID as the universal id."""
    if not authority:
        return ""
    if _OID.fullmatch(authority):
        return _hd("", authority, separator=er7.SUBCOMPONENT)
    oid = CLINIC_OID if v251 and authority.upper() == "CLINIC" else ""
    return _hd(authority, oid, separator=er7.SUBCOMPONENT)


def _cx(identifier: str, place: MrnPlace, *, v251: bool) -> str:
    return er7.components(escape(identifier), "", "", _authority(place.authority, v251=v251), escape(place.type_code))


def _lab_patient_id(lab: ReferenceLab, person: str) -> str:
    """The lab's own number for the patient it reports on: stable for one person at one lab, like a hospital MRN."""
    return f"{lab.their_facility[:1].upper() or 'L'}{zlib.crc32(f'{lab.pk}:{person}'.encode()) % 10_000_000:07d}"


def _xcn(npi: str, family: str, given: str, middle: str = "", degree: str = "", *, v251: bool) -> str:
    if not npi:
        return er7.components("", escape(family), escape(given), escape(middle))
    if not v251:
        return er7.components(escape(npi), escape(family), escape(given), escape(middle))
    return er7.components(
        escape(npi), escape(family), escape(given), escape(middle), "", "", escape(degree), "", NPI_AUTHORITY,
        "L", "", "", "NPI",
    )  # fmt: skip


def _address(text: str) -> str:
    """The lab's one-line address as an XAD: ``street^other^city^state^zip`` when it reads that way."""
    parts = [p.strip() for p in " ".join(text.split()).split(",") if p.strip()]
    if len(parts) >= 3 and _STATE_ZIP.fullmatch(parts[-1]):
        match = _STATE_ZIP.fullmatch(parts[-1])
        assert match is not None
        street, *other, city = parts[:-1]
        return er7.components(escape(street), escape(", ".join(other)), escape(city), match[1], match[2], "", "B")
    return er7.components(escape(" ".join(parts)), "", "", "", "", "", "B") if parts else ""


def _number(value: str) -> str:
    try:
        Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    return value


def _coded(code: str, text: str, system: str, alt: tuple[str, str, str] = ("", "", "")) -> str:
    return er7.components(escape(code), escape(text), escape(system), *(escape(part) for part in alt))


class _Keys:
    """Where the profile wants the placer number, our accession and the lab's number, by field."""

    def __init__(self) -> None:
        self.by_field: dict[tuple[str, int], dict[int, tuple[str, str]]] = {}

    def put(self, segment: str, number: int, component: int, identifier: str, namespace: str) -> None:
        if number in _OWN_FIELDS.get(segment, set()):
            raise ValueError(f"{segment}-{number} holds something else in an ORU^R01: no key can be written there")
        components = self.by_field.setdefault((segment, number), {})
        known = components.get(component)
        if known is not None and known[0] != identifier:
            raise ValueError(f"{segment}-{number}.{component} is asked to hold two keys")
        components[component] = (identifier, namespace)

    def segments(self) -> set[str]:
        return {segment for segment, _ in self.by_field}

    def fields(self, segment: str, *, v251: bool) -> dict[int, str]:
        """Each keyed field of ``segment`` encoded: an EI with its namespace on 2.5.1 when it is the
        field's only component (an EIP's parts, in SPM-2, as subcomponents), plain ids otherwise."""
        out: dict[int, str] = {}
        for (seg, number), components in self.by_field.items():
            if seg != segment:
                continue
            top = max(components)
            parts = []
            for c in range(1, top + 1):
                identifier, namespace = components.get(c, ("", ""))
                if not identifier:
                    parts.append("")
                elif segment == "SPM" and v251:
                    parts.append(
                        er7.components(
                            escape(identifier),
                            namespace.replace(er7.COMPONENT, er7.SUBCOMPONENT),
                            separator=er7.SUBCOMPONENT,
                        )
                    )
                elif top == 1 and v251:
                    parts.append(er7.components(escape(identifier), namespace))
                else:
                    parts.append(escape(identifier))
            out[number] = er7.components(*parts)
        return out


def _fields(count: int, values: dict[int, str]) -> list[str]:
    """Fields 1..count of a segment from {field number: encoded value}."""
    return [values.get(n, "") for n in range(1, count + 1)]


# --- The message ------------------------------------------------------------------------------------


def oru_for(
    send_out: SendOut,
    *,
    observations: Sequence[Obs],
    status: str = "F",
    control_id: str | None = None,
    at: datetime | None = None,
    notes: Sequence[str] = (),
    identity_override: PatientAs | None = None,
    accession_override: str | None = None,
    placer_override: str | None = None,
    filler: str | None = None,
    version: str | None = None,
    director: Director | None = None,
) -> str:
    """The ORU^R01 ``send_out``'s reference lab would send with these observations (see the module
    docstring for every field). ValueError for what no lab could send (an unknown status or version,
    a profile place the writer can't fill)."""
    if status not in STATUSES:
        raise ValueError(f"OBR-25 {status!r}: one of {', '.join(STATUSES)}")
    if not observations:
        raise ValueError("a result message needs at least one observation")
    lab = send_out.reference_lab
    version = version or lab.hl7_version
    if version not in VERSIONS:
        raise ValueError(f"HL7 {version!r}: this writer speaks {', '.join(VERSIONS)}")
    v251 = version == "2.5.1"
    profile = lab.profile.as_profile()
    order = send_out.order
    patient = order.handoff.patient
    clinician = order.handoff.ordering_clinician
    specimen = order.specimen
    if specimen is None:
        raise ValueError(f"placer {send_out.placer_number} has no specimen: nothing was sent to report on")
    at = timezone.localtime(at or timezone.now())
    collected = timezone.localtime(specimen.collected_at) if specimen.collected_at else at
    control_id = control_id or f"{at:%y%m%d%H%M%S}{uuid.uuid4().hex[:8]}"
    placer = send_out.placer_number if placer_override is None else placer_override
    accession = specimen.accession if accession_override is None else accession_override
    filler = filler or f"{lab.their_application[:3].upper()}{at:%y}-{send_out.pk:07d}"
    who = identity_override or PatientAs()

    # MSH
    their_facility = _hd(lab.their_facility)
    if v251 and lab.clia_number:
        their_facility = er7.components(escape(lab.their_facility), escape(lab.clia_number), "CLIA")
    message_type = "ORU^R01^ORU_R01" if v251 else "ORU^R01"

    # PID: our MRN where the profile looks first; the lab's own id in PID-3 when ours is elsewhere.
    mrn = patient.mrn if who.mrn is None else who.mrn
    place = profile.mrn[0]
    pid: dict[int, str] = {1: "1"}
    if mrn:
        pid[int(place.field[4:])] = _cx(mrn, place, v251=v251)
    given, *middles = (who.given if who.given is not None else patient.given_name).split() or [""]
    middle = who.middle if who.middle is not None else " ".join(middles)
    family = who.family if who.family is not None else patient.family_name
    pid[5] = er7.components(escape(family), escape(given), escape(middle), "", "", "", "L" if v251 else "")
    born = who.birth_date if who.birth_date is not None else patient.date_of_birth
    if place.field != "PID-3":
        own = MrnPlace("PID-3", "MR", lab.their_facility)
        pid[3] = _cx(_lab_patient_id(lab, f"{family}|{given}|{born}"), own, v251=False)
    pid[7] = born.strftime("%Y%m%d")
    pid[8] = escape(who.sex if who.sex is not None else patient.sex)

    # The keys, where the profile reads them.
    keys = _Keys()
    ours = _hd(lab.our_application, CLINIC_OID)
    theirs = _hd(lab.their_application)
    for key, value, namespace in (("placer", placer, ours), ("accession", accession, ours), ("filler", filler, theirs)):
        for segment, number, component in profile.places(key):
            if value:
                keys.put(segment, number, component, value, namespace)
    provider = _xcn(clinician.npi, clinician.last_name, clinician.first_name, v251=v251)
    segments = [er7.segment("PID", *_fields(8, pid))]
    if "ORC" in keys.segments():
        orc = keys.fields("ORC", v251=v251) | {1: "RE", 9: timestamp(at), 12: provider}
        segments.append(er7.segment("ORC", *_fields(12, orc)))
    test = order.test
    lab_test = (escape(send_out.orderable.lab_code), escape(send_out.orderable.lab_name), "L")
    loinc_test = (escape(test.loinc_code), escape(test.name), "LN") if test.loinc_code else ("", "", "")
    service = er7.components(*(loinc_test + lab_test if v251 else lab_test + loinc_test))
    obr = keys.fields("OBR", v251=v251) | {
        1: "1",
        4: service,
        7: timestamp(collected),
        16: provider,
        22: timestamp(at),
        25: status,
    }
    segments.append(er7.segment("OBR", *_fields(25, obr)))
    segments.extend(
        er7.segment("NTE", str(n), "L", er7.escape_formatted(note)) for n, note in enumerate(notes, start=1)
    )

    performing: dict[int, str] = {}
    if v251:
        performing[23] = er7.components(
            escape(lab.name), "L", "", "", "", CLIA_AUTHORITY, "XX", "", "", escape(lab.clia_number)
        )
        performing[24] = _address(lab.address)
        if director is not None:
            performing[25] = _xcn(
                director.npi, director.family, director.given, director.middle, director.degree, v251=True
            )
    else:
        performing[15] = er7.components(escape(lab.their_facility), escape(lab.name), "L")
    set_id = 0
    for obs in observations:
        # OBX-3: the LOINC first on 2.5.1, the lab's own code first before (either alone when it is all there is).
        code = (escape(obs.loinc), escape(obs.name), "LN") if obs.loinc else ()
        local = (escape(obs.lab_code), escape(obs.lab_name or obs.name), "L") if obs.lab_code else ()
        identifier = er7.components(*(code + local if v251 else local + code))
        unit = escape(obs.unit)
        if v251 and obs.unit and obs.unit_text:
            unit = er7.components(escape(obs.unit), escape(obs.unit_text), "UCUM")
        row_status = obs.status or status
        for value_type, value in _values(obs, v251=v251):
            set_id += 1
            obx = {
                1: str(set_id),
                2: value_type,
                3: identifier,
                4: escape(obs.sub_id),
                5: value,
                6: unit if value_type in ("NM", "SN") else "",
                7: escape(obs.range),
                8: escape(obs.flag),
                11: row_status,
                14: timestamp(collected),
                **performing,
            }
            if v251:
                obx[19] = timestamp(at)
            segments.append(er7.segment("OBX", *_fields(25, obx)))
        segments.extend(
            er7.segment("NTE", str(n), "L", er7.escape_formatted(note)) for n, note in enumerate(obs.notes, start=1)
        )
    if v251:
        kind = test.specimen_type
        spm = {1: "1", 4: _coded(kind.snomed_code, kind.name, "SCT"), 17: timestamp(collected)}
        keyed = keys.fields("SPM", v251=True)
        if 2 not in keyed and accession:  # every LRI result names its specimen
            keyed[2] = er7.components(
                er7.components(escape(accession), ours.replace(er7.COMPONENT, er7.SUBCOMPONENT), separator="&"),
                er7.components(escape(f"{filler}-1"), theirs.replace(er7.COMPONENT, er7.SUBCOMPONENT), separator="&"),
            )
        segments.append(er7.segment("SPM", *_fields(17, keyed | spm)))

    msh = [
        er7.ENCODING_CHARACTERS,
        _hd(lab.their_application),
        their_facility,
        _hd(lab.our_application),
        _hd(lab.our_facility),
        timestamp(at),
        "",
        message_type,
        escape(control_id),
        escape(lab.processing_id),
        version,
    ]
    if not all(text.isascii() for text in [*msh, *segments]):
        msh += [""] * 5 + ["UNICODE UTF-8"]  # MSH-13..17 empty, MSH-18
    return er7.SEGMENT_END.join([er7.segment("MSH", *msh), *segments]) + er7.SEGMENT_END


def _values(obs: Obs, *, v251: bool) -> list[tuple[str, str]]:
    """(OBX-2, OBX-5) of each row an observation is written in: one, or one per line of a narrative."""
    kind = obs.value_type
    if kind == "NM":
        return [("NM", _number(obs.value) if obs.value else "")]
    if kind == "SN":
        value = er7.components(
            escape(obs.comparator), _number(obs.value), escape(obs.separator), _number(obs.value2) if obs.value2 else ""
        )
        return [("SN", value)]
    if kind == "CWE":
        alt = (obs.alt_code, obs.alt_text, obs.alt_system)
        return [("CWE" if v251 else "CE", _coded(obs.value, obs.code_text, obs.code_system, alt) if obs.value else "")]
    if kind == "ST":
        return [("ST", escape(obs.value))]
    return [("TX", er7.escape(line)) for line in obs.value.split("\n")]
