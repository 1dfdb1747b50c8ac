"""The send-out desk: order messages' folder and withdrawn states, the events of shipping and sending,
the overdue check's index, and the MSH-10 sequence for the ORM^O01 messages we send."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("lab", "0014_example_dialect_profiles"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE SEQUENCE IF NOT EXISTS lab_hl7_control_id_seq START 1",
            "DROP SEQUENCE IF EXISTS lab_hl7_control_id_seq",
        ),
        migrations.AlterField(
            model_name="outboundmessage",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Queued"),
                    ("retrying", "Failed, retrying"),
                    ("accepted", "Acknowledged (AA)"),
                    ("delivered", "Written to the lab's folder"),
                    ("rejected", "Refused by the lab (AE/AR)"),
                    ("gave_up", "Failed, no more retries"),
                    ("withdrawn", "Not sent: the order was cancelled first"),
                ],
                default="pending",
                max_length=10,
            ),
        ),
        migrations.AlterField(
            model_name="sendoutevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("created", "Placer number given"),
                    ("answered", "Questions answered"),
                    ("packed", "Packed"),
                    ("unpacked", "Taken out of the shipment"),
                    ("sent", "Sent"),
                    ("requisition", "Requisition printed"),
                    ("preliminary", "Preliminary results"),
                    ("final", "Final results"),
                    ("corrected", "Corrected results"),
                    ("overdue", "Overdue"),
                    ("cancelled", "Cancelled"),
                    ("acknowledged", "Order acknowledged by the lab"),
                    ("delivered", "Order written to the lab's folder"),
                    ("refused", "Order refused by the lab"),
                    ("gave_up", "Order message failed, no more retries"),
                    ("retried", "Order message sent again by hand"),
                ],
                max_length=30,
            ),
        ),
        migrations.AlterField(
            model_name="testorderevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("ordered", "Ordered"),
                    ("labelled", "Specimen labelled"),
                    ("collected", "Specimen collected"),
                    ("in_progress", "Testing started"),
                    ("sent_out", "Sent to the reference lab"),
                    ("resulted", "Resulted"),
                    ("recollect", "To be collected again"),
                    ("cancelled", "Cancelled"),
                    ("acknowledged", "Cancellation seen by the clinician"),
                ],
                max_length=30,
            ),
        ),
        migrations.AddIndex(
            model_name="sendout",
            index=models.Index(
                condition=models.Q(("overdue_since__isnull", True), ("status__in", ["sent", "preliminary"])),
                fields=["expected_by"],
                name="sendout_awaiting_results_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="sendout",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "packed"), _negated=True), ("shipment__isnull", False), _connector="OR"
                ),
                name="sendout_packed_in_a_shipment",
            ),
        ),
        migrations.AddConstraint(
            model_name="sendout",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status__in", ["sent", "preliminary", "final"]), _negated=True),
                    models.Q(("expected_by__isnull", False), ("sent_at__isnull", False)),
                    _connector="OR",
                ),
                name="sendout_sent_is_tracked",
            ),
        ),
    ]
