"""Reading a typed result and computing its flag: the rules, with no database access.

A numeric value is rounded to the analyte's decimals; outside the reportable range it is reported as
"<low" or ">high", never as a number the method can't give. The flag comes from the reference range
for the patient's sex and age (in days) at collection: LL/HH at or beyond a critical limit, L/H
outside the range, N within; an ordinal or coded value not among the normal ones is A.
"""

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lab.models.catalog import Analyte, ReferenceRange
from lab.workflow import CRITICAL_FLAGS, Flag, ResultType

_NUMBER = re.compile(r"^\s*(?P<cmp>[<>])?\s*(?P<num>[+-]?\d+(?:[.,]\d+)?|[+-]?[.,]\d+)\s*$")


class ResultValueError(ValueError):
    """The typed value can't be a result of this analyte; the message says what would be."""


@dataclass(frozen=True)
class Interpreted:
    value_numeric: Decimal | None
    comparator: str  # "", "<" or ">"
    value_text: str
    flag: str
    reference_range: ReferenceRange | None

    @property
    def is_critical(self) -> bool:
        return self.flag in CRITICAL_FLAGS


def age_in_days(date_of_birth: dt.date, on: dt.date) -> int:
    return max((on - date_of_birth).days, 0)


def range_for(ranges: Iterable[ReferenceRange], *, sex: str, age_days: int) -> ReferenceRange | None:
    """The range for this sex and age: one for the patient's own sex before one for any sex."""
    fitting = [
        r
        for r in ranges
        if r.sex in ("", sex) and r.age_min_days <= age_days and (r.age_max_days is None or age_days < r.age_max_days)
    ]
    fitting.sort(key=lambda r: (r.sex == "", -r.age_min_days))
    return fitting[0] if fitting else None


def interpret(
    analyte: Analyte, typed: str, *, sex: str, age_days: int, ranges: Iterable[ReferenceRange]
) -> Interpreted:
    """The reported value and its computed flag, or ResultValueError saying what is wrong."""
    typed = typed.strip()
    if not typed:
        raise ResultValueError(f"Enter a value for {analyte.short_name}.")
    if analyte.result_type == ResultType.ORDINAL:
        return _ordinal(analyte, typed)
    if analyte.result_type == ResultType.TEXT:
        return Interpreted(None, "", typed[:200], Flag.NONE, None)
    comparator, value = _numeric(analyte, typed)
    chosen = range_for(ranges, sex=sex, age_days=age_days)
    return Interpreted(value, comparator, "", numeric_flag(value, comparator, chosen, analyte.quantum), chosen)


def _ordinal(analyte: Analyte, typed: str) -> Interpreted:
    by_lower = {str(c).lower(): str(c) for c in analyte.choices}
    value = by_lower.get(typed.lower())
    if value is None:
        raise ResultValueError(f"{analyte.short_name} is one of: {', '.join(map(str, analyte.choices))}.")
    flag = Flag.NORMAL if value in analyte.normal_choices else Flag.ABNORMAL
    return Interpreted(None, "", value, flag, None)


def _numeric(analyte: Analyte, typed: str) -> tuple[str, Decimal]:
    match = _NUMBER.match(typed)
    if match is None:
        raise ResultValueError(f"{analyte.short_name} is a number" + (f" in {analyte.unit}." if analyte.unit else "."))
    try:
        number = Decimal(match["num"].replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ResultValueError(f"{analyte.short_name} is a number.") from None
    comparator = match["cmp"] or ""
    value = number.quantize(analyte.quantum, rounding=ROUND_HALF_UP)
    low, high = analyte.reportable_low, analyte.reportable_high
    # Outside what the method can report: the limit, with "<" or ">", never a number it can't give.
    if low is not None and (value < low or (comparator == "<" and value <= low)):
        return "<", low.quantize(analyte.quantum)
    if high is not None and (value > high or (comparator == ">" and value >= high)):
        return ">", high.quantize(analyte.quantum)
    if comparator:
        limits = " to ".join(f"{v.quantize(analyte.quantum):f}" for v in (low, high) if v is not None)
        raise ResultValueError(
            f"Only a value outside the reportable range ({limits}) is given as < or >; enter the number."
            if limits
            else f"Enter {analyte.short_name} as a number, without < or >."
        )
    return "", value


def numeric_flag(value: Decimal, comparator: str, chosen: ReferenceRange | None, quantum: Decimal) -> str:
    """LL/HH at or beyond a critical limit, L/H outside the range, N within; "" without a normal range."""
    if chosen is None:
        return Flag.NONE
    # "<20" is at most one step below 20, ">600" at least one step above.
    v = value - quantum if comparator == "<" else value + quantum if comparator == ">" else value
    if chosen.critical_low is not None and v <= chosen.critical_low:
        return Flag.CRITICAL_LOW
    if chosen.critical_high is not None and v >= chosen.critical_high:
        return Flag.CRITICAL_HIGH
    if chosen.low is None and chosen.high is None:
        return Flag.NONE  # a band with critical limits only: nothing to call normal or not
    if chosen.low is not None and v < chosen.low:
        return Flag.LOW
    if chosen.high is not None and v > chosen.high:
        return Flag.HIGH
    return Flag.NORMAL
