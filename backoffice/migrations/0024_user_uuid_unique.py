import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0023_fill_user_uuids")]
    operations = [
        migrations.AlterField(
            model_name="user",
            name="uuid",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
