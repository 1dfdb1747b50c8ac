"""Reads of critical calls for the pages: who may see which, with their joins, and the report's figures."""

import datetime as dt
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import Offer, offer
from lab.criticals.services import check_record_attempt
from lab.models import CriticalCall, CriticalCallAttempt, EscalationStep
from lab.workflow import CallOutcome, CriticalCallStatus, EscalationTarget

# What a row of a list prints: the patient, the result and its test, whom to call now.
ROW_RELATED = ("patient", "clinician", "result__analyte", "result__order__handoff__ordering_clinician")


def _require_view(user: User) -> None:
    if not user.has_perm("lab.view_criticalcall"):
        raise Http404


def _visible(user: User) -> QuerySet[CriticalCall]:
    """Every call for the bench and supervisors; a clinician's own (with them now, or ordered by them)."""
    _require_view(user)
    calls = CriticalCall.objects.all()
    if not (user.has_perm("lab.record_critical_call") or user.has_perm("backoffice.view_board")):
        calls = calls.filter(Q(clinician=user) | Q(result__order__handoff__ordering_clinician=user))
    return calls


def open_critical_calls(*, user: User) -> QuerySet[CriticalCall]:
    """Open calls this user may see, the most overdue first."""
    return _visible(user).filter(status=CriticalCallStatus.OPEN).select_related(*ROW_RELATED).order_by("due_at", "id")


def critical_call_for_user(*, user: User, uuid: str) -> CriticalCall:
    """One call by its opaque id with its result, patient and whom to call, or 404 if not this user's to see."""
    try:
        return (
            _visible(user)
            .select_related(*ROW_RELATED, "result__order__test", "result__specimen", "result__released_by", "closed_by")
            .get(uuid=uuid)
        )
    except (CriticalCall.DoesNotExist, ValueError):
        raise Http404 from None


def ladder() -> list[EscalationStep]:
    return list(EscalationStep.objects.select_related("person").order_by("position"))


def call_attempts(call: CriticalCall) -> list[CriticalCallAttempt]:
    return list(call.attempts.select_related("called_by").order_by("at", "id"))


@dataclass(frozen=True)
class CallRow:
    """An open call as a list prints it: when it is due, on which rung, and whether this user may call."""

    call: CriticalCall
    record: Offer
    overdue: bool
    minutes: int  # whole minutes left until due, or overdue by
    rung: str
    last_rung: bool


def rung_label(position: int, steps: Sequence[EscalationStep]) -> str:
    """ "2 of 3: covering clinician"; the ordering clinician when the clinic set no ladder."""
    step = next((s for s in steps if s.position == position), None)
    target = step.get_target_display() if step else EscalationTarget.ORDERING.label
    return f"{position} of {max(len(steps), 1)}: {target.lower()}"


def call_rows(
    calls: Iterable[CriticalCall], *, user: User, steps: Sequence[EscalationStep], now: dt.datetime | None = None
) -> list[CallRow]:
    now = now or timezone.now()
    last = max((s.position for s in steps), default=1)
    rows = []
    for call in calls:
        seconds = (call.due_at - now).total_seconds()
        rows.append(
            CallRow(
                call=call,
                record=offer(partial(check_record_attempt, call, user)),
                overdue=seconds < 0,
                minutes=int(abs(seconds) // 60),
                rung=rung_label(call.step, steps),
                last_rung=call.step >= last,
            )
        )
    return rows


# --- Time to notification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationRow:
    call: CriticalCall
    released_at: dt.datetime
    minutes: int  # released → closed, or released → now while still open
    closed: bool
    over_limit: bool


@dataclass(frozen=True)
class NotificationReport:
    since: dt.date
    until: dt.date
    limit_minutes: int
    rows: list[NotificationRow]

    @property
    def over(self) -> list[NotificationRow]:
        return [r for r in self.rows if r.over_limit]

    @property
    def closed_count(self) -> int:
        return sum(r.closed for r in self.rows)

    @property
    def median_minutes(self) -> float | None:
        closed = [r.minutes for r in self.rows if r.closed]
        return statistics.median(closed) if closed else None


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def notification_report(
    *, user: User, since: dt.date, until: dt.date, limit_minutes: int, now: dt.datetime | None = None
) -> NotificationReport:
    """Each critical result released between these local dates: minutes from release to the clinician told.

    Told means closed: read back on a call, or acknowledged in the app. Still-open calls count from
    release to now. Over the limit: more minutes than the ladder's first rung allows.
    """
    if not user.has_perm("lab.record_critical_call"):
        raise Http404
    now = now or timezone.now()
    told = CriticalCallAttempt.objects.filter(call=OuterRef("pk"), outcome=CallOutcome.READ_BACK).order_by("at")
    calls = (
        _visible(user)
        .filter(
            Q(result__released_at__gte=_day_start(since), result__released_at__lt=_day_start(until + dt.timedelta(1)))
            | Q(
                result__released_at__isnull=True,
                opened_at__gte=_day_start(since),
                opened_at__lt=_day_start(until + dt.timedelta(1)),
            )
        )
        .select_related(*ROW_RELATED, "closed_by")
        .annotate(
            attempt_count=Count("attempts"),
            told_name=Subquery(told.values("contact_name")[:1]),
            told_role=Subquery(told.values("contact_role")[:1]),
        )
        .order_by("result__released_at", "opened_at", "id")
    )
    rows = []
    for call in calls:
        released = call.result.released_at or call.opened_at
        end = call.closed_at if call.closed_at else now
        minutes = max(0, int((end - released).total_seconds() // 60))
        rows.append(
            NotificationRow(
                call=call,
                released_at=released,
                minutes=minutes,
                closed=call.status == CriticalCallStatus.CLOSED,
                over_limit=(end - released).total_seconds() > limit_minutes * 60,
            )
        )
    return NotificationReport(since=since, until=until, limit_minutes=limit_minutes, rows=rows)
