"""The turnaround dashboard and its CSV: supervisors see how long each step of a test takes.

Aggregates only: no patient is named on the page or in the export. The export is still an export
of what the lab did, so it is logged (with no patients); a refused role is logged by log_refusals.
"""

import csv
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from backoffice.audit.log import csv_safe, log_access, log_refusals
from backoffice.models import AccessAction, User
from lab.templatetags.lab_turnaround import duration
from lab.turnaround import selectors
from lab.turnaround.forms import TurnaroundForm
from lab.turnaround.selectors import Dashboard, Stats


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


def _figures(request: HttpRequest) -> tuple[TurnaroundForm, Dashboard]:
    form = TurnaroundForm(request.GET or None)
    chosen = form.choices()
    figures = selectors.dashboard(user=_user(request), **chosen)  # type: ignore[arg-type]
    if not form.is_bound or form.is_valid():
        # The fields show what the figures are for: a blank date as its default, a range put right way round.
        form = TurnaroundForm(initial=chosen)
    return form, figures


def _in_hours(figures: Dashboard) -> bool:
    return (figures.total.p90 or 0) > 180


def _chart_data(figures: Dashboard) -> dict[str, Any]:
    """What static/js/turnaround.js draws, in hours when the segment's 90th percentile passes 3 h."""
    hours = _in_hours(figures)
    scale = 60.0 if hours else 1.0

    def unit(v: float | None) -> float | None:
        return None if v is None else round(v / scale, 2)

    bars = figures.histogram
    width = (bars[1].start - bars[0].start) if len(bars) > 1 else 1
    total = figures.total
    return {
        "unit": "h" if hours else "min",
        "segment": figures.segment.label,
        "histogram": {
            "labels": [
                f"{unit(b.start):g}-{unit(b.end):g}" if b.end is not None else f"≥ {unit(b.start):g}" for b in bars
            ],
            "routine": [b.count - b.stat_count for b in bars],
            "stat": [b.stat_count for b in bars],
            # Where the lines go, in bars: bar i spans i to i + 1.
            "median": None if total.median is None else total.median / width,
            "p90": None if total.p90 is None else total.p90 / width,
            "median_label": duration(total.median),
            "p90_label": duration(total.p90),
        },
        "trend": {
            "labels": [r.label.removeprefix("Week of ") for r in figures.by_bucket],
            "volume": [r.stats.count - r.stats.stat_count for r in figures.by_bucket],
            "stat_volume": [r.stats.stat_count for r in figures.by_bucket],
            "median": [unit(r.stats.median) for r in figures.by_bucket],
            "p90": [unit(r.stats.p90) for r in figures.by_bucket],
            "stat_median": [unit(r.stat.median if r.stat else None) for r in figures.by_bucket],
        },
    }


@log_refusals("turnaround times", subject=None)
@require_GET
@permission_required(selectors.PERMISSION, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    form, figures = _figures(request)
    asked = {"since": figures.since, "until": figures.until, "group": figures.group, "bucket": figures.bucket}
    overview = [(seg, stats, urlencode({**asked, "segment": seg.key})) for seg, stats in figures.overview]
    context = {
        "form": form,
        "figures": figures,
        "overview": overview,
        "group_label": selectors.GroupBy(figures.group).label,
        "chart": _chart_data(figures),
        "cache_minutes": settings.TURNAROUND_CACHE_SECONDS // 60,
        "nav": "turnaround",
    }
    return render(request, "lab/turnaround/dashboard.html", context)


def _row(section: str, segment: str, label: str, stats: Stats) -> list[str]:
    def cell(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    return [
        csv_safe(v)
        for v in (
            section,
            segment,
            label,
            stats.count,
            stats.left_out,
            cell(stats.median),
            cell(stats.p90),
            cell(stats.max),
        )
    ]


@log_refusals("turnaround times CSV", subject=None)
@require_GET
@permission_required(selectors.PERMISSION, raise_exception=True)
def export_csv(request: HttpRequest) -> HttpResponse:
    """The page's figures as CSV, in minutes: every segment overall, then the chosen one by group and bucket."""
    _, figures = _figures(request)
    span = f"{figures.since:%Y-%m-%d}..{figures.until:%Y-%m-%d}"
    # Aggregates name no patient; the export is logged all the same, saying what and which range.
    log_access(request=request, action=AccessAction.EXPORT, what="turnaround times CSV", patients=[], object_ref=span)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="turnaround-{figures.since:%Y%m%d}-{figures.until:%Y%m%d}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(
        ["Section", "Segment", "Group", "Count", "Left out (n/a)", "Median (min)", "90th percentile (min)", "Max (min)"]
    )
    for segment, stats in figures.overview:
        writer.writerow(_row("All", segment.label, "All", stats))
    writer.writerow([csv_safe("Overdue send-outs"), "Send-out sent → final", "All", figures.overdue, "", "", "", ""])
    group = selectors.GroupBy(figures.group).label
    for row in figures.by_group:
        writer.writerow(_row(f"By {group.lower()}", figures.segment.label, row.label, row.stats))
    for row in figures.by_bucket:
        writer.writerow(_row(f"By {figures.bucket}", figures.segment.label, row.label, row.stats))
    return response
