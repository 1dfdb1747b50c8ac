"""Procedure catalog and the procedures ordered on a handoff."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Equipment, Handoff


class ProcedureType(models.Model):
    """A back-office procedure from the catalog, with its billing code."""

    class Category(models.TextChoices):
        INJECTION = "injection", "Injection and immunization"
        SPECIMEN = "specimen", "Specimen collection"
        WOUND = "wound", "Wound care"
        DIAGNOSTIC = "diagnostic", "Diagnostic test"
        TREATMENT = "treatment", "Treatment"
        ASSESSMENT = "assessment", "Assessment"

    code = models.CharField("CPT/HCPCS code", max_length=10, unique=True)
    name = models.CharField(max_length=120, unique=True)
    category = models.CharField(max_length=20, choices=Category.choices)
    default_minutes = models.PositiveSmallIntegerField(default=15)
    supervision_required_if_not_competent = models.BooleanField(
        default=True, help_text="Staff not yet signed off as competent need a supervisor for this procedure."
    )
    required_equipment = models.ManyToManyField(Equipment, blank=True, related_name="procedure_types")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ProcedureOrder(models.Model):
    """A procedure ordered on a handoff."""

    class Status(models.TextChoices):
        ORDERED = "ordered", "Ordered"
        IN_PROGRESS = "in_progress", "In progress"
        PERFORMED = "performed", "Performed"
        AWAITING_COSIGN = "awaiting_cosign", "Awaiting co-sign"
        COMPLETED = "completed", "Completed"
        NOT_DONE = "not_done", "Not done"

    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="procedure_orders")
    procedure_type = models.ForeignKey(ProcedureType, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ORDERED, editable=False)
    instructions = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["handoff", "id"]
        constraints = [
            models.UniqueConstraint(fields=["handoff", "procedure_type"], name="procedureorder_once_per_handoff"),
        ]
        indexes = [
            models.Index(
                fields=["handoff"],
                name="procedureorder_open_idx",
                condition=~Q(status__in=["completed", "not_done"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.procedure_type.name} — {self.get_status_display()}"

    @property
    def is_open(self) -> bool:
        return self.status not in (self.Status.COMPLETED, self.Status.NOT_DONE)
