"""Turnaround times: each segment of a test's way from order to release, computed in Postgres.

Every figure comes from stored times (no event rows are read): a test order's created_at,
resulted_at and released_at, its specimen's collected_at and received_at, a critical call's
opened_at and, when it closed with a read-back, closed_at, and a send-out's sent_at, final_at and
overdue_since. A time not there (not yet, or never recorded) makes the row "n/a" for that segment:
left out of its statistics and counted as left out.

The dashboard is a constant seven queries, whatever the volume: three overviews (test orders,
critical calls, send-outs), then the chosen segment by group, by bucket, by bucket for STAT alone,
and as a histogram. Each reads one date range of its source over an index (testorder_created_idx,
criticalcall_opened_idx, sendout_sent_idx), and what it needs of the handoff by one primary-key probe
per row (``_handoff``), so the time grows with the orders in the range, not with years of history.
"""

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Case, Count, Expression, F, Max, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce, Floor, Greatest, Least, Trunc
from django.db.models.lookups import Exact
from django.utils import timezone

from backoffice.models import Handoff, User
from backoffice.workflow import Priority
from lab.criticals.services import CLOSED_BY_READ_BACK
from lab.models import CriticalCall, SendOut, TestDefinition, TestOrder
from lab.turnaround.expressions import Minutes, PercentileCont
from lab.workflow import SendOutStatus, TestOrderStatus

PERMISSION = "lab.view_turnaround"
IN_HOUSE = "In-house"
NO_STATION = "No station"
DEFAULT_DAYS = 30
HISTOGRAM_BINS = 20


class GroupBy(models.TextChoices):
    TEST = "test", "Test"
    PRIORITY = "priority", "Priority"
    STATION = "station", "Station"
    LAB = "lab", "Performing lab"


class Bucket(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"


@dataclass(frozen=True, eq=False)  # each is one of the module's constants: compared and hashed by identity
class Source:
    """A table segments are measured on: its range's time, what is left out, and its group columns."""

    model: type[models.Model]
    anchor: str
    label: str  # what the date range picks, e.g. "ordered"
    base: Q
    groups: Mapping[str, Any]
    stat: Q


def _handoff(handoff_id: str, column: str) -> Subquery:
    """A column of the row's handoff, read by its primary key for each row in the range.

    Not a join: over years of handoffs the planner hashes the whole table (a scan that grows with
    history) where one index probe per row in the range is what the dashboard needs.
    """
    return Subquery(Handoff.objects.filter(pk=OuterRef(handoff_id)).values(column)[:1])


def _stat(handoff_id: str) -> Q:
    """The row's handoff is STAT. A scalar comparison, not EXISTS: Postgres turns an EXISTS into a hash
    of every STAT handoff ever (a scan growing with history); this stays one probe per row."""
    return Q(Exact(_handoff(handoff_id, "priority"), Value(Priority.STAT)))


ORDERS = Source(
    model=TestOrder,
    anchor="created_at",
    label="ordered",
    base=~Q(status=TestOrderStatus.CANCELLED),
    groups={
        GroupBy.TEST: F("test__short_name"),
        GroupBy.PRIORITY: _handoff("handoff_id", "priority"),
        GroupBy.STATION: Coalesce(_handoff("handoff_id", "station__name"), Value(NO_STATION)),
        GroupBy.LAB: Coalesce(
            Subquery(SendOut.objects.filter(order=OuterRef("pk")).values("reference_lab__name")[:1]),
            Value(IN_HOUSE),
        ),
    },
    stat=_stat("handoff_id"),
)
CRITICALS = Source(
    model=CriticalCall,
    anchor="opened_at",
    label="critical result released",
    base=Q(),
    groups={
        GroupBy.TEST: F("result__order__test__short_name"),
        GroupBy.PRIORITY: _handoff("result__order__handoff_id", "priority"),
        GroupBy.STATION: Coalesce(_handoff("result__order__handoff_id", "station__name"), Value(NO_STATION)),
        GroupBy.LAB: Coalesce(F("result__reference_lab__name"), Value(IN_HOUSE)),
    },
    stat=_stat("result__order__handoff_id"),
)
SEND_OUTS = Source(
    model=SendOut,
    anchor="sent_at",
    label="sent",
    base=Q(sent_at__isnull=False) & ~Q(status=SendOutStatus.CANCELLED),
    groups={
        GroupBy.TEST: F("order__test__short_name"),
        GroupBy.PRIORITY: _handoff("order__handoff_id", "priority"),
        GroupBy.STATION: Coalesce(_handoff("order__handoff_id", "station__name"), Value(NO_STATION)),
        GroupBy.LAB: F("reference_lab__name"),
    },
    stat=_stat("order__handoff_id"),
)
SOURCES = (ORDERS, CRITICALS, SEND_OUTS)


@dataclass(frozen=True, eq=False)
class Segment:
    key: str
    label: str
    source: Source
    start: str | Expression
    end: str | Expression
    # The rows the segment applies to (a verification is the bench's; the reference lab verifies its own).
    scope: Q = field(default_factory=Q)
    about: str = ""

    @property
    def minutes(self) -> Minutes:
        return Minutes(self.start, self.end)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # One of SEGMENTS: pickled (into the cache, with a Dashboard) by its key, not its expressions.
        return (segment_of, (self.key,))


def segment_of(key: str) -> "Segment":
    return BY_KEY[key]


IN_HOUSE_TESTS = Q(test__performed=TestDefinition.Performed.IN_HOUSE)
SEGMENTS = (
    Segment("order_collection", "Order → collection", ORDERS, "created_at", "specimen__collected_at"),
    Segment(
        "collection_receipt",
        "Collection → receipt",
        ORDERS,
        "specimen__collected_at",
        "specimen__received_at",
        about="received at the bench or the send-out desk",
    ),
    Segment(
        "receipt_result",
        "Receipt → result",
        ORDERS,
        "specimen__received_at",
        "resulted_at",
        about="results entered at the bench, or a send-out's final filed",
    ),
    Segment(
        "result_verification",
        "Result → verification",
        ORDERS,
        "resulted_at",
        "released_at",
        scope=IN_HOUSE_TESTS,
        about="in-house tests: entered → verified and released",
    ),
    Segment("order_release", "Order → release", ORDERS, "created_at", "released_at", about="the whole test"),
    Segment(
        "critical_read_back",
        "Critical result → read-back",
        CRITICALS,
        "opened_at",
        Case(When(closed_how=CLOSED_BY_READ_BACK, then=F("closed_at"))),
        about="acknowledged in the app without a read-back: n/a",
    ),
    Segment("sent_final", "Send-out sent → final", SEND_OUTS, "sent_at", "final_at"),
)
BY_KEY = {s.key: s for s in SEGMENTS}
DEFAULT_SEGMENT = "order_release"


@dataclass(frozen=True)
class Stats:
    """Minutes: the median and 90th percentile interpolated like percentile_cont; None when count is 0."""

    count: int
    left_out: int
    median: float | None
    p90: float | None
    max: float | None
    stat_count: int = 0


@dataclass(frozen=True)
class Row:
    label: str
    stats: Stats
    is_stat: bool = False
    stat: Stats | None = None  # the STAT orders' own figures (by bucket)


@dataclass(frozen=True)
class Bar:
    start: float  # minutes
    end: float | None  # None: the last bar, everything from start up
    count: int
    stat_count: int


@dataclass(frozen=True)
class Dashboard:
    since: dt.date
    until: dt.date
    segment: Segment
    group: str
    bucket: str
    overview: list[tuple[Segment, Stats]]
    overdue: int
    by_group: list[Row]
    by_bucket: list[Row]  # every bucket of the range, empty ones with count 0; row.stat the STAT orders'
    histogram: list[Bar]
    as_of: dt.datetime  # when these figures were computed (kept TURNAROUND_CACHE_SECONDS)

    @property
    def total(self) -> Stats:
        return next(stats for seg, stats in self.overview if seg is self.segment)


def _aggregates(segment: Segment, prefix: str = "") -> dict[str, Any]:
    minutes = segment.minutes
    scope = segment.scope
    return {
        f"{prefix}in_scope": Count("pk", filter=scope) if scope else Count("pk"),
        f"{prefix}n": Count(minutes, filter=scope) if scope else Count(minutes),
        f"{prefix}median": PercentileCont(minutes, 0.5, filter=scope or None),
        f"{prefix}p90": PercentileCont(minutes, 0.9, filter=scope or None),
        f"{prefix}max": Max(minutes, filter=scope or None),
    }


def _stats(row: Mapping[str, Any], prefix: str = "", stat_count: int = 0) -> Stats:
    n = row[f"{prefix}n"] or 0
    return Stats(
        count=n,
        left_out=(row[f"{prefix}in_scope"] or 0) - n,
        median=row[f"{prefix}median"],
        p90=row[f"{prefix}p90"],
        max=row[f"{prefix}max"],
        stat_count=stat_count,
    )


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _in_range(source: Source, since: dt.date, until: dt.date) -> models.QuerySet[Any]:
    window = {f"{source.anchor}__gte": _day_start(since), f"{source.anchor}__lt": _day_start(until + dt.timedelta(1))}
    return source.model._default_manager.filter(source.base, **window).order_by()


def _bucket_starts(since: dt.date, until: dt.date, bucket: str) -> list[dt.date]:
    if bucket == Bucket.WEEK:
        day = since - dt.timedelta(days=since.weekday())  # date_trunc('week') starts on Monday
        step = dt.timedelta(days=7)
    else:
        day = since.replace(day=1) if bucket == Bucket.MONTH else since
        step = dt.timedelta(days=1)
    starts = []
    while day <= until:
        starts.append(day)
        if bucket == Bucket.MONTH:
            day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        else:
            day += step
    return starts


NICE_WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 480, 720, 1440, 2880, 4320, 10080)


def histogram_width(stats: Stats) -> int:
    """A round bar width in minutes: twenty bars reach past the 90th percentile (the rest in the last)."""
    reach = max(stats.p90 or 0, stats.median or 0) * 1.5
    wanted = math.ceil(reach / HISTOGRAM_BINS) if reach > 0 else 1
    return next((w for w in NICE_WIDTHS if w >= wanted), NICE_WIDTHS[-1])


def priority_label(value: int) -> str:
    try:
        return Priority(value).label
    except ValueError:
        return str(value)


def dashboard(
    *,
    user: User,
    since: dt.date,
    until: dt.date,
    segment: str = DEFAULT_SEGMENT,
    group: str = GroupBy.TEST,
    bucket: str = Bucket.DAY,
) -> Dashboard:
    """Every segment's figures over the range, and the chosen one by group, by bucket and as a histogram.

    Aggregates of a month of a lab's work move little in a few minutes, and a dashboard is opened and
    re-opened: each range and choice is computed once per TURNAROUND_CACHE_SECONDS (the page says as of
    when), so the director's reloads and the CSV that follows them cost no query.
    """
    if not user.has_perm(PERMISSION):
        raise PermissionDenied
    chosen = BY_KEY.get(segment, BY_KEY[DEFAULT_SEGMENT])
    group = group if group in GroupBy.values else GroupBy.TEST
    bucket = bucket if bucket in Bucket.values else Bucket.DAY
    seconds = settings.TURNAROUND_CACHE_SECONDS
    if not seconds:
        return _dashboard(since, until, chosen, group, bucket)
    tz = timezone.get_current_timezone_name()
    key = f"lab.turnaround:{since:%Y%m%d}:{until:%Y%m%d}:{chosen.key}:{group}:{bucket}:{tz}"
    figures = cache.get(key)
    if not isinstance(figures, Dashboard):
        figures = _dashboard(since, until, chosen, group, bucket)
        cache.set(key, figures, seconds)
    return figures


def _dashboard(since: dt.date, until: dt.date, chosen: Segment, group: str, bucket: str) -> Dashboard:
    as_of = timezone.now()
    tz = timezone.get_current_timezone()

    # Queries 1-3: every segment of each source, overall.
    overview: list[tuple[Segment, Stats]] = []
    overdue = 0
    for source in SOURCES:
        segments = [s for s in SEGMENTS if s.source is source]
        aggregates: dict[str, Any] = {}
        for i, seg in enumerate(segments):
            aggregates |= _aggregates(seg, f"s{i}_")
        if source is SEND_OUTS:
            aggregates["overdue"] = Count("pk", filter=Q(overdue_since__isnull=False))
        row = _in_range(source, since, until).aggregate(**aggregates)
        overview += [(seg, _stats(row, f"s{i}_")) for i, seg in enumerate(segments)]
        overdue = row.get("overdue", overdue) or overdue
    overview.sort(key=lambda pair: SEGMENTS.index(pair[0]))
    source = chosen.source
    rows = _in_range(source, since, until)
    is_stat = source.stat & chosen.scope if chosen.scope else source.stat
    stat_count = Count(chosen.minutes, filter=is_stat)

    # Query 4: the chosen segment by test, priority, station or lab.
    grouped = (
        rows.annotate(group=source.groups[group])
        .values("group")
        .annotate(**_aggregates(chosen), stat_n=stat_count)
        .order_by("group")
    )
    by_group = []
    for g in grouped:
        label = priority_label(g["group"]) if group == GroupBy.PRIORITY else str(g["group"])
        stat = group == GroupBy.PRIORITY and g["group"] == Priority.STAT
        by_group.append(Row(label, _stats(g, stat_count=g["stat_n"]), is_stat=stat))

    # Queries 5 and 6: by day, week or month (in the clinic's time zone), then the STAT ones alone
    # (a filter evaluates the STAT check once a row; five FILTERs beside the others would run it five times).
    def by_bucket_of(queryset: models.QuerySet[Any], **extra: Any) -> dict[dt.date, dict[str, Any]]:
        bucketed = (
            queryset.annotate(bucket=Trunc(source.anchor, bucket, tzinfo=tz))
            .values("bucket")
            .annotate(**_aggregates(chosen), **extra)
            .order_by("bucket")
        )
        return {timezone.localtime(b["bucket"], tz).date(): b for b in bucketed}

    found = by_bucket_of(rows, stat_n=stat_count)
    found_stat = by_bucket_of(rows.filter(source.stat))
    by_bucket = []
    empty: dict[str, Any] = dict.fromkeys(("in_scope", "n", "median", "p90", "max", "stat_n"))
    for start in _bucket_starts(since, until, bucket):
        b = found.get(start, empty)
        stats = _stats(b, stat_count=b["stat_n"] or 0)
        by_bucket.append(Row(_bucket_label(start, bucket), stats, stat=_stats(found_stat.get(start, empty))))

    # Query 7: the histogram, in round bars sized from the overall 90th percentile.
    total = next(stats for seg, stats in overview if seg is chosen)
    width = histogram_width(total)
    minutes = chosen.minutes
    bars = (
        rows.filter(chosen.scope)
        .annotate(minutes=minutes)
        .filter(minutes__isnull=False)
        .annotate(bar=Least(Greatest(Floor(F("minutes") / width), Value(0.0)), Value(float(HISTOGRAM_BINS))))
        .values("bar")
        .annotate(n=Count("pk"), stat_n=Count("pk", filter=source.stat))
        .order_by("bar")
    )
    counted = {int(b["bar"]): b for b in bars}
    histogram = [
        Bar(
            start=i * width,
            end=(i + 1) * width if i < HISTOGRAM_BINS else None,
            count=counted.get(i, {}).get("n", 0),
            stat_count=counted.get(i, {}).get("stat_n", 0),
        )
        for i in range(HISTOGRAM_BINS + 1)
    ]
    return Dashboard(
        since=since,
        until=until,
        segment=chosen,
        group=group,
        bucket=bucket,
        overview=overview,
        overdue=overdue,
        by_group=by_group,
        by_bucket=by_bucket,
        histogram=histogram,
        as_of=as_of,
    )


def _bucket_label(start: dt.date, bucket: str) -> str:
    if bucket == Bucket.MONTH:
        return f"{start:%Y-%m}"
    if bucket == Bucket.WEEK:
        return f"Week of {start:%Y-%m-%d}"
    return f"{start:%Y-%m-%d}"
