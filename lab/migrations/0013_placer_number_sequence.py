"""The placer order number's sequence: one number per send-out, never reused, stored as text."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("lab", "0012_send_outs")]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS lab_placer_number_seq START 1000",
            "DROP SEQUENCE IF EXISTS lab_placer_number_seq",
        ),
    ]
