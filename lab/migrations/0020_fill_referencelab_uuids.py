"""Give every reference lab row made before opaque ids existed its own UUID (see the next migration)."""

import uuid

from django.db import migrations


def forwards(apps, schema_editor):
    ReferenceLab = apps.get_model("lab", "ReferenceLab")
    for pk in ReferenceLab.objects.filter(uuid__isnull=True).values_list("pk", flat=True).iterator():
        ReferenceLab.objects.filter(pk=pk).update(uuid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("lab", "0019_referencelab_uuid")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
