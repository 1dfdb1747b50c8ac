"""Reads of results for the clinician: the inbox, unsigned results gone stale, a patient's results over time.

Each applies the access check with the joins its page prints, so no view forgets either.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, Count, IntegerField, QuerySet, Value, When, Window
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from backoffice.models import Patient, User
from backoffice.roles import ROLE_CLINICIAN
from lab.inbox.services import SUPERVISOR_PERM
from lab.inbox.trend import TrendChart, trend_chart
from lab.models import Analyte, Result, TestOrder
from lab.workflow import ABNORMAL_FLAGS, REPORTED_STATUSES, ResultStatus, ResultType

# Unsigned this long after release, a result shows on the supervisor board.
DEFAULT_STALE_MINUTES = 240
# A clinician back from a week away signs a page at a time, the most urgent first.
INBOX_SHOWN = 100
# The board shows the oldest ones; the rest are counted.
STALE_SHOWN = 10


def stale_minutes() -> int:
    return int(getattr(settings, "LAB_INBOX_STALE_MINUTES", DEFAULT_STALE_MINUTES))


def _require(user: User, perm: str) -> None:
    if not user.is_active or not user.has_perm(perm):
        raise Http404


# Critical first, then the other abnormal ones, then normal; oldest first within each.
_URGENCY = Case(
    When(is_critical=True, then=Value(0)),
    When(flag__in=ABNORMAL_FLAGS, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def _unsigned() -> QuerySet[Result]:
    return Result.objects.filter(status=ResultStatus.RELEASED, acknowledged_at__isnull=True)


def _with_original(results: list[Result]) -> list[Result]:
    """A correction's superseded original prints its value, which needs the (same) analyte."""
    for result in results:
        if result.amends is not None:
            result.amends.analyte = result.analyte
    return results


def acting_for_choices(*, user: User) -> QuerySet[User]:
    """The clinicians a supervisor may sign for (one away): active clinicians, by name."""
    _require(user, SUPERVISOR_PERM)
    return User.objects.filter(is_active=True, groups__name=ROLE_CLINICIAN).order_by("last_name", "first_name", "pk")


def inbox_results(*, user: User, clinician: User) -> list[Result]:
    """Released results of ``clinician``'s orders not yet signed: critical, then abnormal, then oldest.

    ``user`` is the clinician, or a supervisor acting for them. The first INBOX_SHOWN, in one query
    with the analyte, test, patient, a correction's original and the lab that sent it, and how many wait in all.
    """
    _require(user, "lab.acknowledge_result")
    if clinician.pk != user.pk and not user.has_perm(SUPERVISOR_PERM):
        raise Http404
    results = (
        _unsigned()
        .filter(order__handoff__ordering_clinician=clinician)
        .select_related(
            "analyte", "order__test", "order__handoff__ordering_clinician", "patient", "amends", "reference_lab"
        )
        .annotate(urgency=_URGENCY, total=Window(Count("pk")))
        .order_by("urgency", "released_at", "id")[:INBOX_SHOWN]
    )
    return _with_original(list(results))


def inbox_total(results: list[Result]) -> int:
    """How many results wait in all, of which ``results`` (from inbox_results) are the first."""
    return getattr(results[0], "total", len(results)) if results else 0


@dataclass(frozen=True)
class Stale:
    results: list[Result]
    total: int
    minutes: int


def stale_results(*, user: User) -> Stale:
    """Results unsigned for longer than LAB_INBOX_STALE_MINUTES, for the supervisor: oldest first.

    One query: the oldest STALE_SHOWN with their clinician and patient, and how many there are.
    """
    _require(user, SUPERVISOR_PERM)
    minutes = stale_minutes()
    cutoff = timezone.now() - dt.timedelta(minutes=minutes)
    results: list[Result] = list(
        _unsigned()
        .filter(released_at__lte=cutoff)
        .select_related("analyte", "order__test", "patient", "order__handoff__ordering_clinician")
        .annotate(total=Window(Count("pk")))
        .order_by("released_at", "id")[:STALE_SHOWN]
    )
    total = getattr(results[0], "total", 0) if results else 0
    return Stale(results=results, total=total, minutes=minutes)


def patient_for_results(*, user: User, uuid: str) -> Patient:
    _require(user, "lab.view_result")
    try:
        return Patient.objects.get(uuid=uuid)
    except (Patient.DoesNotExist, ValueError):
        raise Http404 from None


@dataclass
class AnalyteHistory:
    """One analyte's reported results for a patient, oldest first, and its trend when numeric."""

    analyte: Analyte
    results: list[Result] = field(default_factory=list)
    chart: TrendChart | None = None

    @property
    def latest(self) -> Result:
        current = [r for r in self.results if r.status == ResultStatus.RELEASED]
        return (current or self.results)[-1]


def patient_results(*, patient: Patient) -> list[AnalyteHistory]:
    """Every reported result of the patient by test and analyte over time, superseded ones included.

    One query (the analyte and its test, the range, a correction's original, who signed and the
    reference lab come with each). The chart plots the current values only: a superseded one was corrected.
    """
    results = (
        Result.objects.filter(patient=patient, status__in=REPORTED_STATUSES)
        .select_related("analyte__test", "reference_range", "amends", "acknowledged_by", "reference_lab")
        # When the specimen was taken: what a trend is about (a send-out is released days later).
        .annotate(taken_at=Coalesce("specimen__collected_at", "released_at"))
        .order_by("analyte__test__name", "analyte__position", "analyte_id", "taken_at", "id")
    )
    histories: dict[int, AnalyteHistory] = {}
    for result in _with_original(list(results)):
        history = histories.setdefault(result.analyte_id, AnalyteHistory(analyte=result.analyte))
        result.analyte = history.analyte  # one instance per analyte, so the page reads it once
        history.results.append(result)
    for history in histories.values():
        history.chart = _chart(history)
    return list(histories.values())


def _chart(history: AnalyteHistory) -> TrendChart | None:
    if history.analyte.result_type != ResultType.NUMERIC:
        return None
    current = [r for r in history.results if r.status == ResultStatus.RELEASED and r.value_numeric is not None]
    values: list[tuple[dt.datetime, Decimal, str, str]] = [
        (r.taken_at, r.value_numeric, r.display_value, r.flag)  # type: ignore[attr-defined]
        for r in current
        if r.value_numeric is not None
    ]
    reference = current[-1].reference_range if current else None
    return trend_chart(
        values,
        name=history.analyte.name,
        low=reference.low if reference else None,
        high=reference.high if reference else None,
        range_label=current[-1].reference_text if current else "",
    )


def released_results() -> QuerySet[Result]:
    """Released results as a handoff's lab panel and the queue's badges print them (with the analyte)."""
    return (
        Result.objects.filter(status=ResultStatus.RELEASED)
        .select_related("analyte")
        .order_by("analyte__position", "analyte_id", "id")
    )


def attach_released_results(orders: list[TestOrder]) -> None:
    """Give each order its released results as ``released_results``: one query, none without a specimen.

    A result exists only once a specimen was taken for the test, so orders without one need no read.
    """
    taken = [o.pk for o in orders if o.specimen_id is not None]
    grouped: dict[int, list[Result]] = {}
    if taken:
        for result in released_results().filter(order_id__in=taken):
            grouped.setdefault(result.order_id, []).append(result)
    for order in orders:
        order.released_results = grouped.get(order.pk, [])  # type: ignore[attr-defined]
