"""Give every procedure ordered before opaque ids existed its own UUID (see the next migration)."""

import uuid

from django.db import migrations


def forwards(apps, schema_editor):
    ProcedureOrder = apps.get_model("procedures", "ProcedureOrder")
    for pk in ProcedureOrder.objects.filter(uuid__isnull=True).values_list("pk", flat=True).iterator():
        ProcedureOrder.objects.filter(pk=pk).update(uuid=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("procedures", "0003_workflow_documentation_competency")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
