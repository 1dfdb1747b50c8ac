"""Seed the specimen catalog (SNOMED CT types, containers in CLSI order of draw, HL7 0490 rejection
reasons and the clinic's own) and create the accession number sequence."""

from decimal import Decimal

from django.db import migrations

# (code, name, SNOMED CT, collection method)
TYPES = [
    ("venous_blood", "Venous blood", "122555007", "venipuncture"),
    ("serum", "Serum", "119364003", "venipuncture"),
    ("plasma", "Plasma", "119361006", "venipuncture"),
    ("capillary_blood", "Capillary blood", "122554006", "fingerstick"),
    ("urine", "Urine", "122575003", "clean_catch"),
    ("throat_swab", "Throat swab", "258529004", "swab"),
    ("np_swab", "Nasopharyngeal swab", "258500001", "swab"),
    ("nasal_swab", "Anterior nares swab", "697989009", "swab"),
]

# (code, name, kind, cap colour, additive, CLSI draw order, volume mL, minimum mL, handling, stability h)
CONTAINERS = [
    (
        "blood-culture",
        "Blood culture bottles",
        "tube",
        "Yellow/green bottles",
        "Culture broth",
        1,
        "10.0",
        "8.0",
        "room",
        24,
    ),
    (
        "citrate-light-blue",
        "Light-blue-top citrate",
        "tube",
        "Light blue",
        "3.2% sodium citrate",
        2,
        "2.7",
        "2.4",
        "room",
        24,
    ),
    ("sst-gold", "Gold-top SST", "tube", "Gold", "Clot activator and gel", 3, "5.0", "2.0", "refrigerated", 72),
    ("heparin-green", "Green-top lithium heparin", "tube", "Green", "Lithium heparin", 4, "4.0", "2.0", "room", 8),
    ("edta-lavender", "Lavender-top EDTA", "tube", "Lavender", "K2EDTA", 5, "4.0", "1.0", "room", 24),
    (
        "fluoride-grey",
        "Grey-top fluoride",
        "tube",
        "Grey",
        "Sodium fluoride / potassium oxalate",
        6,
        "4.0",
        "2.0",
        "room",
        24,
    ),
    ("capillary-poc", "Fingerstick (point of care)", "capillary", "", "", 100, "0.1", "0.0", "room", 1),
    ("sterile-cup", "Sterile urine cup", "cup", "", "", 100, "30.0", "10.0", "refrigerated", 24),
    (
        "swab-transport",
        "Swab in transport medium",
        "swab",
        "",
        "Liquid transport medium",
        100,
        "1.0",
        "0.0",
        "room",
        48,
    ),
]

HL7_0490 = [
    ("EX", "Expired"),
    ("QS", "Quantity not sufficient"),
    ("RA", "Missing patient ID number"),
    ("RB", "Broken container"),
    ("RC", "Clotting"),
    ("RD", "Missing collection date"),
    ("RE", "Missing patient name"),
    ("RH", "Hemolysis"),
    ("RI", "Identification problem"),
    ("RM", "Labeling"),
    ("RN", "Contamination"),
    ("RP", "Missing phlebotomist ID"),
    ("RR", "Improper storage"),
    ("RS", "Name misspelling"),
]
LOCAL = [("LOC-WC", "Wrong container"), ("LOC-LIP", "Lipemic"), ("LOC-LEAK", "Leaked in transit")]


def forwards(apps, schema_editor):
    SpecimenType = apps.get_model("specimens", "SpecimenType")
    Container = apps.get_model("specimens", "Container")
    RejectionReason = apps.get_model("specimens", "RejectionReason")
    for code, name, snomed, method in TYPES:
        SpecimenType.objects.update_or_create(
            code=code, defaults={"name": name, "snomed_code": snomed, "collection_method": method}
        )
    for code, name, kind, cap, additive, order, volume, minimum, handling, hours in CONTAINERS:
        Container.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "kind": kind,
                "cap_colour": cap,
                "additive": additive,
                "draw_order": order,
                "volume_ml": Decimal(volume),
                "min_volume_ml": Decimal(minimum),
                "handling": handling,
                "stability_hours": hours,
            },
        )
    for code, name in HL7_0490:
        RejectionReason.objects.update_or_create(code=code, defaults={"name": name, "hl7_table_0490": True})
    for code, name in LOCAL:
        RejectionReason.objects.update_or_create(code=code, defaults={"name": name, "hl7_table_0490": False})


class Migration(migrations.Migration):
    dependencies = [("specimens", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS specimens_accession_seq START 1000 NO CYCLE",
            "DROP SEQUENCE IF EXISTS specimens_accession_seq",
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
