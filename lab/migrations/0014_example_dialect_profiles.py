"""The three example dialect profiles (lab.hl7.profiles.BUILTIN_PROFILES as shipped, frozen here).

An admin adds others without code; these are examples to copy, not defaults anyone must keep.
"""

from django.db import migrations

PROFILES = [
    {
        "name": "National reference lab, HL7 2.5.1 LRI",
        "description": "A national reference lab following the HL7 2.5.1 Laboratory Results Interface (LRI): our MRN echoed in PID-3 typed MR with our assigning authority, the placer order number in ORC-2/OBR-2, our accession as the placer group number ORC-4, else as the placer specimen id in SPM-2.",
        "definition": {
            "mrn": [{"field": "PID-3", "type": "MR", "authority": "CLINIC"}],
            "placer": ["ORC-2", "OBR-2"],
            "accession": ["ORC-4", "SPM-2"],
            "filler": ["ORC-3", "OBR-3"],
        },
    },
    {
        "name": "Legacy HL7 2.3 interface",
        "description": "An older 2.3 interface without ORC: the placer order number in OBR-2 and our accession in OBR-18 (placer field 1), the lab's number in OBR-3; our MRN in PID-2 (external id), else in the first repetition of PID-3.",
        "definition": {
            "mrn": [{"field": "PID-2"}, {"field": "PID-3"}],
            "placer": ["OBR-2"],
            "accession": ["OBR-18"],
            "filler": ["OBR-3"],
        },
    },
    {
        "name": "Hospital outreach LIS, HL7 2.3.1",
        "description": "A hospital lab's outreach LIS on 2.3.1: PID-3 carries the hospital's own MRN typed MR with the hospital's authority, so ours is read from PID-4 (alternate patient id), else from the PID-3 repetition typed PI with our authority. Placer in ORC-2/OBR-2, our accession in OBR-18.",
        "definition": {
            "mrn": [{"field": "PID-4"}, {"field": "PID-3", "type": "PI", "authority": "CLINIC"}],
            "placer": ["ORC-2", "OBR-2"],
            "accession": ["OBR-18"],
            "filler": ["ORC-3", "OBR-3"],
        },
    },
]


def add_profiles(apps, schema_editor):  # type: ignore[no-untyped-def]
    DialectProfile = apps.get_model("lab", "DialectProfile")
    for row in PROFILES:
        DialectProfile.objects.get_or_create(
            name=row["name"], defaults={"description": row["description"], "definition": row["definition"]}
        )


class Migration(migrations.Migration):
    dependencies = [("lab", "0013_placer_number_sequence")]

    operations = [migrations.RunPython(add_profiles, migrations.RunPython.noop)]
