"""Reading what reference labs send: a tolerant ORU^R01 reader that turns text into plain dataclasses.

Tolerant in what it reads, exact in what it keeps:

- ``split_messages`` takes a file or a socket's bytes as they come (UTF-8 or latin-1, MLLP framing
  bytes left in, CR, LF or CRLF segment ends, blank lines, FHS/BHS batch envelopes, several MSH in a
  row) and gives back one text per message, in file order. Text outside any message comes back as
  an item of its own, so the caller stores and refuses it rather than losing it.
- ``parse_oru`` reads one message without ever gating on validation: missing segments (no ORC),
  empty optional fields, versions 2.3 to 2.5.1. It raises ``HL7ParseError`` only for input that is
  not HL7 at all (no MSH, broken encoding characters). What it had to skip or guess is said in
  ``ParsedMessage.warnings``.
- ids are compared as text (``normalize_id``): never as numbers, leading zeros kept.

The segment, field, repetition, component and subcomponent split is python-hl7's (``hl7.parse``):
each level is a plain ``str.split`` on its separator, and tests/lab/hl7/test_read.py checks that
every corpus message splits here exactly as ``hl7.parse`` splits it. It is done here, lazily, on
the fields that are read, because ``hl7.parse`` builds a container object for every part of every
field first: about 3 ms for a 14-OBX message on these machines, more than the whole intake's
per-message budget (300 messages/s on 2 cores), where reading it here takes about 0.3 ms.

Escapes are decoded here too. python-hl7's ``unescape`` turns ``\\.br\\`` into CR and
``\\H\\``/``\\N\\`` into ``_``, decodes ``\\Xhh\\`` byte by byte (breaking multi-byte UTF-8) and
drops the rest of a field after a stray escape character; for the separator escapes
(``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``), where it is right, the tests check that both give the same text.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import NamedTuple

from lab.hl7.profiles import DialectProfile

__all__ = [
    "Coded",
    "HL7ParseError",
    "Identity",
    "MessageHeader",
    "Observation",
    "OrderGroup",
    "ParsedMessage",
    "PatientId",
    "message_header",
    "normalize_id",
    "parse_oru",
    "split_messages",
]


class HL7ParseError(ValueError):
    """The input is not HL7 at all: no MSH segment, broken encoding characters, garbage."""


# --------------------------------------------------------------------------------------------
# Dataclasses: what a message says, in plain values. Text that is absent is "", never None.


@dataclass(slots=True)
class Coded:
    """A coded value (CE/CWE/CNE): the first triplet, the alternate triplet, the original text."""

    code: str = ""
    text: str = ""
    system: str = ""
    alt_code: str = ""
    alt_text: str = ""
    alt_system: str = ""
    original_text: str = ""


@dataclass(slots=True)
class PatientId:
    """One CX identifier: the id, its type code (CX-5) and assigning authority (CX-4)."""

    id: str
    type_code: str = ""
    authority: str = ""  # CX-4.1, the namespace id
    authority_id: str = ""  # CX-4.2, the universal id (an OID)
    field: str = "PID-3"


@dataclass(slots=True)
class Identity:
    """The patient a PID describes, with our MRN read where the lab's profile says."""

    our_mrn: str = ""
    our_mrn_from: str = ""  # which profile place it came from, e.g. "PID-3 typed MR from CLINIC"
    identifiers: list[PatientId] = field(default_factory=list)  # every PID-3 repetition
    alternate_ids: list[PatientId] = field(default_factory=list)  # PID-2 and PID-4
    family: str = ""
    given: str = ""
    middle: str = ""
    suffix: str = ""
    dob: date | None = None
    dob_text: str = ""  # PID-7 as sent (a partial or odd date of birth has dob None)
    sex: str = ""
    notes: list[str] = field(default_factory=list)  # NTE after the PID


@dataclass(slots=True)
class Observation:
    """One result (OBX), or several TX/FT/ST rows of one narrative merged in order."""

    set_id: str
    value_type: str
    loinc_code: str = ""
    loinc_text: str = ""
    local_code: str = ""
    local_text: str = ""
    local_system: str = ""
    sub_id: str = ""
    raw_value: str = ""  # OBX-5 as sent, escapes kept (merged rows joined with "\n")
    number: Decimal | None = None  # NM, and SN's first number
    comparator: str = ""  # SN: "<", ">", "<=", ">=", "=", "<>" ("" when none)
    separator: str = ""  # SN: "-", ":", "/", "+", "." between two numbers
    number2: Decimal | None = None  # SN's second number (range or ratio)
    text: str = ""  # ST/TX/FT (lines joined with "\n"), or the value of another type as text
    coded: Coded | None = None  # CE/CWE/CNE
    unit: str = ""
    unit_text: str = ""
    unit_system: str = ""
    reference_range: str = ""
    abnormal_flags: list[str] = field(default_factory=list)
    status: str = ""
    observed_at: datetime | None = None
    analysed_at: datetime | None = None
    producer: str = ""  # OBX-15, where 2.3 interfaces name the lab that did the test
    performing_org_name: str = ""
    performing_org_id: str = ""
    performing_org_address: str = ""
    performing_org_director: str = ""
    performing_org_director_id: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def display_value(self) -> str:
        """The value as the lab meant it to be read: ``<0.5``, ``1:128``, ``Detected``, the text."""
        if self.value_type == "SN" and self.number is not None:
            shown = ("" if self.comparator == "=" else self.comparator) + format(self.number, "f")
            if self.separator or self.number2 is not None:
                shown += self.separator + ("" if self.number2 is None else format(self.number2, "f"))
            return shown
        if self.number is not None:
            return self.comparator + format(self.number, "f")
        if self.coded is not None:
            return self.coded.text or self.coded.original_text or self.coded.code
        return self.text


@dataclass(slots=True)
class OrderGroup:
    """One OBR (with the ORC before it, if any), its notes, observations and specimens."""

    set_id: str = ""
    order_control: str = ""  # ORC-1, "" without an ORC
    placer: str = ""
    placer_from: str = ""  # the profile place it was found in, e.g. "ORC-2"
    accession: str = ""
    accession_from: str = ""
    filler: str = ""
    filler_from: str = ""
    service_loinc: str = ""
    service_loinc_text: str = ""
    service_code: str = ""
    service_text: str = ""
    service_system: str = ""
    status: str = ""  # OBR-25
    observed_at: datetime | None = None  # OBR-7
    received_at: datetime | None = None  # OBR-14
    reported_at: datetime | None = None  # OBR-22
    notes: list[str] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    specimen_ids: list[str] = field(default_factory=list)  # SPM-2.1 of each SPM
    identity: Identity = field(default_factory=Identity)  # the PID this order falls under


@dataclass(slots=True)
class ParsedMessage:
    raw: str
    control_id: str = ""
    sending_application: str = ""  # MSH-3.1 (or MSH-3.2 when there is no namespace id)
    sending_application_full: str = ""  # MSH-3 as sent
    sending_facility: str = ""
    sending_facility_full: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: str = ""  # MSH-9.1, e.g. ORU
    trigger: str = ""  # MSH-9.2, e.g. R01
    structure: str = ""  # MSH-9.3, e.g. ORU_R01
    version: str = ""  # MSH-12.1
    sent_at: datetime | None = None  # MSH-7: aware with an offset, naive without
    processing_id: str = ""  # MSH-11.1: P, T, D
    identity: Identity = field(default_factory=Identity)
    orders: list[OrderGroup] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # NTE before any PID
    warnings: list[str] = field(default_factory=list)


class MessageHeader(NamedTuple):
    control_id: str
    sending_application: str  # first component, as in ParsedMessage
    sending_facility: str
    message_type: str  # "ORU^R01": message code and trigger event
    version: str


# --------------------------------------------------------------------------------------------
# Ids


def normalize_id(value: str) -> str:
    """An id as we compare it: the EI's first component (namespace dropped), stripped; always text.

    ``ORD-2026-000042^CLINIC^2.16.840.1.113883.19.5^ISO`` is ``ORD-2026-000042``; ``0000123`` stays
    ``0000123`` (never a number: leading zeros matter). The HL7 null ``""`` is empty.
    """
    if not value:
        return ""
    value = value.split("^", 1)[0].split("&", 1)[0].strip()
    return "" if value == '""' else value


# --------------------------------------------------------------------------------------------
# Lines and messages

_STRIPPED = str.maketrans("", "", "\x0b\x1c\x1a\x00")  # MLLP start/end, DOS end-of-file, NUL
_ENVELOPE = frozenset(("FHS", "BHS", "BTS", "FTS"))


def _stripped(text: str) -> str:
    """``text`` without framing bytes; most files have none, and translate copies every character."""
    if "\x0b" in text or "\x1c" in text or "\x1a" in text or "\x00" in text:
        return text.translate(_STRIPPED)
    return text


def _decode(data: bytes | bytearray | memoryview | str) -> str:
    if isinstance(data, str):
        return data
    raw = bytes(data)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _lines(text: str) -> list[str]:
    """Segment lines: framing bytes gone, CR/LF/CRLF ends, blank lines dropped, leading blanks too."""
    text = _stripped(text)
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    lines = []
    for line in text.split("\r"):
        if line[:1] in (" ", "\t", "\ufeff", "\x0c"):
            line = line.lstrip(" \t\ufeff\x0c")
        if line and not line.isspace():
            lines.append(line)
    return lines


def _is_envelope(line: str) -> bool:
    return line[:3] in _ENVELOPE and (len(line) == 3 or not line[3].isalnum())


def split_messages(data: bytes | str) -> list[str]:
    """Each message of a file, a batch or a socket read, in order, as text with CR segment ends.

    Bytes are read as UTF-8, or as latin-1 when they aren't UTF-8. FHS/BHS/BTS/FTS envelopes are
    dropped; each MSH starts a message. Lines outside any message (before the first MSH, after a
    trailer) are returned together as an item of their own, which ``parse_oru`` refuses: a caller
    stores it and answers AR rather than losing it.
    """
    messages: list[list[str]] = []
    current: list[str] | None = None
    for line in _lines(_decode(data)):
        if line.startswith("MSH"):
            current = [line]
            messages.append(current)
        elif _is_envelope(line):
            current = None
        elif current is None:
            current = [line]
            messages.append(current)
        else:
            current.append(line)
    return ["\r".join(message) + "\r" for message in messages]


# --------------------------------------------------------------------------------------------
# Separators, splitting and escapes


class _Seps:
    """A message's delimiters, and the splitting and unescaping that go with them."""

    __slots__ = ("comp", "esc", "fs", "rep", "sub", "unescape")

    def __init__(self, fs: str, comp: str, rep: str, esc: str, sub: str, trunc: str) -> None:
        self.fs, self.comp, self.rep, self.esc, self.sub = fs, comp, rep, esc, sub
        self.unescape = _unescaper(fs, comp, rep, esc, sub, trunc)

    def leaf(self, value: str) -> str:
        """A leaf value decoded: escapes replaced, the HL7 null ``""`` empty."""
        if value == '""':
            return ""
        return self.unescape(value) if self.esc in value else value

    def first_rep(self, raw: str) -> str:
        return raw.split(self.rep, 1)[0] if self.rep in raw else raw

    def reps(self, raw: str) -> list[str]:
        return raw.split(self.rep) if self.rep in raw else [raw]

    def comps(self, raw: str) -> list[str]:
        """The components of a repetition (the first one of a field, if given a field)."""
        if self.rep in raw:
            raw = raw.split(self.rep, 1)[0]
        return raw.split(self.comp) if self.comp in raw else [raw]

    def part(self, comps: list[str], index: int, sub: int = 0) -> str:
        """Component ``index`` (0-based), subcomponent ``sub`` (0-based), decoded and stripped."""
        if index >= len(comps):
            return ""
        value = comps[index]
        if not value:
            return ""
        if self.sub in value:
            subs = value.split(self.sub)
            value = subs[sub] if sub < len(subs) else ""
        elif sub:
            return ""
        return self.leaf(value).strip()


_ESCAPERS: dict[tuple[str, ...], Callable[[str], str]] = {}
_COUNT = re.compile(r"^[+-]?\d*$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")


def _unescaper(fs: str, comp: str, rep: str, esc: str, sub: str, trunc: str) -> Callable[[str], str]:
    key = (fs, comp, rep, esc, sub, trunc)
    cached = _ESCAPERS.get(key)
    if cached is not None:
        return cached
    e = re.escape(esc)
    pattern = re.compile(f"((?:{e}X[0-9A-Fa-f]+{e})+)|{e}([^{e}]*){e}")
    simple = {
        "F": fs,
        "S": comp,
        "T": sub,
        "R": rep,
        "E": esc,
        "H": "",  # highlighting on and off: the markers go, the text stays
        "N": "",
        ".br": "\n",
        ".fi": "",
        ".nf": "",
        ".ce": "\n",
    }
    if trunc:
        simple["P"] = trunc

    def replace(match: re.Match[str]) -> str:
        run = match.group(1)
        if run is not None:  # \Xhh..\ (adjacent ones together: one UTF-8 character may span two)
            digits = "".join(part[1:] for part in run.split(esc) if part)
            try:
                data = bytes.fromhex(digits)
            except ValueError:
                return run
            try:
                decoded = data.decode("utf-8")
            except UnicodeDecodeError:
                decoded = data.decode("latin-1")
            return decoded.replace("\r\n", "\n").replace("\r", "\n")
        sequence = match.group(2)
        known = simple.get(sequence)
        if known is not None:
            return known
        head = sequence[:3]
        if head in (".sp", ".sk", ".in", ".ti"):
            argument = sequence[3:].strip()
            if _COUNT.match(argument):
                count = int(argument) if argument.lstrip("+-") else (1 if head in (".sp", ".sk") else 0)
                return "\n" * max(count, 1) if head == ".sp" else " " * max(count, 0)
        elif sequence[:1] == "Z" or (sequence[:1] in ("C", "M") and _HEX.match(sequence[1:])):
            return ""  # locally defined escapes and character-set switches: nothing to show
        return match.group(0)  # not an escape: the text as sent

    def unescape(value: str) -> str:
        return pattern.sub(replace, value) if esc in value else value

    _ESCAPERS[key] = unescape
    return unescape


def _read_msh(line: str) -> tuple[list[str], _Seps]:
    """MSH's fields (index = field number: [0] "MSH", [1] MSH-1, [2] MSH-2) and its delimiters."""
    if len(line) < 5:
        raise HL7ParseError(f"the MSH segment is cut short: {line[:40]!r}")
    fs = line[3]
    if fs.isalnum() or fs.isspace():
        raise HL7ParseError(f"MSH-1, the field separator, is {fs!r}: this is not HL7")
    end = line.find(fs, 4)
    if end == -1:
        raise HL7ParseError("MSH has nothing after its encoding characters: this is not HL7")
    enc = line[4:end]
    # Four characters (component, repetition, escape, subcomponent), a fifth (truncation) since 2.7.
    if len(enc) not in (4, 5) or any(c.isalnum() or c.isspace() or c == fs for c in enc) or len(set(enc)) != len(enc):
        raise HL7ParseError(f"MSH-2, the encoding characters, are {enc!r}: they should be like '^~\\&'")
    comp, rep, esc, sub = enc[0], enc[1], enc[2], enc[3]
    trunc = enc[4] if len(enc) > 4 else ""
    return ["MSH", fs, enc, *line[end + 1 :].split(fs)], _Seps(fs, comp, rep, esc, sub, trunc)


def _is_segment(line: str, fs: str) -> bool:
    tag = line[:3]
    return (
        len(tag) == 3
        and tag.isascii()
        and tag.isalnum()
        and tag[0].isalpha()
        and tag.isupper()
        and (len(line) == 3 or line[3] == fs)
    )


# --------------------------------------------------------------------------------------------
# Values

_DTM = re.compile(r"^(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(?:\.(\d{1,6}))?\s*(?:([+-])(\d\d)(\d\d))?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_COMPARATORS = ("<=", ">=", "<>", "<", ">", "=")
_SN_SEPARATORS = frozenset(("-", "+", "/", ".", ":"))
_NARRATIVE = frozenset(("TX", "FT"))
_TEXT = frozenset(("TX", "FT", "ST"))
_CODED = frozenset(("CE", "CWE", "CNE", "CF"))
_LOINC = frozenset(("LN", "LOINC", "2.16.840.1.113883.6.1"))


_DATETIMES: dict[str, datetime] = {}  # every row of a message tends to carry the same times


def _datetime(value: str, what: str, warn: Callable[[str], None]) -> datetime | None:
    if not value:
        return None
    known = _DATETIMES.get(value)
    if known is not None:
        return known
    match = _DTM.match(value.strip())
    if match:
        year, month, day, hour, minute, second, fraction, sign, tzh, tzm = match.groups()
        try:
            tz = None
            if sign:
                offset = timedelta(hours=int(tzh), minutes=int(tzm))
                tz = timezone(-offset if sign == "-" else offset)
            parsed = datetime(
                int(year),
                int(month or 1),
                int(day or 1),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                int((fraction or "0").ljust(6, "0")),
                tzinfo=tz,
            )
        except ValueError:
            pass
        else:
            if len(_DATETIMES) >= 4096:
                _DATETIMES.clear()
            _DATETIMES[value] = parsed
            return parsed
    warn(f"{what} {value!r} is not an HL7 date/time: left empty")
    return None


def _decimal(value: str) -> Decimal | None:
    value = value.strip()
    return Decimal(value) if _NUMBER.match(value) else None


def _split_comparator(value: str) -> tuple[str, str]:
    value = value.strip()
    for comparator in _COMPARATORS:
        if value.startswith(comparator):
            return comparator, value[len(comparator) :].strip()
    return "", value


def _coded_ids(seps: _Seps, raw: str) -> tuple[str, str, str, str, str]:
    """(loinc code, loinc text, local code, local text, local system) from a CE/CWE field.

    The LOINC is whichever triplet is coded LN (legacy labs put their own code first); the local
    code is the first other triplet that has a code or a text.
    """
    comps = seps.comps(raw)
    loinc_code = loinc_text = local_code = local_text = local_system = ""
    have_local = False
    for start in (0, 3):
        code, text, system = (seps.part(comps, start + i) for i in range(3))
        if not code and not text:
            continue
        if system.upper() in _LOINC and not loinc_code:
            loinc_code, loinc_text = code, text
        elif not have_local:
            local_code, local_text, local_system, have_local = code, text, system, True
    if not loinc_text and not local_text and len(comps) > 8:
        original = seps.part(comps, 8)  # CWE-9, original text
        if loinc_code:
            loinc_text = original
        else:
            local_text = original
    return loinc_code, loinc_text, local_code, local_text, local_system


def _coded(seps: _Seps, comps: list[str]) -> Coded:
    part = seps.part
    return Coded(
        code=part(comps, 0),
        text=part(comps, 1),
        system=part(comps, 2),
        alt_code=part(comps, 3),
        alt_text=part(comps, 4),
        alt_system=part(comps, 5),
        original_text=part(comps, 8),
    )


def _patient_ids(seps: _Seps, raw: str, where: str) -> list[PatientId]:
    ids = []
    for rep in seps.reps(raw):
        comps = rep.split(seps.comp) if seps.comp in rep else [rep]
        value = normalize_id(seps.part(comps, 0))
        if value:
            ids.append(PatientId(value, seps.part(comps, 4), seps.part(comps, 3, 0), seps.part(comps, 3, 1), where))
    return ids


def _person_name(seps: _Seps, comps: list[str]) -> str:
    """An XCN as a name: 'Alan J Moreau MD'."""
    name = " ".join(p for p in (seps.part(comps, i) for i in (5, 2, 3, 1, 4)) if p)
    degree = seps.part(comps, 6)
    return f"{name} {degree}".strip() if degree else name


def _address(seps: _Seps, comps: list[str]) -> str:
    """An XAD on one line: '1200 Research Blvd, Suite 100, Springfield, IL 62704, USA'."""
    street, other, city, state, postcode, country = (seps.part(comps, i) for i in range(6))
    region = " ".join(p for p in (state, postcode) if p)
    return ", ".join(p for p in (street, other, city, region, country) if p)


# --------------------------------------------------------------------------------------------
# The reader


def _any_id(value: str) -> bool:
    return True


class _Reader:
    def __init__(
        self,
        seps: _Seps,
        profile: DialectProfile,
        warnings: list[str],
        is_ours: Callable[[str], bool] = _any_id,
    ) -> None:
        self.seps = seps
        self.profile = profile
        self.warnings = warnings
        self.is_ours = is_ours
        # OBX-6 and OBX-23..25 repeat row after row: each distinct text is read once.
        self.memo: dict[tuple[int, str], tuple[str, str, str]] = {}

    def memo_read(self, number: int, raw: str) -> tuple[str, str, str]:
        key = (number, raw)
        known = self.memo.get(key)
        if known is None:
            seps = self.seps
            comps = seps.comps(raw)
            if number == 6:  # unit: code (or text), text, system
                text = seps.part(comps, 1)
                known = (seps.part(comps, 0) or text, text, seps.part(comps, 2))
            elif number == 23:  # performing organisation: name, id
                known = (seps.part(comps, 0), seps.part(comps, 9) or seps.part(comps, 2), "")
            elif number == 24:  # its address
                known = (_address(seps, comps), "", "")
            else:  # 25, its medical director: name, id
                known = (_person_name(seps, comps), seps.part(comps, 0), "")
            self.memo[key] = known
        return known

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def text(self, fields: list[str], number: int, component: int = 0, sub: int = 0) -> str:
        """Field ``number``'s first repetition, component and subcomponent (0-based), decoded."""
        if number >= len(fields) or not fields[number]:
            return ""
        return self.seps.part(self.seps.comps(fields[number]), component, sub)

    def note(self, fields: list[str]) -> str:
        """NTE-3 (FT): repetitions and components are lines."""
        raw = fields[3] if len(fields) > 3 else ""
        return self.narrative(raw)

    def narrative(self, raw: str) -> str:
        seps = self.seps
        lines = []
        for rep in seps.reps(raw):
            for comp in rep.split(seps.comp) if seps.comp in rep else (rep,):
                lines.append(seps.leaf(comp))
        return "\n".join(lines)

    def identity(self, pid: list[str]) -> Identity:
        seps = self.seps
        identity = Identity()
        identity.identifiers = _patient_ids(seps, pid[3], "PID-3") if len(pid) > 3 else []
        if len(pid) > 2 and pid[2]:
            identity.alternate_ids.extend(_patient_ids(seps, pid[2], "PID-2"))
        if len(pid) > 4 and pid[4]:
            identity.alternate_ids.extend(_patient_ids(seps, pid[4], "PID-4"))
        by_field = {"PID-3": identity.identifiers}
        for alternate in identity.alternate_ids:
            by_field.setdefault(alternate.field, []).append(alternate)
        identity.our_mrn, identity.our_mrn_from = self.our_mrn(by_field)
        if len(pid) > 5 and pid[5]:
            names = seps.reps(pid[5])
            chosen = names[0]
            for name in names:
                comps = name.split(seps.comp)
                if len(comps) > 6 and seps.part(comps, 6).upper() == "L":
                    chosen = name
                    break
            comps = chosen.split(seps.comp) if seps.comp in chosen else [chosen]
            identity.family = seps.part(comps, 0, 0)
            identity.given = seps.part(comps, 1)
            identity.middle = seps.part(comps, 2)
            identity.suffix = seps.part(comps, 3)
        identity.dob_text = self.text(pid, 7)
        if identity.dob_text:
            digits = identity.dob_text[:8]
            if len(digits) == 8 and digits.isdigit():
                with contextlib.suppress(ValueError):  # 20260230: not a day
                    identity.dob = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
            if identity.dob is None:
                self.warn(f"PID-7 date of birth {identity.dob_text!r} is not a full date: left empty")
        identity.sex = self.text(pid, 8).upper()
        return identity

    def our_mrn(self, by_field: dict[str, list[PatientId]]) -> tuple[str, str]:
        for place in self.profile.mrn:
            type_code, authority = place.type_code.upper(), place.authority.upper()
            for candidate in by_field.get(place.field, ()):
                if type_code and candidate.type_code.upper() != type_code:
                    continue
                if authority and authority not in (candidate.authority.upper(), candidate.authority_id.upper()):
                    continue
                if not self.is_ours(candidate.id):  # the lab's own number where ours could be: not ours
                    continue
                return candidate.id, place.describe()
        return "", ""

    def observation(self, obx: list[str]) -> Observation:
        seps = self.seps
        n = len(obx)
        set_id = self.text(obx, 1)
        value_type = self.text(obx, 2).upper()
        raw = obx[5] if n > 5 else ""
        where = f"OBX {set_id or '?'}"
        obs = Observation(set_id=set_id, value_type=value_type, raw_value=raw)
        if n > 3:
            obs.loinc_code, obs.loinc_text, obs.local_code, obs.local_text, obs.local_system = _coded_ids(seps, obx[3])
        obs.sub_id = self.text(obx, 4)
        if raw and raw != '""':
            if not value_type:
                self.warn(f"{where}: no value type (OBX-2): its value is read as text")
                value_type = obs.value_type = "ST"
            self.value(obs, raw, where)
        if n > 6 and obx[6]:
            obs.unit, obs.unit_text, obs.unit_system = self.memo_read(6, obx[6])
        if n > 7 and obx[7]:
            obs.reference_range = seps.leaf(seps.first_rep(obx[7])).strip()
        if n > 8 and obx[8]:
            flags = (seps.part(seps.comps(rep), 0) for rep in seps.reps(obx[8]))
            obs.abnormal_flags = [flag for flag in flags if flag]
        obs.status = self.text(obx, 11).upper()
        if n > 14:
            obs.observed_at = _datetime(self.text(obx, 14), f"{where}: OBX-14", self.warn)
        if n > 15 and obx[15]:
            comps = seps.comps(obx[15])
            obs.producer = seps.part(comps, 1) or seps.part(comps, 0)
        if n > 19:
            obs.analysed_at = _datetime(self.text(obx, 19), f"{where}: OBX-19", self.warn)
        if n > 23 and obx[23]:
            obs.performing_org_name, obs.performing_org_id, _ = self.memo_read(23, obx[23])
        if n > 24 and obx[24]:
            obs.performing_org_address = self.memo_read(24, obx[24])[0]
        if n > 25 and obx[25]:
            obs.performing_org_director, obs.performing_org_director_id, _ = self.memo_read(25, obx[25])
        return obs

    def value(self, obs: Observation, raw: str, where: str) -> None:
        seps = self.seps
        value_type = obs.value_type
        if value_type in _TEXT:
            if value_type == "ST":  # ST has no components: a stray one is the lab's text
                obs.text = "\n".join(seps.leaf(rep) for rep in seps.reps(raw))
            else:
                obs.text = self.narrative(raw)
            return
        if seps.rep in raw and value_type not in _CODED:
            self.warn(f"{where}: OBX-5 repeats; only its first value is read")
        if value_type == "NM":
            value = seps.leaf(seps.first_rep(raw)).strip()
            obs.number = _decimal(value)
            if obs.number is None:
                comparator, rest = _split_comparator(value)
                number = _decimal(rest) if comparator else None
                if number is not None:
                    obs.comparator, obs.number = comparator, number
                    self.warn(f"{where}: NM value {value!r} carries a comparator; read as {comparator} {rest}")
                else:
                    obs.text = value
                    self.warn(f"{where}: NM value {value!r} is not a number: kept as text")
        elif value_type == "SN":
            comps = seps.comps(raw)
            comparator, first = seps.part(comps, 0), seps.part(comps, 1)
            if len(comps) == 1:  # "<0.5" sent without the component separator
                comparator, first = _split_comparator(comparator)
            separator, second = seps.part(comps, 2), seps.part(comps, 3)
            obs.number = _decimal(first)
            obs.number2 = _decimal(second) if second else None
            ok = obs.number is not None and (not second or obs.number2 is not None)
            if comparator and comparator not in _COMPARATORS:
                ok = False
            if separator and separator not in _SN_SEPARATORS:
                ok = False
            obs.comparator, obs.separator = comparator, separator
            if not ok:  # kept as the text it is, not half-read
                obs.number = obs.number2 = None
                obs.comparator = obs.separator = ""
                obs.text = seps.leaf(seps.first_rep(raw))
                self.warn(f"{where}: SN value {obs.text!r} is not comparator^number[^separator^number]")
        elif value_type in _CODED:
            obs.coded = _coded(seps, seps.comps(raw))
            if seps.rep in raw:
                self.warn(f"{where}: OBX-5 repeats; only its first code is read")
        else:
            obs.text = seps.leaf(raw)

    def order(self, obr: list[str], orc: list[str] | None, identity: Identity) -> OrderGroup:
        seps = self.seps
        group = OrderGroup(set_id=self.text(obr, 1), identity=identity)
        if orc is not None:
            group.order_control = self.text(orc, 1).upper()
        if len(obr) > 4:
            (
                group.service_loinc,
                group.service_loinc_text,
                group.service_code,
                group.service_text,
                group.service_system,
            ) = _coded_ids(seps, obr[4])
        where = f"OBR {group.set_id or '?'}"
        group.observed_at = _datetime(self.text(obr, 7), f"{where}: OBR-7", self.warn)
        group.received_at = _datetime(self.text(obr, 14), f"{where}: OBR-14", self.warn)
        group.reported_at = _datetime(self.text(obr, 22), f"{where}: OBR-22", self.warn)
        group.status = self.text(obr, 25).upper()
        return group

    def keys(self, group: OrderGroup, obr: list[str], orc: list[str] | None, spms: list[list[str]]) -> None:
        profile = self.profile
        sources = {"ORC": [orc] if orc is not None else [], "OBR": [obr], "SPM": spms}
        for key in ("placer", "accession", "filler"):
            for name, (segment, number, component) in zip(getattr(profile, key), profile.places(key), strict=True):
                found = ""
                for fields in sources[segment]:
                    found = normalize_id(self.text(fields, number, component - 1))
                    if found:
                        break
                if found:
                    setattr(group, key, found)
                    setattr(group, f"{key}_from", name)
                    break


def _merge_narratives(observations: list[Observation], warn: Callable[[str], None]) -> list[Observation]:
    """Consecutive TX/FT/ST rows with the same OBX-3 and OBX-4 are the lines of one observation."""
    merged: list[Observation] = []
    for obs in observations:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and obs.value_type in _TEXT
            and obs.value_type == previous.value_type
            and obs.sub_id == previous.sub_id
            and (obs.loinc_code or obs.local_code)
            and (obs.loinc_code, obs.local_code) == (previous.loinc_code, previous.local_code)
        ):
            previous.text += "\n" + obs.text
            previous.raw_value += "\n" + obs.raw_value
            previous.notes.extend(obs.notes)
            previous.abnormal_flags.extend(f for f in obs.abnormal_flags if f not in previous.abnormal_flags)
            if obs.status != previous.status:
                warn(
                    f"OBX {obs.set_id}: status {obs.status!r} differs from {previous.status!r} of the "
                    f"narrative it continues (OBX {previous.set_id}); kept {previous.status!r}"
                )
            continue
        merged.append(obs)
    return merged


def parse_oru(text: str, profile: DialectProfile, *, is_ours: Callable[[str], bool] = _any_id) -> ParsedMessage:
    """One ORU^R01 (2.3 to 2.5.1) read tolerantly into a ParsedMessage, keys found per ``profile``.

    ``is_ours`` says whether an id at one of the profile's MRN places can be our MRN (the clinic's
    MRN format): one that can't is passed over, as the lab's own number.

    Raises HL7ParseError only when the text is not HL7 (no MSH, broken encoding characters) or holds
    more than one message (``split_messages`` first). Anything else odd is read as far as it goes
    and said in ``warnings``.
    """
    if not isinstance(text, str):  # bytes from a socket: read as split_messages reads them
        text = _decode(text)
    lines = _lines(text)
    start = 0
    while start < len(lines) and _is_envelope(lines[start]):
        start += 1
    if start == len(lines):
        raise HL7ParseError("no MSH segment: this is not HL7" if not lines else "a batch envelope with no message")
    if not lines[start].startswith("MSH"):
        raise HL7ParseError(f"no MSH segment at the start: {lines[start][:40]!r} is not HL7")
    msh, seps = _read_msh(lines[start])
    message = ParsedMessage(raw=text)
    reader = _Reader(seps, profile, message.warnings, is_ours)
    _header(reader, msh, message)

    identity: Identity | None = None
    current_identity = Identity()
    notes: list[str] = message.notes
    pending_orc: list[str] | None = None
    orc_notes: list[str] = []
    # Each order: the group, its OBR and ORC fields, its SPMs.
    orders: list[tuple[OrderGroup, list[str], list[str] | None, list[list[str]]]] = []
    fs = seps.fs
    for number, line in enumerate(lines[start + 1 :], start=2):
        if not _is_segment(line, fs):
            reader.warn(f"line {number} is not a segment and was skipped: {line[:40]!r}")
            continue
        tag = line[:3]
        if tag == "OBX":
            if not orders:
                reader.warn("an OBX came before any OBR: read into an order without keys")
                orders.append((OrderGroup(identity=current_identity), [], None, []))
            obs = reader.observation(line.split(fs))
            orders[-1][0].observations.append(obs)
            notes = obs.notes
        elif tag == "NTE":
            notes.append(reader.note(line.split(fs)))
        elif tag == "OBR":
            obr = line.split(fs)
            group = reader.order(obr, pending_orc, current_identity)
            group.notes.extend(orc_notes)
            orders.append((group, obr, pending_orc, []))
            pending_orc, orc_notes = None, []
            notes = group.notes
        elif tag == "ORC":
            pending_orc, orc_notes = line.split(fs), []
            notes = orc_notes
        elif tag == "SPM":
            if orders:
                spm = line.split(fs)
                orders[-1][3].append(spm)
                specimen_id = normalize_id(reader.text(spm, 2))
                if specimen_id:
                    orders[-1][0].specimen_ids.append(specimen_id)
                notes = orders[-1][0].notes
        elif tag == "PID":
            current_identity = reader.identity(line.split(fs))
            if identity is None:
                identity = current_identity
            else:
                reader.warn("more than one PID: each order carries the identity it falls under")
            notes = current_identity.notes
            pending_orc = None
        elif tag == "MSH":
            raise HL7ParseError(f"a second MSH at line {number}: split the messages with split_messages first")
    if pending_orc is not None:
        reader.warn("an ORC with no OBR after it was skipped")
    if identity is None:
        reader.warn("no PID segment")
    else:
        message.identity = identity
    for group, obr, orc, spms in orders:
        reader.keys(group, obr, orc, spms)
        group.observations = _merge_narratives(group.observations, reader.warn)
        message.orders.append(group)
    return message


def _header(reader: _Reader, msh: list[str], message: ParsedMessage) -> None:
    seps = reader.seps

    def plain(number: int) -> str:
        return reader.text(msh, number) or reader.text(msh, number, 1)

    message.control_id = reader.text(msh, 10)
    message.sending_application = plain(3)
    message.sending_application_full = msh[3] if len(msh) > 3 else ""
    message.sending_facility = plain(4)
    message.sending_facility_full = msh[4] if len(msh) > 4 else ""
    message.receiving_application = plain(5)
    message.receiving_facility = plain(6)
    message.sent_at = _datetime(reader.text(msh, 7), "MSH-7", reader.warn)
    if len(msh) > 9:
        comps = seps.comps(msh[9])
        message.message_type = seps.part(comps, 0).upper()
        message.trigger = seps.part(comps, 1).upper()
        message.structure = seps.part(comps, 2).upper()
    message.processing_id = reader.text(msh, 11).upper()
    message.version = reader.text(msh, 12)
    if not message.control_id:
        reader.warn("MSH-10, the message control id, is empty")


def message_header(text: str) -> MessageHeader:
    """The first MSH's control id, sender, type and version, however odd the rest of the text is.

    For duplicate detection and the ACK: ``message_type`` is ``ORU^R01`` (code and trigger). Raises
    HL7ParseError when there is no MSH or its encoding characters are broken.
    """
    start = text.find("MSH")
    while start > 0 and text[start - 1] not in _BEFORE_MSH:  # "MSH" inside another segment's text
        start = text.find("MSH", start + 1)
    if start != -1:
        end = len(text)
        for line_end in ("\r", "\n"):
            found = text.find(line_end, start)
            if found != -1:
                end = min(end, found)
        msh, seps = _read_msh(_stripped(text[start:end]))
        reader = _Reader(seps, _NO_PROFILE, [])
        message = ParsedMessage(raw="")
        _header(reader, msh, message)
        message_type = message.message_type + (f"^{message.trigger}" if message.trigger else "")
        return MessageHeader(
            message.control_id,
            message.sending_application,
            message.sending_facility,
            message_type,
            message.version,
        )
    raise HL7ParseError("no MSH segment: this is not HL7")


_NO_PROFILE = DialectProfile(name="header only")
_BEFORE_MSH = frozenset("\r\n\x0b\x1c\x1a\x00\ufeff \t")
