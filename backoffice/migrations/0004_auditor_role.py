"""Create the Auditor role group.

Its permission (backoffice.view_accesslog) is given by backoffice.roles.sync_roles after migrate,
once the permission rows exist.
"""

from django.db import migrations


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name="Auditor")


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0003_access_log_and_history")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
