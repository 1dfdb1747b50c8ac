"""Create the role groups and the equipment catalog.

Permissions for each role are kept in step by backoffice.roles.sync_roles after every migrate.
"""

from django.db import migrations

ROLES = ["Medical assistant", "Supervisor", "Clinician", "Lab technician", "Admin"]

EQUIPMENT = [
    ("exam-table", "Exam table"),
    ("phlebotomy-chair", "Phlebotomy chair"),
    ("ecg", "12-lead ECG machine"),
    ("ultrasound", "Point-of-care ultrasound"),
    ("nebulizer", "Nebulizer"),
    ("spirometer", "Spirometer"),
    ("ear-irrigation", "Ear irrigation kit"),
    ("suture-kit", "Suture and laceration tray"),
    ("vaccine-fridge", "Vaccine refrigerator"),
    ("pulse-oximeter", "Pulse oximeter"),
    ("catheter-kit", "Urinary catheter kit"),
    ("vision-chart", "Vision chart"),
]


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Equipment = apps.get_model("backoffice", "Equipment")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
    for code, name in EQUIPMENT:
        Equipment.objects.update_or_create(code=code, defaults={"name": name})


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
