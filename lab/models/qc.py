"""Kits and their lots, the quality-control rule of each test, control lots, and QC runs.

A patient result is entered only on a kit lot whose required controls passed and are current
(lab.qc.lockout); every result records the lot it was run on.
"""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.transitions import APPEND_ONLY
from lab.models.catalog import Analyte, TestDefinition
from lab.workflow import ControlLevel, QCFrequency


class Kit(models.Model):
    """A test kit or cartridge/strip product, as its package insert names it."""

    manufacturer = models.CharField(max_length=80)
    name = models.CharField(max_length=120)
    tests = models.ManyToManyField(TestDefinition, related_name="kits")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["manufacturer", "name"]
        constraints = [models.UniqueConstraint(fields=["manufacturer", "name"], name="kit_unique_name")]

    def __str__(self) -> str:
        return f"{self.manufacturer} {self.name}"


class KitLot(models.Model):
    """One lot of a kit as one shipment received it: a new lot or a new shipment needs its QC first."""

    kit = models.ForeignKey(Kit, on_delete=models.PROTECT, related_name="lots")
    lot_number = models.CharField(max_length=40)
    expiry_date = models.DateField()
    received_on = models.DateField(default=timezone.localdate, help_text="The shipment this lot came in.")
    opened_on = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text="Untick when the lot is used up or withdrawn.")

    class Meta:
        ordering = ["kit", "expiry_date", "lot_number"]
        constraints = [
            models.UniqueConstraint(fields=["kit", "lot_number", "received_on"], name="kitlot_once_per_shipment"),
            models.CheckConstraint(
                condition=Q(opened_on__isnull=True) | Q(opened_on__gte=models.F("received_on")),
                name="kitlot_opened_after_received",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kit} lot {self.lot_number} (exp {self.expiry_date:%Y-%m-%d})"

    def is_expired(self, on: dt.date | None = None) -> bool:
        return self.expiry_date < (on or timezone.localdate())


class QCRule(models.Model):
    """When a test's controls are due: each new lot and shipment always, and on its schedule."""

    test = models.OneToOneField(TestDefinition, on_delete=models.CASCADE, related_name="qc_rule")
    frequency = models.CharField(max_length=10, choices=QCFrequency.choices, default=QCFrequency.DAILY)
    every_n_days = models.PositiveSmallIntegerField(default=1, help_text="For 'every N days'.")
    shift_hours = models.PositiveSmallIntegerField(default=8, help_text="For 'each shift': its length.")

    class Meta:
        ordering = ["test"]
        verbose_name = "QC rule"

    def __str__(self) -> str:
        return f"QC of {self.test.short_name}: {self.get_frequency_display()}"


class ControlLot(models.Model):
    """A lot of control material for one test: positive/negative, or level 1/level 2 with its target."""

    test = models.ForeignKey(TestDefinition, on_delete=models.PROTECT, related_name="control_lots")
    analyte = models.ForeignKey(Analyte, on_delete=models.PROTECT, related_name="control_lots")
    level = models.CharField(max_length=10, choices=ControlLevel.choices)
    lot_number = models.CharField(max_length=40)
    expiry_date = models.DateField()
    # Qualitative: the value it must give. Quantitative: the target mean and SD (pass within ±2 SD).
    expected_value = models.CharField(max_length=40, blank=True)
    target_mean = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    target_sd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["test", "level", "expiry_date"]
        constraints = [
            models.UniqueConstraint(fields=["test", "level", "lot_number"], name="controllot_unique"),
            models.CheckConstraint(
                condition=~Q(expected_value="") | (Q(target_mean__isnull=False) & Q(target_sd__gt=0)),
                name="controllot_has_a_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.test.short_name} {self.get_level_display()} lot {self.lot_number}"

    @property
    def is_quantitative(self) -> bool:
        return self.target_mean is not None


class QCRun(models.Model):
    """One control run on one kit lot: the value, pass or fail (computed), and who ran it. Append-only."""

    kit_lot = models.ForeignKey(KitLot, on_delete=models.PROTECT, related_name="qc_runs")
    control_lot = models.ForeignKey(ControlLot, on_delete=models.PROTECT, related_name="runs")
    performed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    performed_at = models.DateTimeField(default=timezone.now)
    value_numeric = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    value_text = models.CharField(max_length=40, blank=True)
    passed = models.BooleanField()
    # Westgard rules this run violates with the runs before it on the same control lot ("1-3s", "2-2s").
    westgard = models.CharField(max_length=40, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["performed_at", "id"]
        triggers = [APPEND_ONLY]
        indexes = [models.Index(fields=["kit_lot", "performed_at"], name="qcrun_lot_idx")]
        verbose_name = "QC run"
        permissions = [("run_qc", "Can run quality control")]

    def __str__(self) -> str:
        return f"{self.control_lot} on {self.kit_lot.lot_number}: {'pass' if self.passed else 'FAIL'}"
