"""Filing what a reference lab reported: each OBX of one order group as the Result it means.

``file_order_group`` runs inside the intake's transaction (lab.sendouts.intake), for a message
already matched to its send-out and through the identity check. Per OBX, by value type:

- NM: the number with the precision sent (``0.90`` stays two decimals), its unit (UCUM or the lab's
  text) and range; SN: comparator and number (``<^0.5`` is "<" and 0.5, shown "<0.5", never 0.5),
  or a range or ratio (``^1^:^160``); CE/CWE: the code, its text and coding system, and the
  alternate triplet; ST/TX/FT: text, a narrative's lines kept in order with their leading spaces
  and blank lines (the reader merged the rows of one section);
- the analyte from whichever triplet of OBX-3 is coded LN, under the order's test; a LOINC the test
  doesn't list yet is added to it (what the lab reports is the test's content), a row without any
  LOINC is known by the lab's own code. Our critical limits, once the lab director sets ranges on
  those analytes in admin, apply to every later result;
- flags as the lab sent them (OBX-8, kept verbatim) plus our own critical limits
  (lab.results.flags): an HH/LL (or AA) from the lab, or a value at our critical limit, is critical
  and opens the same call-back as in-house;
- NTE after the OBX are its notes, NTE after the ORC/OBR the order's; OBX-23..25 (or OBX-15) name
  the performing lab.

Report status per row: OBX-11, else OBR-25. P preliminary; F final; C a correction, which
**amends** the current result through lab.results.services (the original kept and superseded, the
clinician told again); X cancelled. A final after a preliminary **replaces** it (superseded, not an
amendment); a row re-sent unchanged files nothing; a preliminary arriving after the final is not
filed over it (said in the message's detail).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Max
from django.utils import timezone

from backoffice import bulk
from backoffice.models import Patient, User
from lab.hl7.read import Identity, Observation, OrderGroup
from lab.models import Analyte, InboundMessage, ReferenceLab, ReferenceRange, Result, SendOut, TestOrder
from lab.results.flags import age_in_days, numeric_flag, range_for
from lab.results.services import results_report
from lab.workflow import CRITICAL_FLAGS, Flag, ResultStatus, ResultType

RS = Result.ReportStatus

# OBX-11 (or OBR-25) → how it is filed. R (not verified), S (partial) and A (amended order detail)
# are preliminary reports; W (wrong, replaced) is a correction. I (pending), O (order detail: an
# ask-at-order-entry echo), N (not asked), D (delete) file no value.
_REPORT_STATUS = {"P": RS.PRELIMINARY, "R": RS.PRELIMINARY, "S": RS.PRELIMINARY, "A": RS.PRELIMINARY}
_REPORT_STATUS |= {"F": RS.FINAL, "": RS.FINAL, "C": RS.CORRECTED, "W": RS.CORRECTED, "X": RS.CANCELLED}
_NOT_FILED = {"I": "pending", "O": "order detail only", "N": "not asked", "D": "deleted"}

# HL7 table 0078 → our flag. AA (critically abnormal) is abnormal and critical; susceptibility and
# delta flags say nothing of normal; anything else a lab sends is shown as abnormal, never hidden.
_LAB_FLAGS = {
    "N": Flag.NORMAL,
    "NEG": Flag.NORMAL,
    "ND": Flag.NORMAL,
    "NR": Flag.NORMAL,
    "L": Flag.LOW,
    "LU": Flag.LOW,
    "<": Flag.LOW,
    "H": Flag.HIGH,
    "HU": Flag.HIGH,
    ">": Flag.HIGH,
    "LL": Flag.CRITICAL_LOW,
    "HH": Flag.CRITICAL_HIGH,
    "A": Flag.ABNORMAL,
    "AA": Flag.ABNORMAL,
    "POS": Flag.ABNORMAL,
    "DET": Flag.ABNORMAL,
}
_SAYS_NOTHING = frozenset({"S", "R", "I", "MS", "VS", "U", "D", "B", "W", "SDD", "NS"})
_SEVERITY = {Flag.NONE: 0, Flag.NORMAL: 1, Flag.ABNORMAL: 2, Flag.LOW: 3, Flag.HIGH: 3}
_SEVERITY |= {Flag.CRITICAL_LOW: 4, Flag.CRITICAL_HIGH: 4}
_CRITICAL_LAB_FLAGS = frozenset({"HH", "LL", "AA"})

# What a Result's DecimalField(12, 4) holds; a value beyond it is kept as the text the lab sent.
_MAX_NUMBER = Decimal("99999999.9999")
_NUMERIC_TYPES = frozenset({"NM", "SN"})
_CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
_NARRATIVE_TYPES = frozenset({"TX", "FT"})
_SHORT_TEXT = 200
_SUMMARY = 120


# --- One OBX as a Result -------------------------------------------------------------------------


def report_status(obs: Observation, group: OrderGroup) -> str | None:
    """How this row is filed (P/F/C/X), or None when it carries no result to file (I, O, N, D)."""
    status = obs.status or group.status
    if status in _NOT_FILED:
        return None
    return _REPORT_STATUS.get(status, RS.FINAL)


def not_filed_reason(obs: Observation, group: OrderGroup) -> str:
    return _NOT_FILED.get(obs.status or group.status, "")


def lab_flag(flags: list[str]) -> tuple[str, bool]:
    """The lab's OBX-8 as our flag (the most severe one), and whether the lab called it critical."""
    best = Flag.NONE
    critical = False
    for raw in flags:
        code = raw.strip().upper()
        if not code or code in _SAYS_NOTHING:
            continue
        ours = _LAB_FLAGS.get(code, Flag.ABNORMAL)
        critical = critical or code in _CRITICAL_LAB_FLAGS
        if _SEVERITY[ours] > _SEVERITY[best]:
            best = ours
    return best, critical


def _decimals(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _fits(number: Decimal | None) -> bool:
    return number is not None and abs(number) <= _MAX_NUMBER and _decimals(number) <= 4


def _summary(text: str) -> str:
    """The first line with something on it, for lists; the whole text stays in the narrative."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if not lines:
        return ""
    first = lines[0]
    more = len(lines) > 1 or len(first) > _SUMMARY
    return (first[:_SUMMARY].rstrip() + " …") if more else first


@dataclass
class Reported:
    """One OBX read for filing: the analyte it reports, its report status, the Result's values."""

    obs: Observation
    analyte: Analyte
    sub_id: str
    status: str
    values: dict[str, object] = field(default_factory=dict)
    lab_critical: bool = False

    @property
    def key(self) -> tuple[int, str]:
        return (self.analyte.pk, self.sub_id)


def result_values(obs: Observation) -> dict[str, object]:
    """The Result fields one OBX fills with its value: number, comparator, text, code, narrative, unit."""
    values: dict[str, object] = {
        "value_numeric": None,
        "comparator": "",
        "value_text": "",
        "value_decimals": None,
        "value_separator": "",
        "value_numeric2": None,
        "value_code": "",
        "value_code_system": "",
        "value_alt_code": "",
        "value_alt_code_system": "",
        "narrative": "",
        "unit": obs.unit[:40],
    }
    kind = obs.value_type
    if kind in _NUMERIC_TYPES and _fits(obs.number) and (obs.number2 is None or _fits(obs.number2)):
        assert obs.number is not None
        comparator = "" if obs.comparator == "=" else obs.comparator
        values["value_numeric"], values["comparator"] = obs.number, comparator
        decimals = _decimals(obs.number)
        if obs.number2 is not None and obs.separator:
            values["value_numeric2"], values["value_separator"] = obs.number2, obs.separator
            decimals = max(decimals, _decimals(obs.number2))
        values["value_decimals"] = decimals
    elif kind in _CODED_TYPES and obs.coded is not None:
        coded = obs.coded
        values["value_text"] = (coded.text or coded.original_text or coded.code)[:_SHORT_TEXT]
        values["value_code"], values["value_code_system"] = coded.code[:40], coded.system[:40]
        values["value_alt_code"], values["value_alt_code_system"] = coded.alt_code[:40], coded.alt_system[:40]
    else:
        # Text (ST, TX, FT), a number too big for the field, or a type we only show as sent.
        text = obs.text if (obs.text or obs.number is None) else obs.display_value
        if kind in _NARRATIVE_TYPES or "\n" in text or len(text) > _SHORT_TEXT:
            values["narrative"] = text
            values["value_text"] = _summary(text)
        else:
            values["value_text"] = text
    return values


def _signature(values: dict[str, object] | Result, flags: str) -> tuple[object, ...]:
    """What makes a re-sent row a change: the value, its unit and the lab's flags (not the precision)."""
    get = values.get if isinstance(values, dict) else (lambda name: getattr(values, name))
    return (
        get("value_numeric"),
        get("comparator"),
        get("value_numeric2"),
        get("value_separator"),
        get("value_text"),
        get("value_code"),
        get("narrative"),
        get("unit"),
        flags,
    )


def _lab_flags_text(obs: Observation) -> str:
    return "~".join(obs.abnormal_flags)[:20]


# --- The analytes a lab reports ------------------------------------------------------------------


SHORT_NAME_LENGTH = 30  # Analyte.short_name


def short_name(text: str) -> str:
    """A name that fits a result's line: a LOINC long name's component ("Cholesterol [Mass/volume] in
    Serum or Plasma" is "Cholesterol"), and a long one cut at a word (or a "/", "." or "-") with an
    ellipsis, never mid-word unless it is one word."""
    head = text.split(" [", 1)[0].strip() or text.strip()
    if len(head) <= SHORT_NAME_LENGTH:
        return head
    room = head[: SHORT_NAME_LENGTH - 1]
    at = max(room.rfind(separator) for separator in " /.,;:-")
    cut = room[:at].rstrip(" /.,;:-") if at > 0 else room
    return f"{cut}…"


def _analyte_name(obs: Observation) -> tuple[str, str]:
    name = obs.loinc_text or obs.local_text or obs.loinc_code or obs.local_code
    short = obs.local_text or obs.loinc_text or obs.local_code or obs.loinc_code
    return name[:120], short_name(short)


class Analytes:
    """The order's test's analytes by LOINC (or lab code), adding those a lab reports for the first time."""

    def __init__(self, order: TestOrder) -> None:
        self.test = order.test
        self.by_loinc: dict[str, Analyte] = {}
        self.by_lab_code: dict[str, Analyte] = {}
        self.ranges: dict[int, list[ReferenceRange]] = {}
        for analyte in Analyte.objects.filter(test=self.test).prefetch_related("ranges"):
            self.ranges[analyte.pk] = list(analyte.ranges.all())
            if analyte.loinc_code:
                self.by_loinc[analyte.loinc_code] = analyte
            elif analyte.lab_code:
                self.by_lab_code[analyte.lab_code] = analyte
        self._next: int | None = None
        self.borrowed: dict[str, list[ReferenceRange]] = {}
        self._asked: set[str] = set()  # the LOINCs borrow() has looked up already

    def borrow(self, codes: set[str]) -> None:
        """Read, in one query, the ranges our catalog has elsewhere for these LOINCs where this test has
        none (each LOINC once: the intake keeps one Analytes per test for a whole batch)."""
        lacking = {c for c in codes if c and not self.ranges.get(getattr(self.by_loinc.get(c), "pk", -1))}
        lacking -= self._asked
        if not lacking:
            return
        self._asked |= lacking
        bands = ReferenceRange.objects.filter(analyte__loinc_code__in=lacking).exclude(analyte__test=self.test)
        for band in bands.select_related("analyte"):
            self.borrowed.setdefault(band.analyte.loinc_code, []).append(band)

    def ranges_for(self, analyte: Analyte) -> list[ReferenceRange]:
        """Its own ranges; else those our catalog has for the same LOINC elsewhere (the in-house
        hemoglobin's critical limits apply to a reference lab's hemoglobin): the clinic's critical values."""
        return self.ranges.get(analyte.pk) or self.borrowed.get(analyte.loinc_code, [])

    def for_observation(self, obs: Observation) -> Analyte | None:
        """The analyte this OBX reports; None for a row with no code at all (it can't be told apart)."""
        if obs.loinc_code:
            known = self.by_loinc.get(obs.loinc_code)
            return known or self._add(obs, loinc_code=obs.loinc_code[:12])
        if obs.local_code:
            known = self.by_lab_code.get(obs.local_code)
            return known or self._add(obs, lab_code=obs.local_code[:40])
        return None

    def _add(self, obs: Observation, *, loinc_code: str = "", lab_code: str = "") -> Analyte:
        if self._next is None:
            top = Analyte.objects.filter(test=self.test).aggregate(top=Max("position"))["top"]
            self._next = (top or 0) + 1
        name, short = _analyte_name(obs)
        numeric = obs.value_type in _NUMERIC_TYPES and obs.number is not None
        # get_or_create: two messages for one test filed side by side may meet the same new LOINC.
        lookup = {"loinc_code": loinc_code} if loinc_code else {"loinc_code": "", "lab_code": lab_code}
        analyte, created = Analyte.objects.get_or_create(
            test=self.test,
            **lookup,
            defaults={
                "position": self._next,
                "lab_code": lab_code or obs.local_code[:40],
                "name": name,
                "short_name": short,
                "result_type": ResultType.NUMERIC if numeric else ResultType.TEXT,
                "unit": obs.unit[:20] if numeric else "",
                "decimals": min(_decimals(obs.number), 4) if numeric and obs.number is not None else 0,
            },
        )
        self._next += 1
        self.ranges.setdefault(analyte.pk, [])  # new: no ranges yet (met by another message: read them)
        if not created:
            self.ranges[analyte.pk] = list(analyte.ranges.all())
        if loinc_code:
            self.by_loinc[loinc_code] = analyte
        else:
            self.by_lab_code[lab_code] = analyte
        return analyte


# --- Flags -----------------------------------------------------------------------------------------


def _flag(
    analyte: Analyte,
    ranges: list[ReferenceRange],
    values: dict[str, object],
    obs: Observation,
    patient: Patient,
    on: dt.date,
) -> tuple[str, bool, ReferenceRange | None]:
    """(flag, is_critical, our range when our critical limit decided): the lab's flag, raised by ours."""
    flag, critical = lab_flag(obs.abnormal_flags)
    number = values["value_numeric"]
    if isinstance(number, Decimal) and not values["value_separator"] and ranges:
        chosen = range_for(ranges, sex=patient.sex, age_days=age_in_days(patient.date_of_birth, on))
        comparator = str(values["comparator"])
        ours = numeric_flag(number, comparator if comparator in ("<", ">") else "", chosen, analyte.quantum)
        if ours in CRITICAL_FLAGS:
            return ours, True, chosen
    return flag, critical or flag in CRITICAL_FLAGS, None


# --- Filing one order group -------------------------------------------------------------------------


@dataclass
class Filed:
    """What filing one order group did."""

    send_out: SendOut
    new: list[Result] = field(default_factory=list)
    amended: int = 0
    replaced: int = 0
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)
    critical: bool = False
    cancelled: bool = False

    @property
    def count(self) -> int:
        return len(self.new)


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """A lab's time as stored: with its UTC offset when it sent one, else in the clinic's time zone."""
    if moment is None or timezone.is_aware(moment):
        return moment
    return timezone.make_aware(moment)


def _notes(lines: list[str]) -> str:
    return "\n".join(lines)


def _performing(obs: Observation) -> tuple[str, str, str]:
    name = obs.performing_org_name or obs.producer
    if name and obs.performing_org_id and obs.performing_org_id not in name:
        name = f"{name} (CLIA {obs.performing_org_id})" if len(obs.performing_org_id) == 10 else name
    return name[:200], obs.performing_org_address[:300], obs.performing_org_director[:200]


def file_order_group(
    *,
    message: InboundMessage,
    group: OrderGroup,
    send_out: SendOut,
    order: TestOrder,
    lab: ReferenceLab,
    current: dict[tuple[int, str], Result],
    by: User,
    analytes: Analytes | None = None,
) -> Filed:
    """Read one OBR's observations as the Results they file to its order (locked by the caller, with
    its current results); ``report_filed`` writes them, for many groups at once.

    ``current`` maps (analyte id, OBX-4) to the order's released result there now; it is updated
    with what this group files, so a second group of the same message sees it. ``analytes`` are the
    order's test's, as the caller's batch has read them (read here when not given).
    """
    filed = Filed(send_out=send_out)
    analytes = analytes if analytes is not None and analytes.test.pk == order.test_id else Analytes(order)
    patient = order.handoff.patient
    specimen = order.specimen
    assert specimen is not None, "a send-out's order has its specimen"
    collected_on = timezone.localdate(specimen.collected_at) if specimen.collected_at else timezone.localdate()
    order_notes = _notes(group.notes)
    seen: dict[tuple[int, str], int] = {}
    rows: list[Result] = []
    analytes.borrow({obs.loinc_code for obs in group.observations})
    for obs in group.observations:
        status = report_status(obs, group)
        where = f"OBX {obs.set_id or '?'}"
        if status is None:
            filed.skipped.append(f"{where} not filed ({not_filed_reason(obs, group)})")
            continue
        analyte = analytes.for_observation(obs)
        if analyte is None:
            filed.skipped.append(f"{where} has no code in OBX-3: not filed")
            continue
        # The same code and OBX-4 twice (not one merged narrative): the second is its own row.
        sub_id = obs.sub_id[:20]
        key = (analyte.pk, sub_id)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            sub_id = f"{sub_id}#{seen[key]}"[:20]
            key = (analyte.pk, sub_id)
        values = result_values(obs)
        if status == RS.CANCELLED and not (values["value_text"] or values["value_numeric"] is not None):
            values["value_text"] = "Not reported: cancelled by the lab"
        flags = _lab_flags_text(obs)
        existing = current.get(key)
        amends: Result | None = None
        replaces: Result | None = None
        reason = ""
        if existing is not None:
            same = _signature(values, flags) == _signature(existing, existing.lab_flags)
            was_preliminary = existing.report_status == RS.PRELIMINARY
            if status == RS.PRELIMINARY and not was_preliminary:
                filed.skipped.append(f"{where}: a preliminary after the final, not filed over it")
                continue
            if same and (status == RS.PRELIMINARY or not was_preliminary):
                filed.unchanged += 1
                continue
            if was_preliminary:
                replaces = existing
            else:
                amends = existing
                said = _notes(obs.notes) or ("OBX-11 C" if status == RS.CORRECTED else f"a changed {status} report")
                reason = f"Corrected by {lab.name}: {said}"
                if status != RS.CORRECTED:
                    status = RS.CORRECTED
        flag, critical, chosen = _flag(analyte, analytes.ranges_for(analyte), values, obs, patient, collected_on)
        performing, address, director = _performing(obs)
        result = bulk.build(
            Result,
            order=order,
            analyte=analyte,
            patient_id=patient.pk,
            specimen=specimen,
            inbound=message,
            reference_lab=lab,
            report_status=status,
            observation_sub_id=sub_id,
            lab_code=obs.local_code[:40],
            lab_name=(obs.local_text or obs.loinc_text)[:200],
            lab_flags=flags,
            flag=flag,
            is_critical=critical,
            reference_range=chosen,
            reference_text=obs.reference_range[:120],
            notes=_notes(obs.notes),
            order_notes=order_notes,
            performing_lab=performing,
            performing_lab_address=address,
            performing_lab_director=director,
            observed_at=aware(obs.observed_at or group.observed_at),
            amends=amends,
            amend_reason=reason[:300],
            replaces=replaces,
            status=ResultStatus.ENTERED,
            **values,
        )
        rows.append(result)
        current[key] = result
        filed.amended += amends is not None
        filed.replaced += replaces is not None
        filed.critical = filed.critical or critical
    filed.new = rows  # written by report_filed, with every other group's of the caller's batch
    filed.cancelled = group.status == "X" or (
        bool(group.observations) and all(report_status(o, group) == RS.CANCELLED for o in group.observations)
    )
    return filed


def report_filed(filed: list[Filed], *, by: User) -> None:
    """Write what ``file_order_group`` read for these groups, in one go (lab.results.services.results_report)."""
    results_report(results=[r for f in filed for r in f.new], by=by)


def current_results_of(orders: list[TestOrder]) -> dict[int, dict[tuple[int, str], Result]]:
    """Each order's released results by (analyte, OBX-4), locked, in one query: what a new report files against."""
    rows = (
        Result.objects.select_for_update(no_key=True, of=("self",))
        .filter(order__in=[o.pk for o in orders], status=ResultStatus.RELEASED)
        # No join and no ordering: with either the planner read every result rather than the order's.
        .order_by()
    )
    current: dict[int, dict[tuple[int, str], Result]] = {o.pk: {} for o in orders}
    for r in rows:
        current[r.order_id][(r.analyte_id, r.observation_sub_id)] = r
    return current


# --- The identity check --------------------------------------------------------------------------------


def _folded(text: str) -> str:
    """A name part as we compare it: accents, case, spaces and punctuation gone (``O'Brien`` is ``obrien``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.casefold() if c.isalnum())


def _middle_agrees(ours: str, theirs: str) -> bool:
    if not ours or not theirs:
        return True  # a missing middle name is no mismatch
    if len(ours) == 1 or len(theirs) == 1:
        return ours[0] == theirs[0]  # an initial agrees with the name it starts
    return ours == theirs


def identity_disagreements(identity: Identity, patient: Patient) -> list[str]:
    """What in the message's patient disagrees with the order's: empty when they are the same person.

    Name case-insensitively (and without accents or punctuation), a missing middle name being no
    mismatch, and date of birth exactly: the two identifiers. Our MRN, which the keys already tie to
    the order, is shown beside them (``mrn_differs``) but holds nothing by itself.
    """
    wrong = []
    ours = [_folded(part) for part in patient.given_name.split()] or [""]
    theirs = [_folded(part) for part in identity.given.split()] or [""]
    their_middle = _folded(identity.middle) or (theirs[1] if len(theirs) > 1 else "")
    our_middle = ours[1] if len(ours) > 1 else ""
    if _folded(identity.family) != _folded(patient.family_name):
        wrong.append("family name")
    if theirs[0] != ours[0] or not theirs[0]:
        wrong.append("given name")
    elif not _middle_agrees(our_middle, their_middle):
        wrong.append("middle name")
    if identity.dob is None:
        wrong.append("date of birth (none sent)")
    elif identity.dob != patient.date_of_birth:
        wrong.append("date of birth")
    return wrong


def mrn_differs(identity: Identity, patient: Patient) -> bool:
    """The lab sent our MRN where its profile says, and it is another patient's number than the order's."""
    return bool(identity.our_mrn) and identity.our_mrn != patient.mrn


def identity_text(identity: Identity) -> str:
    """The message's patient as one line: ``MARTINEZ, ROSALIND · born 1981-02-14 · MRN M100001``."""
    name = ", ".join(p for p in (identity.family, " ".join(p for p in (identity.given, identity.middle) if p)) if p)
    born = identity.dob.isoformat() if identity.dob else (identity.dob_text or "no date of birth")
    mrn = f" · MRN {identity.our_mrn}" if identity.our_mrn else ""
    return f"{name or 'no name'} · born {born}{mrn}"
