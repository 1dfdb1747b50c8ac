"""Seed the procedure catalog with common back-office procedures and their CPT/HCPCS codes."""

from django.db import migrations

# (code, name, category, minutes, supervised if not competent, equipment codes)
PROCEDURES = [
    ("69209", "Cerumen removal by irrigation", "treatment", 15, True, ["ear-irrigation"]),
    ("36415", "Venipuncture", "specimen", 10, True, ["phlebotomy-chair"]),
    ("96372", "Therapeutic injection, IM or SC", "injection", 10, True, []),
    ("90471", "Immunization administration, first vaccine", "injection", 10, True, ["vaccine-fridge"]),
    ("99211", "Nurse visit: wound check and dressing change", "wound", 15, False, ["exam-table"]),
    ("12001", "Simple laceration repair (sutures), up to 2.5 cm", "wound", 30, True, ["suture-kit", "exam-table"]),
    ("S0630", "Suture removal", "wound", 10, False, ["exam-table"]),
    ("93000", "Electrocardiogram, 12-lead, with interpretation", "diagnostic", 15, True, ["ecg", "exam-table"]),
    (
        "10005",
        "Fine needle aspiration, ultrasound-guided, first lesion",
        "diagnostic",
        30,
        True,
        ["ultrasound", "exam-table"],
    ),
    ("94640", "Nebulizer treatment", "treatment", 20, True, ["nebulizer"]),
    ("94760", "Vital signs with pulse oximetry", "assessment", 5, False, ["pulse-oximeter"]),
    ("51702", "Urinary catheter insertion, indwelling, simple", "treatment", 20, True, ["catheter-kit", "exam-table"]),
    ("94010", "Spirometry", "diagnostic", 20, True, ["spirometer"]),
    ("86580", "Tuberculin skin test placement", "injection", 5, True, []),
    ("99173", "Visual acuity screening", "assessment", 5, False, ["vision-chart"]),
]


def forwards(apps, schema_editor):
    ProcedureType = apps.get_model("procedures", "ProcedureType")
    Equipment = apps.get_model("backoffice", "Equipment")
    for code, name, category, minutes, supervised, equipment in PROCEDURES:
        procedure, _ = ProcedureType.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "category": category,
                "default_minutes": minutes,
                "supervision_required_if_not_competent": supervised,
            },
        )
        procedure.required_equipment.set(Equipment.objects.filter(code__in=equipment))


class Migration(migrations.Migration):
    dependencies = [("procedures", "0001_initial"), ("backoffice", "0002_roles_and_equipment")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
