"""Quality control runs: a control's value entered on a kit lot, its pass or fail computed, never typed.

``qc_run_record`` locks the kit lot and the control lot, checks who runs it and on what, evaluates
the value (the qualitative control's expected value, or the quantitative control's ±2 SD window and
the Westgard rules read with the runs before it on the same control lot) and appends the run. A
failed run puts every result run on that lot since the last passing run of that control level up
for review (a released one) or on hold (one not yet released), in the same transaction. QC runs are append-only; a wrong entry is followed by a
new run, and the latest run of each level is what the lockout reads.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import edit, lock, require
from backoffice.workflow import TransitionNotAllowed
from lab.models import ControlLot, KitLot, QCRun, Result, ResultEvent
from lab.qc import westgard
from lab.workflow import ResultStatus

# What QCRun.value_numeric holds: 12 digits, 4 after the point.
_VALUE_PLACES = Decimal("0.0001")
_VALUE_LIMIT = Decimal("1e8")


class QCValueInvalid(TransitionNotAllowed):
    """The value typed is not one this control can give (not a number, not one of the analyte's values)."""


@dataclass(frozen=True)
class Evaluation:
    """A control value as stored, whether it passes, and the Westgard rules it violates."""

    value_numeric: Decimal | None
    value_text: str
    passed: bool
    violations: list[str] = field(default_factory=list)
    z: float | None = None


# --- Guards ------------------------------------------------------------------------------------


def check_qc_run(kit_lot: KitLot, control_lot: ControlLot, by: User, *, on: dt.date | None = None) -> None:
    """A control is run by the bench, on a lot in use of a kit for its test, from a control lot in date."""
    require(by, "lab.run_qc", "run quality control")
    on = on or timezone.localdate()
    lot = f"{kit_lot.kit} lot {kit_lot.lot_number}"
    if not kit_lot.is_active:
        raise TransitionNotAllowed(f"{lot} is withdrawn: it takes no more QC or patient tests.")
    if kit_lot.is_expired(on):
        raise TransitionNotAllowed(f"{lot} expired on {kit_lot.expiry_date:%m/%d/%Y}: use another lot.")
    if not control_lot.is_active:
        raise TransitionNotAllowed(f"{control_lot} is withdrawn: use a current control lot.")
    if control_lot.expiry_date < on:
        raise TransitionNotAllowed(f"{control_lot} expired on {control_lot.expiry_date:%m/%d/%Y}: open a new one.")
    if not any(t.pk == control_lot.test_id for t in kit_lot.kit.tests.all()):
        raise TransitionNotAllowed(f"{control_lot} is a control for another test than {kit_lot.kit}.")


# --- Evaluation (no writes) ----------------------------------------------------------------------


def parse_quantitative(value: str) -> Decimal:
    try:
        number = Decimal(value.strip().replace(",", "."))
    except InvalidOperation:
        raise QCValueInvalid(f"“{value.strip()}” is not a number; type the value the meter shows.") from None
    if not number.is_finite() or abs(number) >= _VALUE_LIMIT:
        raise QCValueInvalid(f"“{value.strip()}” is not a value this control can give.")
    return number.quantize(_VALUE_PLACES)


def parse_qualitative(control_lot: ControlLot, value: str) -> str:
    """One of the analyte's values, as the analyte spells it (typed in any case)."""
    choices = [str(c) for c in control_lot.analyte.choices]
    for choice in choices:
        if choice.casefold() == value.strip().casefold():
            return choice
    raise QCValueInvalid(f"A {control_lot.analyte.short_name} control reads one of: {', '.join(choices)}.")


def evaluate(control_lot: ControlLot, value: str, *, previous: Sequence[Decimal] = ()) -> Evaluation:
    """Pass or fail of ``value`` on ``control_lot``; ``previous``: its earlier numeric values, oldest first."""
    if not value.strip():
        raise QCValueInvalid("Enter the control's value.")
    if not control_lot.is_quantitative:
        text = parse_qualitative(control_lot, value)
        return Evaluation(value_numeric=None, value_text=text, passed=text == control_lot.expected_value)
    number = parse_quantitative(value)
    assert control_lot.target_mean is not None and control_lot.target_sd is not None  # quantitative
    mean, sd = control_lot.target_mean, control_lot.target_sd
    zs = [westgard.z_score(v, mean=mean, sd=sd) for v in previous[-(westgard.HISTORY - 1) :]]
    zs.append(westgard.z_score(number, mean=mean, sd=sd))
    return Evaluation(
        value_numeric=number,
        value_text="",
        passed=westgard.accepted(zs),
        violations=westgard.violations(zs),
        z=zs[-1],
    )


def previous_values(control_lot: ControlLot) -> list[Decimal]:
    """The control lot's earlier values, oldest first, as many as the Westgard rules read."""
    rows = (
        QCRun.objects.filter(control_lot=control_lot, value_numeric__isnull=False)
        .order_by("-performed_at", "-id")
        .values_list("value_numeric", flat=True)[: westgard.HISTORY - 1]
    )
    return [v for v in reversed(list(rows)) if v is not None]


def review_reason(run: QCRun) -> str:
    when = timezone.localtime(run.performed_at)
    return (
        f"{run.control_lot} failed on lot {run.kit_lot.lot_number} at {when:%m/%d/%Y %H:%M}: "
        "this result was run on that lot since its last passing QC."
    )[:300]


# --- The run -----------------------------------------------------------------------------------


def qc_run_record(*, kit_lot: KitLot, control_lot: ControlLot, value: str, by: User, note: str = "") -> QCRun:
    """Record one control run on ``kit_lot``; a failure marks the lot's results since its last pass for review."""
    require(by, "lab.run_qc", "run quality control")
    with transaction.atomic():
        lock(kit_lot, related=("kit",))
        lock(control_lot, related=("test", "analyte"))
        check_qc_run(kit_lot, control_lot, by)
        result = evaluate(control_lot, value, previous=previous_values(control_lot))
        run = QCRun(
            kit_lot=kit_lot,
            control_lot=control_lot,
            performed_by=by,
            performed_at=timezone.now(),
            value_numeric=result.value_numeric,
            value_text=result.value_text,
            passed=result.passed,
            westgard=westgard.as_field(result.violations),
            note=note.strip()[:300],
        )
        run.full_clean()
        run.save()
        if not run.passed:
            mark_for_review(run, by=by)
    return run


def mark_for_review(run: QCRun, *, by: User) -> list[Result]:
    """Results of the failed control's test run on this lot since that level last passed on it.

    A released one goes to the clinician marked for review; an unreleased one is held: it is not
    verified or released until it is repeated on a lot whose QC passes (lab.results.services).
    """
    last_pass = (
        QCRun.objects.filter(
            kit_lot=run.kit_lot,
            control_lot__test=run.control_lot.test_id,
            control_lot__level=run.control_lot.level,
            passed=True,
            performed_at__lte=run.performed_at,
        )
        .order_by("-performed_at", "-id")
        .first()
    )
    results = Result.objects.filter(
        kit_lot=run.kit_lot,
        analyte__test=run.control_lot.test_id,
        status__in=(ResultStatus.ENTERED, ResultStatus.VERIFIED, ResultStatus.RELEASED),
        needs_review=False,
    )
    if last_pass is not None:
        # "Run since": the test was performed (entered) after the control last passed.
        results = results.filter(entered_at__gt=last_pass.performed_at)
    reason = review_reason(run)
    marked = list(results.select_for_update(no_key=True, of=("self",)).order_by("released_at", "id"))
    for row in marked:
        row.needs_review = True
        row.review_reason = reason
        edit(
            row,
            by=by,
            action=ResultEvent.Action.MARKED_FOR_REVIEW,
            fields=["needs_review", "review_reason"],
            note=reason,
        )
    return marked
