"""Station events point at the patient who arrived or left, instead of naming them in the note.

Arrivals and departures were written with the patient's MRN in free text ("Patient M500035",
"Patient M500035 left"), so an admin list of them showed patients without knowing whose data it
showed. New ones carry the patient as a key and no MRN. The old rows get the key filled where their
note names the MRN of a patient on file; their notes stay as written, since the rows are append-only
and sealed (backoffice.audit.seal hashes the columns a row was sealed with, which the new column is
not one of, so the fill leaves every sealed row verifying as before).
"""

import django.db.models.deletion
import pgtrigger
from django.db import migrations, models

# What backoffice.services wrote before: "Patient <MRN>" on arrival, "Patient <MRN> left" on departure.
BACKFILL = r"""
UPDATE backoffice_stationevent AS event
SET patient_id = patient.id
FROM backoffice_patient AS patient
WHERE event.patient_id IS NULL
  AND event.action IN ('occupied', 'vacated')
  AND patient.mrn = substring(event.note FROM '^Patient (\S+)(?: left)?$')
"""


def fill_patients_from_notes(apps, schema_editor):  # type: ignore[no-untyped-def]
    # Append-only for the application; a schema change fills the new column once (as 0007 did).
    with pgtrigger.ignore("backoffice.StationEvent:append_only"), schema_editor.connection.cursor() as cursor:
        cursor.execute(BACKFILL)


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0013_break_glass")]

    operations = [
        migrations.AddField(
            model_name="stationevent",
            name="patient",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="backoffice.patient",
            ),
        ),
        migrations.RunPython(fill_patients_from_notes, migrations.RunPython.noop),
    ]
