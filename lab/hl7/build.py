"""What we send a reference lab: one ORM^O01 per order, and the ACKs we answer its messages with.

Plain frozen dataclasses in, ER7 text out (CR segment ends, ``|^~\\&`` delimiters); no Django here.
``lab.sendouts`` maps its rows to these dataclasses and stores what comes out.

The order follows HL7 v2.5.1 chapter 4 (4.4.1 ORM^O01; ORC 4.5.1, OBR 4.5.3) and the same fields in
v2.3, for labs whose interface is older:

- MSH-7 is ``now`` with its UTC offset (``20261202093012-0500``), MSH-9 ``ORM^O01^ORM_O01`` (2.5.1;
  2.3 has no message structure component: ``ORM^O01``), MSH-10 the caller's unique control id, MSH-11
  P or T, MSH-12 the version; MSH-18 ``UNICODE UTF-8`` when any text is not ASCII (the transports
  send UTF-8).
- PID-3 our MRN typed MR with our assigning authority (``M100001^^^CLINIC&2.16.840.1.113883.19.5&ISO^MR``),
  PID-5 family^given^middle, PID-7 date of birth, PID-8 sex.
- ORC-1 NW (CA to cancel), ORC-2 our placer order number, ORC-3 empty (the lab assigns the filler
  number), ORC-4 our accession as the placer group number, ORC-7 quantity/timing with the priority
  (S stat, R routine) in its sixth component, ORC-9 ``now``, ORC-12 the ordering provider by NPI
  (``NPI&2.16.840.1.113883.4.6&ISO`` as XCN-9 assigning authority, ``NPI`` as XCN-13 identifier type).
- OBR-2 = ORC-2, OBR-3 empty, OBR-4 ``LOINC^name^LN^lab code^lab text^L``, OBR-7 the collection time,
  OBR-10 the collector, OBR-11 ``O`` (specimen obtained by the ordering side), OBR-13 the clinical
  information (an ST holds 199 characters, escapes included: a longer text goes whole into an NTE
  after the OBR instead, NTE-2 P for placer, NTE-3 FT keeping its line breaks), OBR-15 the specimen source (``119297000&Blood specimen&SCT``: SPS-1 is itself coded,
  so its parts are subcomponents), OBR-16 = ORC-12, OBR-18 our accession again (a lab that echoes no
  ORC-4 echoes the placer fields), OBR-27 the priority like ORC-7.
- One DG1 per ICD-10-CM reason for the test, DG1-6 W (working). ICD-10-CM is ``I10C`` in 2.5.1: table
  0396 is maintained outside the published standard, ``I10`` there is WHO ICD-10 and ``I10C`` the US
  Clinical Modification, which is what the LOI 2.5.1 guide sends. v2.3 interfaces predate ``I10C``
  and name ICD-10-CM ``I10``, which is what we send them (also in DG1-2, required in 2.3). A lab that
  wants another name gets it per diagnosis (``Diagnosis.coding_system``).
- The lab's own code is the alternate triplet of OBR-4 with coding system ``L``: table 0396's "local
  general code" (``99zzz or L``), which 2.3 and 2.5.1 both define and the LOI guide uses for a
  performing lab's code. A lab whose spec names its local system (``99QDI``) sets ``lab_coding_system``.
- Ask-at-order-entry answers are OBX rows after the DG1s, OBX-11 ``O`` (order detail description
  only, no result). ORM has no SPM, and we send no result rows.

Every text we write is escaped (``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``; see ``lab.hl7.er7``), and a text too long for
its ST (199 characters escaped) is refused with a ``ValueError`` rather than cut: a name or an id
that long is a mapping bug, not something to send.

Why careful string building rather than hl7apy: hl7apy 1.3.5 is not lossless for the texts we send.
Its ST escaping leaves a backslash alone when it looks like the start of an escape sequence, so a
clinical note containing ``\\S\\`` goes out unchanged and the lab reads ``^``; assigning a text to a
composite field parses it as ER7, so a family name ``Smith & Sons`` is split at the ``&``; with
validation off (which is how it must run in production, since its strict mode wrongly rejects valid
ORMs, crs4/hl7apy #151) groups are written in insertion order, so ordering stays the builder's job
anyway. Building the text here keeps every field's position visible next to the rule it follows,
and leaves hl7apy as what the tests check our output with: an independent, strict reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from lab.hl7 import er7
from lab.hl7.er7 import COMPONENT, ENCODING_CHARACTERS, REPETITION, SEGMENT_END, SUBCOMPONENT

Version = Literal["2.5.1", "2.3"]
VERSIONS: tuple[str, ...] = ("2.5.1", "2.3")
ORDER_ACTIONS = ("NW", "CA")
PROCESSING_IDS = ("P", "T")
ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")
SEXES = ("F", "M", "O", "U", "A", "N")  # HL7 table 0001
ANSWER_TYPES = ("CE", "CWE", "ST", "TX", "FT", "NM", "DT", "TS")
MAX_CONTROL_ID = 20  # MSH-10 is ST(20) in 2.3 and 2.5.1
MAX_ST = 199  # an ST value, escape sequences included (2.5.1 2.A.74)
DEFAULT_VERSION: Version = "2.5.1"
UTF8_CHARSET = "UNICODE UTF-8"  # HL7 table 0211
_ANSWER_PATTERNS = {
    "NM": r"[+-]?(\d+(\.\d*)?|\.\d+)",
    "DT": r"\d{4}(\d{2}(\d{2})?)?",  # YYYY[MM[DD]]
    "TS": r"\d{4}(\d{2}){0,5}(\.\d{1,4})?([+-]\d{4})?",
}


@dataclass(frozen=True)
class HierarchicDesignator:
    """HL7 HD: a namespace id, and a universal id with its type (``CLINIC^2.16.840.1.113883.19.5^ISO``)."""

    namespace: str = ""
    universal_id: str = ""
    universal_id_type: str = ""  # ISO when universal_id is an OID

    def __post_init__(self) -> None:
        if bool(self.universal_id) != bool(self.universal_id_type):
            raise ValueError("an HD's universal id and its type go together (e.g. an OID and ISO)")

    @classmethod
    def iso(cls, namespace: str, oid: str) -> HierarchicDesignator:
        return cls(namespace, oid, "ISO")

    def encode(self, separator: str = COMPONENT) -> str:
        return er7.components(
            escape(self.namespace), escape(self.universal_id), escape(self.universal_id_type), separator=separator
        )

    def __bool__(self) -> bool:
        return bool(self.namespace or self.universal_id)


HD = HierarchicDesignator
NPI_AUTHORITY = HierarchicDesignator.iso("NPI", "2.16.840.1.113883.4.6")  # CMS's NPI registry OID


@dataclass(frozen=True)
class Endpoint:
    """One side of a message: MSH-3/MSH-4 when it sends, MSH-5/MSH-6 when it receives."""

    application: HierarchicDesignator
    facility: HierarchicDesignator = field(default_factory=HierarchicDesignator)


Party = Endpoint


@dataclass(frozen=True)
class PatientIds:
    """What PID says of the patient: our MRN under our assigning authority, the name, birth date, sex."""

    mrn: str
    assigning_authority: HierarchicDesignator
    family: str
    given: str
    birth_date: date
    sex: str  # HL7 table 0001: F, M, O, U, A, N
    middle: str = ""

    def __post_init__(self) -> None:
        _required(self.mrn, "the MRN")
        _required(self.family, "the patient's family name")
        if not self.assigning_authority:
            raise ValueError("PID-3 needs our assigning authority")
        if self.sex not in SEXES:
            raise ValueError(f"sex {self.sex!r} is not one of HL7 table 0001: {', '.join(SEXES)}")


@dataclass(frozen=True)
class Provider:
    """The ordering provider, identified by NPI (ORC-12 and OBR-16)."""

    npi: str
    family: str
    given: str
    middle: str = ""

    def __post_init__(self) -> None:
        if not is_valid_npi(self.npi):
            raise ValueError(f"{self.npi!r} is not an NPI (10 digits, Luhn check over 80840 + the first 9)")
        _required(self.family, "the provider's family name")


@dataclass(frozen=True)
class Collector:
    """Who collected the specimen (OBR-10): our staff id and name."""

    id: str
    family: str
    given: str = ""

    def __post_init__(self) -> None:
        _required(self.id, "the collector's id")


@dataclass(frozen=True)
class Diagnosis:
    """An ICD-10-CM reason for the test (DG1-3). ``coding_system`` overrides the version's default name."""

    code: str
    text: str = ""
    coding_system: str = ""

    def __post_init__(self) -> None:
        _required(self.code, "the diagnosis code")


@dataclass(frozen=True)
class SpecimenSource:
    """OBR-15's first component: the specimen type, coded (SNOMED CT by default)."""

    code: str
    text: str = ""
    coding_system: str = "SCT"


@dataclass(frozen=True)
class AskAtOrderEntry:
    """One ask-at-order-entry answer, sent as an OBX with OBX-11 O.

    ``value`` is the answer's text: for CE/CWE the answer's display text, with ``code`` and
    ``coding_system`` the coded answer (``Y^Yes^HL70136``); for NM a decimal number; for DT
    ``YYYY[MM[DD]]``; for TS digits with an optional UTC offset; ST, TX (lines become repetitions)
    and FT (lines become ``\\.br\\``) are free text.
    """

    question_code: str  # a LOINC, e.g. 49541-6 fasting status
    question: str
    value_type: str
    value: str
    code: str = ""
    coding_system: str = ""
    question_coding_system: str = "LN"

    def __post_init__(self) -> None:
        _required(self.question_code, "the question's code")
        if self.value_type not in ANSWER_TYPES:
            raise ValueError(f"value type {self.value_type!r} is not one we send: {', '.join(ANSWER_TYPES)}")
        if self.value_type in ("CE", "CWE") and not (self.code and self.coding_system):
            raise ValueError(f"a {self.value_type} answer needs its code and coding system")
        pattern = _ANSWER_PATTERNS.get(self.value_type)
        if pattern is not None and not re.fullmatch(pattern, self.value):
            raise ValueError(f"{self.value!r} is not a {self.value_type} value")


@dataclass(frozen=True, kw_only=True)
class OrmOrder:
    """One send-out order, as the ORM^O01 carries it."""

    action: str = "NW"  # NW a new order, CA cancel it
    placer_order_number: str  # ORC-2/OBR-2: ours, text (leading zeros matter)
    accession: str  # ORC-4 (placer group) and OBR-18: our specimen accession
    patient: PatientIds
    ordering_provider: Provider
    test_loinc: str  # may be empty for a test with no LOINC: then the lab's code is OBR-4's only triplet
    test_name: str = ""
    lab_test_code: str
    lab_test_name: str = ""
    lab_coding_system: str = "L"
    stat: bool = False
    collected_at: datetime
    collector: Collector | None = None
    clinical_information: str = ""
    specimen_source: SpecimenSource | None = None
    diagnoses: tuple[Diagnosis, ...] = ()
    answers: tuple[AskAtOrderEntry, ...] = ()
    id_authority: HierarchicDesignator | None = None  # EI namespace of ORC-2/ORC-4/OBR-2 (ours)

    def __post_init__(self) -> None:
        if self.action not in ORDER_ACTIONS:
            raise ValueError(f"ORC-1 {self.action!r}: we send NW or CA")
        _required(self.placer_order_number, "the placer order number")
        _required(self.accession, "the accession")
        _required(self.lab_test_code, "the lab's test code")
        if not re.fullmatch(r"L|99[A-Za-z0-9]{1,3}", self.lab_coding_system):
            raise ValueError(f"the lab's coding system {self.lab_coding_system!r} is not L or 99zzz (table 0396)")
        _aware(self.collected_at, "collected_at")
        object.__setattr__(self, "diagnoses", tuple(self.diagnoses))
        object.__setattr__(self, "answers", tuple(self.answers))


@dataclass(frozen=True)
class ReceivedHeader:
    """What an acknowledgement needs from the message it answers (read with ``read_header``)."""

    sending_application: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    sending_facility: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    receiving_application: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    receiving_facility: HierarchicDesignator = field(default_factory=HierarchicDesignator)
    message_type: str = ""  # MSH-9.1, e.g. ORU
    trigger_event: str = ""  # MSH-9.2, e.g. R01
    control_id: str = ""  # MSH-10
    processing_id: str = ""  # MSH-11.1
    version: str = ""  # MSH-12.1


def build_orm(
    order: OrmOrder,
    *,
    sender: Endpoint,
    receiver: Endpoint,
    version: Version = DEFAULT_VERSION,
    processing_id: str = "P",
    control_id: str,
    now: datetime,
) -> str:
    """The ORM^O01 for ``order``, CR segment ends (see the module docstring for every field)."""
    _check_version(version)
    if processing_id not in PROCESSING_IDS:
        raise ValueError(f"MSH-11 {processing_id!r}: P (production) or T (training/test)")
    _check_header(processing_id, control_id, now)
    v23 = version == "2.3"
    placer = _ei(order.placer_order_number, order.id_authority)
    provider = _provider_xcn(order.ordering_provider)
    priority = er7.components("", "", "", "", "", "S" if order.stat else "R")  # TQ-6

    pid = er7.segment(
        "PID",
        "1",
        "",
        er7.components(escape(order.patient.mrn), "", "", order.patient.assigning_authority.encode(SUBCOMPONENT), "MR"),
        "",
        er7.components(escape(order.patient.family), escape(order.patient.given), escape(order.patient.middle)),
        "",
        order.patient.birth_date.strftime("%Y%m%d"),
        order.patient.sex,
    )
    orc = er7.segment(
        "ORC",
        order.action,  # ORC-1
        placer,  # ORC-2
        "",  # ORC-3 filler: the lab's
        _ei(order.accession, order.id_authority),  # ORC-4 placer group
        "",
        "",
        priority,  # ORC-7
        "",
        timestamp(now),  # ORC-9
        "",
        "",
        provider,  # ORC-12
    )
    if order.test_loinc:
        service = er7.components(
            escape(order.test_loinc),
            escape(order.test_name),
            "LN",
            escape(order.lab_test_code),
            escape(order.lab_test_name),
            order.lab_coding_system,
        )
    else:
        service = er7.components(escape(order.lab_test_code), escape(order.lab_test_name), order.lab_coding_system)
    source = order.specimen_source
    obr_fields = [""] * 27
    obr_fields[0] = "1"  # OBR-1
    obr_fields[1] = placer  # OBR-2 = ORC-2
    obr_fields[3] = service  # OBR-4 (OBR-3 stays empty)
    obr_fields[6] = timestamp(order.collected_at)  # OBR-7
    if order.collector is not None:
        obr_fields[9] = er7.components(
            escape(order.collector.id), escape(order.collector.family), escape(order.collector.given)
        )  # OBR-10
    obr_fields[10] = "O"  # OBR-11
    clinical = er7.escape(order.clinical_information)
    long_clinical = len(clinical) > MAX_ST
    if not long_clinical:
        obr_fields[12] = clinical  # OBR-13 (a longer text goes in an NTE after the OBR)
    if source is not None:
        obr_fields[14] = er7.components(
            er7.components(
                escape(source.code), escape(source.text), escape(source.coding_system), separator=SUBCOMPONENT
            )
        )  # OBR-15
    obr_fields[15] = provider  # OBR-16 = ORC-12
    obr_fields[17] = escape(order.accession)  # OBR-18
    obr_fields[26] = priority  # OBR-27
    obr = er7.segment("OBR", *obr_fields)

    segments = [pid, orc, obr]
    if long_clinical:
        # NTE-2 P: the comment is the placer's; NTE-3 is FT, so the text keeps its line breaks.
        segments.append(er7.segment("NTE", "1", "P", er7.escape_formatted(order.clinical_information)))
    for number, diagnosis in enumerate(order.diagnoses, start=1):
        system = diagnosis.coding_system or ("I10" if v23 else "I10C")
        segments.append(
            er7.segment(
                "DG1",
                str(number),
                escape(system) if v23 else "",  # DG1-2: required in 2.3, backward compatible in 2.5.1
                er7.components(escape(diagnosis.code), escape(diagnosis.text), escape(system)),
                "",
                "",
                "W",  # DG1-6 working
            )
        )
    for number, answer in enumerate(order.answers, start=1):
        value_type = "CE" if v23 and answer.value_type == "CWE" else answer.value_type  # 2.3 has no CWE
        obx_fields = [""] * 11
        obx_fields[0] = str(number)
        obx_fields[1] = value_type
        obx_fields[2] = er7.components(
            escape(answer.question_code), escape(answer.question), escape(answer.question_coding_system)
        )
        obx_fields[4] = _answer_value(answer)
        obx_fields[10] = "O"  # OBX-11: order detail description only
        segments.append(er7.segment("OBX", *obx_fields))

    message_type = "ORM^O01" if v23 else "ORM^O01^ORM_O01"
    msh = _msh(sender, receiver, now, message_type, control_id, processing_id, version, segments)
    return SEGMENT_END.join([msh, *segments]) + SEGMENT_END


def build_ack(
    received: ReceivedHeader,
    *,
    code: str = "AA",
    text: str = "",
    sender: Endpoint,
    control_id: str,
    now: datetime,
) -> str:
    """An original-mode ACK for a message we received: MSA-1 ``code``, MSA-2 its MSH-10, MSA-3 ``text``.

    MSH-5/MSH-6 are its MSH-3/MSH-4, MSH-11 its processing id (P when unknown) and MSH-12 its version
    when it gave a plausible one (2.5.1 otherwise). MSH-9 echoes its trigger event (``ACK^R01^ACK``;
    versions before 2.3.1 have no structure component).
    """
    if code not in ACK_CODES:
        raise ValueError(f"MSA-1 {code!r} is not one of {', '.join(ACK_CODES)}")
    version = received.version if re.fullmatch(r"2\.\d(\.\d)?", received.version) else DEFAULT_VERSION
    processing_id = received.processing_id if received.processing_id in ("P", "T", "D") else "P"
    _check_header(processing_id, control_id, now)
    trigger = _fitted(received.trigger_event)  # what we echo came from outside: fitted, never refused
    has_structure = tuple(int(part) for part in version.split(".")) >= (2, 3, 1)
    message_type = er7.components("ACK", trigger, "ACK") if has_structure else er7.components("ACK", trigger)
    msa = er7.segment("MSA", code, _fitted(received.control_id), _fitted(text))
    receiver = Endpoint(received.sending_application, received.sending_facility)
    msh = _msh(sender, receiver, now, message_type, control_id, processing_id, version, [msa])
    return SEGMENT_END.join([msh, msa]) + SEGMENT_END


def read_header(raw: str) -> ReceivedHeader:
    """The MSH of ``raw`` read tolerantly (any delimiters, CR/LF ends, MLLP bytes left in, a batch
    header before it); whatever can't be read is left empty. Never raises."""
    for seg in er7.split_segments(raw):
        if seg.startswith("MSH") and len(seg) > 3:
            delimiters = er7.delimiters_of(seg)
            fields = er7.fields_of(seg, delimiters)

            def msh(n: int, fields: list[str] = fields) -> str:
                return fields[n] if n < len(fields) else ""

            def hd(value: str, delimiters: er7.Delimiters = delimiters) -> HierarchicDesignator:
                parts = [er7.unescape(er7.component(value, i, delimiters), delimiters) for i in (1, 2, 3)]
                if bool(parts[1]) != bool(parts[2]):
                    return HierarchicDesignator(parts[0] or parts[1])
                return HierarchicDesignator(*parts)

            return ReceivedHeader(
                sending_application=hd(msh(3)),
                sending_facility=hd(msh(4)),
                receiving_application=hd(msh(5)),
                receiving_facility=hd(msh(6)),
                message_type=er7.first_component(msh(9), delimiters),
                trigger_event=er7.unescape(er7.component(msh(9), 2, delimiters), delimiters),
                control_id=er7.unescape(msh(10), delimiters).strip(),
                processing_id=er7.first_component(msh(11), delimiters).strip(),
                version=er7.first_component(msh(12), delimiters).strip(),
            )
    return ReceivedHeader()


def timestamp(moment: datetime) -> str:
    """HL7 TS/DTM to the second with the UTC offset: ``20261202093012-0500``."""
    _aware(moment, "a timestamp")
    offset = moment.utcoffset()
    assert offset is not None
    minutes = round(offset.total_seconds() / 60)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{moment:%Y%m%d%H%M%S}{sign}{hours:02d}{minutes:02d}"


def is_valid_npi(npi: str) -> bool:
    """Ten digits whose last is the Luhn check digit over ``80840`` and the first nine (CMS)."""
    if not re.fullmatch(r"\d{10}", npi):
        return False
    digits = [int(c) for c in "80840" + npi[:9]]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


def _msh(
    sender: Endpoint,
    receiver: Endpoint,
    now: datetime,
    message_type: str,
    control_id: str,
    processing_id: str,
    version: str,
    body: list[str],
) -> str:
    fields = [
        ENCODING_CHARACTERS,  # MSH-2
        sender.application.encode(),  # MSH-3
        sender.facility.encode(),  # MSH-4
        receiver.application.encode(),  # MSH-5
        receiver.facility.encode(),  # MSH-6
        timestamp(now),  # MSH-7
        "",  # MSH-8 security
        message_type,  # MSH-9
        escape(control_id),  # MSH-10
        processing_id,  # MSH-11
        version,  # MSH-12
        "",
        "",
        "",
        "",
        "",
        "",  # MSH-13..17
        "",  # MSH-18 character set, below
    ]
    if not all(text.isascii() for text in [*fields, *body]):
        fields[16] = UTF8_CHARSET
    return er7.segment("MSH", *fields)


def _ei(identifier: str, authority: HierarchicDesignator | None) -> str:
    """An EI: the id, then our namespace, OID and ISO when we have them."""
    if authority is None:
        return escape(identifier)
    return er7.components(escape(identifier), authority.encode())


def _provider_xcn(provider: Provider) -> str:
    return er7.components(
        escape(provider.npi),  # XCN-1
        escape(provider.family),  # XCN-2
        escape(provider.given),  # XCN-3
        escape(provider.middle),  # XCN-4
        "",
        "",
        "",
        "",
        NPI_AUTHORITY.encode(SUBCOMPONENT),  # XCN-9 assigning authority
        "",
        "",
        "",
        "NPI",  # XCN-13 identifier type
    )


def _answer_value(answer: AskAtOrderEntry) -> str:
    if answer.value_type in ("CE", "CWE"):
        return er7.components(escape(answer.code), escape(answer.value), escape(answer.coding_system))
    if answer.value_type == "TX":
        return REPETITION.join(er7.escape(line) for line in answer.value.splitlines() or [""])
    if answer.value_type == "FT":
        return er7.escape_formatted(answer.value)
    return escape(answer.value)


def escape(text: str) -> str:
    """``text`` escaped for an ST position; ``ValueError`` when it is longer than an ST can be."""
    escaped = er7.escape(text)
    if len(escaped) > MAX_ST:
        raise ValueError(f"{text[:40]!r}… is {len(escaped)} characters escaped; an HL7 ST value holds {MAX_ST}")
    return escaped


def _fitted(text: str) -> str:
    """``text`` escaped, cut short (never inside an escape sequence) to fit an ST."""
    while len(er7.escape(text)) > MAX_ST:
        text = text[: len(text) - max(1, (len(er7.escape(text)) - MAX_ST) // 3)]
    return er7.escape(text)


def _check_version(version: str) -> None:
    if version not in VERSIONS:
        raise ValueError(f"we send HL7 {', '.join(VERSIONS)}, not {version!r}")


def _check_header(processing_id: str, control_id: str, now: datetime) -> None:
    if processing_id not in (*PROCESSING_IDS, "D"):
        raise ValueError(f"MSH-11 {processing_id!r}: P, T or D")
    if not control_id or not control_id.isprintable() or control_id != control_id.strip():
        raise ValueError(f"MSH-10 {control_id!r} must be printable text without surrounding spaces")
    if any(c in control_id for c in "|^~\\&"):
        raise ValueError(f"MSH-10 {control_id!r} must not contain HL7 delimiters")
    if len(control_id) > MAX_CONTROL_ID:
        raise ValueError(f"MSH-10 is at most {MAX_CONTROL_ID} characters, {control_id!r} has {len(control_id)}")
    _aware(now, "now")


def _aware(moment: datetime, what: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime: HL7 timestamps carry their UTC offset")


def _required(value: str, what: str) -> None:
    if not value or not value.strip():
        raise ValueError(f"{what} is required")
