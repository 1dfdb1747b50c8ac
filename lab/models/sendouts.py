"""Send-outs: the reference labs, what each one is asked for, the orders packed and shipped to them,
and every HL7 message exchanged with them.

A reference lab's messages are recognised by the ids it puts in MSH-3/MSH-4; where its results
carry our MRN and our keys is its **dialect profile**, a row an admin adds without code (see
docs/hl7-profiles.md). A send-out test's order gets a placer order number (text, from a database
sequence) once its specimen is collected, and is tracked until every result is final.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.transitions import TransitionEvent
from lab.hl7 import profiles
from lab.models.catalog import TestDefinition
from lab.models.orders import TestOrder
from lab.workflow import MessageStatus, SendOutStatus, ShipmentStatus
from specimens.workflow import Handling

CLIA_NUMBER = RegexValidator(r"^\d{2}D\d{7}$", "A CLIA number is two digits, the letter D and seven digits.")
HL7_ID = RegexValidator(r"^[^|^~\\&\r\n]*$", "HL7 ids can't hold | ^ ~ \\ & or line breaks.")


class DialectProfile(models.Model):
    """Where one family of reference-lab interfaces puts our MRN and our keys in the results it sends.

    ``definition`` is the profile as JSON (lab.hl7.profiles.DialectProfile.to_dict without its name
    and description): the places our MRN may be, and where the placer number, our accession and the
    lab's own number come back, each tried in order. An admin adds one without code (docs/hl7-profiles.md).
    """

    name = models.CharField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    definition = models.JSONField(
        help_text=(
            'e.g. {"mrn": [{"field": "PID-3", "type": "MR", "authority": "CLINIC"}], "placer": ["ORC-2", "OBR-2"], '
            '"accession": ["ORC-4", "SPM-2"], "filler": ["ORC-3", "OBR-3"]}'
        )
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def as_profile(self) -> profiles.DialectProfile:
        """The profile the reader uses; ValueError says what in the definition it can't use."""
        if not isinstance(self.definition, dict):
            raise ValueError("The definition must be a JSON object.")
        extra = {k: v for k, v in self.definition.items() if k not in ("name", "description")}
        return profiles.DialectProfile.from_dict({"name": self.name, "description": self.description, **extra})

    def clean(self) -> None:
        try:
            self.as_profile()
        except ValueError as exc:
            raise ValidationError({"definition": str(exc)}) from None


class ReferenceLab(models.Model):
    """A lab the clinic sends tests to: who it is, how we reach it, and how it speaks HL7."""

    # The opaque id other systems know it by (the FHIR API's Organization id), never the primary key.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)

    class Version(models.TextChoices):
        V251 = "2.5.1", "2.5.1"
        V23 = "2.3", "2.3"

    class Transport(models.TextChoices):
        MLLP = "mllp", "MLLP over TCP"
        FOLDER = "folder", "Files in a folder (the interface engine picks them up)"

    class ProcessingId(models.TextChoices):
        PRODUCTION = "P", "Production (P)"
        TRAINING = "T", "Training / test (T)"

    name = models.CharField(max_length=120, unique=True)
    address = models.TextField()
    phone = models.CharField(max_length=30, blank=True)
    clia_number = models.CharField("CLIA number", max_length=10, validators=[CLIA_NUMBER])
    # How its messages say who sent them (MSH-3 and MSH-4, first component).
    their_application = models.CharField("its MSH-3", max_length=60, validators=[HL7_ID])
    their_facility = models.CharField("its MSH-4", max_length=60, validators=[HL7_ID])
    # What we put in the messages we send it.
    our_application = models.CharField("our MSH-3", max_length=60, default="CLINICBO", validators=[HL7_ID])
    our_facility = models.CharField("our MSH-4", max_length=60, validators=[HL7_ID])
    receiving_application = models.CharField("MSH-5 we send", max_length=60, validators=[HL7_ID])
    receiving_facility = models.CharField("MSH-6 we send", max_length=60, validators=[HL7_ID])
    hl7_version = models.CharField("HL7 version we send", max_length=6, choices=Version.choices, default=Version.V251)
    processing_id = models.CharField(
        "MSH-11", max_length=1, choices=ProcessingId.choices, default=ProcessingId.PRODUCTION
    )
    transport = models.CharField(max_length=10, choices=Transport.choices, default=Transport.MLLP)
    mllp_host = models.CharField("MLLP host", max_length=255, blank=True)
    mllp_port = models.PositiveIntegerField("MLLP port", null=True, blank=True)
    drop_folder = models.CharField(
        "folder", max_length=500, blank=True, help_text="Where order files are written for the interface engine."
    )
    profile = models.ForeignKey(
        DialectProfile,
        on_delete=models.PROTECT,
        related_name="labs",
        help_text="Where its results carry our MRN and our keys; add a profile in admin for a new dialect.",
    )
    courier = models.CharField(max_length=80, blank=True, help_text="Who picks up, e.g. 'Lab courier, route 12'.")
    turnaround_hours = models.PositiveSmallIntegerField(
        default=48, help_text="Expected from sending to final results, unless a test says otherwise."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["their_application", "their_facility"], name="referencelab_msh_ids_unique"),
            models.CheckConstraint(
                condition=~Q(transport="mllp") | (~Q(mllp_host="") & Q(mllp_port__isnull=False)),
                name="referencelab_mllp_has_host_and_port",
            ),
            models.CheckConstraint(
                condition=~Q(transport="folder") | ~Q(drop_folder=""), name="referencelab_folder_has_a_path"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.transport == self.Transport.MLLP and (not self.mllp_host or not self.mllp_port):
            raise ValidationError({"mllp_host": "An MLLP lab needs the host and port its interface listens on."})
        if self.transport == self.Transport.FOLDER and not self.drop_folder:
            raise ValidationError({"drop_folder": "Say which folder the interface engine picks order files up from."})


class Orderable(models.Model):
    """One of our send-out tests as a reference lab orders it: its own code, beside the LOINC."""

    reference_lab = models.ForeignKey(ReferenceLab, on_delete=models.CASCADE, related_name="orderables")
    test = models.ForeignKey(
        TestDefinition,
        on_delete=models.PROTECT,
        related_name="orderables",
        limit_choices_to={"performed": TestDefinition.Performed.SEND_OUT},
    )
    lab_code = models.CharField("the lab's test code", max_length=30, validators=[HL7_ID])
    lab_name = models.CharField("the lab's test name", max_length=120)
    turnaround_hours = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Expected from sending to final; empty: the lab's default."
    )
    is_default = models.BooleanField(
        "default lab for this test", default=True, help_text="Where the test goes when ordered."
    )

    class Meta:
        ordering = ["reference_lab", "lab_code"]
        constraints = [
            models.UniqueConstraint(fields=["reference_lab", "test"], name="orderable_lab_test_unique"),
            models.UniqueConstraint(fields=["reference_lab", "lab_code"], name="orderable_lab_code_unique"),
            models.UniqueConstraint(
                fields=["test"], condition=Q(is_default=True), name="orderable_one_default_lab_per_test"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lab_code} {self.lab_name} ({self.reference_lab})"

    @property
    def expected_hours(self) -> int:
        return self.turnaround_hours or self.reference_lab.turnaround_hours


class AskAtOrderEntry(models.Model):
    """A question the lab needs answered with the order (sent as an OBX with OBX-11 = O)."""

    class ValueType(models.TextChoices):
        CODED = "CWE", "One of a list (coded)"
        TEXT = "ST", "Text"
        NUMBER = "NM", "Number"

    orderable = models.ForeignKey(Orderable, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField(default=1)
    loinc_code = models.CharField("LOINC code", max_length=12)
    question = models.CharField(max_length=120)
    value_type = models.CharField(max_length=3, choices=ValueType.choices, default=ValueType.CODED)
    choices = models.JSONField(
        default=list,
        blank=True,
        help_text='For a coded answer: [["Y", "Yes", "HL70136"], ["N", "No", "HL70136"]] (code, text, system).',
    )
    required = models.BooleanField(default=True)

    class Meta:
        ordering = ["orderable", "position"]
        verbose_name = "ask-at-order-entry question"
        constraints = [
            models.UniqueConstraint(fields=["orderable", "loinc_code"], name="aoe_question_once_per_orderable")
        ]

    def __str__(self) -> str:
        return f"{self.question} ({self.loinc_code})"

    def clean(self) -> None:
        if self.value_type == self.ValueType.CODED:
            ok = (
                isinstance(self.choices, list)
                and self.choices
                and all(
                    isinstance(c, list) and len(c) == 3 and all(isinstance(p, str) and p for p in c)
                    for c in self.choices
                )
            )
            if not ok:
                raise ValidationError({"choices": "A coded question lists its answers as [code, text, system]."})


class Shipment(models.Model):
    """One courier pickup to one reference lab, at one temperature: its manifest lists each specimen."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reference_lab = models.ForeignKey(ReferenceLab, on_delete=models.PROTECT, related_name="shipments")
    handling = models.CharField(max_length=20, choices=Handling.choices)
    courier = models.CharField(max_length=80)
    pickup_at = models.DateTimeField()
    status = models.CharField(
        max_length=12, choices=ShipmentStatus.choices, default=ShipmentStatus.OPEN, editable=False
    )
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    dispatched_at = models.DateTimeField(null=True, blank=True, editable=False)
    dispatched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["-pickup_at", "-id"]
        permissions = [("run_send_out_desk", "Can pack, ship and track send-outs")]

    def __str__(self) -> str:
        return f"{self.reference_lab} {self.get_handling_display().lower()} {self.pickup_at:%m/%d %H:%M}"


class ShipmentEvent(TransitionEvent):
    class Action(models.TextChoices):
        CREATED = "created", "Created"
        DISPATCHED = "dispatched", "Handed to the courier"
        CANCELLED = "cancelled", "Cancelled"
        MANIFEST_PRINTED = "manifest", "Manifest printed"

    shipment = models.ForeignKey(Shipment, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=12, choices=ShipmentStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=ShipmentStatus.choices, blank=True)


class SendOut(models.Model):
    """A send-out test order from collection until its results are final: placer number, lab, shipment."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.OneToOneField(TestOrder, on_delete=models.PROTECT, related_name="send_out")
    reference_lab = models.ForeignKey(ReferenceLab, on_delete=models.PROTECT, related_name="send_outs")
    orderable = models.ForeignKey(Orderable, on_delete=models.PROTECT, related_name="send_outs")
    # Text, never a number: compared as typed and sent, leading zeros and all.
    placer_number = models.CharField(max_length=30, unique=True, editable=False)
    status = models.CharField(
        max_length=12, choices=SendOutStatus.choices, default=SendOutStatus.WAITING, editable=False
    )
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    shipment = models.ForeignKey(
        Shipment, on_delete=models.PROTECT, null=True, blank=True, related_name="send_outs", editable=False
    )
    answers = models.JSONField(default=dict, blank=True, editable=False, help_text="Ask-at-order-entry answers.")
    sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    expected_by = models.DateTimeField(null=True, blank=True, editable=False)
    overdue_since = models.DateTimeField(null=True, blank=True, editable=False)
    final_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = "send-out"
        indexes = [
            models.Index(fields=["status", "reference_lab"], name="sendout_status_lab_idx"),
            # The worker's overdue check: sent, results not final, not flagged yet.
            models.Index(
                fields=["expected_by"],
                name="sendout_awaiting_results_idx",
                condition=Q(status__in=["sent", "preliminary"], overdue_since__isnull=True),
            ),
            # The turnaround dashboard: sent → final and overdue, by when it was sent.
            models.Index(fields=["sent_at"], name="sendout_sent_idx", condition=Q(sent_at__isnull=False)),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="packed") | Q(shipment__isnull=False), name="sendout_packed_in_a_shipment"
            ),
            # Tracked from the moment it left: when, and by when its results are due.
            models.CheckConstraint(
                condition=~Q(status__in=["sent", "preliminary", "final"])
                | Q(sent_at__isnull=False, expected_by__isnull=False),
                name="sendout_sent_is_tracked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.placer_number} {self.orderable.lab_code}"


class SendOutEvent(TransitionEvent):
    class Action(models.TextChoices):
        CREATED = "created", "Placer number given"
        ANSWERED = "answered", "Questions answered"
        PACKED = "packed", "Packed"
        UNPACKED = "unpacked", "Taken out of the shipment"
        SENT = "sent", "Sent"
        REQUISITION_PRINTED = "requisition", "Requisition printed"
        PRELIMINARY = "preliminary", "Preliminary results"
        FINAL = "final", "Final results"
        CORRECTED = "corrected", "Corrected results"
        OVERDUE = "overdue", "Overdue"
        CANCELLED = "cancelled", "Cancelled"
        # What became of its order messages (lab.sendouts.tasks): one event each, not one per attempt.
        ACKNOWLEDGED = "acknowledged", "Order acknowledged by the lab"
        DELIVERED = "delivered", "Order written to the lab's folder"
        REFUSED = "refused", "Order refused by the lab"
        GAVE_UP = "gave_up", "Order message failed, no more retries"
        RETRIED = "retried", "Order message sent again by hand"

    send_out = models.ForeignKey(SendOut, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=12, choices=SendOutStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=SendOutStatus.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        verbose_name = "send-out event"


class OutboundMessage(models.Model):
    """One ORM^O01 for a send-out (new order or cancel), its transmissions and the lab's ACK."""

    class Kind(models.TextChoices):
        NEW = "NW", "New order"
        CANCEL = "CA", "Cancel"

    send_out = models.ForeignKey(SendOut, on_delete=models.PROTECT, related_name="messages")
    kind = models.CharField(max_length=2, choices=Kind.choices)
    control_id = models.CharField("MSH-10", max_length=40, unique=True)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    ack_text = models.TextField(blank=True)
    ack_code = models.CharField(max_length=2, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbound_due_idx")]

    def __str__(self) -> str:
        return f"ORM {self.kind} {self.control_id}"
