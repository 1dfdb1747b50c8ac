"""`make bench`: load a separate database, serve it like production, measure it with wrk.

    python -m backoffice.devtools.bench                 # main table: /healthz, queue, detail, board,
                                                        # specimen list, lab pages (turnaround too),
                                                        # claim, result entry;
                                                        # then label rendering
    python -m backoffice.devtools.bench --growth        # queue p95 at 10k vs 1M historical handoffs
    python -m backoffice.devtools.bench --turnaround    # /lab/turnaround/ p95 at 10k vs 1M resulted tests
    python -m backoffice.devtools.bench --database NAME # the main table on a database of that name
    python -m backoffice.devtools.bench --intake 2000   # the HL7 intake over 2,000 messages (0: skip it)
    python -m backoffice.devtools.bench --access-rows 20000000  # with 20 million access rows loaded first

Every figure printed comes from this run: the row counts are read back from the database and
the timings from wrk. Label rendering (PDF and ZPL) is timed in this process, without HTTP, once
the server has stopped (bench/labels.py). So is the HL7 intake (bench/intake.py): open send-outs
imported across the three demo reference labs, one ORU^R01 for each written as its lab's dialect
sends it, ``manage.py hl7_import`` timed over the batch as a subprocess, and what it stored, matched
and filed read back from the database; then ``manage.py hl7_listen`` on a free port, sent messages
one at a time over MLLP, each round trip timed to its ACK. Results are also written as JSON under
bench-results/.
"""

import argparse
import contextlib
import http.cookiejar
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from backoffice.devtools.bench import access_rows, audit_seal, labels, turnaround
from backoffice.devtools.bench.profile import configure
from backoffice.devtools.demo_totp import unused_demo_code
from lab.hl7.transport import ack_code, send_mllp

BASE_DIR = Path(__file__).resolve().parents[3]  # the project: backoffice/devtools/bench/ is three down
LUA = Path(__file__).with_name("report.lua")
PYTHON = sys.executable
DEMO_PASSWORD = "backoffice-demo-2026"
OPEN_STATUSES = ("waiting", "claimed", "identity_verified", "in_progress")
# specimens.selectors.TRACKED_STATUSES: what the tracking list shows (tests/backoffice/test_bench.py).
TRACKED_STATUSES = ("labelled", "collected", "in_transit", "received", "in_testing")
THREADS = 2  # wrk -t
# Result entry: seed.entry_pool.ENTRY_POOL_NOTE, the mark of the pool's visits (tests/backoffice/test_bench.py).
ENTRY_POOL_NOTE = "Sore throat and fever since yesterday, no cough. Rapid strep, swab to the bench."
ENTRY_WARMUP_SECONDS = 2
ENTRY_WARMUP_POOL = 160  # the first warm-up's specimens (80 entries a second); four times more if it runs out
ENTRY_HEADROOM = 1.5  # the timed phase's pool: the warm-up's rate for the duration, half as much again
ENTRY_DRAIN_SECONDS = 30  # at most, for the POSTs queued in the server when wrk stops


@dataclass
class Result:
    name: str
    path: str
    requests: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    ratio_to_healthz: float | None = None
    ratio_to_floor: float | None = None  # to the signed-in floor of the same run
    notes: dict[str, Any] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def server_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from backoffice.embedded_db import embedded_database_url

    return embedded_database_url(BASE_DIR)  # this process holds the embedded server open


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(url: str, name: str, *, fresh: bool) -> str:
    admin = with_database(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and fresh:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(url, name)


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def app_env(db_url: str, connect_as: str = "app") -> dict[str, str]:
    """Production settings on ``db_url`` (a superuser's), connecting as the app's database role, or as
    the owner for db_roles, migrate and the seeds (docs/security.md, "Database roles")."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=db_url,
        DB_CONNECT_AS=connect_as,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback: no TLS proxy in the loop, so cookies can't be Secure-only here.
        SECURE_COOKIES="false",
        SECURE_SSL_REDIRECT="false",
        DB_CONN_MAX_AGE="600",
        LOG_LEVEL="WARNING",
    )
    return env


def prepare(db_url: str, *, patients: int, handoffs: int, open_: int) -> dict[str, int]:
    env = app_env(db_url, "owner")
    manage(env, "db_roles")
    say(f"migrate and seed ({patients:,} patients, {handoffs:,} historical handoffs, {open_:,} open)")
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "seed_demo")
    started = time.monotonic()
    manage(env, "seed_demo", "--scale", "--patients", str(patients), "--handoffs", str(handoffs), "--open", str(open_))
    seed_seconds = time.monotonic() - started
    manage(env, "collectstatic", "--no-input", "-v", "0")
    with psycopg.connect(db_url) as conn:
        counts = {
            "patients": conn.execute("SELECT count(*) FROM backoffice_patient").fetchone()[0],  # type: ignore[index]
            "handoffs_total": conn.execute("SELECT count(*) FROM backoffice_handoff").fetchone()[0],  # type: ignore[index]
            "handoffs_open": conn.execute(
                "SELECT count(*) FROM backoffice_handoff WHERE status = ANY(%s)", [list(OPEN_STATUSES)]
            ).fetchone()[0],  # type: ignore[index]
            "handoff_events": conn.execute("SELECT count(*) FROM backoffice_handoffevent").fetchone()[0],  # type: ignore[index]
            "specimens": conn.execute("SELECT count(*) FROM specimens_specimen").fetchone()[0],  # type: ignore[index]
        }
    counts["seed_scale_seconds_if_loaded_now"] = round(seed_seconds, 1)
    return counts


class Server:
    """gunicorn with the production settings in gunicorn.conf.py; only the worker shape is overridden."""

    def __init__(self, db_url: str, args: argparse.Namespace, *, env: dict[str, str] | None = None) -> None:
        self.port = args.port
        self.base = f"http://127.0.0.1:{args.port}"
        gunicorn = str(Path(PYTHON).with_name("gunicorn"))
        cmd = [gunicorn, "backoffice.wsgi", "--config", str(BASE_DIR / "gunicorn.conf.py")]
        cmd += ["--bind", f"127.0.0.1:{args.port}", "--log-level", "warning", "--workers", str(args.workers)]
        cmd += ["--worker-class", args.worker_class]
        if args.worker_class == "gthread":  # with more than one thread gunicorn turns sync into gthread
            cmd += ["--threads", str(args.threads)]
        self.process = subprocess.Popen(cmd, cwd=BASE_DIR, env={**app_env(db_url), **(env or {})})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise SystemExit("gunicorn did not answer /healthz within 30 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _redirect_of(opener: urllib.request.OpenerDirector, request: urllib.request.Request, what: str) -> str:
    """Where a sign-in step's POST redirects to; the bench stops if it answers anything but a redirect."""
    try:
        opener.open(request)
    except urllib.error.HTTPError as exc:
        if exc.code != 302:
            raise SystemExit(f"{what} failed with {exc.code}") from None
        return str(exc.headers.get("Location", ""))
    raise SystemExit(f"{what} did not redirect: wrong password or code, or a lockout")


def login(base: str, username: str) -> tuple[str, str]:
    """Sign in over HTTP like a browser; return the Cookie header and the CSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    opener.open(base + "/login/").read()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    data = urllib.parse.urlencode({"username": username, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf})
    request = urllib.request.Request(base + "/login/", data=data.encode(), headers={"Referer": base + "/login/"})
    location = _redirect_of(opener, request, f"login as {username}")
    if "/login/otp/" not in location:
        # The password's redirect goes where the user was headed; the app sends someone who owes the
        # second factor on from there to the code page.
        location = _forwarded_to(opener, base + location) or location
    if "/login/otp/" in location:
        # Supervisors and auditors owe the second factor: the demo users' public key gives the code.
        csrf = next(c.value for c in jar if c.name == "csrftoken")
        data = urllib.parse.urlencode({"code": unused_demo_code(username), "csrfmiddlewaretoken": csrf})
        request = urllib.request.Request(
            base + "/login/otp/", data=data.encode(), headers={"Referer": base + "/login/"}
        )
        location = _redirect_of(opener, request, f"the code step as {username}")
    if "/login/" in location:
        raise SystemExit(f"login as {username} was sent back to {location}")
    cookies = {c.name: c.value or "" for c in jar}
    return "; ".join(f"{k}={v}" for k, v in cookies.items()), cookies["csrftoken"]


def _forwarded_to(opener: urllib.request.OpenerDirector, url: str) -> str:
    """Where a GET of ``url`` redirects to, or "" when it answers without redirecting."""
    try:
        opener.open(url).read()
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            return exc.headers.get("Location", "")
        raise
    return ""


def expect_status(base: str, path: str, cookie: str, status: int, *, headers: tuple[str, ...] = ()) -> None:
    opener = urllib.request.build_opener(NoRedirect)
    sent = {"Cookie": cookie} | dict(h.split(": ", 1) for h in headers)
    request = urllib.request.Request(base + path, headers=sent)
    try:
        code = opener.open(request).status
    except urllib.error.HTTPError as exc:
        code = exc.code
    if code != status:
        raise SystemExit(f"{path} answered {code}, expected {status}; not measuring a broken page")


def wrk(
    base: str,
    path: str,
    *,
    duration: int,
    connections: int,
    cookie: str = "",
    expect: int = 200,
    extra_env: dict[str, str] | None = None,
    headers: tuple[str, ...] = (),
) -> dict[str, Any]:
    cmd = ["wrk", f"-t{THREADS}", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(LUA)]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(base + path)
    env = {**os.environ, "BENCH_EXPECT": str(expect), "BENCH_THREADS": str(THREADS), **(extra_env or {})}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    match = re.search(r"^BENCH_JSON (.*)$", out, re.MULTILINE)
    if not match:
        raise SystemExit(f"wrk printed no summary:\n{out}")
    return json.loads(match.group(1))


def measure(name: str, path: str, raw: dict[str, Any]) -> Result:
    errors = sum(raw[k] for k in raw if k.startswith("errors_")) + raw["unexpected_status"]
    return Result(
        name=name,
        path=path,
        requests=raw["requests"],
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=errors,
    )


def tracked_specimens(db_url: str) -> int:
    """How many specimens the tracking list shows (no status filter): every one still moving."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM specimens_specimen WHERE status = ANY(%s)", [list(TRACKED_STATUSES)]
        ).fetchone()
    return int(row[0]) if row else 0


def open_handoff_ids(db_url: str) -> tuple[str, list[str]]:
    with psycopg.connect(db_url) as conn:
        detail = conn.execute(
            "SELECT uuid FROM backoffice_handoff WHERE status = 'claimed' ORDER BY created_at LIMIT 1"
        ).fetchone()
        waiting = [
            str(row[0])
            for row in conn.execute("SELECT uuid FROM backoffice_handoff WHERE status = 'waiting' ORDER BY created_at")
        ]
    if detail is None or not waiting:
        raise SystemExit("the benchmark database has no claimed or waiting handoffs; reseed with --fresh")
    return str(detail[0]), waiting


RELEASE = """
from backoffice.models import Handoff, User
from backoffice.services import handoff_release
ma = User.objects.get(username="ma")
uuids = open({path!r}).read().split()
for handoff in Handoff.objects.filter(uuid__in=uuids, status="claimed", claimed_by=ma):
    handoff_release(handoff=handoff, by=ma, reason="benchmark: claim phase over")
"""


def release_claimed(db_url: str, uuids: list[str]) -> None:
    """Put back on the queue what the claim phase took, through the service, so the next run finds it."""
    with tempfile.NamedTemporaryFile("w", suffix=".ids") as ids:
        ids.write("\n".join(uuids))
        ids.flush()
        manage(app_env(db_url), "shell", "-c", RELEASE.format(path=ids.name))


# --- Result entry (POST) ----------------------------------------------------------------------------
# A panel is entered once, so each POST takes a specimen of its own from a pool the scale seed tops up
# (backoffice/devtools/seed/entry_pool.py) and wrk walks once (report.lua, BENCH_IDS_ONCE). The pool
# is sized from the rate of a 2 s warm-up on it; a thread that still runs out stops, and the row
# counts what it asked for past the pool as errors. What counts as an entry is read back from the
# database: a 302 to the specimen is what the view answers to a refusal too (the message saying why
# waits in the session), so a POST whose panel is not in the database afterwards is an error.

SEED_POOL = """
import json
from backoffice.devtools.seed.entry_pool import seed_entry_pool
pool = seed_entry_pool({count})
items = [[str(i.specimen_uuid), str(i.order_uuid), i.order_id] for i in pool.items]
with open({path!r}, "w") as out:
    json.dump({{"kit_lot": pool.kit_lot_id, "analyte": pool.analyte_id, "value": pool.value, "items": items}}, out)
"""

FINISH_POOL = """
import json
from backoffice.devtools.seed.entry_pool import finish_entry_pool
with open({path!r}, "w") as out:
    json.dump(finish_entry_pool(), out)
"""


@dataclass
class EntryPool:
    kit_lot: int
    analyte: int
    value: str
    items: list[tuple[str, str, int]]  # specimen uuid, order uuid, order id

    @property
    def order_ids(self) -> list[int]:
        return [order_id for _, _, order_id in self.items]


def entry_pool_size(rate: float, *, duration: int, connections: int) -> int:
    """Specimens for a timed phase: the warm-up's entries a second for the duration, with headroom,
    and two more per connection for the requests in flight at either end."""
    return math.ceil(max(rate, 0.0) * duration * ENTRY_HEADROOM) + 2 * connections


def entry_body(pool: EntryPool) -> str:
    """The panel form's body for report.lua: {2} the order's uuid, {3} its id (the form's prefix t<id>)."""
    return (
        f"order={{2}}&t{{3}}-kit_lot={pool.kit_lot}&t{{3}}-a{pool.analyte}={urllib.parse.quote(pool.value)}"
        "&t{3}-comment=&csrfmiddlewaretoken={csrf}"
    )


def seed_entry_pool(db_url: str, count: int) -> EntryPool:
    """Top the pool up to ``count`` pending specimens (the seed runs the strep kit's QC if it is due)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "pool.json"
        manage(app_env(db_url), "shell", "-c", SEED_POOL.format(count=count, path=str(out)))
        data = json.loads(out.read_text())
    items = [(str(specimen), str(order), int(order_id)) for specimen, order, order_id in data["items"]]
    pool = EntryPool(int(data["kit_lot"]), int(data["analyte"]), str(data["value"]), items)
    if len(pool.items) < count:
        raise SystemExit(f"the result-entry pool has {len(pool.items)} specimens, {count} asked for")
    return pool


def finish_entry_pool(db_url: str) -> dict[str, int]:
    """Every pool specimen through to the end by the services, so the next run's pages find the same bench."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "finished.json"
        manage(app_env(db_url), "shell", "-c", FINISH_POOL.format(path=str(out)))
        done = {str(k): int(v) for k, v in json.loads(out.read_text()).items()}
    say(
        f"result-entry pool finished in {time.monotonic() - started:.0f} s: {done['entered_now']} entered now, "
        f"{done['released']} verified and released, {done['signed']} signed"
    )
    return done


def entry_pool_unfinished(db_url: str) -> int:
    """Pool specimens a run left behind (stopped before its clean-up): still at the bench, or unsigned."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            """
            SELECT count(*) FROM lab_testorder o JOIN backoffice_handoff h ON h.id = o.handoff_id
            WHERE h.clinical_note = %s AND (o.status <> 'resulted' OR EXISTS (
                SELECT 1 FROM lab_result r
                WHERE r.order_id = o.id AND r.status = 'released' AND r.acknowledged_at IS NULL))
            """,
            [ENTRY_POOL_NOTE],
        ).fetchone()
    return int(row[0]) if row else 0


def results_written(db_url: str, order_ids: list[int]) -> tuple[int, int]:
    """How many of these orders have their results entered, and how many result rows that is."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(DISTINCT order_id), count(*) FROM lab_result WHERE order_id = ANY(%s)", [order_ids]
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def drained_written(db_url: str, order_ids: list[int], *, expected: int) -> int:
    """The entries written once the server has worked through the POSTs still queued when wrk stopped
    (a sync worker still runs a request whose client hung up): all ``expected``, or what is in by the deadline."""
    deadline = time.monotonic() + ENTRY_DRAIN_SECONDS
    while True:
        written = results_written(db_url, order_ids)[0]
        if written >= expected or time.monotonic() > deadline:
            return written
        time.sleep(0.2)


def post_entries(
    base: str, pool: EntryPool, *, duration: int, connections: int, cookie: str, csrf: str
) -> dict[str, Any]:
    """wrk over the pool, each specimen's panel POSTed once; answered with a redirect to the specimen."""
    with tempfile.NamedTemporaryFile("w", suffix=".ids") as ids:
        ids.write("\n".join(" ".join(str(field) for field in item) for item in pool.items))
        ids.flush()
        return wrk(
            base,
            "/",
            duration=duration,
            connections=connections,
            cookie=cookie,
            expect=302,
            extra_env={
                "BENCH_POST_PATH": "/lab/results/specimens/%s/enter/",
                "BENCH_IDS": ids.name,
                "BENCH_IDS_ONCE": "1",
                "BENCH_POST_BODY": entry_body(pool),
                "BENCH_CSRF": csrf,
            },
        )


def entry_phase(base: str, db_url: str, args: argparse.Namespace) -> tuple[dict[str, Any], EntryPool]:
    """Warm up on a first pool, checking that every POST entered its panel; then the timed phase on a
    pool sized from the warm-up's rate. Returns wrk's summary and the pool, once the server has drained."""
    size = ENTRY_WARMUP_POOL
    for _ in range(4):
        # Each phase signs in afresh: every entry leaves a message in the session, read by no page here.
        cookie, csrf = login(base, "labtech")
        warm = seed_entry_pool(db_url, size)
        say(f"result entry POST warm-up over {len(warm.items)} specimens at the bench")
        raw = post_entries(
            base, warm, duration=ENTRY_WARMUP_SECONDS, connections=args.connections, cookie=cookie, csrf=csrf
        )
        written = drained_written(db_url, warm.order_ids, expected=raw["posts_sent"])
        if written < raw["posts_sent"]:
            sent = raw["posts_sent"]
            raise SystemExit(
                f"result entry warm-up: {sent} POSTs entered {written} panels; not measuring a broken page"
            )
        if not raw["past_pool"]:
            break
        size *= 4  # it ran out, so the rate is more than that: again, on a bigger pool
    # The rate of the answers within the warm-up: the POSTs still queued when it ended are in ``written`` too.
    rate = raw["requests"] / (raw["duration_us"] / 1e6)
    need = entry_pool_size(rate, duration=args.duration, connections=args.connections)
    cookie, csrf = login(base, "labtech")
    pool = seed_entry_pool(db_url, need)
    say(f"result entry POST over {len(pool.items)} specimens: {args.connections} connections, {args.duration} s")
    raw = post_entries(base, pool, duration=args.duration, connections=args.connections, cookie=cookie, csrf=csrf)
    drained_written(db_url, pool.order_ids, expected=raw["posts_sent"])
    return raw, pool


def entry_result(raw: dict[str, Any], pool: EntryPool, written: int, rows: int) -> Result:
    """The row: a POST counts once its panel is in the database; one past the pool, or refused, is an error."""
    result = measure("result entry (POST)", "/lab/results/specimens/<uuid>/enter/", raw)
    not_entered = max(0, raw["posts_sent"] - written)
    result.errors += not_entered + raw["past_pool"]
    result.notes.update(
        pool_specimens=len(pool.items),
        posts_sent=raw["posts_sent"],
        panels_entered=written,
        result_rows=rows,
        posts_not_entered=not_entered,
        past_the_pool=raw["past_pool"],
    )
    return result


# --- The send-out desk and the HL7 intake ----------------------------------------------------------
# bench/intake.py sets the data up in a Django process (manage.py shell); what the intake did is read
# back here from the database, by the run's files and control ids: never taken from what was sent.

PREPARE_DESK = """
from backoffice.devtools.bench.intake import dump, prepare_desk
dump(prepare_desk(), {path!r})
"""

# A FHIR API client of the bench's own, with a fresh token each run (the old one's client replaced).
FHIR_CLIENT = """
import datetime as dt
from django.utils import timezone
from backoffice.fhir.auth import client_token_issue
from backoffice.fhir.models import SCOPES, ApiClient
from backoffice.models import User
ApiClient.objects.filter(name="Benchmark").delete()
client = ApiClient(name="Benchmark", owner=User.objects.get(username="clinician"), scopes=list(SCOPES),
                   expires_at=timezone.now() + dt.timedelta(hours=6))
import json
json.dump({{"token": client_token_issue(client=client)}}, open({path!r}, "w"))
"""

PREPARE_INTAKE = """
from backoffice.devtools.bench.intake import dump, prepare_intake
dump(prepare_intake(count={count}, mllp={mllp}, tag={tag!r}, folder={folder!r}), {path!r})
"""


def shell_json(db_url: str, script: str, **values: Any) -> Any:
    """Run ``script`` in ``manage.py shell`` on the bench database; it writes JSON to {path}."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        manage(app_env(db_url), "shell", "-c", script.format(path=str(out), **values))
        return json.loads(out.read_text())


def prepare_desk(db_url: str) -> dict[str, int]:
    """The desk topped up to a working day's tubes; what it holds, read back (bench/intake.py)."""
    counts = shell_json(db_url, PREPARE_DESK)
    return {str(k): int(v) for k, v in counts.items()}


def run_tag() -> str:
    """This run's mark on its send-outs and control ids: base 36 of the second it started (6 characters)."""
    number, digits = int(time.time()), "0123456789abcdefghijklmnopqrstuvwxyz"
    tag = ""
    while number:
        number, digit = divmod(number, 36)
        tag = digits[digit] + tag
    return tag[-6:]


def _where(sources: list[str] | None, control_ids: list[str] | None) -> tuple[str, list[Any]]:
    if sources is not None:
        return "m.source = ANY(%s)", [sources]
    return "m.channel = 'mllp' AND m.control_id = ANY(%s)", [control_ids]


def inbound_outcomes(
    db_url: str, *, sources: list[str] | None = None, control_ids: list[str] | None = None
) -> dict[str, int]:
    """Inbound messages by outcome, for these import files or these control ids (received over MLLP)."""
    where, params = _where(sources, control_ids)
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            f"SELECT m.outcome, count(*) FROM lab_inboundmessage m WHERE {where} GROUP BY m.outcome ORDER BY 1",  # noqa: S608 - fixed text
            params,
        ).fetchall()
    return {str(outcome): int(n) for outcome, n in rows}


def intake_filed(
    db_url: str, *, sources: list[str] | None = None, control_ids: list[str] | None = None
) -> dict[str, int]:
    """What those messages filed: the observations they say, the Result rows pointing at them, and
    the send-outs they were matched to that are final now."""
    where, params = _where(sources, control_ids)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            f"""
            SELECT (SELECT coalesce(sum(m.observations_filed), 0) FROM lab_inboundmessage m WHERE {where}),
                   (SELECT count(*) FROM lab_result r JOIN lab_inboundmessage m ON m.id = r.inbound_id WHERE {where}),
                   (SELECT count(DISTINCT s.id) FROM lab_sendout s JOIN lab_inboundmessage m ON m.send_out_id = s.id
                    WHERE {where} AND s.status = 'final')
            """,  # noqa: S608 - fixed text
            params * 3,
        ).fetchone()
    assert row is not None
    return {"observations_filed": int(row[0]), "result_rows": int(row[1]), "send_outs_final": int(row[2])}


# The tables the send-outs import and the intake write to or read from.
ANALYZED = (
    "lab_sendout",
    "lab_testorder",
    "specimens_specimen",
    "backoffice_handoff",
    "lab_result",
    "lab_inboundmessage",
)


def analyze(db_url: str) -> None:
    """What autovacuum does for a table that just grew or changed: dead rows gone, planner statistics
    fresh. This machine's Postgres runs without autovacuum: never analyzed, a table is planned with no
    statistics; never vacuumed, the send-outs an earlier run's intake made final stay in the desk's
    status index (26,000 entries for its 300 rows awaiting results) and the desk read them all."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        for table in ANALYZED:
            conn.execute(f"VACUUM (ANALYZE) {table}")


def intake_phase(db_url: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Open send-outs and their results written, then ``hl7_import`` timed over the file batch."""
    tag = run_tag()
    total = args.intake + args.mllp
    say(f"HL7 intake: importing {total:,} open send-outs across the three demo labs (tag {tag})")
    info = shell_json(db_url, PREPARE_INTAKE, count=args.intake, mllp=args.mllp, tag=tag, folder=str(folder))
    analyze(db_url)
    say(
        f"HL7 intake: {info['send_outs_imported']:,} send-outs imported in {info['import_seconds']} s, "
        f"{info['messages']:,} + {info['mllp_messages']:,} messages written in {info['generate_seconds']} s"
    )
    say(f"HL7 intake: manage.py hl7_import over {info['messages']:,} messages in {len(info['files'])} files")
    started = time.monotonic()
    with (folder / "hl7_import.out").open("w") as out:
        cmd = [PYTHON, "manage.py", "hl7_import", *info["files"]]
        subprocess.run(cmd, cwd=BASE_DIR, env=app_env(db_url), stdout=out, check=True)
    seconds = time.monotonic() - started
    outcomes = inbound_outcomes(db_url, sources=info["files"])
    filed = intake_filed(db_url, sources=info["files"])
    return intake_result(info, seconds, outcomes, filed) | {"tag": tag}


def intake_result(
    info: dict[str, Any], seconds: float, outcomes: dict[str, int], filed: dict[str, int]
) -> dict[str, Any]:
    """The intake row: messages a second over the wall time, and whether every one was stored,
    matched and filed (each to its own send-out, now final; every observation a Result row)."""
    stored = sum(outcomes.values())
    matched = outcomes.get("matched", 0)
    complete = (
        stored == matched == info["messages"] == filed["send_outs_final"]
        and filed["result_rows"] == filed["observations_filed"] == info["observations_in_batch"]
    )
    return {
        "name": "HL7 intake (hl7_import)",
        "messages": info["messages"],
        "files": len(info["files"]),
        "seconds": round(seconds, 2),
        "messages_per_s": info["messages"] / seconds if seconds else 0.0,
        "stored": stored,
        "outcomes": outcomes,
        "observations_in_batch": info["observations_in_batch"],
        **filed,
        "all_stored_matched_filed": complete,
        "by_lab": info["by_lab"],
        "by_test": info["by_test"],
        "bytes": info["bytes_in_batch"],
        "setup": {"import_seconds": info["import_seconds"], "generate_seconds": info["generate_seconds"]},
        "mllp_file": info["mllp_file"],
    }


def control_id(message: str) -> str:
    """MSH-10 of an ER7 message (standard delimiters, as the ORU writer uses them)."""
    return message.split("\r", 1)[0].split("|")[9]


def msa(ack: str) -> tuple[str, str]:
    """MSA-1 and MSA-2 of an ACK."""
    code, _ = ack_code(ack)
    segment = next(s for s in ack.replace("\n", "\r").split("\r") if s.startswith("MSA|"))
    fields = segment.split("|")
    return code, fields[2] if len(fields) > 2 else ""


def percentile(samples: list[float], q: float) -> float:
    """The nearest-rank percentile (0.95: the smallest sample at least 95 % of them are under or at)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] if ordered else 0.0


def wait_for_port(port: int, process: subprocess.Popen[bytes], *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"hl7_listen did not listen on {port} within {seconds:g} s") from None
            time.sleep(0.2)


def mllp_phase(db_url: str, mllp_file: str, *, connect_as: str = "app") -> dict[str, Any]:
    """``hl7_listen`` on a free port; each message sent alone (one connection, one ACK), timed to its ACK.

    The listener connects as the app's role, as in production (``connect_as=""``: as ``db_url`` says,
    for a database ``db_roles`` hasn't set up, such as the tests')."""
    messages = [line.replace("\\r", "\r") for line in Path(mllp_file).read_text().split("\n") if line]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cmd = [PYTHON, "manage.py", "hl7_listen", "--host", "127.0.0.1", "--port", str(port)]
    env = app_env(db_url, connect_as)
    if not connect_as:  # no app role to serve as: production would refuse to start (audit.E001)
        env["DEBUG"] = "true"
    listener = subprocess.Popen(cmd, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL)
    samples: list[float] = []
    refused: list[str] = []
    try:
        wait_for_port(port, listener)
        say(f"MLLP: {len(messages):,} messages to hl7_listen on 127.0.0.1:{port}, one at a time")
        started = time.monotonic()
        for message in messages:
            sent = time.perf_counter()
            ack = send_mllp("127.0.0.1", port, message, timeout=30)
            samples.append((time.perf_counter() - sent) * 1000)
            code, echoed = msa(ack)
            if code != "AA" or echoed != control_id(message):
                refused.append(f"{control_id(message)}: {code} for {echoed}")
        seconds = time.monotonic() - started
    finally:
        listener.terminate()
        try:
            listener.wait(timeout=10)
        except subprocess.TimeoutExpired:
            listener.kill()
    ids = [control_id(m) for m in messages]
    outcomes = inbound_outcomes(db_url, control_ids=ids)
    return mllp_result(samples, seconds, refused, outcomes, intake_filed(db_url, control_ids=ids))


def mllp_result(
    samples: list[float], seconds: float, refused: list[str], outcomes: dict[str, int], filed: dict[str, int]
) -> dict[str, Any]:
    """The MLLP row: send to ACK per message, p50/p95; every ACK AA echoing MSH-10, every message filed."""
    return {
        "name": "MLLP round trip (hl7_listen)",
        "messages": len(samples),
        "seconds": round(seconds, 2),
        "messages_per_s": len(samples) / seconds if seconds else 0.0,
        "p50_ms": percentile(samples, 0.50),
        "p95_ms": percentile(samples, 0.95),
        "max_ms": max(samples, default=0.0),
        "acks_aa_echoing_msh10": len(samples) - len(refused),
        "not_aa_or_wrong_msa2": refused[:10],
        "stored": sum(outcomes.values()),
        "outcomes": outcomes,
        **filed,
    }


def print_intake(report: dict[str, Any]) -> None:
    intake, mllp = report.get("intake"), report.get("mllp")
    if intake:
        print()
        print(
            f"{intake['name']}: {intake['messages']:,} ORU^R01 in {intake['files']} files, {intake['seconds']:.1f} s "
            f"wall (the command's start-up included): {intake['messages_per_s']:.0f} messages/s"
        )
        print(
            f"  read back: {intake['stored']:,} stored {intake['outcomes']}; {intake['result_rows']:,} Result rows "
            f"for {intake['observations_in_batch']:,} observations sent; {intake['send_outs_final']:,} send-outs "
            f"final; every message stored, matched and filed: {'yes' if intake['all_stored_matched_filed'] else 'NO'}"
        )
        print(f"  by lab {intake['by_lab']}; by test {intake['by_test']}")
    if mllp:
        print(
            f"{mllp['name']}: {mllp['messages']:,} messages one at a time: p50 {mllp['p50_ms']:.1f} ms, "
            f"p95 {mllp['p95_ms']:.1f} ms, max {mllp['max_ms']:.1f} ms, {mllp['messages_per_s']:.0f} messages/s"
        )
        print(
            f"  {mllp['acks_aa_echoing_msh10']:,} ACKs AA with MSA-2 = MSH-10; read back: {mllp['stored']:,} stored "
            f"{mllp['outcomes']}, {mllp['result_rows']:,} Result rows, {mllp['send_outs_final']:,} send-outs final"
        )


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "os": platform.platform()}


def main_run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    name = args.database or f"backoffice_bench_{args.handoffs}"
    db_url = ensure_database(url, name, fresh=args.fresh)
    counts = prepare(db_url, patients=args.patients, handoffs=args.handoffs, open_=args.open)
    if args.access_rows:
        say(f"access log: loading up to {args.access_rows:,} rows as the owner")
        counts.update(access_rows.load(db_url, args.access_rows, say=say))
    with psycopg.connect(db_url) as conn:
        counts["access_rows"] = access_rows.count(conn)
    left = entry_pool_unfinished(db_url)
    if left:
        say(f"finishing {left} result-entry specimens an earlier run left at the bench")
        finish_entry_pool(db_url)
    detail, waiting = open_handoff_ids(db_url)
    say("send-out desk: topping up the waiting, packed and sent send-outs")
    desk = prepare_desk(db_url)
    analyze(db_url)
    server = Server(db_url, args)
    results: list[Result] = []
    entry: tuple[dict[str, Any], EntryPool] | None = None
    try:
        ma_cookie, ma_csrf = login(server.base, "ma")
        sup_cookie, _ = login(server.base, "supervisor")
        lab_cookie, _ = login(server.base, "labtech")
        doc_cookie, _ = login(server.base, "clinician")
        bearer = ("Authorization: Bearer " + shell_json(db_url, FHIR_CLIENT)["token"],)
        pages: list[tuple[str, str, str, int, dict[str, Any]]] = [
            ("healthz", "/healthz", "", 200, {}),
            # The floor for a signed-in page: session and user loaded, every middleware run, no page.
            ("signed-in floor", "/session/status/", ma_cookie, 200, {}),
            ("queue (MA)", "/queue/", ma_cookie, 200, {}),
            ("handoff detail (MA)", f"/handoffs/{detail}/", ma_cookie, 200, {}),
            ("patient's allergies (MA)", f"/handoffs/{detail}/allergies/", ma_cookie, 200, {}),
            ("stations (MA)", "/stations/", ma_cookie, 200, {}),
            ("procedure queue (supervisor)", "/procedures/queue/", sup_cookie, 200, {}),
            ("supervisor board", "/board/", sup_cookie, 200, {}),
            # Every patient still in the clinic, each item's state: the MA's view beside the board.
            ("in the clinic now (MA)", "/clinic-now/", ma_cookie, 200, {}),
            # The tracking list, unfiltered: every specimen still moving (GETs change none of them).
            (
                "specimen list (lab tech)",
                "/specimens/",
                lab_cookie,
                200,
                {"specimens_listed": tracked_specimens(db_url)},
            ),
            # The in-house bench: what waits for results, the QC board, and a clinician's results inbox.
            ("bench (lab tech)", "/lab/results/", lab_cookie, 200, {}),
            ("QC board (lab tech)", "/lab/qc/", lab_cookie, 200, {}),
            ("results inbox (clinician)", "/lab/inbox/", doc_cookie, 200, {}),
            # The send-out desk: every tube waiting to be packed, the open shipments, the sent ones.
            ("send-out desk (lab tech)", "/lab/send-outs/", lab_cookie, 200, desk),
            # The last 30 days' turnaround times over the scale history, as served: computed once per worker
            # and kept TURNAROUND_CACHE_SECONDS (--turnaround: computed each time, at 10k vs 1M tests).
            ("turnaround (supervisor)", "/lab/turnaround/", sup_cookie, 200, {}),
            # The FHIR read API, a token's (no session): a page of 50 patients, of 50 service requests.
            ("FHIR Patient search, 50 a page (API client)", "/fhir/Patient?_count=50", "", 200, {"fhir": True}),
            (
                "FHIR ServiceRequest search, 50 a page (API client)",
                "/fhir/ServiceRequest?_count=50",
                "",
                200,
                {"fhir": True},
            ),
        ]
        for label, path, cookie, status, notes in pages:
            headers = bearer if notes.pop("fhir", False) else ()
            expect_status(server.base, path, cookie, status, headers=headers)
            say(f"{label}: {args.connections} connections, {args.duration} s")
            wrk(server.base, path, duration=2, connections=args.connections, cookie=cookie, headers=headers)  # warm-up
            raw = wrk(
                server.base, path, duration=args.duration, connections=args.connections, cookie=cookie, headers=headers
            )
            result = measure(label, path, raw)
            result.notes.update(notes)
            results.append(result)
            # Again at once, with the audit checkpoints sealed every second beside it (not over loaded
            # rows that no checkpoint has sealed: the catch-up over millions would swamp it).
            if path == "/queue/" and not args.access_rows:
                say(f"queue (MA) while sealing every second: {args.connections} connections, {args.duration} s")
                with audit_seal.sealing(app_env(db_url)) as loop:
                    raw = wrk(server.base, path, duration=args.duration, connections=args.connections, cookie=cookie)
                sealed = measure("queue (MA), sealing 1/s", path, raw)
                sealed.notes.update(loop)
                results.append(sealed)
        results += access_log_pages(server.base, db_url, args)
        with tempfile.NamedTemporaryFile("w", suffix=".ids", delete=False) as ids:
            ids.write("\n".join(waiting))
        say(f"claim POST over {len(waiting)} waiting handoffs: {args.connections} connections, {args.duration} s")
        raw = wrk(
            server.base,
            "/",
            duration=args.duration,
            connections=args.connections,
            cookie=ma_cookie,
            expect=302,
            extra_env={"BENCH_POST_PATH": "/handoffs/%s/claim/", "BENCH_IDS": ids.name, "BENCH_CSRF": ma_csrf},
        )
        Path(ids.name).unlink()
        release_claimed(db_url, waiting)
        claim = measure("claim handoff (POST)", "/handoffs/<uuid>/claim/", raw)
        claim.notes["waiting_handoffs"] = len(waiting)
        results.append(claim)
        entry = entry_phase(server.base, db_url, args)
    finally:
        server.stop()
        if entry is not None:
            raw, pool = entry
            written, rows = results_written(db_url, pool.order_ids)  # with any the drain's deadline missed
            results.append(entry_result(raw, pool, written, rows))
            if raw["past_pool"]:
                say(f"result entry ran out of specimens ({len(pool.items)}): its row is not a measurement")
        if entry_pool_unfinished(db_url):
            try:
                finish_entry_pool(db_url)
            except subprocess.CalledProcessError:
                say("result entry: finishing the pool failed (above); the next run finishes it before measuring")
    healthz, floor = results[0].rps, results[1].rps
    for result in results[1:]:
        result.ratio_to_healthz = result.rps / healthz if healthz else None
        if result is not results[1]:
            result.ratio_to_floor = result.rps / floor if floor else None
    # With the server stopped, so wrk and gunicorn don't share the CPU with it.
    hl7: dict[str, Any] = {}
    if args.intake:
        with tempfile.TemporaryDirectory(prefix="bench-hl7-") as folder:
            hl7["intake"] = intake_phase(db_url, args, Path(folder))
            mllp_file = hl7["intake"].pop("mllp_file")
            if args.mllp:
                hl7["mllp"] = mllp_phase(db_url, mllp_file)
    queue_rps = next(r.rps for r in results if r.path == "/queue/")
    if args.access_rows:
        say("audit checkpoints: not timed over loaded rows no checkpoint sealed (see bench/access_rows.py)")
    else:
        say("audit checkpoints: the catch-up seal, a minute of queue traffic sealed, audit_verify")
        hl7["audit_seal"] = audit_seal.run(app_env(db_url), views=round(queue_rps * 60))
    say(f"label rendering in-process: {labels.RUNS} calls per output after {labels.WARMUP} warm-up")
    configure(name)  # the server's settings (the clinic's TIME_ZONE) for specimens.labels
    return {"database": counts, "results": [asdict(r) for r in results], **hl7, "labels": labels.run()}


def access_log_pages(base: str, db_url: str, args: argparse.Namespace) -> list[Result]:
    """The auditor's access-log searches (POSTed, as the page sends them): the whole log's newest page,
    and one patient's rows (bench/access_rows.py)."""
    cookie, csrf = login(base, "auditor")
    measured = []
    with tempfile.NamedTemporaryFile("w", suffix=".ids") as one:
        one.write("audit\n")
        one.flush()
        for label, body in access_rows.searches(db_url):
            env = {
                "BENCH_POST_PATH": "/audit/",
                "BENCH_IDS": one.name,
                "BENCH_CSRF": csrf,
                "BENCH_POST_BODY": "csrfmiddlewaretoken={csrf}&" + body,
            }
            say(f"{label}: {args.connections} connections, {args.duration} s")
            wrk(base, "/", duration=2, connections=args.connections, cookie=cookie, extra_env=env)  # warm-up
            raw = wrk(base, "/", duration=args.duration, connections=args.connections, cookie=cookie, extra_env=env)
            measured.append(measure(label, "/audit/ (POST)", raw))
    return measured


def growth_run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    rows = []
    for handoffs in (args.growth_small, args.growth_large):
        db_url = ensure_database(url, f"backoffice_bench_{handoffs}", fresh=args.fresh)
        counts = prepare(db_url, patients=args.patients, handoffs=handoffs, open_=args.open)
        server = Server(db_url, args)
        try:
            cookie, _ = login(server.base, "ma")
            expect_status(server.base, "/queue/", cookie, 200)
            wrk(server.base, "/queue/", duration=2, connections=args.connections, cookie=cookie)
            raw = wrk(server.base, "/queue/", duration=args.duration, connections=args.connections, cookie=cookie)
        finally:
            server.stop()
        result = measure(f"queue at {counts['handoffs_total'] - counts['handoffs_open']:,} historical", "/queue/", raw)
        rows.append({"database": counts, "result": asdict(result)})
    ratio = rows[1]["result"]["p95_ms"] / rows[0]["result"]["p95_ms"]
    return {"growth": rows, "p95_ratio_large_to_small": ratio}


def turnaround_run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """The dashboard at --turnaround-small then --turnaround-large tests, topped up in one database."""
    db_url = ensure_database(url, args.database or "bench_tat", fresh=args.fresh)
    env = app_env(db_url, "owner")
    manage(env, "db_roles")
    say("migrate and seed_demo (the users, catalogs and rows the generated tests copy)")
    manage(env, "migrate", "--no-input", "-v", "0")
    manage(env, "seed_demo")
    manage(env, "collectstatic", "--no-input", "-v", "0")
    rows = []
    for total in (args.turnaround_small, args.turnaround_large):
        started = time.monotonic()
        counts: dict[str, float] = {**turnaround.top_up(db_url, total, say=say)}
        counts["generate_seconds"] = round(time.monotonic() - started, 1)
        # The SQL's own time at each volume: every request computes (the page keeps figures a few minutes).
        server = Server(db_url, args, env={"TURNAROUND_CACHE_SECONDS": "0"})
        try:
            cookie, _ = login(server.base, "supervisor")
            path = "/lab/turnaround/"
            expect_status(server.base, path, cookie, 200)
            say(f"turnaround at {total:,}: {args.connections} connections, {args.duration} s")
            wrk(server.base, path, duration=2, connections=args.connections, cookie=cookie)
            raw = wrk(server.base, path, duration=args.duration, connections=args.connections, cookie=cookie)
        finally:
            server.stop()
        result = measure(f"turnaround at {counts['turnaround_tests_generated']:,} tests", path, raw)
        result.notes.update(counts)
        rows.append({"database": counts, "result": asdict(result)})
    ratio = rows[1]["result"]["p95_ms"] / rows[0]["result"]["p95_ms"]
    return {"turnaround": rows, "turnaround_p95_ratio_large_to_small": ratio}


def print_table(report: dict[str, Any]) -> None:
    machine, settings = report["machine"], report["settings"]
    print()
    print(f"Machine: {machine['cores']} cores, {machine['cpu']}, Python {machine['python']}")
    print(
        f"Server: {settings['server']}; wrk {settings['connections']} connections, {settings['duration_s']} s per page"
    )
    if "results" in report:
        db = report["database"]
        print()
        print(
            f"Database: {db['patients']:,} patients, {db['handoffs_total']:,} handoffs "
            f"({db['handoffs_open']:,} open), {db['handoff_events']:,} events, {db['specimens']:,} specimens, "
            f"{db.get('access_rows', 0):,} access rows"
        )
        print(
            f"{'page':<28} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7} "
            f"{'vs floor':>9} {'vs healthz':>11}"
        )
        for r in report["results"]:
            to_healthz = f"{r['ratio_to_healthz'] * 100:.0f}%" if r["ratio_to_healthz"] else "—"
            to_floor = f"{r['ratio_to_floor'] * 100:.0f}%" if r.get("ratio_to_floor") else "—"
            print(
                f"{r['name']:<28} {r['rps']:>9.0f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                f"{r['errors']:>7} {to_floor:>9} {to_healthz:>11}"
            )
        for r in report["results"]:
            if r["notes"]:
                print(f"  {r['name']}: " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in r["notes"].items()))
    print_intake(report)
    if "audit_seal" in report:
        audit_seal.print_table(report["audit_seal"])
    if "labels" in report:
        labels.print_table(report["labels"])
    if "growth" in report:
        print()
        for row in report["growth"]:
            r = row["result"]
            print(f"{r['name']:<32} req/s {r['rps']:>7.0f}  p50 {r['p50_ms']:>6.1f} ms  p95 {r['p95_ms']:>6.1f} ms")
        print(f"queue p95 ratio (large / small): {report['p95_ratio_large_to_small']:.2f}")
    if "turnaround" in report:
        print()
        for row in report["turnaround"]:
            r = row["result"]
            print(f"{r['name']:<32} req/s {r['rps']:>7.0f}  p50 {r['p50_ms']:>6.1f} ms  p95 {r['p95_ms']:>6.1f} ms")
            print("  " + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in row["database"].items()))
        print(f"turnaround p95 ratio (large / small): {report['turnaround_p95_ratio_large_to_small']:.2f} (target 1.5)")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backoffice.devtools.bench", description=__doc__)
    parser.add_argument("--growth", action="store_true", help="queue p95 at --growth-small vs --growth-large")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--handoffs", type=int, default=200_000, help="historical handoffs")
    parser.add_argument("--open", type=int, default=500, help="open handoffs")
    parser.add_argument("--growth-small", type=int, default=10_000)
    parser.add_argument("--growth-large", type=int, default=1_000_000)
    parser.add_argument(
        "--turnaround", action="store_true", help="/lab/turnaround/ p95 at --turnaround-small vs --turnaround-large"
    )
    parser.add_argument("--turnaround-small", type=int, default=10_000, help="generated resulted tests")
    parser.add_argument("--turnaround-large", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=15, help="seconds per page")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="per worker (gthread)")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--intake", type=int, default=10_000, help="ORU messages hl7_import is timed on (0: skip)")
    parser.add_argument("--mllp", type=int, default=500, help="messages sent one at a time to hl7_listen (0: skip)")
    parser.add_argument("--fresh", action="store_true", help="drop and reload the benchmark database(s)")
    parser.add_argument(
        "--access-rows",
        type=int,
        default=0,
        help="load the access log up to this many rows (one patient each, over 6 years) before the run",
    )
    parser.add_argument(
        "--database", default="", help="the main run's database name (default backoffice_bench_<handoffs>)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk (make bench installs it when run as root)")
    if not args.port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            args.port = probe.getsockname()[1]
    url = server_url()
    report: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "server": f"gunicorn {args.worker_class}, {args.workers} workers"
            + (f" x {args.threads} threads" if args.worker_class == "gthread" else ""),
            "connections": args.connections,
            "duration_s": args.duration,
            "load_generator": "wrk -t2 on the same machine",
        },
    }
    if args.turnaround:
        report |= turnaround_run(args, url)
    else:
        report |= growth_run(args, url) if args.growth else main_run(args, url)
    print_table(report)
    out = BASE_DIR / "bench-results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kind = "turnaround" if args.turnaround else "growth" if args.growth else "pages"
    for path in (out / f"{kind}-{stamp}.json", out / f"{kind}-latest.json"):
        path.write_text(json.dumps(report, indent=2))
    say(f"wrote {out / f'{kind}-latest.json'}")


if __name__ == "__main__":
    main()
