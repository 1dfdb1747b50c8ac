"""Critical values: the call-back each one opens, its escalation ladder, and every call attempt."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Patient
from backoffice.transitions import APPEND_ONLY, TransitionEvent
from lab.models.results import Result
from lab.workflow import CallOutcome, CriticalCallStatus, EscalationTarget


class EscalationStep(models.Model):
    """One rung of the critical-value ladder: whom to reach, and how long after the result they are due.

    The first rung is the ordering clinician (due 30 minutes after release by default); if nobody is
    reached with a read-back by then, the call escalates to the next rung, run by the task worker.
    """

    position = models.PositiveSmallIntegerField(unique=True)
    target = models.CharField(max_length=10, choices=EscalationTarget.choices)
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The covering clinician or the medical director; empty for the ordering clinician.",
    )
    due_minutes = models.PositiveSmallIntegerField(
        default=30, help_text="Minutes this rung has, from the result's release or the previous rung's escalation."
    )

    class Meta:
        ordering = ["position"]
        constraints = [
            models.CheckConstraint(
                condition=Q(target="ordering", person__isnull=True) | (~Q(target="ordering") & Q(person__isnull=False)),
                name="escalationstep_names_its_person",
            ),
        ]

    def __str__(self) -> str:
        who = self.person or self.get_target_display()
        return f"{self.position}. {who} within {self.due_minutes} min"


class CriticalCall(models.Model):
    """A critical result to be read back to a clinician, escalating up the ladder until it is."""

    Status = CriticalCallStatus

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    result = models.OneToOneField(Result, on_delete=models.PROTECT, related_name="critical_call")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    # Whom to reach now, on which rung; the worker moves both when the rung's time runs out.
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    step = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=CriticalCallStatus.choices, default=CriticalCallStatus.OPEN, editable=False
    )
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    opened_at = models.DateTimeField(default=timezone.now, editable=False)
    due_at = models.DateTimeField(editable=False)
    escalated_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_at = models.DateTimeField(null=True, blank=True, editable=False)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    # How it closed: a call with read-back, or the clinician acknowledging the result in the app.
    closed_how = models.CharField(max_length=20, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["due_at", "id"]
        indexes = [
            models.Index(fields=["due_at"], name="criticalcall_open_idx", condition=Q(status="open")),
            # The turnaround dashboard: critical result → read-back, by when the call opened.
            models.Index(fields=["opened_at"], name="criticalcall_opened_idx"),
        ]
        permissions = [("record_critical_call", "Can record critical-value calls")]

    def __str__(self) -> str:
        return f"Critical {self.result} for {self.patient}"

    @property
    def is_overdue(self) -> bool:
        return self.status == CriticalCallStatus.OPEN and self.due_at < timezone.now()


class CriticalCallAttempt(models.Model):
    """One call about a critical result: who called whom, when, and what was read back. Append-only."""

    call = models.ForeignKey(CriticalCall, on_delete=models.PROTECT, related_name="attempts")
    called_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    contact_name = models.CharField(max_length=120)
    contact_role = models.CharField(max_length=60)
    outcome = models.CharField(max_length=20, choices=CallOutcome.choices)
    # The read-back: two patient identifiers and the value, as the clinician repeated them.
    read_back_identifiers = models.CharField(max_length=200, blank=True)
    read_back_value = models.CharField(max_length=100, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]
        triggers = [APPEND_ONLY]
        constraints = [
            models.CheckConstraint(
                condition=~Q(outcome="read_back") | (~Q(read_back_identifiers="") & ~Q(read_back_value="")),
                name="criticalcallattempt_read_back_recorded",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%H:%M} {self.contact_name}: {self.get_outcome_display()}"


class CriticalCallEvent(TransitionEvent):
    class Action(models.TextChoices):
        OPENED = "opened", "Critical value to call"
        ATTEMPT = "attempt", "Call attempted"
        ESCALATED = "escalated", "Escalated"
        CLOSED = "closed", "Read back, closed"
        ACKNOWLEDGED = "acknowledged", "Acknowledged in the app"

    call = models.ForeignKey(CriticalCall, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=10, choices=CriticalCallStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=CriticalCallStatus.choices, blank=True)
