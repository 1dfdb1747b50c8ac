"""Every HL7 message a reference lab sent us, stored whole before it is acknowledged, and what became of it.

Nothing here is ever deleted and a message's raw text never changes (triggers refuse both): an
unmatched result or one on identity hold stays in its queue, whole, until someone attaches it to
the right order or resolves it with a reason.
"""

import uuid

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.transitions import TransitionEvent
from lab.models.sendouts import ReferenceLab, SendOut
from lab.workflow import IntakeChannel, IntakeOutcome


class InboundMessage(models.Model):
    # What becomes of it moves through lab.workflow.INBOUND (lab.sendouts.intake), with an event each.
    STATUS_FIELD = "outcome"
    # What the message is and where it came from, set when it is stored and never after: the app's
    # database role may UPDATE every other column, not these (backoffice.audit.dbroles); ``raw`` is
    # kept by the inbound_raw_is_kept trigger as well.
    WRITTEN_ONCE_FIELDS = (
        "uuid",
        "received_at",
        "channel",
        "source",
        "raw",
        "control_id",
        "sending_application",
        "sending_facility",
        "message_type",
        "hl7_version",
    )

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    channel = models.CharField(max_length=10, choices=IntakeChannel.choices, editable=False)
    source = models.CharField(max_length=300, blank=True, editable=False, help_text="File name or peer address.")
    raw = models.TextField(editable=False)
    # MSH as far as it could be read (empty for input that isn't HL7).
    control_id = models.CharField("MSH-10", max_length=60, blank=True, editable=False)
    sending_application = models.CharField("MSH-3", max_length=60, blank=True, editable=False)
    sending_facility = models.CharField("MSH-4", max_length=60, blank=True, editable=False)
    message_type = models.CharField(max_length=20, blank=True, editable=False)
    # MSH-12 (named so: ``version`` is the optimistic-lock counter transitions bump on other models).
    hl7_version = models.CharField("MSH-12", max_length=10, blank=True, editable=False)
    reference_lab = models.ForeignKey(
        ReferenceLab, on_delete=models.PROTECT, null=True, blank=True, related_name="inbound", editable=False
    )
    # What was done with it.
    outcome = models.CharField(
        max_length=14, choices=IntakeOutcome.choices, default=IntakeOutcome.RECEIVED, editable=False
    )
    detail = models.CharField(max_length=500, blank=True, editable=False)
    processed_at = models.DateTimeField(null=True, blank=True, editable=False)
    placer = models.CharField(max_length=60, blank=True, editable=False)
    accession = models.CharField(max_length=60, blank=True, editable=False)
    send_out = models.ForeignKey(
        SendOut, on_delete=models.PROTECT, null=True, blank=True, related_name="inbound", editable=False
    )
    # What the message says, for the desk's queue lists (read from the raw text once, when processed).
    patient_text = models.CharField("patient as sent", max_length=200, blank=True, editable=False)
    tests_text = models.CharField("tests as sent", max_length=200, blank=True, editable=False)
    observations_filed = models.PositiveSmallIntegerField(default=0, editable=False)
    critical = models.BooleanField(default=False, editable=False)
    duplicate_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    # Worked from the desk's queues: attached to an order, or resolved with a reason.
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    resolution = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["received_at", "id"]
        indexes = [
            models.Index(
                fields=["outcome", "received_at"],
                name="inbound_open_queue_idx",
                condition=Q(outcome__in=["unmatched", "identity_hold"], resolved_at__isnull=True),
            ),
        ]
        constraints = [
            # The same sender's MSH-10 is filed once; a re-sent copy is kept as a duplicate of it.
            models.UniqueConstraint(
                fields=["sending_application", "sending_facility", "control_id"],
                condition=~Q(control_id="") & ~Q(outcome="duplicate"),
                name="inbound_message_once_per_sender",
            ),
        ]
        triggers = [
            pgtrigger.Protect(name="inbound_never_deleted", operation=pgtrigger.Delete),
            pgtrigger.Protect(
                name="inbound_raw_is_kept", operation=pgtrigger.Update, condition=pgtrigger.AnyChange("raw")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_type or 'message'} {self.control_id or self.pk} from {self.sending_facility or '?'}"

    @property
    def is_open(self) -> bool:
        """Waiting in the desk's unmatched or identity-hold queue."""
        return self.outcome in (IntakeOutcome.UNMATCHED, IntakeOutcome.IDENTITY_HOLD) and self.resolved_at is None


class InboundMessageEvent(TransitionEvent):
    """What was done with a received message: filed, held, attached to an order, resolved. Append-only."""

    class Action(models.TextChoices):
        RECEIVED = "received", "Received and stored"
        FILED = "filed", "Filed to its order"
        UNMATCHED = "unmatched", "No order found"
        IDENTITY_HOLD = "identity_hold", "Held: the patient disagrees with the order"
        DUPLICATE = "duplicate", "Already received"
        REJECTED = "rejected", "Not HL7: refused"
        ATTACH_REFUSED = "attach_refused", "Attaching to an order refused"
        ATTACHED = "attached", "Attached to an order from the queue"
        RESOLVED = "resolved", "Resolved from the queue"

    # Indexed by inboundevent_message_idx, which leads with it.
    message = models.ForeignKey(InboundMessage, on_delete=models.PROTECT, related_name="events", db_index=False)
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=IntakeOutcome.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=IntakeOutcome.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        indexes = [models.Index(fields=["message", "at"], name="inboundevent_message_idx")]
