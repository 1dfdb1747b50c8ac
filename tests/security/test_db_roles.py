"""The two database roles: the app's role can't rewrite the append-only tables, even with
pgtrigger.ignore set, and production refuses to start as a role that could.

The suite runs as a superuser; these tests create the roles (named after the test database, so runs
on one cluster don't meet), run ``manage.py db_roles`` on the test database and connect as the app
role with psycopg. Roles are cluster-wide: the fixture hands everything back and drops them.
"""

import io
import os
import secrets
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import errors, sql

from backoffice.audit.dbroles import append_only_models, append_only_tables, refusals
from backoffice.models import AccessLog, User
from backoffice.transitions import APPEND_ONLY

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

BASE_DIR = Path(__file__).resolve().parents[2]


@dataclass
class Roles:
    owner: str
    app: str
    password: str

    def connect(self, user: str | None = None) -> psycopg.Connection:
        params = connection.get_connection_params()
        params.update(user=user or self.app, password=self.password)
        return psycopg.connect(**params)

    def url(self, user: str | None = None) -> str:
        """A DATABASE_URL for the test database as the app role (or ``user``)."""
        settings = connection.settings_dict
        login = urllib.parse.quote(user or self.app)
        host = settings["HOST"] or settings["OPTIONS"].get("host", "")  # the embedded server: OPTIONS
        query = ""
        if host.startswith("/"):  # the embedded server's socket folder
            query, host = "?" + urllib.parse.urlencode({"host": host}), ""
        port = f":{settings['PORT']}" if settings["PORT"] else ""
        return f"postgres://{login}:{urllib.parse.quote(self.password)}@{host}{port}/{settings['NAME']}{query}"


def _drop(cursor: psycopg.Cursor, role: str) -> None:
    cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
    if cursor.fetchone():
        cursor.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(sql.Identifier(role)))
        cursor.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        cursor.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def roles() -> Iterator[Roles]:
    stem = f"t_{connection.settings_dict['NAME']}_{secrets.token_hex(3)}"[:50]
    made = Roles(owner=f"{stem}_owner", app=f"{stem}_app", password=secrets.token_urlsafe(16))
    connection.close()  # db_roles hands the tables over: no lock of ours may be in its way
    try:
        call_command("db_roles", owner=made.owner, app=made.app, app_password=made.password, stdout=io.StringIO())
        yield made
    finally:
        connection.close()
        with psycopg.connect(**connection.get_connection_params(), autocommit=True) as conn, conn.cursor() as cursor:
            # Anything the app role's sessions still hold would stop DROP ROLE.
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [made.app])
            _drop(cursor, made.app)
            _drop(cursor, made.owner)


def _ignore_all() -> str:
    """pgtrigger.ignore's value that lifts every append_only trigger (pgtrigger.ignore's own format)."""
    uris = []
    for model in append_only_models():
        pgid = APPEND_ONLY.get_pgid(model)
        uris += [f"{model._meta.db_table}:{pgid}", pgid]
    return "{" + ",".join(uris) + "}"


def _access_row() -> AccessLog:
    user = User.objects.create_user("roles-probe", password="x" * 16)
    return AccessLog.objects.create(user=user, username=user.username, action="view", what="roles probe")


def test_the_app_role_can_neither_update_delete_nor_truncate_any_append_only_table(roles: Roles) -> None:
    row = _access_row()
    tables = append_only_tables()
    assert {"backoffice_accesslog", "backoffice_handoffevent", "backoffice_patienthistory", "audit_checkpoint"} <= set(
        tables
    )
    models = append_only_models()
    assert sorted(m._meta.db_table for m in models) == tables
    refused = []
    with roles.connect() as conn:
        for ignore in ("", _ignore_all()):
            for model in models:
                name, pk = sql.Identifier(model._meta.db_table), sql.Identifier(model._meta.pk.column)
                for statement in (
                    sql.SQL("UPDATE {} SET {} = {}").format(name, pk, pk),
                    sql.SQL("DELETE FROM {}").format(name),
                    sql.SQL("TRUNCATE {}").format(name),
                ):
                    with conn.transaction():
                        if ignore:
                            conn.execute("SELECT set_config('pgtrigger.ignore', %s, true)", [ignore])
                        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                            conn.execute(statement)
                    refused.append((model._meta.db_table, statement.as_string(conn).split()[0], bool(ignore)))
    assert len(refused) == len(tables) * 3 * 2
    assert AccessLog.objects.filter(pk=row.pk).exists()


def test_pgtrigger_ignore_is_what_a_role_with_delete_would_use(roles: Roles) -> None:
    """Why the privilege matters: a role holding DELETE gets past the trigger by setting the flag."""
    row = _access_row()
    with psycopg.connect(**connection.get_connection_params()) as conn:  # the suite's superuser
        with pytest.raises(errors.RaiseException, match="Cannot update or delete"), conn.transaction():
            conn.execute("DELETE FROM backoffice_accesslog WHERE id = %s", [row.pk])
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config('pgtrigger.ignore', %s, true)", [_ignore_all()])
            assert conn.execute("DELETE FROM backoffice_accesslog WHERE id = %s", [row.pk]).rowcount == 1


def test_the_app_role_still_does_its_work_and_owns_nothing(roles: Roles) -> None:
    row = _access_row()
    with roles.connect() as conn:
        columns = [f.column for f in AccessLog._meta.concrete_fields if f.column != "id"]
        listed = sql.SQL(", ").join(map(sql.Identifier, columns))
        conn.execute(
            sql.SQL("INSERT INTO backoffice_accesslog ({c}) SELECT {c} FROM backoffice_accesslog WHERE id = %s").format(
                c=listed
            ),
            [row.pk],
        )
        conn.execute("UPDATE backoffice_user SET first_name = 'Probe' WHERE id = %s", [row.user_id])
        # Sessions (backoffice.accounts.sessions' table): written, updated and deleted on every sign-in and out.
        conn.execute(
            "INSERT INTO backoffice_usersession (session_key, session_data, expire_date, user_agent, user_id) "
            "VALUES ('roles-probe', '', now(), '', %s)",
            [row.user_id],
        )
        conn.execute("UPDATE backoffice_usersession SET last_seen = now() WHERE session_key = 'roles-probe'")
        assert conn.execute("DELETE FROM backoffice_usersession WHERE session_key = 'roles-probe'").rowcount == 1
        owned = conn.execute(
            "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid) + "
            "(SELECT count(*) FROM pg_proc WHERE proowner = r.oid) FROM pg_roles r WHERE rolname = current_user"
        ).fetchone()
        assert owned == (0,)
        conn.commit()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE roles_probe (id int)")
        conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.owner)))
    assert AccessLog.objects.filter(what="roles probe").count() == 2


def test_db_roles_is_idempotent(roles: Roles) -> None:
    with psycopg.connect(**connection.get_connection_params()) as conn:
        before = conn.execute(
            "SELECT relname, relacl::text FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
    out = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "db_roles", "--owner", roles.owner, "--app", roles.app],
        cwd=BASE_DIR,
        env=_env(roles.url(connection.settings_dict["USER"])),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CREATE ROLE" not in out
    assert "(0 objects handed over now)" in out
    with psycopg.connect(**connection.get_connection_params()) as conn:
        after = conn.execute(
            "SELECT relname, relacl::text FROM pg_class WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        ).fetchall()
    assert after == before


def test_refusals_name_the_tables_a_role_could_change(roles: Roles) -> None:
    assert refusals(connection) == [
        f"the database role {connection.settings_dict['USER']!r} is a superuser: it can change or delete any row"
    ]
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT DELETE ON backoffice_accesslog TO {}").format(sql.Identifier(roles.app)))
    env = _env(roles.url())
    refused = _start(env)
    assert refused.returncode != 0
    assert "Refusing to start: the app could rewrite the audit trail" in refused.stderr
    assert "may change rows of: backoffice_accesslog (DELETE)" in refused.stderr
    check = _manage(env, "check", "--deploy", "--database", "default")
    assert check.returncode != 0 and "audit.E001" in check.stderr and "backoffice_accesslog (DELETE)" in check.stderr

    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as conn:
        conn.execute(sql.SQL("REVOKE DELETE ON backoffice_accesslog FROM {}").format(sql.Identifier(roles.app)))
    assert _start(env).returncode == 0
    assert "audit.E001" not in _manage(env, "check", "--deploy", "--database", "default").stderr

    as_superuser = _start(_env(roles.url(connection.settings_dict["USER"])))
    assert as_superuser.returncode != 0 and "is a superuser" in as_superuser.stderr


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DB_CONNECT_AS", "DEBUG")}
    env.update(DATABASE_URL=database_url, SECRET_KEY=secrets.token_urlsafe(50), LOG_LEVEL="WARNING")
    return env


def _start(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What gunicorn does first in each worker: import the WSGI module with production settings."""
    return subprocess.run(
        [sys.executable, "-c", "import backoffice.wsgi"], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True, text=True
    )


def test_migrate_never_runs_the_start_up_check() -> None:
    """migrate runs the database checks as the owner or a superuser, who can change every table:
    the start-up check is a deployment check, so an existing database still migrates."""
    assert refusals(connection)  # the suite's superuser could rewrite the audit tables
    call_command("migrate", verbosity=0)
    call_command("check")  # nor a plain check, nor runserver's


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_worker_and_the_listener_refuse_to_start_as_a_role_that_could_rewrite(roles: Roles) -> None:
    """Not only the web server: the task worker and the MLLP listener write audit rows too."""
    as_superuser = _env(roles.url(connection.settings_dict["USER"]))
    worker = _manage(as_superuser, "db_worker", "--batch", "--no-startup-delay", "--no-reload")
    assert worker.returncode == 1
    assert "manage.py db_worker: Refusing to start: the app could rewrite the audit trail" in worker.stderr
    assert "is a superuser" in worker.stderr
    listener = _manage(as_superuser, "hl7_listen", "--port", str(_free_port()))
    assert listener.returncode == 1
    assert "manage.py hl7_listen: Refusing to start: the app could rewrite the audit trail" in listener.stderr

    as_app = _env(roles.url())
    worker = _manage(as_app, "db_worker", "--batch", "--no-startup-delay", "--no-reload")
    assert worker.returncode == 0, worker.stderr
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "hl7_listen", "--port", str(_free_port())],
        cwd=BASE_DIR,
        env=as_app,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "HL7 MLLP listener on" in process.stdout.readline()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_app_role_can_t_rewrite_a_lab_s_message_but_files_it(roles: Roles) -> None:
    """lab_inboundmessage: UPDATE is granted column by column, never on the raw text or the header read
    from it; the intake, run as the app role, still stores, matches and concludes a message."""
    corpus = BASE_DIR / "tests" / "lab" / "hl7" / "corpus" / "escapes.hl7"
    imported = _manage(_env(roles.url()), "hl7_import", str(corpus))
    assert imported.returncode == 0, imported.stderr
    with roles.connect() as conn:
        message_id, outcome = conn.execute(
            "SELECT id, outcome FROM lab_inboundmessage WHERE source = %s ORDER BY id DESC LIMIT 1", [str(corpus)]
        ).fetchone()  # type: ignore[misc]
        assert outcome != "received"  # concluded: its outcome, detail and processed_at were updated
        for column in ("raw", "control_id", "received_at", "sending_facility"):
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(
                    sql.SQL("UPDATE lab_inboundmessage SET {c} = {c} WHERE id = %s").format(c=sql.Identifier(column)),
                    [message_id],
                )
        with conn.transaction():
            conn.execute("SELECT id FROM lab_inboundmessage WHERE id = %s FOR NO KEY UPDATE", [message_id])
            updated = conn.execute(
                "UPDATE lab_inboundmessage SET resolution = resolution, outcome = outcome WHERE id = %s", [message_id]
            )
            assert updated.rowcount == 1
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT UPDATE (raw) ON lab_inboundmessage TO {}").format(sql.Identifier(roles.app)))
    refused = _start(_env(roles.url()))
    assert refused.returncode != 0
    assert "may change columns kept as written: lab_inboundmessage.raw" in refused.stderr
    call_command("db_roles", owner=roles.owner, app=roles.app, stdout=io.StringIO())  # puts it right again
    assert _start(_env(roles.url())).returncode == 0


def test_the_app_role_can_t_run_the_access_log_retention(roles: Roles) -> None:
    refused = _manage(_env(roles.url()), "audit_retention")
    assert refused.returncode == 1
    assert "holds no DELETE privilege on backoffice_accesslog" in refused.stderr
    assert "DB_CONNECT_AS=owner manage.py audit_retention" in refused.stderr
