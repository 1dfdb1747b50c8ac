"""The append-only tables' checkpoints: tamper evidence for the access log, events and history."""

from django.db import models

from backoffice.transitions import APPEND_ONLY


class Checkpoint(models.Model):
    """A seal over the append-only tables' rows since the previous checkpoint, chained by SHA-256.

    Written by the worker every minute (backoffice.audit.seal); ``payload`` says, per table, which ids
    it covers, a short hash of each row and the SHA-256 of them all; ``hash`` is
    SHA-256(``prev_hash`` + the payload as canonical JSON), so changing, removing or adding a
    checkpoint breaks the chain. ``manage.py audit_verify`` recomputes everything.
    """

    at = models.DateTimeField()
    payload = models.JSONField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"checkpoint {self.pk} at {self.at:%Y-%m-%d %H:%M:%S} {self.hash[:12]}"
