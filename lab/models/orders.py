"""The lab tests ordered on a handoff, the specimens that serve them, and call-backs for recollection."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Handoff, Patient
from backoffice.transitions import TransitionEvent
from lab.models.catalog import TestDefinition
from lab.workflow import TO_COLLECT_STATUSES, CallKind, CallStatus, CancelReason, TestOrderStatus
from specimens.models import Specimen


class TestOrderQuerySet(models.QuerySet["TestOrder"]):
    def to_collect(self) -> "TestOrderQuerySet":
        return self.filter(status__in=TO_COLLECT_STATUSES)


class TestOrder(models.Model):
    """A lab test ordered on a handoff, and the specimen that serves it once one is labelled."""

    Status = TestOrderStatus

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Indexed by testorder_once_per_handoff, which leads with it.
    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="test_orders", db_index=False)
    test = models.ForeignKey(TestDefinition, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(
        max_length=20, choices=TestOrderStatus.choices, default=TestOrderStatus.ORDERED, editable=False
    )
    specimen = models.ForeignKey(
        Specimen, on_delete=models.PROTECT, null=True, blank=True, related_name="test_orders", editable=False
    )
    # Its specimen was rejected or the draw failed after it was labelled: collect again, first.
    needs_recollection = models.BooleanField(default=False, editable=False)
    # Cancelled (a failed draw the clinician won't repeat, ordered in error...): the ordering
    # clinician is told, and acknowledges it, unless they cancelled it themselves.
    cancel_reason = models.CharField(max_length=20, choices=CancelReason.choices, blank=True, editable=False)
    cancel_note = models.CharField(max_length=300, blank=True, editable=False)
    # Who cancelled, acknowledged and ordered it are read from the order, never searched by: no index
    # each (a status move rewrites every index of the row).
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True, editable=False)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
    )
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    # Turnaround (lab.turnaround): when its first results were in (entered at the bench, or a send-out's
    # final filed) and when it was resulted (its panel released, or the final filed). A result's own
    # entered_at moves with each correction, and its verified_at is cleared when sent back: the test's
    # first times are kept here, set once by lab.results.services and lab.sendouts.intake.
    resulted_at = models.DateTimeField(null=True, blank=True, editable=False)
    released_at = models.DateTimeField(null=True, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)

    objects = TestOrderQuerySet.as_manager()

    class Meta:
        ordering = ["handoff", "id"]
        indexes = [
            models.Index(
                fields=["handoff"], name="testorder_open_idx", condition=~Q(status__in=["resulted", "cancelled"])
            ),
            # The clinicians' list: cancelled tests they haven't seen yet.
            models.Index(
                fields=["status_changed_at"],
                name="testorder_cancel_unseen_idx",
                condition=Q(status="cancelled", acknowledged_at__isnull=True),
            ),
            # The turnaround dashboard reads a date range of orders (lab.turnaround.selectors).
            models.Index(fields=["created_at"], name="testorder_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["handoff", "test"], name="testorder_once_per_handoff"),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | (~Q(cancel_reason="") & Q(cancelled_by__isnull=False)),
                name="testorder_cancel_has_reason",
            ),
        ]
        permissions = [
            ("cancel_testorder", "Can cancel ordered lab tests"),
            ("view_turnaround", "Can see the lab's turnaround times"),
        ]

    def __str__(self) -> str:
        return f"{self.test.short_name} — {self.get_status_display()}"


class TestOrderEvent(TransitionEvent):
    """Something done to an ordered test: who, when, from, to, why."""

    class Action(models.TextChoices):
        ORDERED = "ordered", "Ordered"
        LABELLED = "labelled", "Specimen labelled"
        COLLECTED = "collected", "Specimen collected"
        IN_PROGRESS = "in_progress", "Testing started"
        SENT_OUT = "sent_out", "Sent to the reference lab"
        RESULTED = "resulted", "Resulted"
        RECOLLECT = "recollect", "To be collected again"
        CANCELLED = "cancelled", "Cancelled"
        ACKNOWLEDGED = "acknowledged", "Cancellation seen by the clinician"

    # Indexed by testorderevent_order_idx, which leads with it.
    order = models.ForeignKey(TestOrder, on_delete=models.PROTECT, related_name="events", db_index=False)
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=TestOrderStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=TestOrderStatus.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        indexes = [models.Index(fields=["order", "at"], name="testorderevent_order_idx")]


class RecollectionCall(models.Model):
    """A patient who has left, to be called by the ordering clinician about one specimen: rejected after
    they left (come back for a new draw), or its in-house tests still running when they left (tell them
    the result once it is released)."""

    Status = CallStatus
    Kind = CallKind

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="recollection_calls")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    # Indexed by recollectioncall_once_per_kind, which leads with it. A tube whose result call is open
    # may still be rejected: then it has a recollection call as well.
    specimen = models.ForeignKey(Specimen, on_delete=models.PROTECT, related_name="call_backs", db_index=False)
    kind = models.CharField(max_length=10, choices=CallKind.choices, default=CallKind.RECOLLECT, editable=False)
    clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    tests_label = models.CharField(max_length=120)
    reason = models.CharField(max_length=400)
    status = models.CharField(max_length=10, choices=CallStatus.choices, default=CallStatus.OPEN, editable=False)
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    outcome = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["clinician", "created_at"], name="recollectioncall_open_idx", condition=Q(status="open")
            )
        ]
        constraints = [models.UniqueConstraint(fields=["specimen", "kind"], name="recollectioncall_once_per_kind")]
        permissions = [("close_recollectioncall", "Can record that a patient was called back")]

    def __str__(self) -> str:
        if self.kind == CallKind.RESULT:
            return f"Call {self.patient} with the result: {self.tests_label}"
        return f"Call {self.patient} back: {self.tests_label}"


class RecollectionCallEvent(TransitionEvent):
    class Action(models.TextChoices):
        OPENED = "opened", "Call-back needed"
        CALLED = "called", "Patient called"

    call = models.ForeignKey(RecollectionCall, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=CallStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=CallStatus.choices, blank=True)
