"""The test catalog: orderable tests, the analytes each reports, and their reference and critical ranges.

Kept in Django admin. Reference ranges and critical limits are seeded with common adult values;
each clinic's laboratory director reviews and sets its own before patient testing.
"""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from lab.workflow import CliaComplexity, ResultType
from specimens.models import Container, SpecimenType


class TestDefinition(models.Model):
    """A lab test from the catalog: run in-house at the bench, or sent out to a reference lab.

    It names the specimen it needs and the container that holds it; tests naming the same specimen
    type and container are drawn into one container together (CBC and HbA1c share an EDTA tube).
    A test reports one analyte (hemoglobin) or several, as a panel (the urine dipstick's ten).
    """

    class Performed(models.TextChoices):
        IN_HOUSE = "in_house", "In-house"
        SEND_OUT = "send_out", "Send-out"

    loinc_code = models.CharField("LOINC code", max_length=12, unique=True)
    name = models.CharField(max_length=120, unique=True)
    short_name = models.CharField(max_length=30)
    performed = models.CharField(max_length=10, choices=Performed.choices)
    specimen_type = models.ForeignKey(SpecimenType, on_delete=models.PROTECT, related_name="tests")
    container = models.ForeignKey(Container, on_delete=models.PROTECT, related_name="tests")
    clia_complexity = models.CharField(
        "CLIA complexity", max_length=10, choices=CliaComplexity.choices, default=CliaComplexity.WAIVED
    )
    method = models.CharField(max_length=120, blank=True, help_text="e.g. 'HemoCue Hb 201+ photometry'.")
    requires_verification = models.BooleanField(
        "second-person verification",
        default=True,
        help_text="Someone other than the performer verifies each result before release. On for "
        "moderate-complexity tests; a waived test may be released by its performer where clinic policy says so.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Moderate complexity: always a second person (clinic policy can't switch it off).
            models.CheckConstraint(
                condition=~Q(clia_complexity="moderate") | Q(requires_verification=True),
                name="testdefinition_moderate_is_verified",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (LOINC {self.loinc_code})"


class Analyte(models.Model):
    """One reported result of a test: the test itself, or one component of a panel, with its LOINC."""

    test = models.ForeignKey(TestDefinition, on_delete=models.CASCADE, related_name="analytes")
    position = models.PositiveSmallIntegerField(default=1, help_text="Order on the entry form and the report.")
    loinc_code = models.CharField("LOINC code", max_length=12, blank=True)
    # What a reference lab reports without a LOINC is known by its own code (lab.sendouts.filing).
    lab_code = models.CharField(
        "the lab's code",
        max_length=40,
        blank=True,
        help_text="Only for an analyte a reference lab reports without a LOINC.",
    )
    name = models.CharField(max_length=120)
    short_name = models.CharField(max_length=30)
    result_type = models.CharField(max_length=10, choices=ResultType.choices)
    unit = models.CharField("unit (UCUM)", max_length=20, blank=True, help_text="UCUM, e.g. g/dL, mg/dL, %, {INR}.")
    decimals = models.PositiveSmallIntegerField(default=0, help_text="Numeric results are reported to this many.")
    # Ordinal/coded results: the scale in order, and which of its values are normal.
    choices = models.JSONField(
        default=list, blank=True, help_text='Ordinal or coded values in order, e.g. ["Negative", "Trace", "1+"].'
    )
    normal_choices = models.JSONField(
        default=list, blank=True, help_text='The values that are normal, e.g. ["Negative"]; any other is flagged A.'
    )
    # What the method can report: a value below or above is reported as "<low" or ">high".
    reportable_low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    reportable_high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)

    class Meta:
        ordering = ["test", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["test", "loinc_code"], condition=~Q(loinc_code=""), name="analyte_once_per_test"
            ),
            models.UniqueConstraint(
                fields=["test", "lab_code"], condition=Q(loinc_code=""), name="analyte_uncoded_once_per_test"
            ),
            # An analyte is known by its LOINC, or (reported by a lab without one) by the lab's own code.
            models.CheckConstraint(condition=~Q(loinc_code="") | ~Q(lab_code=""), name="analyte_has_a_code"),
            models.CheckConstraint(
                condition=Q(reportable_low__isnull=True)
                | Q(reportable_high__isnull=True)
                | Q(reportable_low__lt=models.F("reportable_high")),
                name="analyte_reportable_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (LOINC {self.loinc_code})"

    def clean(self) -> None:
        if self.result_type == ResultType.ORDINAL:
            if not self.choices:
                raise ValidationError({"choices": "An ordinal or coded result needs its values."})
            stray = [c for c in self.normal_choices if c not in self.choices]
            if stray:
                stray_error = ValidationError("Not among the values: %(stray)s.", params={"stray": ", ".join(stray)})
                raise ValidationError({"normal_choices": stray_error})

    @property
    def quantum(self) -> Decimal:
        """The step a numeric value is rounded to, e.g. 0.1 for one decimal."""
        return Decimal(1).scaleb(-self.decimals)


class ReferenceRange(models.Model):
    """A numeric analyte's normal range and critical limits, for one sex and age band (age in days).

    A value below ``low`` is flagged L, above ``high`` H; at or beyond a critical limit LL or HH.
    Seeded with common adult values: each clinic's laboratory director sets its own.
    """

    class Sex(models.TextChoices):
        ANY = "", "Any"
        FEMALE = "F", "Female"
        MALE = "M", "Male"

    analyte = models.ForeignKey(Analyte, on_delete=models.CASCADE, related_name="ranges")
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True, default=Sex.ANY)
    age_min_days = models.PositiveIntegerField("from age (days)", default=0, help_text="Inclusive.")
    age_max_days = models.PositiveIntegerField(
        "to age (days)", null=True, blank=True, help_text="Exclusive; empty for no upper age."
    )
    low = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    high = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    critical_low = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="At or below: LL, a critical call."
    )
    critical_high = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="At or above: HH, a critical call."
    )

    class Meta:
        ordering = ["analyte", "sex", "age_min_days"]
        constraints = [
            models.CheckConstraint(
                condition=Q(age_max_days__isnull=True) | Q(age_min_days__lt=models.F("age_max_days")),
                name="referencerange_age_band_ordered",
            ),
            models.CheckConstraint(
                condition=Q(low__isnull=True) | Q(high__isnull=True) | Q(low__lte=models.F("high")),
                name="referencerange_low_below_high",
            ),
            models.CheckConstraint(
                condition=Q(critical_low__isnull=True) | Q(low__isnull=True) | Q(critical_low__lt=models.F("low")),
                name="referencerange_critical_low_below_low",
            ),
            models.CheckConstraint(
                condition=Q(critical_high__isnull=True) | Q(high__isnull=True) | Q(critical_high__gt=models.F("high")),
                name="referencerange_critical_high_above_high",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.analyte.short_name} {self.get_sex_display()} {self.age_label}: {self.label}"

    @property
    def age_label(self) -> str:
        def years(days: int) -> str:
            return f"{days // 365} y" if days % 365 == 0 and days else f"{days} d"

        upper = f"to {years(self.age_max_days)}" if self.age_max_days is not None else "and older"
        return f"{years(self.age_min_days)} {upper}" if self.age_min_days else f"birth {upper}"

    @property
    def label(self) -> str:
        """The range as a report prints it: "13.2-16.6" (with an en dash), "≤ 5.6", "≥ 40"."""
        unit = f" {self.analyte.unit}" if self.analyte.unit else ""
        q = self.analyte.quantum

        def fmt(v: Decimal) -> str:
            return f"{v.quantize(q):f}"

        if self.low is not None and self.high is not None:
            return f"{fmt(self.low)}\u2013{fmt(self.high)}{unit}"
        if self.high is not None:
            return f"≤ {fmt(self.high)}{unit}"
        if self.low is not None:
            return f"≥ {fmt(self.low)}{unit}"
        return ""
