"""An opaque id for each staff row (the FHIR API's id), added empty first: see the next two migrations.

A default of uuid4 here would give every existing row the same value, which the unique constraint of
the third step would refuse; so the column is added nullable, filled row by row, then made unique.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0021_drug_vocabulary_and_allergy_records")]
    operations = [
        migrations.AddField(model_name="user", name="uuid", field=models.UUIDField(editable=False, null=True)),
    ]
