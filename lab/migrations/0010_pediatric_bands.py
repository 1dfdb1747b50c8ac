"""Ranges for patients under 18, so no child's critical value goes unflagged.

Glucose and INR carry the adult limits from one month of age; hemoglobin, whose normal range in
children changes with age, carries only its critical low (7.0 g/dL) until the lab director sets
age bands. Starting points only, like the adult values: each clinic's laboratory director sets its own.
"""

from decimal import Decimal as D

from django.db import migrations

ADULT = 18 * 365
MONTH = 30

# analyte LOINC → (from days, low, high, critical low, critical high), any sex, up to 18 years.
CHILD = {
    "41653-7": (MONTH, D(70), D(99), D(39), D(451)),
    "34714-6": (MONTH, D("0.8"), D("1.1"), None, D("5.0")),
    "718-7": (0, None, None, D("7.0"), None),
}


def seed(apps, schema_editor):
    Analyte = apps.get_model("lab", "Analyte")
    ReferenceRange = apps.get_model("lab", "ReferenceRange")
    for analyte in Analyte.objects.filter(loinc_code__in=list(CHILD), test__loinc_code__in=list(CHILD)):
        age_min, low, high, clow, chigh = CHILD[analyte.loinc_code]
        ReferenceRange.objects.update_or_create(
            analyte=analyte,
            sex="",
            age_min_days=age_min,
            defaults={"age_max_days": ADULT, "low": low, "high": high, "critical_low": clow, "critical_high": chigh},
        )


class Migration(migrations.Migration):
    dependencies = [("lab", "0009_testorderevent_resulted")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
