"""Tamper evidence for the append-only tables: checkpoints chained by SHA-256, and their verification.

**Sealing** (``seal``, run by the worker every minute, backoffice.audit.tasks). Each run writes one
``Checkpoint`` whose payload says, for every append-only table with new rows, the range of ids it
covers (``after`` < id <= ``through``), the ids present (as runs), the first 4 bytes of each row's
SHA-256 (``tags``), the SHA-256 over all of them (``digest``) and the columns hashed. A row's hash is
SHA-256 of ``json_build_array(<columns>)::text`` computed by Postgres with fixed output settings
(UTC, ISO dates, hex bytea), so the same row hashes the same on any later day. The checkpoint's
``hash`` is SHA-256(previous hash + canonical JSON of its payload).

Rows are sealed one run late: a run notes each table's highest id and the transactions then open in
this database (from ``pg_locks``: each holds a lock on its own xid), the *horizon*; a later run seals
up to that id once none of those transactions is still open. A row whose transaction was still open
at the first run, with a lower id than one already committed, is thus never left out of the range that
covers its id. Rows are in a checkpoint within about two minutes of being written (longer only while
a transaction that was open stays open).

Nothing on the request path changes: requests insert rows as before, and the worker reads them back
in id order once a minute (the cost is measured by ``make bench``: README, "Performance").

**Verifying** (``verify``, ``manage.py audit_verify``): the chain first (every hash recomputed, each
``prev_hash`` the previous checkpoint's), then each table streamed in id order beside its ranges:
a sealed id that is missing is a deleted row, a row whose id no range lists (inside the sealed ids) is
an inserted one, a row whose hash differs is an edited one. The first problem of each table is
reported. Rows above the last sealed id are not yet sealed; there being some while the newest
checkpoint is older than ``stale_after`` is reported too (the worker is stopped, or the newest
checkpoints were deleted).

**Retention** (backoffice.audit.log_retention, ``manage.py audit_retention``): a retention checkpoint
in the chain lists the ids it removed, and, when it pruned the oldest checkpoints, the anchor the kept
chain starts from (the last pruned checkpoint's id, hash and sealed-through ids). ``verify`` starts at
the anchor, skips the listed ids (their ranges' digests can't be recomputed without them; each kept
row's own hash still is), and counts the rows older than the kept checkpoints apart, as past the chain.

What it can't see: someone who can write as the owner and recomputes every later checkpoint. The
worker logs each checkpoint's hash (logger ``backoffice.audit``) so a copy kept outside the database
can be compared: ``audit_verify --head ID:HASH``.
"""

import base64
import bisect
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from backoffice.audit.dbroles import PRUNED_TABLES, append_only_models, quote
from backoffice.audit.models import Checkpoint

logger = logging.getLogger("backoffice.audit")

GENESIS = "0" * 64
TAG_BYTES = 4
# Session-level advisory lock: one sealer at a time, taken before the sealing transaction's snapshot.
SEAL_LOCK_KEY = 0x6175646974736C  # "auditsl"
ITERSIZE = 10_000
# At most this many ids of one table per checkpoint: the first run on a database with years of rows
# seals them over several runs, none holding more than this in memory (4 bytes a row in its payload).
MAX_SPAN = 500_000
# The output settings a row's hash depends on, fixed for sealing and verifying alike.
CANONICAL_SETTINGS = (
    "SET LOCAL TimeZone = 'UTC'",
    "SET LOCAL DateStyle = 'ISO, YMD'",
    "SET LOCAL IntervalStyle = 'iso_8601'",
    "SET LOCAL extra_float_digits = 1",
    "SET LOCAL bytea_output = 'hex'",
)


def sealed_models() -> list[type[models.Model]]:
    """Every append-only table but the checkpoints, which are chained by their own hashes, and the
    tables a retention setting prunes (dbroles.PRUNED_TABLES)."""
    return [m for m in append_only_models() if m is not Checkpoint and m._meta.db_table not in PRUNED_TABLES]


def columns_of(model: type[models.Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if f.column]


def pk_of(model: type[models.Model]) -> str:
    column = model._meta.pk.column if model._meta.pk else None
    if not column:
        raise ValueError(f"{model._meta.label} has no primary key column")
    return column


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chain_hash(prev_hash: str, payload: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(payload)).hexdigest()


def _rows_sql(table: str, pk: str, columns: list[str]) -> str:
    if len(columns) > 100:  # json_build_array takes at most 100 arguments
        raise ValueError(f"{table} has more than 100 columns")
    values = ", ".join(quote(c) for c in columns)
    return (
        # Identifiers from the models' metadata, quoted; the bounds are parameters.
        f"SELECT {quote(pk)}, sha256(convert_to(json_build_array({values})::text, 'UTF8')) "  # noqa: S608
        f"FROM {quote(table)} WHERE {quote(pk)} > %s AND {quote(pk)} <= %s ORDER BY {quote(pk)}"
    )


def _stream(sql: str, params: list[Any]) -> Iterator[tuple[int, bytes]]:
    """Rows through a server-side cursor, ITERSIZE at a time (inside the caller's transaction)."""
    with connection.chunked_cursor() as cursor:
        cursor.itersize = ITERSIZE  # type: ignore[attr-defined]
        cursor.execute(sql, params)
        for pk, digest in cursor:
            yield int(pk), bytes(digest)


def _runs(ids: list[int]) -> list[list[int]]:
    """[[first, last], ...] for consecutive ids."""
    runs: list[list[int]] = []
    for pk in ids:
        if runs and runs[-1][1] == pk - 1:
            runs[-1][1] = pk
        else:
            runs.append([pk, pk])
    return runs


def _digest_update(digest: "hashlib._Hash", pk: int, row_hash: bytes) -> None:
    digest.update(pk.to_bytes(8, "big", signed=True) + row_hash)


def _canonical_output(cursor: Any) -> None:
    for statement in CANONICAL_SETTINGS:
        cursor.execute(statement)


@dataclass
class SealResult:
    checkpoint: Checkpoint
    rows: int  # rows sealed by this checkpoint, every table
    tables: dict[str, int]  # rows sealed per table


def seal(*, now: datetime | None = None) -> SealResult:
    """Write the next checkpoint (see the module's docstring); one sealer at a time."""
    own_transaction = not connection.in_atomic_block
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [SEAL_LOCK_KEY])
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                if own_transaction:  # one snapshot for every table, the one whose xmax is noted
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                _canonical_output(cursor)
                cursor.execute("SELECT 1")  # the snapshot, before the open transactions are listed
                open_now = _open_transactions(cursor)
            return _seal(now or timezone.now(), open_now=open_now)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SEAL_LOCK_KEY])


def _open_transactions(cursor: Any) -> set[int]:
    """The xids of this database's other open transactions that have written something."""
    cursor.execute(
        """
        SELECT l.transactionid::text::bigint FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted
          AND a.datname = current_database() AND l.pid <> pg_backend_pid()
        """
    )
    return {int(row[0]) for row in cursor.fetchall()}


def _seal(now: datetime, *, open_now: set[int]) -> SealResult:
    previous = Checkpoint.objects.order_by("-id").first()
    before: dict[str, Any] = previous.payload if previous else {}
    through: dict[str, int] = {}
    horizons: dict[str, list[int]] = {}
    ranges: dict[str, dict[str, Any]] = {}
    sealed: dict[str, int] = {}
    for model in sealed_models():
        table, pk = model._meta.db_table, pk_of(model)
        low = int(before.get("through", {}).get(table, 0))
        pending = before.get("horizons", {}).get(table)
        high = low
        # pending: [highest id, xids open then...]
        if pending is not None and not open_now.intersection(int(x) for x in pending[1:]):
            high = max(low, int(pending[0]))
            if high - low > MAX_SPAN:  # from the first row above ``low``: ids may start anywhere
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT min({quote(pk)}) FROM {quote(table)} WHERE {quote(pk)} > %s", [low])  # noqa: S608
                    first = cursor.fetchone()[0]
                high = min(high, (first or high) - 1 + MAX_SPAN)
        if high > low:
            ranges[table] = _range(table, pk, columns_of(model), low, high)
            sealed[table] = ranges[table]["rows"]
        through[table] = high
        if pending is None or high > low or int(pending[0]) <= low:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT max({quote(pk)}) FROM {quote(table)}")  # noqa: S608 - quoted identifiers
                top = cursor.fetchone()[0] or 0
            horizons[table] = [max(int(top), high), *sorted(open_now)]
        else:
            horizons[table] = [int(x) for x in pending]
    payload = {"at": now.isoformat(), "through": through, "horizons": horizons, "ranges": ranges}
    prev_hash = previous.hash if previous else GENESIS
    checkpoint = Checkpoint.objects.create(
        at=now, payload=payload, prev_hash=prev_hash, hash=chain_hash(prev_hash, payload)
    )
    total = sum(sealed.values())
    logger.info("audit checkpoint %s %s: %s rows sealed", checkpoint.pk, checkpoint.hash, total)
    return SealResult(checkpoint, total, sealed)


def _range(table: str, pk: str, columns: list[str], low: int, high: int) -> dict[str, Any]:
    ids: list[int] = []
    tags = bytearray()
    digest = hashlib.sha256()
    for row_id, row_hash in _stream(_rows_sql(table, pk, columns), [low, high]):
        ids.append(row_id)
        tags += row_hash[:TAG_BYTES]
        _digest_update(digest, row_id, row_hash)
    return {
        "after": low,
        "through": high,
        "rows": len(ids),
        "ids": _runs(ids),
        "tags": base64.b64encode(bytes(tags)).decode(),
        "digest": digest.hexdigest(),
        "columns": columns,
    }


# --- Verifying ----------------------------------------------------------------------------------------


@dataclass
class TableReport:
    table: str
    sealed_rows: int = 0
    unsealed_rows: int = 0
    sealed_through: int = 0
    problem: str = ""  # the first one found, or empty
    removed_rows: int = 0  # sealed, then removed by a retention checkpoint
    past_chain_rows: int = 0  # older than the kept checkpoints (the pruned ones sealed them)


class Removed:
    """The ids the retention checkpoints say they removed from one table, as sorted runs."""

    def __init__(self, runs: list[tuple[int, int]]) -> None:
        self.runs = sorted(runs)
        self.starts = [first for first, _ in self.runs]

    def __contains__(self, pk: int) -> bool:
        index = bisect.bisect_right(self.starts, pk) - 1
        return index >= 0 and self.runs[index][1] >= pk


def _retention() -> tuple[dict[str, Any] | None, dict[str, Removed]]:
    """The newest anchor (the pruned checkpoints' end) and every table's removed ids."""
    anchor: dict[str, Any] | None = None
    runs: dict[str, list[tuple[int, int]]] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload->'retention' FROM audit_checkpoint WHERE payload ? 'retention' ORDER BY id")
        for (entry,) in cursor.fetchall():
            value = json.loads(entry) if isinstance(entry, str) else entry
            if "checkpoints" in value:
                anchor = value["checkpoints"]
            for table, removed in value.get("removed", {}).items():
                runs.setdefault(table, []).extend((int(a), int(b)) for a, b in removed["ids"])
    return anchor, {table: Removed(r) for table, r in runs.items()}


@dataclass
class Report:
    checkpoints: int = 0
    chain_problem: str = ""
    stale_problem: str = ""
    head_problem: str = ""
    tables: list[TableReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (
            self.chain_problem or self.stale_problem or self.head_problem or any(t.problem for t in self.tables)
        )


def verify(
    *, stale_after: timedelta = timedelta(minutes=5), head: tuple[int, str] | None = None, now: datetime | None = None
) -> Report:
    """Check the chain, then every table against its ranges; see the module's docstring."""
    report = Report()
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        with connection.cursor() as cursor:
            if own_transaction:  # the chain and every table read in one snapshot
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            _canonical_output(cursor)
        anchor, removed = _retention()
        newest = _verify_chain(report, head, anchor)
        for model in sealed_models():
            table = model._meta.db_table
            past = int((anchor or {}).get("sealed_through", {}).get(table, 0))
            report.tables.append(_verify_table(model, removed.get(table), past))
    if newest is not None and any(t.unsealed_rows for t in report.tables):
        age = (now or timezone.now()) - newest.at
        if age > stale_after:
            waiting = ", ".join(f"{t.table} {t.unsealed_rows}" for t in report.tables if t.unsealed_rows)
            report.stale_problem = (
                f"rows not in any checkpoint ({waiting}) and the newest checkpoint (#{newest.pk}) is "
                f"{int(age.total_seconds() // 60)} minutes old: the worker is stopped, or checkpoints were deleted"
            )
    return report


def _verify_chain(report: Report, head: tuple[int, str] | None, anchor: dict[str, Any] | None) -> Checkpoint | None:
    """Every checkpoint's hash and link, and each table's ranges following on; the newest checkpoint.

    With an anchor (the oldest checkpoints pruned by retention) the chain starts from it."""
    prev_hash, prev_through = GENESIS, dict[str, int]()
    if anchor:
        prev_hash = str(anchor["hash"])
        prev_through = {k: int(v) for k, v in anchor.get("sealed_through", {}).items()}
    last: Checkpoint | None = None
    head_seen = False
    for checkpoint in Checkpoint.objects.order_by("id").iterator(chunk_size=1000):
        report.checkpoints += 1
        last = checkpoint
        if head and checkpoint.pk == head[0]:
            head_seen = True
            if checkpoint.hash != head[1]:
                report.head_problem = f"checkpoint #{checkpoint.pk} has hash {checkpoint.hash}, not {head[1]}"
        if report.chain_problem:
            continue
        payload = checkpoint.payload
        if checkpoint.prev_hash != prev_hash:
            report.chain_problem = (
                f"checkpoint #{checkpoint.pk} does not follow the one before it (its prev_hash is "
                f"{checkpoint.prev_hash[:12]}…, the previous hash {prev_hash[:12]}…): a checkpoint was deleted, "
                "inserted or edited"
            )
        elif chain_hash(checkpoint.prev_hash, payload) != checkpoint.hash:
            report.chain_problem = f"checkpoint #{checkpoint.pk} was edited: its hash does not match its contents"
        else:
            for table, entry in payload.get("ranges", {}).items():
                if int(entry["after"]) != int(prev_through.get(table, 0)):
                    report.chain_problem = (
                        f"checkpoint #{checkpoint.pk} seals {table} after id {entry['after']}, but the previous "
                        f"checkpoints sealed it through id {prev_through.get(table, 0)}"
                    )
            prev_through = payload.get("through", {})
        prev_hash = checkpoint.hash
    if head and not head_seen:
        report.head_problem = f"checkpoint #{head[0]} (kept outside the database) is missing"
    return last


def _ranges_of(table: str) -> Iterator[dict[str, Any]]:
    with connection.chunked_cursor() as cursor:
        cursor.itersize = 1000  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT id, payload->'ranges'->%s FROM audit_checkpoint WHERE payload->'ranges' ? %s ORDER BY id",
            [table, table],
        )
        for checkpoint_id, entry in cursor:
            value = json.loads(entry) if isinstance(entry, str) else entry
            value["checkpoint"] = checkpoint_id
            yield value


def _expected(entry: dict[str, Any]) -> Iterator[tuple[int, bytes]]:
    tags = base64.b64decode(entry["tags"])
    index = 0
    for first, last in entry["ids"]:
        for row_id in range(int(first), int(last) + 1):
            yield row_id, tags[index : index + TAG_BYTES]
            index += TAG_BYTES


def _verify_table(model: type[models.Model], removed: Removed | None = None, past_chain: int = 0) -> TableReport:
    table, pk = model._meta.db_table, pk_of(model)
    result = TableReport(table, sealed_through=past_chain)
    if past_chain:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {quote(table)} WHERE {quote(pk)} <= %s", [past_chain])  # noqa: S608
            result.past_chain_rows = cursor.fetchone()[0]
    for group in _groups(_ranges_of(table)):
        columns, entries = group
        low, high = int(entries[0]["after"]), int(entries[-1]["through"])
        actual = _stream(_rows_sql(table, pk, columns), [low, high])
        problem = _compare(table, entries, actual, result, removed or Removed([]))
        result.sealed_through = high
        if problem:
            result.problem = problem
            break
    with connection.cursor() as cursor:
        count = f"SELECT count(*) FROM {quote(table)} WHERE {quote(pk)} > %s"  # noqa: S608 - quoted identifiers
        cursor.execute(count, [result.sealed_through])
        result.unsealed_rows = cursor.fetchone()[0]
    return result


def _groups(entries: Iterator[dict[str, Any]]) -> Iterator[tuple[list[str], list[dict[str, Any]]]]:
    """Consecutive ranges hashed over the same columns (a migration that adds one starts a new group).

    Groups are cut at a million rows too, so a table's ranges are never all in memory at once.
    """
    columns: list[str] | None = None
    batch: list[dict[str, Any]] = []
    rows = 0
    for entry in entries:
        if batch and (entry["columns"] != columns or rows >= 1_000_000):
            yield columns or [], batch
            batch, rows = [], 0
        columns = entry["columns"]
        batch.append(entry)
        rows += int(entry["rows"])
    if batch:
        yield columns or [], batch


def _compare(
    table: str,
    entries: list[dict[str, Any]],
    actual: Iterator[tuple[int, bytes]],
    result: TableReport,
    removed: Removed,
) -> str:
    """Walk the sealed ids and the table's rows side by side; the first difference, in words."""
    rows = iter(actual)
    row = next(rows, None)
    for entry in entries:
        checkpoint, high = entry["checkpoint"], int(entry["through"])
        digest = hashlib.sha256()
        complete = True  # every sealed row still here: the range's digest can be checked
        for expected_id, tag in _expected(entry):
            if expected_id in removed:  # a retention run's (listed before it deleted them)
                complete = False
                result.removed_rows += 1
                if row is not None and row[0] == expected_id:  # listed, not yet deleted (a run stopped half-way)
                    row = next(rows, None)
                continue
            if row is not None and row[0] < expected_id:
                return f"row {table} id {row[0]} was inserted: no checkpoint sealed it (checkpoint #{checkpoint} seals ids up to {high})"
            if row is None or row[0] > expected_id:
                return f"row {table} id {expected_id} was deleted (sealed by checkpoint #{checkpoint})"
            if row[1][:TAG_BYTES] != tag:
                return f"row {table} id {expected_id} was edited (sealed by checkpoint #{checkpoint})"
            _digest_update(digest, row[0], row[1])
            result.sealed_rows += 1
            row = next(rows, None)
        if row is not None and row[0] <= high:
            return f"row {table} id {row[0]} was inserted: no checkpoint sealed it (checkpoint #{checkpoint} seals ids up to {high})"
        if complete and digest.hexdigest() != entry["digest"]:
            return f"a row of {table} in ids {entry['after']}-{high} was edited (checkpoint #{checkpoint}'s digest differs)"
    return ""
