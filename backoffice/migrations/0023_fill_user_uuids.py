"""Give every staff row made before opaque ids existed its own UUID (see the next migration)."""

import uuid

from django.db import migrations


def forwards(apps, schema_editor):
    User = apps.get_model("backoffice", "User")
    for pk in User.objects.filter(uuid__isnull=True).values_list("pk", flat=True).iterator():
        User.objects.filter(pk=pk).update(uuid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0022_user_uuid")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
