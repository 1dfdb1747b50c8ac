"""Back up the database and restore it into a clean one, with the audit trail checked on arrival.

``manage.py backup FILE`` runs ``pg_dump --format=custom`` as the owner role (``DB_CONNECT_AS=owner``,
or a superuser's login): every table, sequence, trigger and function of the schema, without owners
or grants, which belong to the server the backup is restored on.

``manage.py restore FILE --database-url URL`` restores it into a new, empty database, refusing any
other: the owner and app roles made as ``db_roles`` makes them (the URL's login must be a superuser,
or have CREATEROLE and act as the owner), ``pg_restore`` as the owner in one transaction, the app
role's grants applied again (backoffice.audit.dbroles), and then ``audit_verify`` run on the result:
a backup of a tampered database, or a dump edited on its way, restores with the problem reported and
the command failing.

The tools: the ``pg_dump``/``pg_restore`` whose version is the server's or the nearest above it, of
those on PATH, in /usr/lib/postgresql/*/bin and the ones the embedded server (pgserver) ships.
"""

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from backoffice.audit import dbroles

# libpq's connection keywords as the environment variables pg_dump and pg_restore read.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}


class BackupError(Exception):
    """A backup or restore that can't be done, in words for the person running it."""


def _version(binary: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def _candidates(name: str) -> list[str]:
    found = []
    on_path = shutil.which(name)
    if on_path:
        found.append(on_path)
    found += [str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))]
    # The embedded server's own binaries (make run without DATABASE_URL), found without importing it.
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.origin:
        shipped = Path(spec.origin).parent / "pginstall" / "bin" / name
        if shipped.exists():
            found.append(str(shipped))
    return list(dict.fromkeys(found))


def pg_tool(name: str, server_version_num: int) -> str:
    """The ``pg_dump`` or ``pg_restore`` for a server of this version: its major version or the nearest
    above (an older pg_dump refuses a newer server)."""
    major = server_version_num // 10000
    usable = []
    for binary in _candidates(name):
        version = _version(binary)
        if version and version[0] >= major:
            usable.append((version, binary))
    if not usable:
        raise BackupError(
            f"No {name} of PostgreSQL {major} or later found (PATH, /usr/lib/postgresql/*/bin, pgserver): "
            f"install postgresql-client-{major}."
        )
    return min(usable)[1]


def libpq_env(params: Mapping[str, Any]) -> dict[str, str]:
    """The environment for pg_dump/pg_restore from Django's (or psycopg's) connection parameters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, variable in _LIBPQ_ENV.items():
        value = params.get(key)
        if value not in (None, ""):
            env[variable] = str(value)
    return env


@dataclass(frozen=True)
class Backup:
    path: Path
    database: str
    bytes: int
    seconds: float


def _server_version(conn: "psycopg.Connection[Any]") -> int:
    return int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]


def backup(params: Mapping[str, Any], path: Path, *, owner: str) -> Backup:
    """``pg_dump --format=custom`` of the database ``params`` name, as the owner role, into ``path``."""
    conninfo = {k: v for k, v in params.items() if k in _LIBPQ_ENV}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        # pg_has_role fails on a role that doesn't exist: a superuser's backup needs none.
        superuser, member, database = conn.execute(
            "SELECT rolsuper, CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = %s) "
            "THEN pg_has_role(current_user, %s, 'MEMBER') ELSE false END, current_database() "
            "FROM pg_roles WHERE rolname = current_user",
            [owner, owner],
        ).fetchone()  # type: ignore[misc]
        if not superuser and not member:
            raise BackupError(
                f"This login can't act as the owner role {owner!r}, so it may not read every table: "
                "run it as the owner (DB_CONNECT_AS=owner manage.py backup FILE)."
            )
        version = _server_version(conn)
    cmd = [pg_tool("pg_dump", version), "--format=custom", "--no-owner", "--no-acl", f"--file={path}"]
    if not superuser:
        cmd.append(f"--role={owner}")
    started = datetime.now(UTC)
    done = subprocess.run(cmd, env=libpq_env(conninfo), capture_output=True, text=True)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    seconds = (datetime.now(UTC) - started).total_seconds()
    return Backup(path=path, database=str(database), bytes=path.stat().st_size, seconds=seconds)


def archive_created_at(path: Path, pg_restore: str) -> datetime:
    """When the dump was taken: its table of contents says so; the file's time if it can't be read."""
    listing = subprocess.run([pg_restore, "--list", str(path)], capture_output=True, text=True)  # noqa: S603
    if listing.returncode != 0:
        raise BackupError(f"{path} is not a backup pg_restore can read: {listing.stderr.strip()}")
    match = re.search(r"Archive created at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)", listing.stdout)
    if match and match.group(2) in ("UTC", "GMT"):
        return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)


def _objects(conn: "psycopg.Connection[Any]") -> int:
    """Tables, views, sequences and functions the database holds outside the system schemas."""
    return int(
        conn.execute(
            """
            SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'
                      AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f'))
                 + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
            """
        ).fetchone()[0]  # type: ignore[index]
    )


@dataclass(frozen=True)
class Restored:
    database: str
    created_at: datetime  # when the backup was taken
    grants: int
    seconds: float


def restore(path: Path, url: str, *, owner: str, app: str) -> Restored:
    """Into the empty database at ``url``: roles, pg_restore as the owner, the app role's grants."""
    if not path.is_file():
        raise BackupError(f"No backup file at {path}.")
    with psycopg.connect(url, autocommit=True) as conn:
        database = str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
        present = _objects(conn)
        if present:
            raise BackupError(
                f"The database {database!r} is not empty ({present} tables, sequences or functions): restore "
                "only into a new, empty database (createdb NAME)."
            )
        version = _server_version(conn)
    pg_restore = pg_tool("pg_restore", version)
    created_at = archive_created_at(path, pg_restore)
    started = datetime.now(UTC)
    with psycopg.connect(url) as conn:  # the roles and the schema's privileges first, as db_roles does
        dbroles.set_up(conn, owner=owner, app=app, app_password=None)
    cmd = [pg_restore, f"--dbname={url}", f"--role={owner}", "--no-owner", "--no-acl"]
    cmd += ["--exit-on-error", "--single-transaction", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=libpq_env({}))  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing restored: {done.stderr.strip()}")
    with psycopg.connect(url) as conn:  # the grants again, now that the tables exist
        _, grants, _ = dbroles.set_up(conn, owner=owner, app=app, app_password=None)
    seconds = (datetime.now(UTC) - started).total_seconds()
    return Restored(database=database, created_at=created_at, grants=len(grants), seconds=seconds)
