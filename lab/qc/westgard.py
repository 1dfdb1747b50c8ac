"""Westgard rules on one control lot's runs, as pure functions of their z-scores (no database).

A z-score is how many target SDs a value lies from the control's target mean. The rules read the
current run together with the runs before it on the same control lot, newest last:

- 1-2s  one value beyond ±2 SD: a warning (the run still fails the ±2 SD acceptance window)
- 1-3s  one value beyond ±3 SD: random error, reject
- 2-2s  this and the previous value both beyond 2 SD on the same side: systematic error, reject
- R-4s  this and the previous value more than 4 SD apart, one above +2 SD and one below -2 SD: reject
- 4-1s  this and the three before it all beyond 1 SD on the same side: systematic shift, reject
- 10x   this and the nine before it all on the same side of the mean: systematic shift, reject
"""

from collections.abc import Sequence
from decimal import Decimal

WARNING = "1-2s"
REJECTING: tuple[str, ...] = ("1-3s", "2-2s", "R-4s", "4-1s", "10x")
# What the bench reads next to a flagged point.
MEANING = {
    "1-2s": "beyond 2 SD (warning)",
    "1-3s": "beyond 3 SD",
    "2-2s": "two in a row beyond 2 SD on the same side",
    "R-4s": "more than 4 SD from the previous run",
    "4-1s": "four in a row beyond 1 SD on the same side",
    "10x": "ten in a row on the same side of the mean",
}
# Runs a rule looks back over, the current one included: enough history for every rule.
HISTORY = 10


def z_score(value: Decimal, *, mean: Decimal, sd: Decimal) -> float:
    """How many SDs ``value`` lies from ``mean``."""
    if sd <= 0:
        raise ValueError("A control's SD must be positive.")
    return float((value - mean) / sd)


def _same_side(zs: Sequence[float], beyond: float) -> bool:
    return all(z > beyond for z in zs) or all(z < -beyond for z in zs)


def violations(zs: Sequence[float]) -> list[str]:
    """The rules the last z-score violates, read with those before it (oldest first)."""
    if not zs:
        return []
    current = zs[-1]
    found = []
    if abs(current) > 2:
        found.append(WARNING)
    if abs(current) > 3:
        found.append("1-3s")
    if len(zs) >= 2:
        previous = zs[-2]
        if _same_side(zs[-2:], 2):
            found.append("2-2s")
        if (current > 2 and previous < -2) or (current < -2 and previous > 2):
            found.append("R-4s")
    if len(zs) >= 4 and _same_side(zs[-4:], 1):
        found.append("4-1s")
    if len(zs) >= 10 and _same_side(zs[-10:], 0):
        found.append("10x")
    return found


def rejects(found: Sequence[str]) -> bool:
    """Whether any of these violations rejects the run (1-2s alone only warns)."""
    return any(rule in REJECTING for rule in found)


def accepted(zs: Sequence[float]) -> bool:
    """The run passes: within ±2 SD of the target and no rejecting rule with the runs before it."""
    return bool(zs) and abs(zs[-1]) <= 2 and not rejects(violations(zs))


def as_field(found: Sequence[str]) -> str:
    """Violations as QCRun.westgard stores them: "1-2s,2-2s"."""
    return ",".join(found)


def from_field(stored: str) -> list[str]:
    return [rule for rule in stored.split(",") if rule]
