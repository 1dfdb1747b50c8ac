"""What the audit checkpoints cost (backoffice.audit.seal), for `make bench`.

Two measurements, both as the app's database role, like the worker:

- **The queue while sealing**: the queue row again with a process sealing once a second beside the
  server (``sealing``, caught up on the rows already there before the timed phase), sixty times the worker's once a minute, so the difference to the plain queue
  row is an upper bound on what the checkpoints take from the queue.
- **Sealing and verifying, timed** (``run``, with the server stopped): the catch-up seal over every
  row not yet sealed (the first run on a seeded database seals its whole history), a seal over what
  one minute of queue traffic writes (the queue row's requests a second times sixty, each an access
  row with 50 patient rows, written first), and
  ``audit_verify``'s check of every sealed row.
"""

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[3]
PYTHON = sys.executable

SEAL_LOOP = """
import json, pathlib, time
from backoffice.audit.seal import seal
stop, out = pathlib.Path({stop!r}), pathlib.Path({out!r})
seal(); seal()  # catch up on what the seed and the earlier pages wrote, before the timed phase
pathlib.Path({ready!r}).touch()
runs = rows = 0
busy = 0.0
while not stop.exists():
    started = time.monotonic()
    rows += seal().rows
    busy += time.monotonic() - started
    runs += 1
    time.sleep({interval})
out.write_text(json.dumps({{"runs": runs, "rows": rows, "busy_s": round(busy, 3)}}))
"""

TIMED = """
import json, time
from django.db import connection
from backoffice.audit.seal import seal, verify
from backoffice.models import AccessLog, AccessLogPatient, Patient, User

def timed(fn):
    started = time.monotonic()
    value = fn()
    return value, round(time.monotonic() - started, 3)

out = {{}}
# Catch up: the first seal notes the horizon, the second seals everything below it.
seal()
caught_up, seconds = timed(seal)
out["catch_up"] = {{"rows": caught_up.rows, "seconds": seconds, "tables": len(caught_up.tables)}}
# One minute of queue traffic: the access rows a measured queue rate writes, then sealed.
user = User.objects.get(username="ma")
patients = list(Patient.objects.order_by("id").values_list("id", flat=True)[:{per_view}])
views = {views}
with connection.cursor() as cursor:
    cursor.execute(
        "WITH logs AS (INSERT INTO backoffice_accesslog (at, user_id, username, action, what, object_ref, outcome) "
        "SELECT now(), %s, 'ma', 'list', 'queue', '', 'ok' FROM generate_series(1, %s) RETURNING id, at) "
        "INSERT INTO backoffice_accesslogpatient (log_id, patient_id, at) "
        "SELECT logs.id, p, logs.at FROM logs, unnest(%s::bigint[]) p",
        [user.pk, views, patients],
    )
seal()
minute, seconds = timed(seal)
out["minute"] = {{"views": views, "rows": minute.rows, "seconds": seconds}}
report, seconds = timed(verify)
out["verify"] = {{
    "rows": sum(t.sealed_rows for t in report.tables), "seconds": seconds, "ok": report.ok,
    "checkpoints": report.checkpoints,
}}
with open({path!r}, "w") as f:
    json.dump(out, f)
"""


@contextmanager
def sealing(env: dict[str, str], *, interval: float = 1.0) -> Iterator[dict[str, Any]]:
    """A process sealing every ``interval`` seconds while the block runs; its runs, rows and busy time."""
    stats: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-seal-") as tmp:
        stop, out, ready = Path(tmp) / "stop", Path(tmp) / "out.json", Path(tmp) / "ready"
        code = SEAL_LOOP.format(stop=str(stop), out=str(out), ready=str(ready), interval=interval)
        process = subprocess.Popen([PYTHON, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env)
        deadline = time.monotonic() + 600
        while not ready.exists():  # Django's start-up and the catch-up, outside the timed phase
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the sealing loop did not start")
            time.sleep(0.2)
        try:
            yield stats
        finally:
            stop.touch()
            process.wait(timeout=120)
            if out.exists():
                stats.update(json.loads(out.read_text()))


def run(env: dict[str, str], *, views: int, per_view: int = 50) -> dict[str, Any]:
    """Seal and verify timed in one Django process (see the module's docstring); ``views`` queue views
    of ``per_view`` patients each stand for a minute of queue traffic."""
    with tempfile.TemporaryDirectory(prefix="bench-seal-") as tmp:
        path = Path(tmp) / "timed.json"
        code = TIMED.format(path=str(path), views=max(1, views), per_view=per_view)
        subprocess.run([PYTHON, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env, check=True)
        return json.loads(path.read_text())


def print_table(report: dict[str, Any]) -> None:
    catch_up, minute, verified = report["catch_up"], report["minute"], report["verify"]
    print()
    print("Audit checkpoints (backoffice.audit.seal), as the app's role:")
    print(
        f"  catch-up seal: {catch_up['rows']:,} rows in {catch_up['seconds']:.2f} s "
        f"({catch_up['rows'] / max(catch_up['seconds'], 1e-9):,.0f} rows/s) over {catch_up['tables']} tables"
    )
    print(
        f"  one minute of queue traffic ({minute['views']:,} queue views, {minute['rows']:,} rows): "
        f"sealed in {minute['seconds'] * 1000:.0f} ms, once a minute"
    )
    print(
        f"  audit_verify: {verified['rows']:,} sealed rows in {verified['seconds']:.2f} s "
        f"({verified['rows'] / max(verified['seconds'], 1e-9):,.0f} rows/s), "
        f"{verified['checkpoints']:,} checkpoints, {'clean' if verified['ok'] else 'PROBLEMS'}"
    )
