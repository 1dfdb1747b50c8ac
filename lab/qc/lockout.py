"""Whether a kit lot may be used for patient testing now: fail-closed, with what to run if not.

A patient result is entered only on an active, unexpired lot of a kit made for the test, whose
required controls (positive and negative, or level 1 and level 2) each last ran on that very lot
(a new lot or a new shipment starts with none) and passed within the test's QC schedule.

``qc_block`` reads what it needs for one lot; the QC board reads it for every lot at once and asks
``block_reason``, the same decision on rows in hand, so the board and the bench never disagree.
"""

import datetime as dt
from collections.abc import Collection, Mapping, Sequence

from django.utils import timezone

from lab.models import ControlLot, KitLot, QCRule, QCRun, TestDefinition
from lab.workflow import QUALITATIVE_LEVELS, QUANTITATIVE_LEVELS, ControlLevel, QCFrequency, ResultType


def qc_window_start(rule: QCRule, at: dt.datetime) -> dt.datetime | None:
    """The earliest a passing run may be to count now; None when only new lots and shipments need QC."""
    today = timezone.localtime(at).replace(hour=0, minute=0, second=0, microsecond=0)
    if rule.frequency == QCFrequency.DAILY:
        return today
    if rule.frequency == QCFrequency.SHIFT:
        return at - dt.timedelta(hours=rule.shift_hours)
    if rule.frequency == QCFrequency.EVERY_N_DAYS:
        return today - dt.timedelta(days=max(rule.every_n_days, 1) - 1)
    return None


def levels_for(*, numeric: bool, controls: Sequence[ControlLot]) -> tuple[str, ...]:
    """Two levels for a quantitative test, positive and negative for a qualitative one."""
    quantitative = numeric or any(c.is_quantitative for c in controls)
    return QUANTITATIVE_LEVELS if quantitative else QUALITATIVE_LEVELS


def required_levels(test: TestDefinition, controls: Sequence[ControlLot]) -> tuple[str, ...]:
    return levels_for(numeric=test.analytes.filter(result_type=ResultType.NUMERIC).exists(), controls=controls)


def current_controls(controls: Sequence[ControlLot], on: dt.date) -> list[ControlLot]:
    """The control lots that may be run today: active and in date."""
    return [c for c in controls if c.is_active and c.expiry_date >= on]


def block_reason(
    *,
    test: TestDefinition,
    kit_lot: KitLot,
    kit_test_ids: Collection[int],
    rule: QCRule | None,
    levels: Sequence[str],
    controls: Sequence[ControlLot],
    last_runs: Mapping[str, QCRun],
    at: dt.datetime,
) -> str | None:
    """The lockout decision on rows in hand: ``controls`` current, ``last_runs`` by level on this lot."""
    today = timezone.localdate(at)
    lot = f"{kit_lot.kit} lot {kit_lot.lot_number}"
    if not kit_lot.is_active:
        return f"{lot} is withdrawn; use another lot."
    if kit_lot.is_expired(today):
        return f"{lot} expired on {kit_lot.expiry_date:%m/%d/%Y}; use another lot."
    if test.pk not in kit_test_ids:
        return f"{kit_lot.kit} is not a kit for {test.short_name}."
    if rule is None:
        return f"{test.short_name} has no QC rule yet; the lab director sets one in admin before patient testing."
    since = qc_window_start(rule, at)
    for level in levels:
        label = ControlLevel(level).label.lower()
        if not any(c.level == level for c in controls):
            return f"No current {label} lot for {test.short_name}; add one in admin, then run it on {lot}."
        last = last_runs.get(level)
        if last is None:
            return f"Run the {label} on {lot} first: a new lot or shipment needs its QC before patient testing."
        if not last.passed:
            when = timezone.localtime(last.performed_at)
            return f"The {label} failed on {lot} at {when:%m/%d %H:%M}; find the cause and run it again."
        if since is not None and last.performed_at < since:
            return f"QC is due on {lot} ({rule.get_frequency_display().lower()}): run the {label}."
    return None


def qc_block(test: TestDefinition, kit_lot: KitLot, at: dt.datetime | None = None) -> str | None:
    """Why patient testing on this lot is locked now (and what to run), or None when it may go ahead."""
    at = at or timezone.now()
    controls = current_controls(list(ControlLot.objects.filter(test=test)), timezone.localdate(at))
    levels = required_levels(test, controls)
    last_runs = {}
    for level in levels:
        last = (
            QCRun.objects.filter(
                kit_lot=kit_lot, control_lot__test=test, control_lot__level=level, performed_at__lte=at
            )
            .order_by("-performed_at", "-id")
            .first()
        )
        if last is not None:
            last_runs[level] = last
    return block_reason(
        test=test,
        kit_lot=kit_lot,
        kit_test_ids=set(kit_lot.kit.tests.values_list("pk", flat=True)),
        rule=QCRule.objects.filter(test=test).first(),
        levels=levels,
        controls=controls,
        last_runs=last_runs,
        at=at,
    )
