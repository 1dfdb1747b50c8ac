"""A small trend chart of one numeric analyte, as geometry a template draws in inline SVG.

No charting library: the page is served on closed networks and the chart is a handful of points.
Time runs left to right in proportion; the reference range is a shaded band; each point says its
flag. ``summary`` is the chart's text alternative, read by screen readers and shown as a caption.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from lab.workflow import Flag

WIDTH, HEIGHT = 320, 84
PAD_X, PAD_Y = 30, 10  # room on the left for the axis labels


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # "6.8 g/dL (critically low) on 12/01 09:40"
    flag: str


@dataclass(frozen=True)
class TrendChart:
    points: tuple[Point, ...]
    band: tuple[float, float] | None  # (y of the range's top, its height), when the range has both ends
    low_label: str
    high_label: str
    summary: str
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


def trend_chart(
    values: Sequence[tuple[dt.datetime, Decimal, str, str]],
    *,
    name: str,
    low: Decimal | None,
    high: Decimal | None,
    range_label: str,
) -> TrendChart | None:
    """The chart of (when, number, shown as, flag) values, oldest first; None for fewer than two."""
    if len(values) < 2:
        return None
    numbers = [v for _, v, _, _ in values] + [b for b in (low, high) if b is not None]
    bottom, top = min(numbers), max(numbers)
    if bottom == top:
        bottom, top = bottom - 1, top + 1
    first, last = values[0][0], values[-1][0]
    span = (last - first).total_seconds()
    inner_w, inner_h = WIDTH - 2 * PAD_X, HEIGHT - 2 * PAD_Y

    def y_of(value: Decimal) -> float:
        return PAD_Y + inner_h * float((top - value) / (top - bottom))

    def x_of(when: dt.datetime, index: int) -> float:
        fraction = (when - first).total_seconds() / span if span else index / (len(values) - 1)
        return PAD_X + inner_w * fraction

    points = tuple(
        Point(x_of(when, i), y_of(number), f"{shown}{_flag_words(flag)} on {_when(when)}", flag)
        for i, (when, number, shown, flag) in enumerate(values)
    )
    band = None
    if low is not None and high is not None:
        band = (y_of(high), y_of(low) - y_of(high))
    readings = ", ".join(p.label for p in points)
    summary = f"{name}, {len(points)} results oldest first: {readings}."
    if range_label:
        summary += f" Reference range {range_label}."
    return TrendChart(
        points=points,
        band=band,
        low_label=f"{bottom:f}".rstrip("0").rstrip(".") if "." in f"{bottom:f}" else f"{bottom:f}",
        high_label=f"{top:f}".rstrip("0").rstrip(".") if "." in f"{top:f}" else f"{top:f}",
        summary=summary,
    )


def _flag_words(flag: str) -> str:
    """ " (critically low)" for LL: words, for the text alternative; nothing for a normal value."""
    if not flag or flag == Flag.NORMAL:
        return ""
    return f" ({Flag(flag).label.lower()})"


def _when(at: dt.datetime) -> str:
    return f"{timezone.localtime(at):%m/%d %H:%M}"
