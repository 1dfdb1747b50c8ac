"""Patient results: one row per analyte of an ordered test, its computed flag, and who entered,
verified, released and acknowledged it. A released result is never edited: a correction is a new
result that ``amends`` it, and the original becomes superseded once the correction is released.

A send-out's results come back from its reference lab (lab.sendouts.filing): the same rows, with
what the lab sent beside the value (its report status P/F/C/X, its flags, a coded value's code and
system, a narrative's lines, its notes, the performing lab) and the inbound message they came from.
The lab verified them: no kit lot, no second person here. A final that follows a preliminary
``replaces`` it (superseded, not an amendment); a correction ``amends`` the final as in-house.
"""

import uuid
from decimal import Decimal

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Patient, tracked_history
from backoffice.transitions import TransitionEvent
from lab.models.catalog import Analyte, ReferenceRange
from lab.models.intake import InboundMessage
from lab.models.orders import TestOrder
from lab.models.qc import KitLot
from lab.models.sendouts import ReferenceLab
from lab.workflow import Flag, ResultStatus
from specimens.models import Specimen


@pghistory.track(**tracked_history("ResultHistory"))
class Result(models.Model):
    class Comparator(models.TextChoices):
        EQUAL = "", "="
        BELOW = "<", "<"
        ABOVE = ">", ">"
        # A reference lab's SN results may say these too (HL7 SN-1).
        AT_MOST = "<=", "<="
        AT_LEAST = ">=", ">="
        NOT_EQUAL = "<>", "<>"

    class ReportStatus(models.TextChoices):
        """OBX-11 (else OBR-25) of a reference lab's result; empty for the in-house bench."""

        IN_HOUSE = "", "In-house"
        PRELIMINARY = "P", "Preliminary"
        FINAL = "F", "Final"
        CORRECTED = "C", "Corrected"
        CANCELLED = "X", "Cancelled by the lab"

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(TestOrder, on_delete=models.PROTECT, related_name="results")
    analyte = models.ForeignKey(Analyte, on_delete=models.PROTECT, related_name="results")
    # Kept on the row: the access log, the inbox and the patient's results read it.
    # Read by patient through result_patient_idx, which leads with it: no index of its own.
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="lab_results", db_index=False)
    specimen = models.ForeignKey(Specimen, on_delete=models.PROTECT, related_name="results")
    kit_lot = models.ForeignKey(KitLot, on_delete=models.PROTECT, null=True, blank=True, related_name="results")

    status = models.CharField(max_length=12, choices=ResultStatus.choices, default=ResultStatus.ENTERED, editable=False)
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    # The value as reported: a number (with "<" or ">" when outside the reportable range), or text.
    value_numeric = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True, editable=False)
    comparator = models.CharField(max_length=2, choices=Comparator.choices, blank=True, editable=False)
    value_text = models.CharField(max_length=200, blank=True, editable=False)
    unit = models.CharField(max_length=40, blank=True, editable=False)
    # Computed from the value and the patient's age and sex at collection (lab.results.flags).
    flag = models.CharField(max_length=2, choices=Flag.choices, blank=True, editable=False)
    is_critical = models.BooleanField(default=False, editable=False)
    reference_range = models.ForeignKey(
        ReferenceRange,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
    )
    reference_text = models.CharField(max_length=120, blank=True, editable=False)
    comment = models.CharField(max_length=300, blank=True, editable=False)

    # --- Reported by a reference lab (lab.sendouts.filing); empty or null for the in-house bench. ---
    inbound = models.ForeignKey(
        InboundMessage, on_delete=models.PROTECT, null=True, blank=True, related_name="results", editable=False
    )
    reference_lab = models.ForeignKey(
        ReferenceLab, on_delete=models.PROTECT, null=True, blank=True, related_name="results", editable=False
    )
    report_status = models.CharField(
        max_length=1, choices=ReportStatus.choices, blank=True, default=ReportStatus.IN_HOUSE, editable=False
    )
    # OBX-4: the sections of one narrative (part A, part B) or repeated observations under one code.
    observation_sub_id = models.CharField(max_length=20, blank=True, default="", editable=False)
    # OBX-3 as the lab named it: its own code and text (the LOINC is the analyte's).
    lab_code = models.CharField(max_length=40, blank=True, editable=False)
    lab_name = models.CharField(max_length=200, blank=True, editable=False)
    lab_flags = models.CharField("the lab's flags (OBX-8)", max_length=20, blank=True, editable=False)
    # The number's precision as the lab sent it ("0.90" is two decimals), and SN ranges and ratios (1:160).
    value_decimals = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    value_separator = models.CharField(max_length=1, blank=True, editable=False)
    value_numeric2 = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True, editable=False)
    # A coded value (CE/CWE): its code and coding system, and the alternate triplet's.
    value_code = models.CharField(max_length=40, blank=True, editable=False)
    value_code_system = models.CharField(max_length=40, blank=True, editable=False)
    value_alt_code = models.CharField(max_length=40, blank=True, editable=False)
    value_alt_code_system = models.CharField(max_length=40, blank=True, editable=False)
    # A narrative (TX/FT, or a long ST): every line in order, leading spaces and blank lines kept.
    narrative = models.TextField(blank=True, editable=False)
    notes = models.TextField("the lab's notes on this result (NTE)", blank=True, editable=False)
    order_notes = models.TextField("the lab's notes on the order (NTE)", blank=True, editable=False)
    # OBX-23..25 (or OBX-15 on older interfaces): who performed it, for the report.
    performing_lab = models.CharField(max_length=200, blank=True, editable=False)
    performing_lab_address = models.CharField(max_length=300, blank=True, editable=False)
    performing_lab_director = models.CharField(max_length=200, blank=True, editable=False)
    observed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The preliminary result this final (or later preliminary) one replaces: superseded, not amended.
    replaces = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="replaced_by", editable=False
    )

    entered_at = models.DateTimeField(default=timezone.now, editable=False)
    # Who entered, verified, released and acknowledged it, and the range it was flagged by, are read
    # from the result, never searched by: no index each (every result the HL7 intake files paid for six).
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
    )
    released_at = models.DateTimeField(null=True, blank=True, editable=False)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
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
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        db_index=False,
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
            # One current result per analyte (and OBX-4 sub-id) of an order: a correction replaces it,
            # a superseded one stays.
            models.UniqueConstraint(
                fields=["order", "analyte", "observation_sub_id"],
                condition=~Q(status="superseded") & Q(amends__isnull=True),
                name="result_one_original_per_analyte",
            ),
            # A result is the bench's (on a kit lot) or a reference lab's (from a message), never both.
            models.CheckConstraint(
                condition=Q(inbound__isnull=True) | (Q(kit_lot__isnull=True) & Q(reference_lab__isnull=False)),
                name="result_reported_by_a_lab_has_no_kit_lot",
            ),
            models.CheckConstraint(
                condition=Q(inbound__isnull=False) | Q(report_status=""),
                name="result_report_status_only_from_a_lab",
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
        """The value as reported: "6.8 g/dL", "<20 mg/dL", "Positive"; a lab's "<0.5 ng/L", "1:160"."""
        if self.value_numeric is None:
            return self.value_text
        quantum = self.analyte.quantum if self.value_decimals is None else Decimal(1).scaleb(-self.value_decimals)
        number = f"{self.value_numeric.quantize(quantum):f}"
        if self.value_separator and self.value_numeric2 is not None:
            number += f"{self.value_separator}{self.value_numeric2.quantize(quantum):f}"
        return f"{self.comparator}{number}" + (f" {self.unit}" if self.unit else "")

    @property
    def is_released(self) -> bool:
        return self.status == ResultStatus.RELEASED

    @property
    def is_reported(self) -> bool:
        """Reported by a reference lab rather than run at the bench."""
        return self.inbound_id is not None

    @property
    def performed_by(self) -> str:
        """Who ran it, for the report: the lab the result names (OBX-23), else the lab that sent it.

        Empty for the in-house bench. Needs ``reference_lab`` loaded (select_related) for a send-out.
        """
        if self.inbound_id is None:
            return ""
        lab = self.reference_lab
        return self.performing_lab or (lab.name if lab is not None else "")

    @property
    def is_preliminary(self) -> bool:
        return self.report_status == self.ReportStatus.PRELIMINARY

    @property
    def narrative_lines(self) -> list[str]:
        return self.narrative.split("\n") if self.narrative else []


class ResultEvent(TransitionEvent):
    class Action(models.TextChoices):
        ENTERED = "entered", "Entered"
        CORRECTED = "corrected", "Corrected before release"
        VERIFIED = "verified", "Verified"
        SENT_BACK = "sent_back", "Sent back for correction"
        RELEASED = "released", "Released"
        AMENDED = "amended", "Correction entered"
        SUPERSEDED = "superseded", "Superseded by a correction"
        REPORTED = "reported", "Reported by the reference lab"
        REPLACED = "replaced", "Replaced by the lab's later report"
        MARKED_FOR_REVIEW = "review", "Marked for review (QC failed)"
        REVIEW_CLOSED = "review_closed", "Review closed: result stands"
        ACKNOWLEDGED = "acknowledged", "Acknowledged by the clinician"

    # Indexed by resultevent_result_idx, which leads with it.
    result = models.ForeignKey(Result, on_delete=models.PROTECT, related_name="events", db_index=False)
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=12, choices=ResultStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=ResultStatus.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        indexes = [models.Index(fields=["result", "at"], name="resultevent_result_idx")]
