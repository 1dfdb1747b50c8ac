"""Procedure catalog, competencies, and the procedures ordered on a handoff with their documentation.

Status fields, documentation versions, competency counts and charge lines are written only by
procedures.services. Events, addenda and charge lines are append-only.
"""

import math
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pghistory
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from stdnum import ean

from backoffice.models import (
    Equipment,
    Handoff,
    Ingredient,
    Patient,
    Station,
    minutes_label,
    tracked_history,
    whole_minutes,
)
from backoffice.transitions import APPEND_ONLY, TransitionEvent
from procedures.workflow import DONE_STATUSES, OPEN_STATUSES, NotDoneReason, ProcedureStatus, Supervision


class DoseUnit(models.TextChoices):
    MG = "mg", "mg"
    MCG = "mcg", "mcg"
    ML = "mL", "mL"
    UNITS = "units", "units"
    G = "g", "g"


class Route(models.TextChoices):
    IM = "IM", "Intramuscular (IM)"
    SC = "SC", "Subcutaneous (SC)"
    ID = "ID", "Intradermal (ID)"
    IV = "IV", "Intravenous (IV)"
    PO = "PO", "By mouth (PO)"
    INH = "INH", "Inhaled (nebulized)"
    TOP = "TOP", "Topical"
    LOCAL = "LOCAL", "Local infiltration"


# A dose in one mass unit, in another: mg per unit. Doses in mL or units bill only in the same unit.
MASS_IN_MG = {DoseUnit.G: Decimal(1000), DoseUnit.MG: Decimal(1), DoseUnit.MCG: Decimal("0.001")}


class Medication(models.Model):
    """A drug the clinic stocks and gives: what the cross-check, the scan and the charge line read."""

    class Form(models.TextChoices):
        SOLUTION = "solution", "Injectable solution"
        POWDER = "powder", "Powder for injection"
        SUSPENSION = "suspension", "Injectable suspension"
        VACCINE = "vaccine", "Vaccine"
        INHALATION = "inhalation", "Inhalation solution"
        TABLET = "tablet", "Tablet"
        TOPICAL = "topical", "Topical"

    name = models.CharField(max_length=80, help_text="Generic name, e.g. Ceftriaxone.")
    strength = models.CharField(max_length=60, help_text="As on the package, e.g. 1 g vial, 1000 mcg/mL.")
    form = models.CharField(max_length=12, choices=Form.choices)
    routes = ArrayField(models.CharField(max_length=10, choices=Route.choices), help_text="Routes it may be given by.")
    ingredients = models.ManyToManyField(
        Ingredient, related_name="medications", help_text="What the allergy cross-check compares."
    )
    rxnorm_code = models.CharField("RxNorm code", max_length=12, blank=True, help_text="The clinical drug (SCD).")
    hcpcs_code = models.CharField(
        "HCPCS drug code",
        max_length=10,
        blank=True,
        help_text="Billed beside the administration code, e.g. J0696 (ceftriaxone) or 90686 (a vaccine's CPT).",
    )
    billing_unit_amount = models.DecimalField(
        max_digits=10, decimal_places=3, null=True, blank=True, help_text="One billing unit, e.g. 250 for J0696."
    )
    billing_unit = models.CharField(max_length=10, choices=DoseUnit.choices, blank=True)
    cvx_code = models.CharField("CVX", max_length=4, blank=True, help_text="Vaccines: CDC vaccine code.")
    mvx_code = models.CharField("MVX", max_length=4, blank=True, help_text="Vaccines: CDC manufacturer code.")
    administration_procedure = models.ForeignKey(
        "ProcedureType",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="medications",
        help_text="The procedure that gives it (e.g. 96372): ordering the drug orders it.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "strength"]
        constraints = [
            models.UniqueConstraint(fields=["name", "strength", "form"], name="medication_unique_product"),
            models.CheckConstraint(
                condition=Q(billing_unit_amount__isnull=True, billing_unit="")
                | Q(billing_unit_amount__gt=0) & ~Q(billing_unit=""),
                name="medication_billing_unit_whole",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.strength}"

    def billing_units(self, dose: "Decimal", unit: str) -> int | None:
        """Billing units for a dose (rounded up, at least one), or None if it can't be computed."""
        if not self.hcpcs_code:
            return None
        if self.billing_unit_amount is None:
            return 1  # billed per dose (vaccines)
        if unit == self.billing_unit:
            amount = Decimal(dose)
        elif unit in MASS_IN_MG and self.billing_unit in MASS_IN_MG:
            amount = Decimal(dose) * MASS_IN_MG[DoseUnit(unit)] / MASS_IN_MG[DoseUnit(self.billing_unit)]
        else:
            return None
        return max(1, math.ceil(amount / self.billing_unit_amount))


validate_ndc = RegexValidator(
    r"^(\d{4}-\d{4}-\d{2}|\d{5}-\d{3}-\d{2}|\d{5}-\d{4}-\d{1})$",
    "An NDC as on the package: 4-4-2, 5-3-2 or 5-4-1 digits with hyphens, e.g. 0409-7338-01.",
)


def gtin_for_ndc(ndc: str) -> str:
    """The GTIN-14 that a US drug package's barcode carries for its 10-digit NDC: 003, NDC, check digit."""
    body = "003" + ndc.replace("-", "")
    return body + ean.calc_check_digit(body)


def validate_gtin(value: str) -> None:
    if not (value.isdigit() and len(value) == 14 and ean.is_valid(value)):
        raise ValidationError("A GTIN-14: fourteen digits ending in a valid check digit.")


class MedicationPackage(models.Model):
    """A package of a medication as it comes from the supplier: its NDC and the GTIN its barcode carries."""

    medication = models.ForeignKey(Medication, on_delete=models.CASCADE, related_name="packages")
    ndc = models.CharField("NDC", max_length=12, unique=True, validators=[validate_ndc])
    gtin = models.CharField(
        "GTIN",
        max_length=14,
        unique=True,
        blank=True,
        validators=[validate_gtin],
        help_text="Left blank: from the NDC.",
    )
    description = models.CharField(max_length=80, blank=True, help_text="E.g. carton of 25 vials.")

    class Meta:
        ordering = ["medication", "ndc"]

    def __str__(self) -> str:
        return f"NDC {self.ndc}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.gtin and self.ndc:
            self.gtin = gtin_for_ndc(self.ndc)
        super().save(*args, **kwargs)

    @property
    def ndc11(self) -> str:
        """The 11-digit 5-4-2 NDC billing asks for (a zero added to the short segment)."""
        labeler, product, package = self.ndc.split("-")
        return f"{labeler.zfill(5)}{product.zfill(4)}{package.zfill(2)}"


class ProcedureType(models.Model):
    """A back-office procedure from the catalog: billing code, what it needs and what it documents."""

    class Category(models.TextChoices):
        INJECTION = "injection", "Injection and immunization"
        SPECIMEN = "specimen", "Specimen collection"
        WOUND = "wound", "Wound care"
        DIAGNOSTIC = "diagnostic", "Diagnostic test"
        TREATMENT = "treatment", "Treatment"
        ASSESSMENT = "assessment", "Assessment"

    class Vitals(models.TextChoices):
        NONE = "", "Not needed"
        ONCE = "once", "One set"
        BEFORE_AFTER = "before_after", "Before and after"

    code = models.CharField("CPT/HCPCS code", max_length=10, unique=True)
    name = models.CharField(max_length=120, unique=True)
    category = models.CharField(max_length=20, choices=Category.choices)
    default_minutes = models.PositiveSmallIntegerField(default=15)
    supervision_required_if_not_competent = models.BooleanField(
        default=True, help_text="Staff not yet signed off as competent need a supervisor for this procedure."
    )
    required_equipment = models.ManyToManyField(Equipment, blank=True, related_name="procedure_types")
    consent_required = models.BooleanField(default=False, help_text="Consent must be captured before finishing.")
    timeout_required = models.BooleanField(
        "time-out required", default=False, help_text="A time-out (right patient, procedure, site) before starting."
    )
    documents_site = models.BooleanField("site and laterality", default=False)
    laterality_modifier = models.BooleanField(
        default=False, help_text="Bill laterality as a CPT modifier: RT, LT, or 50 for bilateral."
    )
    documents_findings = models.BooleanField("findings", default=False)
    documents_medication = models.BooleanField("medication given", default=False)
    vitals = models.CharField("vital signs", max_length=20, choices=Vitals.choices, blank=True, default="")
    documents_specimen = models.BooleanField("specimen produced", default=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(laterality_modifier=False) | Q(documents_site=True),
                name="proceduretype_modifier_needs_site",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ProcedureStep(models.Model):
    """One step of a procedure type's checklist, in order."""

    procedure_type = models.ForeignKey(ProcedureType, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    text = models.CharField(max_length=160)

    class Meta:
        ordering = ["procedure_type", "position"]
        constraints = [
            models.UniqueConstraint(fields=["procedure_type", "position"], name="procedurestep_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.position}. {self.text}"


@pghistory.track(**tracked_history("CompetencyHistory"))
class Competency(models.Model):
    """A staff member's standing for one procedure type: signed off or not, and supervised practice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="competencies")
    procedure_type = models.ForeignKey(ProcedureType, on_delete=models.CASCADE, related_name="competencies")
    signed_off_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    signed_off_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_on = models.DateField(null=True, blank=True, editable=False)
    supervised_count = models.PositiveIntegerField(
        default=0, editable=False, help_text="Supervised performances completed to date."
    )

    class Meta:
        ordering = ["user", "procedure_type"]
        verbose_name_plural = "competencies"
        constraints = [
            models.UniqueConstraint(fields=["user", "procedure_type"], name="competency_once_per_type"),
            models.CheckConstraint(
                condition=Q(signed_off_at__isnull=True, signed_off_by__isnull=True)
                | Q(signed_off_at__isnull=False, signed_off_by__isnull=False),
                name="competency_signoff_has_signer",
            ),
            models.CheckConstraint(condition=~Q(signed_off_by=F("user")), name="competency_not_self_signed"),
        ]
        permissions = [("sign_off_competency", "Can sign staff off as competent for a procedure")]

    def __str__(self) -> str:
        return f"{self.user} — {self.procedure_type.name}"

    def is_current(self, on: date | None = None) -> bool:
        if self.signed_off_at is None:
            return False
        return self.expires_on is None or self.expires_on >= (on or timezone.localdate())


UNDERWAY_STATUSES = [
    ProcedureStatus.IN_PROGRESS,
    ProcedureStatus.PERFORMED,
    ProcedureStatus.AWAITING_COSIGN,
    ProcedureStatus.RETURNED,
]


class ProcedureOrderQuerySet(models.QuerySet["ProcedureOrder"]):
    def open(self) -> "ProcedureOrderQuerySet":
        return self.filter(status__in=OPEN_STATUSES)


@pghistory.track(**tracked_history("ProcedureOrderHistory"))
class ProcedureOrder(models.Model):
    """A procedure ordered on a handoff, and how it was performed and supervised."""

    Status = ProcedureStatus

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="procedure_orders")
    procedure_type = models.ForeignKey(ProcedureType, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ORDERED, editable=False)
    status_changed_at = models.DateTimeField(default=timezone.now, editable=False)
    instructions = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    performer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    performer_competent = models.BooleanField(
        null=True, editable=False, help_text="Whether the performer was signed off for this procedure at the start."
    )
    station = models.ForeignKey(
        Station, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    performed_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)

    supervision = models.CharField(max_length=10, choices=Supervision.choices, default=Supervision.NONE, editable=False)
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    supervisor_confirmed_at = models.DateTimeField(null=True, blank=True, editable=False)
    cosigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    cosigned_at = models.DateTimeField(null=True, blank=True, editable=False)
    returned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    returned_at = models.DateTimeField(null=True, blank=True, editable=False)
    return_comment = models.CharField(max_length=500, blank=True, editable=False)

    not_done_reason = models.CharField(max_length=30, choices=NotDoneReason.choices, blank=True, editable=False)
    not_done_note = models.CharField(max_length=300, blank=True, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False)

    objects = ProcedureOrderQuerySet.as_manager()

    class Meta:
        ordering = ["handoff", "id"]
        constraints = [
            models.UniqueConstraint(fields=["handoff", "procedure_type"], name="procedureorder_once_per_handoff"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ProcedureStatus]), name="procedureorder_status_valid"
            ),
            models.CheckConstraint(
                # Work under way names who does it, where and since when. (Completed rows are left out:
                # the benchmark loader writes historical ones without a performer.)
                condition=~Q(status__in=UNDERWAY_STATUSES)
                | Q(performer__isnull=False, started_at__isnull=False, station__isnull=False),
                name="procedureorder_started_has_performer",
            ),
            models.CheckConstraint(
                condition=~Q(status=ProcedureStatus.NOT_DONE) | ~Q(not_done_reason=""),
                name="procedureorder_not_done_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(supervision=Supervision.PRESENT) | Q(supervisor__isnull=False),
                name="procedureorder_present_names_supervisor",
            ),
            # Nobody co-signs or supervises their own work, whatever path wrote the row.
            models.CheckConstraint(condition=~Q(cosigned_by=F("performer")), name="procedureorder_no_self_cosign"),
            models.CheckConstraint(condition=~Q(supervisor=F("performer")), name="procedureorder_no_self_supervision"),
        ]
        indexes = [
            models.Index(
                fields=["handoff"],
                name="procedureorder_open_idx",
                condition=~Q(status__in=["completed", "not_done"]),
            ),
            # The procedure queue reads open work oldest first; finished history stays out of it.
            models.Index(
                fields=["status_changed_at"],
                name="procedureorder_queue_idx",
                condition=~Q(status__in=["completed", "not_done"]),
            ),
        ]
        permissions = [
            ("perform_procedure", "Can perform and document procedures"),
            ("supervise_procedure", "Can supervise, co-sign and return procedures"),
            ("view_charges", "Can view and export the daily charge list"),
            ("override_allergy", "Can order or give a drug despite an allergy, with a reason"),
        ]

    def __str__(self) -> str:
        return f"{self.procedure_type.name} — {self.get_status_display()}"

    @property
    def is_open(self) -> bool:
        return self.status not in DONE_STATUSES

    def waiting_minutes(self, now: datetime | None = None) -> int:
        """Minutes in the current status: how long the next person has kept it waiting."""
        return whole_minutes(self.status_changed_at, now or timezone.now())

    @property
    def waiting_label(self) -> str:
        return minutes_label(self.waiting_minutes())


class ProcedureEvent(TransitionEvent):
    """An append-only record of something done to an ordered procedure: who, when, from, to, why."""

    class Action(models.TextChoices):
        ORDERED = "ordered", "Ordered"
        STARTED = "started", "Started"
        DOCUMENTED = "documented", "Documentation saved"
        MEDICATION = "medication", "Medication recorded"
        ALLERGY_OVERRIDE = "allergy_override", "Allergy stop overridden"
        PERFORMED = "performed", "Performed"
        COSIGN_REQUESTED = "cosign_requested", "Sent for co-sign"
        COSIGNED = "cosigned", "Co-signed"
        RETURNED = "returned", "Returned for correction"
        RESUBMITTED = "resubmitted", "Resubmitted"
        COMPLETED = "completed", "Completed"
        NOT_DONE = "not_done", "Not done"
        ADDENDUM = "addendum", "Addendum added"

    order = models.ForeignKey(ProcedureOrder, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=30, choices=Action.choices)
    from_status = models.CharField(max_length=20, choices=ProcedureStatus.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=ProcedureStatus.choices, blank=True)

    class Meta(TransitionEvent.Meta):
        indexes = [models.Index(fields=["order", "at"], name="procedureevent_order_idx")]


@pghistory.track(**tracked_history("ProcedureDocumentationHistory"))
class ProcedureDocumentation(models.Model):
    """What the performer documents. Edited with optimistic locking; frozen once performed."""

    class Laterality(models.TextChoices):
        LEFT = "left", "Left"
        RIGHT = "right", "Right"
        BILATERAL = "bilateral", "Bilateral"
        NOT_APPLICABLE = "na", "Not applicable (midline)"

    class Tolerance(models.TextChoices):
        WELL = "well", "Tolerated well"
        MINOR = "minor_discomfort", "Minor discomfort"
        POOR = "poor", "Tolerated poorly"
        STOPPED = "stopped", "Stopped early"

    order = models.OneToOneField(ProcedureOrder, on_delete=models.PROTECT, related_name="documentation")
    version = models.PositiveIntegerField(default=1, editable=False)
    site = models.CharField("body site", max_length=80, blank=True)
    laterality = models.CharField(max_length=10, choices=Laterality.choices, blank=True)
    findings = models.TextField(blank=True, max_length=2000)
    complications = models.TextField(blank=True, max_length=1000)
    tolerance = models.CharField("patient tolerance", max_length=20, choices=Tolerance.choices, blank=True)
    specimen_note = models.CharField("specimen produced", max_length=200, blank=True)
    consent_from = models.CharField(max_length=120, blank=True, help_text="Who consented: the patient or a guardian.")
    consent_at = models.DateTimeField(null=True, blank=True, editable=False)
    consent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    timeout_at = models.DateTimeField("time-out at", null=True, blank=True, editable=False)
    timeout_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name_plural = "procedure documentation"
        constraints = [
            models.CheckConstraint(
                condition=Q(consent_at__isnull=True, consent_by__isnull=True)
                | Q(consent_at__isnull=False, consent_by__isnull=False),
                name="documentation_consent_has_witness",
            ),
            models.CheckConstraint(
                condition=Q(timeout_at__isnull=True, timeout_by__isnull=True)
                | Q(timeout_at__isnull=False, timeout_by__isnull=False),
                name="documentation_timeout_has_caller",
            ),
        ]

    def __str__(self) -> str:
        return f"Documentation of {self.order} (v{self.version})"


class StepCompletion(models.Model):
    """A checklist step ticked off while performing a procedure."""

    documentation = models.ForeignKey(ProcedureDocumentation, on_delete=models.CASCADE, related_name="steps_done")
    step = models.ForeignKey(ProcedureStep, on_delete=models.PROTECT, related_name="+")
    done_at = models.DateTimeField(default=timezone.now)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["step__position"]
        constraints = [models.UniqueConstraint(fields=["documentation", "step"], name="stepcompletion_once")]

    def __str__(self) -> str:
        return f"{self.step} ✓"


class DocumentationDraft(models.Model):
    """What the performer has typed and ticked but not saved yet, kept as they type.

    Not part of the record: saving the documentation files it (each step with the time it was
    ticked) and deletes it; finishing or closing the procedure deletes it too. It is always of the
    documentation's current version (``base_version``): a draft sent from an older version is
    refused, and a change that touches nothing the draft holds (a medication recorded, or marked
    entered in error) carries it along to the new version.
    """

    documentation = models.OneToOneField(ProcedureDocumentation, on_delete=models.CASCADE, related_name="draft")
    base_version = models.PositiveIntegerField()
    # The form's fields as typed (text, as the browser sent them; a list for the checklist).
    values = models.JSONField(default=dict)
    # Checklist step id (as text) → when it was ticked (ISO 8601), stamped by the server at the tick.
    steps_ticked = models.JSONField(default=dict)
    saved_at = models.DateTimeField(default=timezone.now)
    saved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"Draft of {self.documentation.order} (on v{self.base_version})"

    def ticked_at(self) -> dict[int, datetime]:
        """The draft's ticked steps with when each was ticked."""
        return {int(pk): datetime.fromisoformat(at) for pk, at in self.steps_ticked.items()}


@pghistory.track(**tracked_history("VitalSignsHistory"))
class VitalSigns(models.Model):
    """One set of vital signs taken around a procedure."""

    class Phase(models.TextChoices):
        BEFORE = "before", "Before"
        AFTER = "after", "After"

    documentation = models.ForeignKey(ProcedureDocumentation, on_delete=models.CASCADE, related_name="vitals")
    phase = models.CharField(max_length=10, choices=Phase.choices)
    systolic = models.PositiveSmallIntegerField("BP systolic (mmHg)", null=True, blank=True)
    diastolic = models.PositiveSmallIntegerField("BP diastolic (mmHg)", null=True, blank=True)
    pulse = models.PositiveSmallIntegerField("pulse (/min)", null=True, blank=True)
    respiratory_rate = models.PositiveSmallIntegerField("respiratory rate (/min)", null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField("SpO₂ (%)", null=True, blank=True)
    temperature = models.DecimalField("temperature (°C)", max_digits=4, decimal_places=1, null=True, blank=True)
    taken_at = models.DateTimeField(default=timezone.now)
    taken_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["documentation", "phase"]
        verbose_name_plural = "vital signs"
        constraints = [
            models.UniqueConstraint(fields=["documentation", "phase"], name="vitalsigns_once_per_phase"),
            models.CheckConstraint(condition=Q(spo2__isnull=True) | Q(spo2__lte=100), name="vitalsigns_spo2_percent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_phase_display()}: {self.summary}"

    @property
    def summary(self) -> str:
        parts = []
        if self.systolic and self.diastolic:
            parts.append(f"BP {self.systolic}/{self.diastolic}")
        if self.pulse:
            parts.append(f"P {self.pulse}")
        if self.respiratory_rate:
            parts.append(f"RR {self.respiratory_rate}")
        if self.spo2:
            parts.append(f"SpO₂ {self.spo2}%")
        if self.temperature is not None:
            parts.append(f"T {self.temperature} °C")
        return " · ".join(parts) or "—"


class MedicationAdministration(models.Model):
    """A medication given during a procedure, with the lot it came from."""

    Unit = DoseUnit
    Route = Route

    class Entry(models.TextChoices):
        SCANNED = "scanned", "Scanned from the package"
        TYPED = "typed", "Typed"

    documentation = models.ForeignKey(ProcedureDocumentation, on_delete=models.PROTECT, related_name="medications")
    # The catalog's drug (rows from before the catalog name it only as text, in `drug`).
    medication = models.ForeignKey(Medication, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    drug = models.CharField(max_length=120)
    dose = models.DecimalField(max_digits=12, decimal_places=3)  # penicillin G: 1,200,000 units
    unit = models.CharField(max_length=10, choices=Unit.choices)
    route = models.CharField(max_length=10, choices=Route.choices)
    site = models.CharField("administration site", max_length=80, blank=True)
    lot_number = models.CharField(max_length=40)
    expiry_date = models.DateField("lot expiry date")
    administered_at = models.DateTimeField(default=timezone.now)
    administered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    entry = models.CharField(
        "drug, lot and expiry", max_length=10, choices=Entry.choices, default=Entry.TYPED, help_text="How they came in."
    )
    gtin = models.CharField("GTIN scanned", max_length=14, blank=True)

    class Meta:
        ordering = ["administered_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(entry="scanned") | ~Q(gtin=""), name="medication_scan_has_gtin"),
            models.CheckConstraint(condition=Q(dose__gt=0), name="medication_dose_positive"),
            models.CheckConstraint(condition=~Q(lot_number=""), name="medication_has_lot"),
        ]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.drug} {self.dose.normalize():f} {self.unit} {self.route} (lot {self.lot_number})"

    @property
    def dose_label(self) -> str:
        return f"{self.dose.normalize():f} {self.unit}"


class MedicationError(models.Model):
    """A medication entry marked entered in error: the entry stays (struck through), with who, when and why."""

    administration = models.OneToOneField(MedicationAdministration, on_delete=models.PROTECT, related_name="error")
    reason = models.CharField(max_length=200)
    marked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    marked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="medicationerror_has_reason")]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"Entered in error: {self.reason}"


class OrderedMedication(models.Model):
    """A drug the clinician ordered with a procedure (checked against the allergies when ordered and given)."""

    order = models.ForeignKey("ProcedureOrder", on_delete=models.PROTECT, related_name="ordered_medications")
    medication = models.ForeignKey(Medication, on_delete=models.PROTECT, related_name="+")
    ordered_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ordered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["order", "medication"], name="orderedmedication_once_per_order")]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return str(self.medication)


class AllergyOverride(models.Model):
    """A clinician's decision to give a drug despite an allergy it runs into, with the reason: a hard stop lifted."""

    class Stage(models.TextChoices):
        ORDERING = "ordering", "At ordering"
        ADMINISTRATION = "administration", "Before giving it"

    order = models.ForeignKey("ProcedureOrder", on_delete=models.PROTECT, related_name="allergy_overrides")
    medication = models.ForeignKey(Medication, on_delete=models.PROTECT, related_name="+")
    conflicts = models.TextField(help_text="The allergies it runs into, as shown when overridden.")
    reason = models.CharField(max_length=300)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    overridden_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    overridden_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["overridden_at", "id"]
        constraints = [models.CheckConstraint(condition=~Q(reason=""), name="allergyoverride_has_reason")]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.medication} given despite {self.conflicts}: {self.reason}"


class Addendum(models.Model):
    """A correction or late entry added after a procedure was documented; the original stays as it was."""

    class Reason(models.TextChoices):
        CORRECTION = "correction", "Correction"
        LATE_ENTRY = "late_entry", "Late entry"
        CLARIFICATION = "clarification", "Clarification"

    order = models.ForeignKey(ProcedureOrder, on_delete=models.PROTECT, related_name="addenda")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    text = models.TextField(max_length=2000)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "addenda"
        constraints = [models.CheckConstraint(condition=~Q(text=""), name="addendum_has_text")]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} by {self.author} at {self.created_at:%Y-%m-%d %H:%M}"


class ChargeLine(models.Model):
    """What billing needs for one completed procedure, written once when it completes."""

    order = models.OneToOneField(ProcedureOrder, on_delete=models.PROTECT, related_name="charge")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    code = models.CharField("CPT/HCPCS", max_length=10)
    description = models.CharField(max_length=120)
    units = models.PositiveSmallIntegerField(default=1)
    modifiers = models.CharField(max_length=20, blank=True, help_text="Comma-separated CPT modifiers, e.g. RT or 50.")
    service_date = models.DateField()
    performer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    supervisor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    ordering_clinician = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["service_date", "created_at", "id"]
        indexes = [models.Index(fields=["service_date", "created_at"], name="chargeline_day_idx")]
        constraints = [models.CheckConstraint(condition=Q(units__gte=1), name="chargeline_units_positive")]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        modifiers = f"-{self.modifiers}" if self.modifiers else ""
        return f"{self.code}{modifiers}, {self.units} unit(s) on {self.service_date}"


class DrugChargeLine(models.Model):
    """The drug billed beside an administration code: its HCPCS code, units from the dose, and the NDC."""

    charge = models.ForeignKey(ChargeLine, on_delete=models.PROTECT, related_name="drug_lines")
    administration = models.OneToOneField(MedicationAdministration, on_delete=models.PROTECT, related_name="charge")
    code = models.CharField("HCPCS", max_length=10)
    description = models.CharField(max_length=120)
    units = models.PositiveIntegerField()
    ndc = models.CharField("NDC (11 digits)", max_length=11, blank=True)

    class Meta:
        ordering = ["charge", "id"]
        constraints = [models.CheckConstraint(condition=Q(units__gte=1), name="drugchargeline_units_positive")]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.code} x {self.units}"


# What a procedure accumulates, written only by procedures.services: shown read-only in admin.
PROCEDURE_RECORDS: tuple[type[models.Model], ...] = (
    Competency,
    ProcedureEvent,
    ProcedureDocumentation,
    StepCompletion,
    VitalSigns,
    MedicationAdministration,
    MedicationError,
    OrderedMedication,
    AllergyOverride,
    Addendum,
    ChargeLine,
    DrugChargeLine,
)
