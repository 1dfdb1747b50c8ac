"""Critical values: the call-back a released critical result opens, its attempts, escalation and closing.

Each function locks what it changes, checks the actor and the CRITICAL_CALL table, and appends the
event, in one transaction (backoffice.transitions).
"""

from datetime import timedelta

from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import record
from lab.models import CriticalCall, CriticalCallEvent, EscalationStep, Result


def critical_call_open(*, result: Result, by: User) -> CriticalCall:
    """Open the call-back of a critical result as it is released: the ordering clinician, first rung.

    Called inside the release's transaction (lab.results.services); the ladder's first rung gives
    the time allowed (30 minutes unless the clinic set another).
    """
    first = EscalationStep.objects.order_by("position").first()
    minutes = first.due_minutes if first else 30
    now = timezone.now()
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
        action=CriticalCallEvent.Action.OPENED,
        note=f"{result.analyte.short_name} {result.display_value} ({result.flag}): call within {minutes} min",
        created=True,
    )
    return call
