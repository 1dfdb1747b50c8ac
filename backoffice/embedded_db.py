"""Start the project's own Postgres (pgserver) when no DATABASE_URL is given.

The data lives in `.pgdata/` inside the checkout (git-ignored). pgserver keeps one
server per data folder and stops it when the last process using it exits.
"""

import logging
import os
from pathlib import Path


def embedded_database_url(base_dir: Path) -> str:
    runtime = base_dir / ".runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    # pgserver reads its lock path from XDG_RUNTIME_DIR at import time.
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    import pgserver

    # pgserver narrates every start and stop at INFO, some of it from atexit after logging shut down.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    server = pgserver.get_server(base_dir / ".pgdata")
    return str(server.get_uri())
