"""Demo critical calls: the escalation ladder, and, where the demo has released critical results,
one call overdue with a failed attempt and one closed with a read-back.

The ladder: the ordering clinician within 30 minutes, then the covering clinician (Daniel Moreau,
NP) within 15, then the medical director (Priya Shah, MD) within 15. Calls are opened by the
results' release (lab.results.services); here they are only called through the services, and the
overdue one's clock is moved back, as the other seeds move timestamps. Idempotent: the ladder is
keyed on its positions, and a call already called or already overdue is left as it is.
"""

from datetime import timedelta

from django.core.management.base import OutputWrapper
from django.utils import timezone

from backoffice.models import User
from lab.criticals.services import critical_call_attempt
from lab.models import CriticalCall, EscalationStep
from lab.workflow import CallOutcome, CriticalCallStatus, EscalationTarget

# (position, target, demo username or None for the ordering clinician, minutes)
LADDER = (
    (1, EscalationTarget.ORDERING, None, 30),
    (2, EscalationTarget.COVERING, "clinician2", 15),
    (3, EscalationTarget.DIRECTOR, "clinician", 15),
)
OVERDUE_BY = timedelta(minutes=12)


def seed_lab_criticals(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    for position, target, username, minutes in LADDER:
        EscalationStep.objects.update_or_create(
            position=position,
            defaults={"target": target, "person": users[username] if username else None, "due_minutes": minutes},
        )
    # The in-house bench's calls: a reference lab's (seed/sendout_results.py) stays open as it came.
    calls = list(
        CriticalCall.objects.filter(status=CriticalCallStatus.OPEN, result__reference_lab__isnull=True)
        .select_related("patient", "clinician", "result__analyte")
        .order_by("opened_at", "id")
    )
    if not calls:
        stdout.write("Critical calls: the ladder; no critical result is released yet to call about.")
        return
    tech = users["labtech"]
    overdue, *others = calls
    if not overdue.attempts.exists() and not overdue.is_overdue:
        critical_call_attempt(
            call=overdue,
            by=tech,
            contact_name=str(overdue.clinician),
            contact_role=EscalationTarget.ORDERING.label,
            outcome=CallOutcome.NOT_REACHED,
            note="In a procedure; the front desk will pass it on",
        )
        # The clock moved on: the ordering clinician's time ran out 12 minutes ago (the worker will escalate).
        shift = overdue.due_at - (timezone.now() - OVERDUE_BY)
        CriticalCall.objects.filter(pk=overdue.pk).update(
            opened_at=overdue.opened_at - shift, due_at=overdue.due_at - shift
        )
    closed = 0
    if others and not CriticalCall.objects.filter(closed_how="read back").exists():
        call = others[-1]
        patient = call.patient
        critical_call_attempt(
            call=call,
            by=tech,
            contact_name=str(call.clinician),
            contact_role=EscalationTarget.ORDERING.label,
            outcome=CallOutcome.READ_BACK,
            read_back_identifiers=f"{patient.full_name}, DOB {patient.date_of_birth:%m/%d/%Y}",
            read_back_value=f"{call.result.analyte.short_name} {call.result.display_value}",
        )
        closed = 1
    stdout.write(f"Critical calls: the ladder, {len(calls) - closed} open (1 overdue), {closed} read back.")
