"""Every event model extends backoffice.transitions.TransitionEvent.

Station events take the shared field names (from_status/to_status, like handoff and procedure
events) and an action; notes may be as long everywhere (500). Existing station events get the
action their move implies.
"""

import pgtrigger
from django.db import migrations, models

# The move each station event recorded: where it went says what happened.
ACTION_BY_TARGET = {"occupied": "occupied", "needs_turnover": "vacated", "ready": "turned_over"}


def name_station_actions(apps, schema_editor):  # type: ignore[no-untyped-def]
    StationEvent = apps.get_model("backoffice", "StationEvent")
    # The rows are append-only for the application; a schema change fills the new column once.
    with pgtrigger.ignore("backoffice.StationEvent:append_only"):
        for target, action in ACTION_BY_TARGET.items():
            StationEvent.objects.filter(to_status=target).update(action=action)


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0006_role_policy")]

    operations = [
        migrations.RenameField("stationevent", "from_state", "from_status"),
        migrations.RenameField("stationevent", "to_state", "to_status"),
        migrations.AlterField(
            model_name="stationevent",
            name="from_status",
            field=models.CharField(
                blank=True,
                choices=[("ready", "Ready"), ("occupied", "Occupied"), ("needs_turnover", "Needs turnover")],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="stationevent",
            name="to_status",
            field=models.CharField(
                blank=True,
                choices=[("ready", "Ready"), ("occupied", "Occupied"), ("needs_turnover", "Needs turnover")],
                max_length=20,
            ),
        ),
        migrations.AddField(
            model_name="stationevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("occupied", "Patient arrived"),
                    ("vacated", "Patient left"),
                    ("turned_over", "Cleaned and restocked"),
                ],
                default="",
                max_length=30,
            ),
            preserve_default=False,
        ),
        migrations.RunPython(name_station_actions, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="stationevent", name="note", field=models.CharField(blank=True, max_length=500)
        ),
        migrations.AlterField(
            model_name="handoffevent", name="note", field=models.CharField(blank=True, max_length=500)
        ),
        migrations.AlterField(
            model_name="handoffevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("claimed", "Claimed"),
                    ("released", "Released to the queue"),
                    ("station_assigned", "Station assigned"),
                    ("identity_verified", "Identity verified"),
                    ("identity_mismatch", "Identity check failed"),
                    ("started", "Work started"),
                    ("completed", "Completed"),
                    ("cancelled", "Cancelled"),
                    ("flagged_overdue", "Flagged overdue"),
                    ("items_ordered", "Items ordered"),
                ],
                max_length=30,
            ),
        ),
    ]
