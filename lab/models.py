"""Test catalog and the lab tests ordered on a handoff."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Handoff


class TestDefinition(models.Model):
    """A lab test from the catalog: run in-house at the bench, or sent out to a reference lab."""

    class Performed(models.TextChoices):
        IN_HOUSE = "in_house", "In-house"
        SEND_OUT = "send_out", "Send-out"

    class SpecimenType(models.TextChoices):
        CAPILLARY_BLOOD = "capillary_blood", "Capillary blood (fingerstick)"
        VENOUS_WHOLE_BLOOD = "venous_whole_blood", "Venous whole blood (EDTA)"
        SERUM = "serum", "Serum (SST)"
        PLASMA_CITRATE = "plasma_citrate", "Citrated plasma"
        URINE = "urine", "Urine"
        THROAT_SWAB = "throat_swab", "Throat swab"
        NASOPHARYNGEAL_SWAB = "np_swab", "Nasopharyngeal swab"
        NASAL_SWAB = "nasal_swab", "Anterior nasal swab"

    loinc_code = models.CharField("LOINC code", max_length=12, unique=True)
    name = models.CharField(max_length=120, unique=True)
    short_name = models.CharField(max_length=30)
    performed = models.CharField(max_length=10, choices=Performed.choices)
    specimen_type = models.CharField(max_length=30, choices=SpecimenType.choices)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} (LOINC {self.loinc_code})"


class TestOrder(models.Model):
    """A lab test ordered on a handoff."""

    class Status(models.TextChoices):
        ORDERED = "ordered", "Ordered"
        COLLECTED = "collected", "Collected"
        IN_PROGRESS = "in_progress", "In progress"
        SENT_OUT = "sent_out", "Sent out"
        RESULTED = "resulted", "Resulted"
        CANCELLED = "cancelled", "Cancelled"

    handoff = models.ForeignKey(Handoff, on_delete=models.PROTECT, related_name="test_orders")
    test = models.ForeignKey(TestDefinition, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ORDERED, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["handoff", "id"]
        constraints = [models.UniqueConstraint(fields=["handoff", "test"], name="testorder_once_per_handoff")]
        indexes = [
            models.Index(
                fields=["handoff"], name="testorder_open_idx", condition=~Q(status__in=["resulted", "cancelled"])
            )
        ]

    def __str__(self) -> str:
        return f"{self.test.short_name} — {self.get_status_display()}"
