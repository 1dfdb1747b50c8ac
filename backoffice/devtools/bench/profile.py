"""`make profile`: where one page spends its time, in-process, on the benchmark database.

    python -m backoffice.devtools.bench.profile queue            # /queue/ as the MA
    python -m backoffice.devtools.bench.profile board --tree     # plus pyinstrument's call tree
    python -m backoffice.devtools.bench.profile detail -n 300

Signs in through the real login page with Django's test client (DEBUG off, the cached template
loader, the production middleware), warms up, then prints per request: wall and CPU milliseconds,
SQL queries and the time spent waiting on them. With --tree it runs the same requests under
pyinstrument, a development tool that never runs in the served app. Run `make bench` once first:
it creates and loads the database this reads (`backoffice_bench_200000` on DATABASE_URL's server).
"""

import argparse
import os
import statistics
import sys
import time
from typing import Any

PAGES = {
    "healthz": ("", "/healthz"),
    "session-status": ("ma", "/session/status/"),
    "account": ("ma", "/account/2fa/"),
    "queue": ("ma", "/queue/"),
    "queue-htmx": ("ma", "/queue/"),
    "detail": ("ma", "/handoffs/{detail}/"),
    "board": ("supervisor", "/board/"),
    "desk": ("labtech", "/lab/send-outs/"),
}


def configure(database: str) -> None:
    """The benchmark server's environment (bench.app_env), for Django's test client in this process."""
    from backoffice.devtools.bench.__main__ import app_env, server_url, with_database

    os.environ.update(app_env(with_database(server_url(), database)), ALLOWED_HOSTS="testserver")
    os.environ["DJANGO_SETTINGS_MODULE"] = "backoffice.settings"
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backoffice.devtools.bench.profile", description=__doc__)
    parser.add_argument("page", choices=sorted(PAGES))
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--tree", action="store_true", help="print pyinstrument's call tree")
    parser.add_argument("--database", default="backoffice_bench_200000")
    args = parser.parse_args()
    configure(args.database)

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from backoffice.devtools.bench.__main__ import DEMO_PASSWORD
    from backoffice.devtools.demo_totp import unused_demo_code
    from backoffice.models import Handoff

    username, path = PAGES[args.page]
    if "{detail}" in path:
        claimed = Handoff.objects.filter(status="claimed").order_by("created_at").first()
        if claimed is None:
            raise SystemExit("no claimed handoff: run `make bench` first to load the benchmark database")
        path = path.format(detail=claimed.uuid)
    client = Client()
    if username:
        answer = client.post("/login/", {"username": username, "password": DEMO_PASSWORD})
        if answer.status_code != 302:
            raise SystemExit(f"login as {username} answered {answer.status_code}")
        if answer["Location"].startswith("/login/otp/"):  # the supervisor: the demo key's code
            answer = client.post("/login/otp/", {"code": unused_demo_code(username)})
            if answer.status_code != 302:
                raise SystemExit(f"the code step as {username} answered {answer.status_code}")
    headers: dict[str, Any] = {"HTTP_HX_REQUEST": "true"} if args.page.endswith("-htmx") else {}

    def hit() -> None:
        response = client.get(path, **headers)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")

    for _ in range(20):
        hit()
    walls, cpus = [], []
    with CaptureQueriesContext(connection) as capture:
        hit()
    # Read now: the next request's request_started signal empties the connection's query log.
    queries = list(capture.captured_queries)
    for _ in range(args.requests):
        wall, cpu = time.perf_counter(), time.process_time()
        hit()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    sql = [float(q["time"]) * 1000 for q in queries]
    print(f"{path} as {username or 'anonymous'}: {args.requests} requests")
    print(f"  wall ms  median {statistics.median(walls):.2f}  p95 {statistics.quantiles(walls, n=20)[-1]:.2f}")
    print(f"  CPU ms   median {statistics.median(cpus):.2f}")
    print(f"  SQL      {len(sql)} queries, {sum(sql):.2f} ms (one request)")
    for q in queries:
        print(f"    {float(q['time']) * 1000:6.2f} ms  {q['sql'][:150]}")
    if args.tree:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0002)
        with profiler:
            for _ in range(args.requests):
                hit()
        sys.stdout.write(profiler.output_text(unicode=True, color=False, show_all=os.environ.get("PROFILE_ALL") == "1"))


if __name__ == "__main__":
    main()
