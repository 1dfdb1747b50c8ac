"""Retention of the access log and of the checkpoints: nothing younger than ACCESS_LOG_RETENTION_YEARS
(6 by default, never fewer) is ever removed (``manage.py audit_retention``, as the owner role).

What goes, in one run with a cut-off ``before`` (now less the years):

- the access rows written before it (``backoffice_accesslog``), with the patients they name
  (``backoffice_accesslogpatient``) and their break-glass marks (``backoffice_breakglassaccess``),
  deleted by id in batches, each batch its own transaction;
- the checkpoints written before it (``audit_checkpoint``).

Before anything is deleted, one **retention checkpoint** is appended to the chain (under the sealer's
lock): its payload carries the sealer's state on, as every checkpoint does, and under ``retention``
the cut-off, the ids of each table about to be deleted (as runs) and, when checkpoints are pruned, the
*anchor*: the last pruned checkpoint's id, hash and the ids it had sealed through. ``audit_verify``
starts the chain at the anchor, skips the ids a retention checkpoint lists and counts the rows older
than the kept checkpoints as past the chain, so a retention run is never read as tampering, and a
row deleted any other way still is. Writing the record first means a run stopped half-way leaves rows
that the record already lists: the next run deletes them.

The rows must be sealed already (they are years old; a row not yet sealed stops the run). The app's
database role holds no DELETE on these tables; the owner's run lifts the append-only triggers for its
own transactions only. Why not monthly partitions: the access log's patient rows and break-glass marks
point at it by foreign key, which a partitioned table's (id, at) key can't serve; the indexes the
pages read ((user, at), (at), (patient, at)) keep them fast at 20 million rows (``make bench
--access-rows``), and a month deleted in batches is a few minutes' work once a month.
"""

import calendar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pgtrigger
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from backoffice.audit.models import Checkpoint
from backoffice.audit.seal import GENESIS, SEAL_LOCK_KEY, _runs, chain_hash
from backoffice.models import AccessLog, AccessLogPatient, BreakGlassAccess

MINIMUM_YEARS = 6  # HIPAA's six years (45 CFR 164.316(b)(2)): no setting goes below it
BATCH = 5_000  # access rows per delete transaction, with their patient rows and break-glass marks
TRIGGERS = (
    "backoffice.AccessLog:append_only",
    "backoffice.AccessLogPatient:append_only",
    "backoffice.BreakGlassAccess:append_only",
    "audit.Checkpoint:append_only",
)


class RetentionRefused(Exception):
    """A run that would remove rows inside the retention window, or can't remove any (app role)."""


@dataclass
class Retained:
    before: datetime
    checkpoint: Checkpoint | None = None  # the retention checkpoint, None when nothing was due
    removed: dict[str, int] = field(default_factory=dict)  # rows per table
    checkpoints_pruned: int = 0


def years_back(now: datetime, years: int) -> datetime:
    """The same moment ``years`` calendar years earlier (29 February becomes the 28th)."""
    year = now.year - years
    day = min(now.day, calendar.monthrange(year, now.month)[1])
    return now.replace(year=year, day=day)


def cut_off(*, years: int | None = None, now: datetime | None = None) -> datetime:
    """The retention cut-off, refusing anything inside ACCESS_LOG_RETENTION_YEARS (or six years)."""
    configured = int(settings.ACCESS_LOG_RETENTION_YEARS)
    keep = configured if years is None else years
    if keep < max(configured, MINIMUM_YEARS):
        raise RetentionRefused(
            f"Refusing to remove access rows younger than {max(configured, MINIMUM_YEARS)} years "
            f"(ACCESS_LOG_RETENTION_YEARS is {configured}, never fewer than {MINIMUM_YEARS}); asked for {keep}."
        )
    return years_back(now or timezone.now(), keep)


def _tables() -> list[str]:
    return [m._meta.db_table for m in (AccessLog, AccessLogPatient, BreakGlassAccess, Checkpoint)]


def _not_deletable() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE NOT has_table_privilege(t, 'DELETE')", [_tables()])
        return [row[0] for row in cursor.fetchall()]


def _ids(sql: str, params: list[Any]) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [int(row[0]) for row in cursor.fetchall()]


def _due(before: datetime) -> dict[str, list[int]]:
    """The ids of each table written before the cut-off, in id order."""
    log, patients, marks = (m._meta.db_table for m in (AccessLog, AccessLogPatient, BreakGlassAccess))
    old = f"SELECT id FROM {log} WHERE at < %s"  # noqa: S608 - table names from the models
    return {
        log: _ids(old + " ORDER BY id", [before]),
        patients: _ids(f"SELECT id FROM {patients} WHERE log_id IN ({old}) ORDER BY id", [before]),  # noqa: S608
        marks: _ids(f"SELECT id FROM {marks} WHERE log_id IN ({old}) ORDER BY id", [before]),  # noqa: S608
    }


def _record(before: datetime, due: dict[str, list[int]], now: datetime) -> tuple[Checkpoint, int]:
    """Append the retention checkpoint and prune the checkpoints older than the cut-off, in one
    transaction under the sealer's lock; how many checkpoints were pruned."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEAL_LOCK_KEY])
        previous = Checkpoint.objects.order_by("-id").first()
        state: dict[str, Any] = previous.payload if previous else {}
        through = {k: int(v) for k, v in state.get("through", {}).items()}
        for table, ids in due.items():
            if ids and ids[-1] > through.get(table, 0):
                raise RetentionRefused(
                    f"{table} has rows from before {before:%Y-%m-%d} that no checkpoint has sealed yet "
                    f"(ids above {through.get(table, 0)}): let the worker seal them first (db_worker)."
                )
        retention: dict[str, Any] = {
            "before": before.isoformat(),
            "removed": {table: {"rows": len(ids), "ids": _runs(ids)} for table, ids in due.items() if ids},
        }
        # A prefix of the chain: every checkpoint up to the last one written before the cut-off.
        newest_old = Checkpoint.objects.filter(at__lt=before).order_by("-id").values_list("id", flat=True).first()
        old = list(Checkpoint.objects.filter(id__lte=newest_old or 0).order_by("id").values_list("id", flat=True))
        if old:
            last = Checkpoint.objects.get(pk=old[-1])
            retention["checkpoints"] = {
                "through": last.pk,
                "hash": last.hash,
                "sealed_through": last.payload.get("through", {}),
                "pruned": len(old),
            }
        payload = {
            "at": now.isoformat(),
            "through": state.get("through", {}),
            "horizons": state.get("horizons", {}),
            "ranges": {},
            "retention": retention,
        }
        prev_hash = previous.hash if previous else GENESIS
        checkpoint = Checkpoint.objects.create(
            at=now, payload=payload, prev_hash=prev_hash, hash=chain_hash(prev_hash, payload)
        )
        if old:
            with pgtrigger.ignore("audit.Checkpoint:append_only"):
                Checkpoint.objects.filter(pk__in=old).delete()
    return checkpoint, len(old)


def _delete(log_ids: list[int]) -> None:
    for start in range(0, len(log_ids), BATCH):
        batch = log_ids[start : start + BATCH]
        with transaction.atomic(), pgtrigger.ignore(*TRIGGERS):
            BreakGlassAccess.objects.filter(log_id__in=batch).delete()
            AccessLogPatient.objects.filter(log_id__in=batch).delete()
            AccessLog.objects.filter(id__in=batch).delete()


def retain(*, years: int | None = None, now: datetime | None = None, dry_run: bool = False) -> Retained:
    """Remove the access rows and checkpoints older than the cut-off (see the module's docstring)."""
    now = now or timezone.now()
    before = cut_off(years=years, now=now)
    refused = _not_deletable()
    if refused:
        raise RetentionRefused(
            f"This database role holds no DELETE privilege on {', '.join(refused)}: run it as the owner role "
            "(DB_CONNECT_AS=owner manage.py audit_retention)."
        )
    due = _due(before)
    result = Retained(before=before, removed={table: len(ids) for table, ids in due.items()})
    result.checkpoints_pruned = Checkpoint.objects.filter(at__lt=before).count()
    if dry_run or not (any(due.values()) or result.checkpoints_pruned):
        return result
    result.checkpoint, result.checkpoints_pruned = _record(before, due, now)
    _delete(due[AccessLog._meta.db_table])
    return result
