"""Retention of the sign-in records: django-axes' failure and sign-in logs older than
SIGNIN_RECORD_RETENTION_DAYS are deleted (``manage.py prune_signin_records``).

The logs are append-only (backoffice.audit.models.SignIn, SignInFailure): the app's database role has
no DELETE on them and their trigger refuses it, so pruning runs as the owner role
(``DB_CONNECT_AS=owner``), which lifts the trigger for its own transaction only. They are not sealed
into the checkpoints (backoffice.audit.dbroles.PRUNED_TABLES).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import pgtrigger
from axes.models import AccessFailureLog, AccessLog
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

BATCH = 10_000
TRIGGERS = ("audit.SignIn:append_only", "audit.SignInFailure:append_only")


class NotOwner(Exception):
    """This connection may not delete sign-in records (it is the app's role)."""


@dataclass(frozen=True)
class Pruned:
    before: datetime
    failures: int
    sign_ins: int


def _deletable() -> list[str]:
    tables = [AccessFailureLog._meta.db_table, AccessLog._meta.db_table]
    with connection.cursor() as cursor:
        cursor.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE NOT has_table_privilege(t, 'DELETE')", [tables])
        return [row[0] for row in cursor.fetchall()]


def _delete_older(model: type[AccessFailureLog] | type[AccessLog], before: datetime) -> int:
    total = 0
    while True:
        ids = list(model.objects.filter(attempt_time__lt=before).order_by("id").values_list("id", flat=True)[:BATCH])
        if not ids:
            return total
        with transaction.atomic(), pgtrigger.ignore(*TRIGGERS):
            count, _ = model.objects.filter(id__in=ids).delete()
        total += count


def prune(*, days: int | None = None, now: datetime | None = None) -> Pruned:
    """Delete the failure and sign-in rows older than ``days`` (SIGNIN_RECORD_RETENTION_DAYS)."""
    days = int(settings.SIGNIN_RECORD_RETENTION_DAYS if days is None else days)
    refused = _deletable()
    if refused:
        how = "run this as the owner role (DB_CONNECT_AS=owner manage.py prune_signin_records)."
        raise NotOwner(f"This database role holds no DELETE privilege on {', '.join(refused)}: {how}")
    before = (now or timezone.now()) - timedelta(days=days)
    return Pruned(
        before=before, failures=_delete_older(AccessFailureLog, before), sign_ins=_delete_older(AccessLog, before)
    )
