import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lab", "0020_fill_referencelab_uuids")]
    operations = [
        migrations.AlterField(
            model_name="referencelab",
            name="uuid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
