"""The turnaround dashboard's bench rows: /lab/turnaround/ at 10k and at 1M resulted tests.

Rows are made in SQL (INSERT … SELECT generate_series), never through the ORM, and only in the
bench database: each handoff, specimen and test order is a copy of one seed_demo row with its
times and keys replaced, so every NOT NULL column the app needs is filled as the app fills it.
A clinic's daily volume is the same at both sizes (``PER_DAY`` tests a day, 10k being the last
month): the 1M rows reach back years. The dashboard reads one date range over the indexed
timestamps, so its p95 should follow the rows in the range, not the table's history (target:
within 1.5x). Send-outs and critical calls are left as seed_demo made them.
"""

from collections.abc import Callable
from typing import Any

import psycopg

PER_DAY = 334  # 10,000 tests in 30 days
PER_HANDOFF = 4  # tests per generated handoff, each a different in-house test (one per handoff and test)
MARK = "BT"  # the generated specimens' accession prefix: how a top-up finds what is there
BATCH = 250_000


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", [table]
    ).fetchall()
    return [r[0] for r in rows]


def _clone(conn: psycopg.Connection[Any], table: str, *, template: int, source: str, overrides: dict[str, str]) -> None:
    """INSERT copies of row ``template`` of ``table``, one per row of ``source`` (SQL naming ``g``)."""
    columns = [c for c in _columns(conn, table) if c != "id"]
    select = [overrides.get(c, f"t.{c}") for c in columns]
    conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - names from information_schema, no input
        f"SELECT {', '.join(select)} FROM {table} t, ({source}) s WHERE t.id = {int(template)}"
    )


def generated(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM specimens_specimen WHERE accession LIKE %s", [f"{MARK}%"]).fetchone()
    return int(row[0]) if row else 0


def top_up(db_url: str, total: int, *, say: Callable[[str], None]) -> dict[str, int]:
    """Generate resulted in-house tests until ``total`` are there, older ones further back in time."""
    with psycopg.connect(db_url) as conn:
        have = generated(conn)
        handoff = conn.execute("SELECT id FROM backoffice_handoff ORDER BY id LIMIT 1").fetchone()
        specimen = conn.execute("SELECT id FROM specimens_specimen ORDER BY id LIMIT 1").fetchone()
        order = conn.execute("SELECT id FROM lab_testorder ORDER BY id LIMIT 1").fetchone()
        tests = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM lab_testdefinition WHERE performed = 'in_house' ORDER BY id LIMIT %s", [PER_HANDOFF]
            )
        ]
        if handoff is None or specimen is None or order is None or len(tests) < PER_HANDOFF:
            raise SystemExit("the turnaround bench needs seed_demo's rows to copy (run seed_demo first)")
        while have < total:
            first = have + 1
            last = min(total, have + BATCH)
            say(f"turnaround: generating tests {first:,} to {last:,} (INSERT … SELECT generate_series)")
            # Django's foreign keys are deferred: checked at commit, their events queue up, and each
            # history trigger's own INSERT then rescans the queue (50k handoffs took minutes, not 5 s).
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            _generate(conn, first, last, handoff=handoff[0], specimen=specimen[0], order=order[0], tests=tests)
            conn.commit()
            have = last
        conn.execute("ANALYZE backoffice_handoff")
        conn.execute("ANALYZE specimens_specimen")
        conn.execute("ANALYZE lab_testorder")
        counts = {
            "turnaround_tests_generated": generated(conn),
            "test_orders": conn.execute("SELECT count(*) FROM lab_testorder").fetchone()[0],  # type: ignore[index]
            "in_last_30_days": conn.execute(
                "SELECT count(*) FROM lab_testorder WHERE created_at >= now() - interval '30 days'"
            ).fetchone()[0],  # type: ignore[index]
        }
    return counts


def _generate(
    conn: psycopg.Connection[Any], first: int, last: int, *, handoff: int, specimen: int, order: int, tests: list[int]
) -> None:
    # Test g (1 = the newest) was ordered g / PER_DAY days ago, in clinic hours; its handoff is
    # (g - 1) / PER_HANDOFF, and its times follow from a hash of g so every run makes the same rows.
    h_first, h_last = (first - 1) // PER_HANDOFF, (last - 1) // PER_HANDOFF
    when = (
        f"(date_trunc('day', now()) - make_interval(days => (g * {PER_HANDOFF}) / {PER_DAY}) "
        "+ interval '8 hours' + make_interval(mins => (g * 37) % 540))"
    )
    # Handoffs first, their ids read back in order of g.
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS bench_tat_h (n bigint PRIMARY KEY, id bigint)")
    conn.execute("TRUNCATE bench_tat_h")
    _clone(
        conn,
        "backoffice_handoff",
        template=handoff,
        source=f"SELECT g FROM generate_series({h_first}, {h_last}) g",  # noqa: S608 - integers
        overrides={
            "uuid": "gen_random_uuid()",
            "status": "'completed'",
            "station_id": "NULL",
            "priority": "CASE WHEN g % 5 = 0 THEN 1 ELSE 2 END",
            "created_at": when,
            "claimed_at": when,
            "claimed_by_id": "coalesce(t.claimed_by_id, t.created_by_id)",
            "closed_by_id": "coalesce(t.closed_by_id, t.created_by_id)",
            "identity_verified_at": when,
            "closed_at": f"{when} + interval '2 hours'",
            "status_changed_at": f"{when} + interval '2 hours'",
        },
    )
    conn.execute(
        "INSERT INTO bench_tat_h (n, id) SELECT row_number() OVER (ORDER BY id) + %s - 1, id FROM backoffice_handoff "
        "WHERE id > (SELECT coalesce(max(id), 0) FROM backoffice_handoff) - %s",
        [h_first, h_last - h_first + 1],
    )
    # Then one specimen and one test order per test, minutes after the order as a clinic's day runs.
    # The handoff's time: its index is (g - 1) / PER_HANDOFF where the handoff's own was g.
    ordered = when.replace("g *", f"((g - 1) / {PER_HANDOFF}) *")
    test = f"(ARRAY{tests}::bigint[])[(g - 1) % {PER_HANDOFF} + 1]"
    joined = f"generate_series({first}, {last}) g JOIN bench_tat_h h ON h.n = (g - 1) / {PER_HANDOFF}"
    source = f"SELECT g, h.id AS handoff, {ordered} AS ordered, {test} AS test, (hashtext(g::text) & 1023) AS r FROM {joined}"  # noqa: S608 - integers and constants
    collected = "s.ordered + make_interval(mins => 3 + s.r % 30)"
    received = f"CASE WHEN s.r % 20 = 0 THEN NULL ELSE {collected} + make_interval(mins => 2 + s.r % 9) END"
    _clone(
        conn,
        "specimens_specimen",
        template=specimen,
        source=source,
        overrides={
            "uuid": "gen_random_uuid()",
            "accession": f"'{MARK}' || lpad(s.g::text, 10, '0')",
            "handoff_id": "s.handoff",
            "patient_id": "(SELECT patient_id FROM backoffice_handoff WHERE id = s.handoff)",
            "status": "'disposed'",
            "labelled_at": "s.ordered",
            "collected_at": collected,
            "verified_at": collected,
            "received_at": received,
            "received_by_id": "CASE WHEN s.r % 20 = 0 THEN NULL ELSE coalesce(t.received_by_id, t.labelled_by_id) END",
            "recollection_of_id": "NULL",
            "rejection_reason_id": "NULL",
            "rejected_at": "NULL",
            "rejected_by_id": "NULL",
            "received_acceptable": "true",
            "disposed_at": "s.ordered + interval '3 days'",
            "disposed_by_id": "t.labelled_by_id",
            "collected_by_id": "t.labelled_by_id",
            "verified_by_id": "t.labelled_by_id",
            "status_changed_at": "s.ordered + interval '3 days'",
        },
    )
    resulted = f"CASE WHEN s.r % 20 = 0 THEN NULL ELSE {collected} + make_interval(mins => 12 + s.r % 40) END"
    released = f"CASE WHEN s.r % 20 = 0 THEN NULL ELSE {collected} + make_interval(mins => 20 + s.r % 60) END"
    _clone(
        conn,
        "lab_testorder",
        template=order,
        source=source,
        overrides={
            "uuid": "gen_random_uuid()",
            "handoff_id": "s.handoff",
            "test_id": "s.test",
            "status": "CASE WHEN s.r % 20 = 0 THEN 'collected' ELSE 'resulted' END",
            "specimen_id": f"(SELECT id FROM specimens_specimen WHERE accession = '{MARK}' || lpad(s.g::text, 10, '0'))",  # noqa: S608
            "needs_recollection": "false",
            "cancel_reason": "''",
            "cancel_note": "''",
            "cancelled_by_id": "NULL",
            "acknowledged_at": "NULL",
            "acknowledged_by_id": "NULL",
            "created_at": "s.ordered",
            "status_changed_at": f"coalesce({released}, s.ordered)",
            "resulted_at": resulted,
            "released_at": released,
        },
    )
