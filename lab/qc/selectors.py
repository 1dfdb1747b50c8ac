"""Reads for the QC pages: the board (each test's lots, locked or not, and what to run) and the
Levey-Jennings series of one control lot. Both read everything in a fixed number of queries.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import Offer, offer
from lab.models import Analyte, ControlLot, KitLot, QCRule, QCRun, TestDefinition
from lab.qc import westgard
from lab.qc.lockout import block_reason, current_controls, levels_for, qc_window_start
from lab.qc.services import check_qc_run
from lab.workflow import QUANTITATIVE_LEVELS, ResultType


def plain(value: Decimal) -> str:
    """A decimal without trailing zeros or an exponent: 8.2, 305, 0.25."""
    return f"{value.normalize():f}"


def target_label(control: ControlLot) -> str:
    """A quantitative control's target: "305 ± 12"."""
    assert control.target_mean is not None and control.target_sd is not None
    return f"{plain(control.target_mean)} ± {plain(control.target_sd)}"


# --- The board -----------------------------------------------------------------------------------


@dataclass
class ControlDue:
    """One control to run on one lot: its last run there, whether it is due, and the form's offer."""

    control_lot: ControlLot
    last_run: QCRun | None
    due: bool
    status: str  # "Never run on this lot", "Failed 11/30 14:02", "Passed 08:10"
    offer: Offer
    choices: list[str]  # a qualitative control's values, one button each
    ident: str  # "<kit lot>-<control lot>": the form's field ids
    shown: str  # the last run's value, as the bench reads it
    target: str  # a quantitative control's "mean ± SD"

    @property
    def failed(self) -> bool:
        return self.last_run is not None and not self.last_run.passed


@dataclass
class LotStatus:
    kit_lot: KitLot
    block: str | None  # None: patient testing may go ahead
    controls: list[ControlDue]

    @property
    def locked(self) -> bool:
        return self.block is not None


@dataclass
class TestQC:
    test: TestDefinition
    rule: QCRule
    quantitative: bool
    lots: list[LotStatus] = field(default_factory=list)
    controls: list[ControlLot] = field(default_factory=list)  # current control lots, for the charts


def _last_runs(lots: list[KitLot]) -> dict[tuple[int, int, str], QCRun]:
    """The latest run per (kit lot, test, level): one DISTINCT ON query."""
    runs = (
        QCRun.objects.filter(kit_lot__in=lots)
        .select_related("performed_by", "control_lot")
        .order_by("kit_lot_id", "control_lot__test_id", "control_lot__level", "-performed_at", "-id")
        .distinct("kit_lot_id", "control_lot__test_id", "control_lot__level")
    )
    return {(r.kit_lot_id, r.control_lot.test_id, r.control_lot.level): r for r in runs}


def qc_board(*, user: User, at: dt.datetime | None = None) -> list[TestQC]:
    """Each active in-house test with a QC rule, its lots in use, locked or not and why, and what to run.

    Queries: the tests with their rules, their analytes, the lots in use with their kits, the kits'
    tests, the control lots, and the latest run of each level on each lot.
    """
    at = at or timezone.now()
    today = timezone.localdate(at)
    tests = list(
        TestDefinition.objects.filter(
            is_active=True, performed=TestDefinition.Performed.IN_HOUSE, qc_rule__isnull=False
        )
        .select_related("qc_rule")
        .prefetch_related(Prefetch("analytes", queryset=Analyte.objects.order_by("position", "id")))
        .order_by("name")
    )
    lots = list(
        KitLot.objects.filter(is_active=True, kit__is_active=True, kit__tests__in=tests)
        .distinct()
        .select_related("kit")
        .prefetch_related("kit__tests")
        .order_by("kit__manufacturer", "kit__name", "expiry_date", "received_on", "lot_number")
    )
    controls_by_test: dict[int, list[ControlLot]] = defaultdict(list)
    for control in ControlLot.objects.filter(test__in=tests, is_active=True, expiry_date__gte=today).order_by(
        "level", "expiry_date", "lot_number"
    ):
        controls_by_test[control.test_id].append(control)
    last_runs = _last_runs(lots) if lots else {}

    board = []
    for test in tests:
        analytes = list(test.analytes.all())
        for control in controls_by_test[test.pk]:
            control.test = test
            control.analyte = next((a for a in analytes if a.pk == control.analyte_id), analytes[0])
        controls = current_controls(controls_by_test[test.pk], today)
        numeric = any(a.result_type == ResultType.NUMERIC for a in analytes)
        levels = levels_for(numeric=numeric, controls=controls)
        entry = TestQC(test=test, rule=test.qc_rule, quantitative=levels == QUANTITATIVE_LEVELS)
        entry.controls = controls
        for lot in lots:
            kit_tests = {t.pk for t in lot.kit.tests.all()}
            if test.pk not in kit_tests:
                continue
            runs = {
                level: last_runs[(lot.pk, test.pk, level)] for level in levels if (lot.pk, test.pk, level) in last_runs
            }
            block = block_reason(
                test=test,
                kit_lot=lot,
                kit_test_ids=kit_tests,
                rule=test.qc_rule,
                levels=levels,
                controls=controls,
                last_runs=runs,
                at=at,
            )
            due = [_control_due(lot, c, runs.get(c.level), test.qc_rule, user, at) for c in controls]
            entry.lots.append(LotStatus(kit_lot=lot, block=block, controls=due))
        board.append(entry)
    return board


def _control_due(
    lot: KitLot, control: ControlLot, last: QCRun | None, rule: QCRule, user: User, at: dt.datetime
) -> ControlDue:
    since = qc_window_start(rule, at)
    if last is None:
        due, status = True, "Never run on this lot"
    else:
        when = timezone.localtime(last.performed_at)
        stamp = f"{when:%H:%M}" if when.date() == timezone.localdate(at) else f"{when:%m/%d %H:%M}"
        if not last.passed:
            due, status = True, f"Failed {stamp}"
        elif since is not None and last.performed_at < since:
            due, status = True, f"Due (last passed {stamp})"
        else:
            due, status = False, f"Passed {stamp}"
    return ControlDue(
        control_lot=control,
        last_run=last,
        due=due,
        status=status,
        offer=offer(lambda: check_qc_run(lot, control, user, on=timezone.localdate(at))),
        choices=[] if control.is_quantitative else [str(c) for c in control.analyte.choices],
        ident=f"{lot.pk}-{control.pk}",
        shown=shown_value(last, control) if last is not None else "",
        target=target_label(control) if control.is_quantitative else "",
    )


def may_run_qc(user: User) -> bool:
    return user.is_active and user.has_perm("lab.run_qc")


def kit_lot_for_qc(pk: int) -> KitLot:
    return get_object_or_404(KitLot.objects.select_related("kit"), pk=pk)


def control_lot_for_qc(pk: int) -> ControlLot:
    return get_object_or_404(ControlLot.objects.select_related("test", "analyte"), pk=pk)


def shown_value(run: QCRun, control_lot: ControlLot, *, unit: bool = True) -> str:
    """A run's value as the bench reads it: "Positive", "98 mg/dL"."""
    if run.value_numeric is None:
        return run.value_text
    suffix = f" {control_lot.analyte.unit}" if unit and control_lot.analyte.unit else ""
    value, quantum = run.value_numeric, control_lot.analyte.quantum
    # At the analyte's reporting precision, or as typed where the meter gave more.
    shown = value.quantize(quantum) if value == value.quantize(quantum) else value.normalize()
    return f"{shown:f}{suffix}"


# --- Levey-Jennings ------------------------------------------------------------------------------

# The chart's drawing box (SVG user units): the plot sits inside the margins.
WIDTH, HEIGHT = 900, 320
LEFT, RIGHT, TOP, BOTTOM = 120, 20, 16, 40
SPAN_SD = 4  # the y axis runs from mean - 4 SD to mean + 4 SD; points beyond sit on its edge
CHART_RUNS = 60


@dataclass(frozen=True)
class Line:
    label: str  # "+2 SD"
    value: Decimal
    y: float
    kind: str  # "mean", "sd1", "sd2", "sd3"
    label_value: str  # the value at the analyte's precision, or the SD's where finer: "1.0", "8.6"


@dataclass(frozen=True)
class Point:
    run: QCRun
    x: float
    y: float
    z: float
    violations: list[str]
    clipped: bool  # beyond the axis: drawn on its edge
    value: str  # as the bench reads it, without the unit

    @property
    def kind(self) -> str:
        """ "ok" passed; "outside" failed beyond 2 SD alone (1-2s); "reject" failed by a rejecting rule."""
        if westgard.rejects(self.violations):
            return "reject"
        if not self.run.passed:
            return "outside"
        return "ok"

    @property
    def described(self) -> list[tuple[str, str]]:
        return [(rule, westgard.MEANING.get(rule, "")) for rule in self.violations]

    @property
    def triangle(self) -> str:
        """The warning marker's corners (SVG polygon points)."""
        return f"{self.x},{self.y - 7} {self.x - 6.5},{self.y + 5} {self.x + 6.5},{self.y + 5}"

    @property
    def square_x(self) -> float:
        return round(self.x - 5.5, 1)

    @property
    def square_y(self) -> float:
        return round(self.y - 5.5, 1)


@dataclass
class LeveyJennings:
    control_lot: ControlLot
    mean: Decimal
    sd: Decimal
    lines: list[Line]
    points: list[Point]
    observed_mean: Decimal | None
    observed_sd: Decimal | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM
    polyline: str = ""
    target: str = ""
    x_labels: list[tuple[float, str]] = field(default_factory=list)

    @property
    def rows(self) -> list[Point]:
        """The table's rows: newest first."""
        return list(reversed(self.points))

    @property
    def violations(self) -> int:
        return sum(1 for p in self.points if p.violations)


def control_runs(control_lot: ControlLot) -> QuerySet[QCRun]:
    return QCRun.objects.filter(control_lot=control_lot).select_related("kit_lot", "performed_by")


def levey_jennings(control_lot: ControlLot, *, limit: int = CHART_RUNS) -> LeveyJennings:
    """The control lot's latest runs on its target mean and ±1/2/3 SD lines, each flagged as it was stored."""
    if not control_lot.is_quantitative:
        raise ValueError("A Levey-Jennings chart plots a quantitative control.")
    assert control_lot.target_mean is not None and control_lot.target_sd is not None
    mean, sd = control_lot.target_mean, control_lot.target_sd
    runs = list(control_runs(control_lot).order_by("-performed_at", "-id")[:limit])
    runs.reverse()
    top, bottom, left, right = TOP, HEIGHT - BOTTOM, LEFT, WIDTH - RIGHT

    def y_of(z: float) -> float:
        z = max(-SPAN_SD, min(SPAN_SD, z))
        return round(top + (SPAN_SD - z) / (2 * SPAN_SD) * (bottom - top), 1)

    def x_of(i: int) -> float:
        if len(runs) <= 1:
            return float((left + right) // 2)
        return round(left + 12 + i * (right - left - 24) / (len(runs) - 1), 1)

    sd_exponent = sd.normalize().as_tuple().exponent
    places = max(control_lot.analyte.decimals, -sd_exponent if isinstance(sd_exponent, int) else 0)
    quantum = Decimal(1).scaleb(-places)
    lines = [
        Line(
            label="Mean" if k == 0 else f"{k:+d} SD",
            value=mean + k * sd,
            y=y_of(k),
            kind="mean" if k == 0 else f"sd{abs(k)}",
            label_value=f"{(mean + k * sd).quantize(quantum):f}",
        )
        for k in (3, 2, 1, 0, -1, -2, -3)
    ]
    points = []
    for i, run in enumerate(runs):
        assert run.value_numeric is not None
        z = westgard.z_score(run.value_numeric, mean=mean, sd=sd)
        points.append(
            Point(
                run=run,
                x=x_of(i),
                y=y_of(z),
                z=round(z, 2),
                violations=westgard.from_field(run.westgard),
                clipped=abs(z) > SPAN_SD,
                value=shown_value(run, control_lot, unit=False),
            )
        )
    values = [r.value_numeric for r in runs if r.value_numeric is not None]
    observed_mean = observed_sd = None
    if len(values) >= 2:
        observed_mean = sum(values, Decimal(0)) / len(values)
        variance = sum(((v - observed_mean) ** 2 for v in values), Decimal(0)) / (len(values) - 1)
        observed_sd = variance.sqrt()
    chart = LeveyJennings(
        control_lot=control_lot,
        mean=mean,
        sd=sd,
        lines=lines,
        points=points,
        observed_mean=observed_mean,
        observed_sd=observed_sd,
    )
    chart.target = target_label(control_lot)
    chart.polyline = " ".join(f"{p.x},{p.y}" for p in points)
    # A date under the first run of each day, thinned so labels never overlap.
    last_x = -100.0
    last_day = None
    for p in points:
        day = timezone.localtime(p.run.performed_at).date()
        if day != last_day and p.x - last_x >= 48:
            chart.x_labels.append((p.x, f"{day:%m/%d}"))
            last_x = p.x
        last_day = day
    return chart
