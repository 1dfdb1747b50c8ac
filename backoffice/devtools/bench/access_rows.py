"""Years of access log for `make bench --access-rows N`: the queue and the auditor's access-log page
measured with N access rows already in the table.

``load`` tops ``backoffice_accesslog`` up to N rows with one ``INSERT … SELECT generate_series`` per
million, as the owner (the benchmark database's superuser login), each with one patient row: the rows
spread evenly over the last ACCESS_LOG_RETENTION_YEARS (6) years, oldest first, cycling through the
staff and the patients the seed made. A database that already holds N rows is left as it is, so a
second run measures at once. The loaded rows are not sealed into checkpoints (a real log is sealed as
it is written): a run with ``--access-rows`` leaves out the sealing measurements, which a catch-up over
millions of rows would swamp.

``ACCESS_LOG_SEARCHES``: the auditor's two searches the bench times (``/audit/`` is POSTed): the
newest page of the whole log, and one patient's rows by MRN.
"""

import time
from typing import Any

import psycopg

CHUNK = 1_000_000
YEARS = 6
USERS = 50  # the staff the loaded rows name, cycled
PATIENT_STRIDE = 7919  # a prime: consecutive rows name patients far apart

LOAD = """
WITH logs AS (
    INSERT INTO backoffice_accesslog (at, user_id, username, action, what, object_ref, ip, outcome)
    SELECT %(now)s::timestamptz
               - make_interval(secs => (%(total)s::bigint - 1 - g)::float8 * %(span)s::float8 / %(total)s::bigint),
           (%(user_ids)s::bigint[])[1 + g %% %(users)s], (%(usernames)s::text[])[1 + g %% %(users)s],
           CASE WHEN g %% 5 = 0 THEN 'view' ELSE 'list' END,
           CASE WHEN g %% 5 = 0 THEN 'handoff detail' ELSE 'queue' END,
           '', '10.20.0.1'::inet + (g %% 200), 'ok'
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
    ORDER BY g
    RETURNING id, at
)
INSERT INTO backoffice_accesslogpatient (log_id, patient_id, at)
SELECT logs.id, (%(patient_ids)s::bigint[])[1 + (logs.id * %(stride)s) %% %(patients)s], logs.at FROM logs
"""


def count(conn: psycopg.Connection[Any]) -> int:
    return int(conn.execute("SELECT count(*) FROM backoffice_accesslog").fetchone()[0])  # type: ignore[index]


def load(db_url: str, rows: int, *, say: Any = print) -> dict[str, Any]:
    """Top the access log up to ``rows`` rows (see the module's docstring); what was loaded and how fast."""
    # Never a prepared statement: its generic plan (from the sixth million on) reads the 100,000-id
    # arrays as parameters row by row, 1,000 rows a second instead of 40,000.
    with psycopg.connect(db_url, prepare_threshold=None) as conn:
        have = count(conn)
        need = rows - have
        info: dict[str, Any] = {"access_rows_before": have, "access_rows_loaded": max(0, need)}
        if need <= 0:
            say(f"access log already holds {have:,} rows (asked for {rows:,}): nothing loaded")
            return info
        staff = conn.execute("SELECT id, username FROM backoffice_user ORDER BY id LIMIT %s", [USERS]).fetchall()
        patient_ids = [r[0] for r in conn.execute("SELECT id FROM backoffice_patient ORDER BY id").fetchall()]
        if not staff or not patient_ids:
            raise SystemExit("--access-rows needs the seeded staff and patients first")
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        started = time.monotonic()
        for start in range(0, need, CHUNK):
            stop = min(start + CHUNK, need) - 1
            conn.execute(
                LOAD,
                {
                    "now": now,
                    "total": need,
                    "span": YEARS * 365.25 * 86400,
                    "user_ids": [s[0] for s in staff],
                    "usernames": [s[1] for s in staff],
                    "users": len(staff),
                    "start": start,
                    "stop": stop,
                    "patient_ids": patient_ids,
                    "patients": len(patient_ids),
                    "stride": PATIENT_STRIDE,
                },
            )
            conn.commit()
            done = stop + 1
            rate = done / max(time.monotonic() - started, 1e-9)
            say(f"access log: {have + done:,} of {rows:,} rows ({rate:,.0f} rows/s with their patient rows)")
        conn.execute("ANALYZE backoffice_accesslog")
        conn.execute("ANALYZE backoffice_accesslogpatient")
        conn.commit()
        info["load_seconds"] = round(time.monotonic() - started, 1)
    return info


def searches(db_url: str) -> list[tuple[str, str]]:
    """(label, POST body after the CSRF token) for the auditor's searches: the whole log, one patient."""
    with psycopg.connect(db_url) as conn:
        mrn = conn.execute(
            "SELECT p.mrn FROM backoffice_patient p WHERE EXISTS "
            "(SELECT 1 FROM backoffice_accesslogpatient a WHERE a.patient_id = p.id) ORDER BY p.id LIMIT 1"
        ).fetchone()
    whole = ("access log (auditor)", "patient=&username=&action=&outcome=&date_from=&date_to=")
    if not mrn:
        return [whole]
    return [whole, ("access log, one patient (auditor)", f"patient={mrn[0]}&username=&action=&outcome=")]
