"""Specimen catalog (types, containers, rejection reasons, label printers) and the specimens collected.

Statuses, custody and verification fields are written only by specimens.services, through
backoffice.transitions. Events and label prints are append-only. This app knows nothing of lab:
lab's test definitions point at the catalog here, and its test orders at the specimen serving them.
"""

import uuid
from decimal import Decimal

import pghistory
from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Handoff, Patient, Station, tracked_history
from backoffice.transitions import APPEND_ONLY, TransitionEvent
from specimens.workflow import (
    COLLECTED_STATUSES,
    CollectionMethod,
    FailedDrawReason,
    Handling,
    Location,
    SpecimenStatus,
)


class SpecimenType(models.Model):
    """What is collected, coded in SNOMED CT (e.g. venous blood 122555007)."""

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=80, unique=True)
    snomed_code = models.CharField("SNOMED CT code", max_length=18, unique=True)
    collection_method = models.CharField(max_length=20, choices=CollectionMethod.choices)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Container(models.Model):
    """A tube, cup or swab: what the specimen goes into, how it is drawn and kept."""

    class Kind(models.TextChoices):
        TUBE = "tube", "Tube"
        CUP = "cup", "Cup"
        SWAB = "swab", "Swab"
        CAPILLARY = "capillary", "Capillary / point-of-care"

    # CLSI GP41 order of draw for venipuncture; everything that isn't a tube comes after the tubes.
    NOT_DRAWN_IN_ORDER = 100

    code = models.SlugField(max_length=30, unique=True)
    name = models.CharField(max_length=80, unique=True, help_text="As the MA says it, e.g. 'Lavender-top EDTA'.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    cap_colour = models.CharField(max_length=30, blank=True)
    additive = models.CharField(
        max_length=60, blank=True, help_text="e.g. K2EDTA, clot activator and gel, 3.2% citrate."
    )
    draw_order = models.PositiveSmallIntegerField(
        default=NOT_DRAWN_IN_ORDER,
        help_text="CLSI order of draw: 1 blood culture, 2 citrate, 3 serum, 4 heparin, 5 EDTA, 6 fluoride; "
        f"{NOT_DRAWN_IN_ORDER} for containers that aren't tubes.",
    )
    volume_ml = models.DecimalField("draw volume (mL)", max_digits=5, decimal_places=1)
    min_volume_ml = models.DecimalField(
        "minimum volume (mL)", max_digits=5, decimal_places=1, validators=[MinValueValidator(Decimal("0"))]
    )
    handling = models.CharField(max_length=20, choices=Handling.choices, default=Handling.ROOM_TEMPERATURE)
    stability_hours = models.PositiveSmallIntegerField(help_text="How long the specimen stays testable as handled.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["draw_order", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_volume_ml__lte=models.F("volume_ml")), name="container_min_volume_fits"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RejectionReason(models.Model):
    """Why a specimen can't be tested: HL7 table 0490 codes, plus the clinic's own."""

    code = models.CharField(max_length=10, unique=True)
    name = models.CharField(max_length=80)
    hl7_table_0490 = models.BooleanField(
        "HL7 table 0490", default=False, help_text="Unticked for the clinic's local reasons."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["-hl7_table_0490", "code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class LabelPrinter(models.Model):
    """Where a station's specimen labels go: a Zebra printer over raw TCP, or a PDF to download."""

    class Transport(models.TextChoices):
        ZPL_TCP = "zpl_tcp", "ZPL over raw TCP (port 9100)"
        PDF = "pdf", "Download PDF"

    class Dpi(models.IntegerChoices):
        DPI_203 = 203, "203 dpi"
        DPI_300 = 300, "300 dpi"

    station = models.ForeignKey(Station, on_delete=models.CASCADE, related_name="label_printers")
    name = models.CharField(max_length=80)
    transport = models.CharField(max_length=10, choices=Transport.choices, default=Transport.PDF)
    host = models.CharField(max_length=255, blank=True, help_text="The printer's address, for ZPL over TCP.")
    port = models.PositiveIntegerField(default=9100)
    width_in = models.DecimalField("label width (in)", max_digits=3, decimal_places=2, default=Decimal("2.00"))
    height_in = models.DecimalField("label height (in)", max_digits=3, decimal_places=2, default=Decimal("1.00"))
    dpi = models.PositiveSmallIntegerField(choices=Dpi.choices, default=Dpi.DPI_203)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["station", "name"]
        constraints = [
            models.CheckConstraint(condition=~Q(transport="zpl_tcp") | ~Q(host=""), name="labelprinter_zpl_needs_host"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.station})"


class SpecimenQuerySet(models.QuerySet["Specimen"]):
    def collected(self) -> "SpecimenQuerySet":
        return self.filter(status__in=COLLECTED_STATUSES)


@pghistory.track(**tracked_history("SpecimenHistory"))
class Specimen(models.Model):
    """One container of one patient's specimen, from the label at the bedside to its disposal."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    accession = models.CharField(
        max_length=24, unique=True, editable=False, help_text="From a Postgres sequence, with a check digit."
    )
    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="specimens")
    # The handoff's patient, kept on the row: the label, the wristband check and the access log read it.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="specimens")
    specimen_type = models.ForeignKey(SpecimenType, on_delete=models.PROTECT, related_name="specimens")
    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="specimens")
    collection_method = models.CharField(max_length=20, choices=CollectionMethod.choices)
    body_site = models.CharField(max_length=80, blank=True, help_text="e.g. left antecubital fossa.")
    body_site_snomed = models.CharField("body site (SNOMED CT)", max_length=18, blank=True)
    volume_ml = models.DecimalField("volume (mL)", max_digits=5, decimal_places=1, null=True, blank=True)
    tests_label = models.CharField(
        max_length=120, blank=True, editable=False, help_text="The short names of the tests it serves, for its label."
    )

    status = models.CharField(
        max_length=20, choices=SpecimenStatus.choices, default=SpecimenStatus.LABELLED, editable=False
    )
    location = models.CharField(max_length=20, choices=Location.choices, default=Location.BEDSIDE, editable=False)
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)

    labelled_at = models.DateTimeField(default=timezone.now, editable=False)
    labelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    collected_at = models.DateTimeField(null=True, blank=True, editable=False)
    collected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    # The bedside check: the tube's label and the patient's wristband, read together.
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    verify_method = models.CharField(max_length=10, blank=True, editable=False)
    received_at = models.DateTimeField(null=True, blank=True, editable=False)
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    received_acceptable = models.BooleanField(null=True, blank=True, editable=False)
    rejection_reason = models.ForeignKey(
        RejectionReason, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    rejection_note = models.CharField(max_length=300, blank=True, editable=False)
    rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    failed_draw_reason = models.CharField(max_length=20, choices=FailedDrawReason.choices, blank=True, editable=False)
    failed_draw_note = models.CharField(max_length=300, blank=True, editable=False)
    recollection_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="recollections", editable=False
    )
    # Kept after testing (e.g. "Fridge 2, rack B"), then disposed of; a rejected one is disposed of too.
    storage_place = models.CharField(max_length=80, blank=True, editable=False)
    stored_at = models.DateTimeField(null=True, blank=True, editable=False)
    disposed_at = models.DateTimeField(null=True, blank=True, editable=False)
    disposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    disposal_note = models.CharField(max_length=200, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = SpecimenQuerySet.as_manager()

    class Meta:
        ordering = ["-labelled_at", "-id"]
        indexes = [
            models.Index(fields=["handoff", "status"], name="specimen_handoff_idx"),
            # The tracking list and its tabs: every specimen not yet disposed of, nor a failed draw.
            models.Index(
                fields=["status", "status_changed_at"],
                name="specimen_tracking_idx",
                condition=Q(
                    status__in=[
                        "labelled",
                        "collected",
                        "in_transit",
                        "received",
                        "in_testing",
                        "done",
                        "stored",
                        "rejected",
                    ]
                ),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in SpecimenStatus]), name="specimen_status_valid"
            ),
            # Counted as collected only with the bedside check on record.
            models.CheckConstraint(
                condition=~Q(status__in=[*COLLECTED_STATUSES])
                | (Q(verified_at__isnull=False) & Q(collected_at__isnull=False) & Q(collected_by__isnull=False)),
                name="specimen_collected_was_verified",
            ),
            models.CheckConstraint(
                condition=~Q(status=SpecimenStatus.REJECTED) | Q(rejection_reason__isnull=False),
                name="specimen_rejected_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(received_at__isnull=True) | Q(received_by__isnull=False),
                name="specimen_receipt_has_receiver",
            ),
            models.CheckConstraint(
                condition=~Q(status=SpecimenStatus.STORED) | (Q(stored_at__isnull=False) & ~Q(storage_place="")),
                name="specimen_stored_has_place",
            ),
            models.CheckConstraint(
                condition=~Q(status=SpecimenStatus.DISPOSED) | Q(disposed_at__isnull=False, disposed_by__isnull=False),
                name="specimen_disposal_recorded",
            ),
        ]
        permissions = [
            ("collect_specimen", "Can collect and label specimens"),
            ("receive_specimen", "Can receive specimens at the bench or send-out desk"),
            ("reject_specimen", "Can reject specimens"),
            ("store_specimen", "Can store and dispose of specimens"),
        ]

    def __str__(self) -> str:
        return f"{self.accession} ({self.container})"

    @property
    def is_collected(self) -> bool:
        return self.status in COLLECTED_STATUSES


class SpecimenEvent(TransitionEvent):
    """Something done to a specimen: a custody hand-over names where it went from and to."""

    class Action(models.TextChoices):
        LABELLED = "labelled", "Labelled at the bedside"
        LABEL_PRINTED = "label_printed", "Label printed"
        LABEL_REPRINTED = "label_reprinted", "Label reprinted"
        VERIFIED = "verified", "Label and wristband matched"
        ID_MISMATCH = "id_mismatch", "Label or wristband did not match"
        COLLECTED = "collected", "Collected"
        NOT_COLLECTED = "not_collected", "Not collected"
        HANDED_OVER = "handed_over", "Handed over"
        RECEIVED = "received", "Received"
        TESTING = "testing", "Testing started"
        DONE = "done", "Testing done"
        STORED = "stored", "Stored"
        DISPOSED = "disposed", "Disposed"
        REJECTED = "rejected", "Rejected"
        SHIPPED = "shipped", "Shipped to a reference lab"

    specimen = models.ForeignKey(Specimen, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=SpecimenStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=SpecimenStatus.choices, blank=True)
    from_location = models.CharField(max_length=20, choices=Location.choices, blank=True)
    to_location = models.CharField(max_length=20, choices=Location.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        indexes = [models.Index(fields=["specimen", "at"], name="specimenevent_specimen_idx")]


class LabelPrint(models.Model):
    """One printing of a specimen's label: the first at the bedside, every reprint with its reason."""

    specimen = models.ForeignKey(Specimen, on_delete=models.PROTECT, related_name="label_prints")
    printed_at = models.DateTimeField(default=timezone.now)
    printed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=200, blank=True, help_text="Why it was printed again; empty the first time.")
    printer = models.ForeignKey(LabelPrinter, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    output = models.CharField(max_length=10, choices=LabelPrinter.Transport.choices)

    class Meta:
        ordering = ["printed_at", "id"]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.specimen.accession} printed {self.printed_at:%Y-%m-%d %H:%M}"
