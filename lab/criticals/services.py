"""Critical values: the call-back a released critical result opens, its attempts, escalation and closing.

Each function locks what it changes, checks the actor and the CRITICAL_CALL table, and appends the
event, in one transaction (backoffice.transitions). The ``check_*`` guards are what the services
ask under their lock; the pages ask the same ones (``offer``) before showing a form or a button.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from backoffice.models import User
from backoffice.services import system_user
from backoffice.transitions import edit, lock, move, record, require
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import CriticalCall, CriticalCallAttempt, CriticalCallEvent, EscalationStep, Result
from lab.workflow import CRITICAL_CALL, CallOutcome, CriticalCallStatus, EscalationTarget

Action = CriticalCallEvent.Action
DEFAULT_DUE_MINUTES = 30
CLOSED_BY_READ_BACK = "read back"
CLOSED_IN_APP = "acknowledged in app"


def critical_call_open(*, result: Result, by: User) -> CriticalCall:
    """Open the call-back of a critical result as it is released: the ordering clinician, first rung.

    Called inside the release's transaction (lab.results.services); the ladder's first rung gives
    the time allowed (30 minutes unless the clinic set another).
    """
    first = EscalationStep.objects.order_by("position").first()
    minutes = first.due_minutes if first else DEFAULT_DUE_MINUTES
    # The clock starts at the release, which this runs inside of.
    now = result.released_at or timezone.now()
    call = CriticalCall.objects.create(
        result=result,
        patient_id=result.patient_id,
        clinician_id=result.order.handoff.ordering_clinician_id,
        step=first.position if first else 1,
        opened_at=now,
        due_at=now + timedelta(minutes=minutes),
        status_changed_at=now,
    )
    record(
        call,
        by=by,
        action=Action.OPENED,
        note=f"{result.analyte.short_name} {result.display_value} ({result.flag}): call within {minutes} min",
        created=True,
    )
    return call


def notification_limit_minutes() -> int:
    """The time the ordering clinician has to be told: the ladder's first rung (30 minutes by default)."""
    first = EscalationStep.objects.order_by("position").values_list("due_minutes", flat=True).first()
    return first if first is not None else DEFAULT_DUE_MINUTES


# --- Guards: each service checks one of these under its lock; the pages offer what they allow. ---


def _require_open(call: CriticalCall) -> None:
    if call.status != CriticalCallStatus.OPEN:
        closed = timezone.localtime(call.closed_at) if call.closed_at else None
        when = f" at {closed:%H:%M}" if closed else ""
        raise TransitionNotAllowed(f"This critical call was closed{when} ({call.closed_how or 'read back'}).")


def check_record_attempt(call: CriticalCall, by: User) -> None:
    """Who may record a call: the bench (lab technicians) and supervisors, while the call is open."""
    require(by, "lab.record_critical_call", "record critical-value calls")
    _require_open(call)
    CRITICAL_CALL.check(call.status, CriticalCallStatus.CLOSED)


def may_acknowledge(call: CriticalCall, user: User) -> bool:
    """The clinician the call is with now, or the result's ordering clinician."""
    return user.pk in (call.clinician_id, call.result.order.handoff.ordering_clinician_id)


def check_acknowledge(call: CriticalCall, by: User) -> None:
    """The clinician it is with (or who ordered the test) may acknowledge it in the app instead of a call."""
    require(by, "lab.acknowledge_result", "acknowledge critical results")
    _require_open(call)
    if not may_acknowledge(call, by):
        raise PermissionRefused(
            f"This critical value is for {call.clinician}; only they or the ordering clinician can acknowledge it."
        )
    CRITICAL_CALL.check(call.status, CriticalCallStatus.CLOSED)


# --- State changes -----------------------------------------------------------------------------------


def _clean(text: str) -> str:
    return " ".join(text.split())


def critical_call_attempt(
    *,
    call: CriticalCall,
    by: User,
    contact_name: str,
    contact_role: str,
    outcome: str,
    read_back_identifiers: str = "",
    read_back_value: str = "",
    note: str = "",
) -> CriticalCallAttempt:
    """Record one call about a critical value; a read-back of two identifiers and the value closes it.

    Any other outcome (reached without a read-back, not reached) is recorded and the call stays
    open, on its rung, until someone is reached with a read-back or the worker escalates it.
    """
    contact_name, contact_role, note = _clean(contact_name), _clean(contact_role), _clean(note)
    identifiers, value = _clean(read_back_identifiers), _clean(read_back_value)
    if outcome not in CallOutcome.values:
        raise TransitionNotAllowed("Choose how the call went.")
    if not contact_name or not contact_role:
        raise TransitionNotAllowed("Say whom you called: their name and role.")
    if outcome == CallOutcome.READ_BACK and not (identifiers and value):
        raise TransitionNotAllowed(
            "A read-back needs the two patient identifiers and the value, as the clinician repeated them."
        )
    require(by, "lab.record_critical_call", "record critical-value calls")
    with transaction.atomic():
        lock(call)
        check_record_attempt(call, by)
        attempt = CriticalCallAttempt.objects.create(
            call=call,
            called_by=by,
            at=timezone.now(),
            contact_name=contact_name,
            contact_role=contact_role,
            outcome=outcome,
            # Kept only with a read-back: a clinician not reached repeated nothing.
            read_back_identifiers=identifiers if outcome == CallOutcome.READ_BACK else "",
            read_back_value=value if outcome == CallOutcome.READ_BACK else "",
            note=note,
        )
        who = f"{contact_name} ({contact_role})"
        if outcome == CallOutcome.READ_BACK:
            call.closed_at = attempt.at
            call.closed_by = by
            call.closed_how = CLOSED_BY_READ_BACK
            move(
                call,
                table=CRITICAL_CALL,
                to=CriticalCallStatus.CLOSED,
                by=by,
                action=Action.CLOSED,
                note=f"{who} read back {identifiers}; {value}",
                fields=("closed_at", "closed_by", "closed_how"),
            )
        else:
            said = CallOutcome(outcome).label + (f": {note}" if note else "")
            record(call, by=by, action=Action.ATTEMPT, note=f"{who}: {said}")
    return attempt


def critical_call_acknowledge(*, call: CriticalCall, by: User) -> CriticalCall:
    """The clinician acknowledges the critical value in the app: the call closes without a phone call."""
    require(by, "lab.acknowledge_result", "acknowledge critical results")
    with transaction.atomic():
        lock(call, related=("result__order__handoff",))
        check_acknowledge(call, by)
        call.closed_at = timezone.now()
        call.closed_by = by
        call.closed_how = CLOSED_IN_APP
        move(
            call,
            table=CRITICAL_CALL,
            to=CriticalCallStatus.CLOSED,
            by=by,
            action=Action.ACKNOWLEDGED,
            note=f"{by} acknowledged it in the app",
            fields=("closed_at", "closed_by", "closed_how"),
        )
    return call


def critical_calls_escalate(now: datetime | None = None) -> int:
    """Move every open call past its due time to the ladder's next rung; return how many moved.

    The next rung's person becomes whom to call, with the rung's minutes from now. A call already on
    the last rung stays there, open and overdue: it is flagged once with an event (``escalated_at``
    at or after ``due_at`` marks it), and the board and the bench show it overdue until it closes.
    Rows are taken FOR UPDATE SKIP LOCKED: any number of workers can run this at once, and none
    waits behind a lab technician recording a call (that row is skipped; the next run sees it).
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            CriticalCall.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=CriticalCallStatus.OPEN, due_at__lte=now)
            .select_related("result__order__handoff", "clinician")
            .order_by("due_at", "id")
        )
        if not due:
            return 0
        steps = list(EscalationStep.objects.select_related("person").order_by("position"))
        system = system_user()
        moved = 0
        for call in due:
            step = next((s for s in steps if s.position > call.step), None)
            if step is None:
                if call.escalated_at is not None and call.escalated_at >= call.due_at:
                    continue  # flagged at the last rung already: nothing more the worker can do
                was_due = timezone.localtime(call.due_at)
                call.escalated_at = now
                call.save(update_fields=["escalated_at"])
                record(
                    call,
                    by=system,
                    action=Action.ESCALATED,
                    at=now,
                    note=f"Overdue since {was_due:%H:%M} at the last rung ({call.clinician}): keep calling.",
                )
                continue
            person = step.person if step.target != EscalationTarget.ORDERING else None
            call.clinician = person or call.result.order.handoff.ordering_clinician
            call.step = step.position
            call.due_at = now + timedelta(minutes=step.due_minutes)
            call.escalated_at = now
            edit(
                call,
                by=system,
                action=Action.ESCALATED,
                fields=("clinician", "step", "due_at", "escalated_at"),
                note=(
                    f"Not read back in time: now {call.clinician} ({step.get_target_display().lower()}), "
                    f"within {step.due_minutes} min"
                ),
            )
            moved += 1
    return moved
