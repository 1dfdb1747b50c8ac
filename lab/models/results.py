"""Patient results: one row per analyte of an ordered test, its computed flag, and who entered,
verified, released and acknowledged it. A released result is never edited: a correction is a new
result that ``amends`` it, and the original becomes superseded once the correction is released.
"""

import uuid

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Patient, tracked_history
from backoffice.transitions import TransitionEvent
from lab.models.catalog import Analyte, ReferenceRange
from lab.models.orders import TestOrder
from lab.models.qc import KitLot
from lab.workflow import Flag, ResultStatus
from specimens.models import Specimen


@pghistory.track(**tracked_history("ResultHistory"))
class Result(models.Model):
    class Comparator(models.TextChoices):
        EQUAL = "", "="
        BELOW = "<", "<"
        ABOVE = ">", ">"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(TestOrder, on_delete=models.PROTECT, related_name="results")
    analyte = models.ForeignKey(Analyte, on_delete=models.PROTECT, related_name="results")
    # Kept on the row: the access log, the inbox and the patient's results read it.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_results")
    specimen = models.ForeignKey(Specimen, on_delete=models.PROTECT, related_name="results")
    kit_lot = models.ForeignKey(KitLot, on_delete=models.PROTECT, null=True, blank=True, related_name="results")

    status = models.CharField(max_length=12, choices=ResultStatus.choices, default=ResultStatus.ENTERED, editable=False)
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    # The value as reported: a number (with "<" or ">" when outside the reportable range), or text.
    value_numeric = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True, editable=False)
    comparator = models.CharField(max_length=1, choices=Comparator.choices, blank=True, editable=False)
    value_text = models.CharField(max_length=200, blank=True, editable=False)
    unit = models.CharField(max_length=20, blank=True, editable=False)
    # Computed from the value and the patient's age and sex at collection (lab.results.flags).
    flag = models.CharField(max_length=2, choices=Flag.choices, blank=True, editable=False)
    is_critical = models.BooleanField(default=False, editable=False)
    reference_range = models.ForeignKey(
        ReferenceRange, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    reference_text = models.CharField(max_length=60, blank=True, editable=False)
    comment = models.CharField(max_length=300, blank=True, editable=False)

    entered_at = models.DateTimeField(default=timezone.now, editable=False)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    released_at = models.DateTimeField(null=True, blank=True, editable=False)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    # A correction of a released result: the original stays, superseded once this one is released.
    amends = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="amended_by", editable=False
    )
    amend_reason = models.CharField(max_length=300, blank=True, editable=False)
    # Run on a kit lot whose QC later failed: to be reviewed by the lab.
    needs_review = models.BooleanField(default=False, editable=False)
    review_reason = models.CharField(max_length=300, blank=True, editable=False)
    # The ordering clinician signed it, as shown in their inbox.
    acknowledged_at = models.DateTimeField(null=True, blank=True, editable=False)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["order", "analyte__position", "id"]
        indexes = [
            models.Index(fields=["patient", "analyte", "released_at"], name="result_patient_idx"),
            # The bench and the verification list: results not yet released.
            models.Index(
                fields=["status_changed_at"],
                name="result_unreleased_idx",
                condition=Q(status__in=["entered", "verified"]),
            ),
            # The inbox: released, not yet acknowledged.
            models.Index(
                fields=["released_at"],
                name="result_unacknowledged_idx",
                condition=Q(status="released", acknowledged_at__isnull=True),
            ),
        ]
        constraints = [
            # One current result per analyte of an order: a correction replaces it, a superseded one stays.
            models.UniqueConstraint(
                fields=["order", "analyte"],
                condition=~Q(status="superseded") & Q(amends__isnull=True),
                name="result_one_original_per_analyte",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["verified", "released", "superseded"])
                | Q(verified_by__isnull=True)
                | ~Q(verified_by=models.F("entered_by")),
                name="result_not_self_verified",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["released", "superseded"]) | Q(released_at__isnull=False),
                name="result_released_has_time",
            ),
            models.CheckConstraint(
                condition=Q(amends__isnull=True) | ~Q(amend_reason=""), name="result_amendment_has_reason"
            ),
        ]
        permissions = [
            ("enter_result", "Can enter patient results"),
            ("verify_result", "Can verify and release results"),
            ("acknowledge_result", "Can acknowledge results for their orders"),
        ]

    def __str__(self) -> str:
        return f"{self.analyte.short_name} {self.display_value}"

    @property
    def display_value(self) -> str:
        """The value as reported: "6.8 g/dL", "<20 mg/dL", "Positive"."""
        if self.value_numeric is None:
            return self.value_text
        number = f"{self.value_numeric.quantize(self.analyte.quantum):f}"
        return f"{self.comparator}{number}" + (f" {self.unit}" if self.unit else "")

    @property
    def is_released(self) -> bool:
        return self.status == ResultStatus.RELEASED


class ResultEvent(TransitionEvent):
    class Action(models.TextChoices):
        ENTERED = "entered", "Entered"
        CORRECTED = "corrected", "Corrected before release"
        VERIFIED = "verified", "Verified"
        SENT_BACK = "sent_back", "Sent back for correction"
        RELEASED = "released", "Released"
        AMENDED = "amended", "Correction entered"
        SUPERSEDED = "superseded", "Superseded by a correction"
        MARKED_FOR_REVIEW = "review", "Marked for review (QC failed)"
        REVIEW_CLOSED = "review_closed", "Review closed: result stands"
        ACKNOWLEDGED = "acknowledged", "Acknowledged by the clinician"

    result = models.ForeignKey(Result, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=12, choices=ResultStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=ResultStatus.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        indexes = [models.Index(fields=["result", "at"], name="resultevent_result_idx")]
