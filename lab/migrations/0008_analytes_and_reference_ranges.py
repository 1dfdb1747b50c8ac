"""Seed the in-house tests' analytes (LOINC, UCUM, scales), reportable ranges, and adult reference ranges.

Common adult values, as a starting point only: each clinic's laboratory director reviews and sets
its own ranges and critical limits in Django admin before patient testing.
"""

from decimal import Decimal as D

from django.db import migrations

ADULT = 18 * 365  # days
NEG_POS = ["Negative", "Positive"]

# test LOINC → (method, releases without a second person?)
TESTS = {
    "41653-7": ("Glucometer, glucose oxidase test strip", True),
    "718-7": ("HemoCue Hb 201+ photometry", False),
    "4548-4": ("Point-of-care immunoassay analyzer", False),
    "24357-6": ("Urine reagent strip, read visually", False),
    "2106-3": ("Urine hCG lateral-flow cassette", False),
    "78012-2": ("Rapid strep A lateral-flow immunoassay", False),
    "34714-6": ("Point-of-care PT/INR meter, fingerstick", False),
    "94558-4": ("SARS-CoV-2 antigen lateral-flow immunoassay", False),
    "80382-5": ("Influenza A/B antigen lateral-flow immunoassay", False),
    "80383-3": ("Influenza A/B antigen lateral-flow immunoassay", False),
}

# test LOINC → analytes: (LOINC, name, short, type, unit, decimals, choices, normal, reportable low, high)
ANALYTES = {
    "41653-7": [("41653-7", "Glucose", "Glucose", "numeric", "mg/dL", 0, [], [], D(20), D(600))],
    "718-7": [("718-7", "Hemoglobin", "Hgb", "numeric", "g/dL", 1, [], [], D(0), D("25.6"))],
    "4548-4": [("4548-4", "Hemoglobin A1c", "HbA1c", "numeric", "%", 1, [], [], D(4), D(14))],
    "34714-6": [("34714-6", "INR", "INR", "numeric", "{INR}", 1, [], [], D("0.8"), D(8))],
    "2106-3": [("2106-3", "hCG, urine", "hCG", "ordinal", "", 0, NEG_POS, ["Negative"], None, None)],
    "78012-2": [("78012-2", "Group A strep antigen", "Strep A", "ordinal", "", 0, NEG_POS, ["Negative"], None, None)],
    "94558-4": [("94558-4", "SARS-CoV-2 antigen", "COVID Ag", "ordinal", "", 0, NEG_POS, ["Negative"], None, None)],
    "80382-5": [("80382-5", "Influenza A antigen", "Flu A", "ordinal", "", 0, NEG_POS, ["Negative"], None, None)],
    "80383-3": [("80383-3", "Influenza B antigen", "Flu B", "ordinal", "", 0, NEG_POS, ["Negative"], None, None)],
    "24357-6": [
        (
            "25428-4",
            "Glucose, urine strip",
            "GLU",
            "ordinal",
            "",
            0,
            ["Negative", "Trace", "1+", "2+", "3+", "4+"],
            ["Negative"],
            None,
            None,
        ),
        (
            "5770-3",
            "Bilirubin, urine strip",
            "BIL",
            "ordinal",
            "",
            0,
            ["Negative", "1+", "2+", "3+"],
            ["Negative"],
            None,
            None,
        ),
        (
            "2514-8",
            "Ketones, urine strip",
            "KET",
            "ordinal",
            "",
            0,
            ["Negative", "Trace", "Small", "Moderate", "Large"],
            ["Negative"],
            None,
            None,
        ),
        ("5811-5", "Specific gravity, urine strip", "SG", "numeric", "", 3, [], [], D("1.000"), D("1.030")),
        (
            "5794-3",
            "Blood (hemoglobin), urine strip",
            "BLD",
            "ordinal",
            "",
            0,
            ["Negative", "Trace", "1+", "2+", "3+"],
            ["Negative"],
            None,
            None,
        ),
        ("5803-2", "pH, urine strip", "pH", "numeric", "[pH]", 1, [], [], D("5.0"), D("9.0")),
        (
            "20454-5",
            "Protein, urine strip",
            "PRO",
            "ordinal",
            "",
            0,
            ["Negative", "Trace", "1+", "2+", "3+", "4+"],
            ["Negative"],
            None,
            None,
        ),
        (
            "20405-7",
            "Urobilinogen, urine strip",
            "URO",
            "ordinal",
            "mg/dL",
            0,
            ["0.2", "1", "2", "4", "8"],
            ["0.2", "1"],
            None,
            None,
        ),
        ("5802-4", "Nitrite, urine strip", "NIT", "ordinal", "", 0, NEG_POS, ["Negative"], None, None),
        (
            "5799-2",
            "Leukocytes, urine strip",
            "LEU",
            "ordinal",
            "",
            0,
            ["Negative", "Trace", "1+", "2+", "3+"],
            ["Negative"],
            None,
            None,
        ),
    ],
}

# analyte LOINC → ranges: (sex, from days, to days, low, high, critical low, critical high)
RANGES = {
    # Fasting 70-99 mg/dL; critical below 40 or above 450 (whole mg/dL: at or beyond 39 and 451).
    "41653-7": [("", ADULT, None, D(70), D(99), D(39), D(451))],
    "718-7": [
        ("M", ADULT, None, D("13.2"), D("16.6"), D("7.0"), D("20.0")),
        ("F", ADULT, None, D("11.6"), D("15.0"), D("7.0"), D("20.0")),
    ],
    "4548-4": [("", ADULT, None, None, D("5.6"), None, None)],  # < 5.7 %
    "34714-6": [("", ADULT, None, D("0.8"), D("1.1"), None, D("5.0"))],  # INR ≥ 5.0 critical
    "5811-5": [("", ADULT, None, D("1.005"), D("1.030"), None, None)],
    "5803-2": [("", ADULT, None, D("5.0"), D("8.0"), None, None)],
}


def seed(apps, schema_editor):
    TestDefinition = apps.get_model("lab", "TestDefinition")
    Analyte = apps.get_model("lab", "Analyte")
    ReferenceRange = apps.get_model("lab", "ReferenceRange")
    tests = {t.loinc_code: t for t in TestDefinition.objects.filter(loinc_code__in=list(TESTS))}
    for code, (method, self_release) in TESTS.items():
        test = tests.get(code)
        if test is None:
            continue
        test.method, test.clia_complexity, test.requires_verification = method, "waived", not self_release
        test.save(update_fields=["method", "clia_complexity", "requires_verification"])
        for position, row in enumerate(ANALYTES[code], start=1):
            loinc, name, short, kind, unit, decimals, choices, normal, rlow, rhigh = row
            analyte, _ = Analyte.objects.update_or_create(
                test=test,
                loinc_code=loinc,
                defaults={
                    "position": position,
                    "name": name,
                    "short_name": short,
                    "result_type": kind,
                    "unit": unit,
                    "decimals": decimals,
                    "choices": choices,
                    "normal_choices": normal,
                    "reportable_low": rlow,
                    "reportable_high": rhigh,
                },
            )
            for sex, age_min, age_max, low, high, clow, chigh in RANGES.get(loinc, []):
                ReferenceRange.objects.update_or_create(
                    analyte=analyte,
                    sex=sex,
                    age_min_days=age_min,
                    defaults={
                        "age_max_days": age_max,
                        "low": low,
                        "high": high,
                        "critical_low": clow,
                        "critical_high": chigh,
                    },
                )


class Migration(migrations.Migration):
    dependencies = [("lab", "0007_results_qc_and_critical_calls")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
