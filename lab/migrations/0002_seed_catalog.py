"""Seed the test catalog: point-of-care tests run in-house and common send-outs, with LOINC codes."""

from django.db import migrations

# (LOINC, name, short name, in_house/send_out, specimen type)
TESTS = [
    ("41653-7", "Glucose, capillary blood by glucometer", "POC glucose", "in_house", "capillary_blood"),
    ("718-7", "Hemoglobin, blood", "Hemoglobin", "in_house", "capillary_blood"),
    ("4548-4", "Hemoglobin A1c", "HbA1c", "in_house", "capillary_blood"),
    ("24357-6", "Urinalysis, dipstick panel", "Urine dipstick", "in_house", "urine"),
    ("2106-3", "hCG (pregnancy test), urine", "Urine hCG", "in_house", "urine"),
    ("78012-2", "Streptococcus pyogenes (group A strep) antigen, rapid", "Rapid strep", "in_house", "throat_swab"),
    ("34714-6", "INR, blood by coagulation assay (PT/INR)", "PT/INR", "in_house", "capillary_blood"),
    ("94558-4", "SARS-CoV-2 antigen, rapid immunoassay", "COVID-19 Ag", "in_house", "nasal_swab"),
    ("80382-5", "Influenza A antigen, rapid immunoassay", "Flu A Ag", "in_house", "np_swab"),
    ("80383-3", "Influenza B antigen, rapid immunoassay", "Flu B Ag", "in_house", "np_swab"),
    ("58410-2", "Complete blood count (CBC) panel", "CBC", "send_out", "venous_whole_blood"),
    ("24323-8", "Comprehensive metabolic panel (CMP)", "CMP", "send_out", "serum"),
    ("24331-1", "Lipid panel", "Lipids", "send_out", "serum"),
    ("3016-3", "Thyroid stimulating hormone (TSH)", "TSH", "send_out", "serum"),
    ("630-4", "Urine culture", "Urine culture", "send_out", "urine"),
    ("2857-1", "Prostate specific antigen (PSA)", "PSA", "send_out", "serum"),
]


def forwards(apps, schema_editor):
    TestDefinition = apps.get_model("lab", "TestDefinition")
    for loinc, name, short, performed, specimen in TESTS:
        TestDefinition.objects.update_or_create(
            loinc_code=loinc,
            defaults={"name": name, "short_name": short, "performed": performed, "specimen_type": specimen},
        )


class Migration(migrations.Migration):
    dependencies = [("lab", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
