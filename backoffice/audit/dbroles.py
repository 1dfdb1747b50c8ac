"""The two database roles: an owner that owns the schema, and the app's role, which owns nothing.

The app's role (``DB_APP_ROLE``) may read and append the append-only tables and nothing more: no
UPDATE, DELETE or TRUNCATE, so neither ``SET LOCAL pgtrigger.ignore`` nor TRUNCATE gets past the
triggers, because the privilege check comes first. Everywhere else it has SELECT, INSERT, UPDATE and
DELETE (never TRUNCATE, REFERENCES or TRIGGER), except that on a table whose rows keep some columns
as first written (a Protect trigger on UPDATE with an ``AnyChange`` condition, such as the raw HL7 text
of ``lab_inboundmessage``, and the fields a model lists in ``WRITTEN_ONCE_FIELDS``) its UPDATE is
granted column by column, every column but those and the primary key. The owner role (``DB_OWNER_ROLE``, NOLOGIN) owns every
table, sequence and function in the schema; migrations run as it (``DB_CONNECT_AS=owner``).

``manage.py db_roles`` creates both roles and applies all of this, idempotently; every ``migrate`` run
as the owner applies the grants again (backoffice.audit.apps), so a table a migration adds gets its
privileges in the same deploy. ``refusals`` is the production start-up check's question: which
append-only tables can this connection change?
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pgtrigger
import psycopg
from django.apps import apps
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

SCHEMA = "public"


@dataclass(frozen=True)
class Table:
    name: str
    append_only: bool  # UPDATE and DELETE refused by a trigger: the app may only SELECT and INSERT
    no_delete: bool  # DELETE refused by a trigger (some rows are updated, never deleted)
    # Columns kept as first written (lab_inboundmessage.raw): the app's UPDATE is granted on ``updatable``.
    written_once: tuple[str, ...] = ()
    updatable: tuple[str, ...] = ()


def _protects(model: type[models.Model], operation: str) -> bool:
    """Whether one of the model's pgtrigger Protect triggers refuses ``operation`` on every row."""
    for trigger in getattr(model._meta, "triggers", []):
        protect = isinstance(trigger, pgtrigger.Protect) and trigger.condition is None
        if protect and operation in str(trigger.operation).split(" OR "):
            return True
    return False


def _kept_columns(model: type[models.Model]) -> set[str]:
    """The columns a Protect trigger keeps from any UPDATE (``condition=AnyChange(...)``), and those the
    model lists in ``WRITTEN_ONCE_FIELDS`` (set when the row is written, never after)."""
    names: set[str] = set(getattr(model, "WRITTEN_ONCE_FIELDS", ()))
    for trigger in getattr(model._meta, "triggers", []):
        protect = isinstance(trigger, pgtrigger.Protect) and "UPDATE" in str(trigger.operation).split(" OR ")
        if protect and isinstance(trigger.condition, pgtrigger.AnyChange) and not trigger.condition.exclude:
            names.update(trigger.condition.fields or [])
    return {str(getattr(model._meta.get_field(name), "column", name)) for name in names}


def tables() -> list[Table]:
    """Every model's table with what its triggers refuse, append-only first, by name."""
    refused: dict[str, set[str]] = {}
    kept: dict[str, set[str]] = {}
    columns: dict[str, list[str]] = {}
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed:
            continue
        # A proxy's triggers are on its concrete table: how the app protects a library's table
        # (django-axes' sign-in logs, backoffice.audit.models.SignIn and SignInFailure).
        operations = refused.setdefault(model._meta.db_table, set())
        operations.update(op for op in ("UPDATE", "DELETE") if _protects(model, op))
        once = _kept_columns(model)
        if once:
            kept.setdefault(model._meta.db_table, set()).update(once)
            pk = model._meta.pk.column if model._meta.pk else None
            columns[model._meta.db_table] = [
                f.column for f in model._meta.concrete_fields if f.column and f.column != pk and f.column not in once
            ]
    found = []
    for name, ops in refused.items():
        append_only = {"UPDATE", "DELETE"} <= ops
        written_once = () if append_only else tuple(sorted(kept.get(name, ())))
        updatable = tuple(c for c in columns.get(name, []) if c not in written_once) if written_once else ()
        found.append(Table(name, append_only, "DELETE" in ops, written_once=written_once, updatable=updatable))
    return sorted(found, key=lambda t: (not t.append_only, t.name))


def append_only_tables() -> list[str]:
    """The event, access-log, history and checkpoint tables: rows are written once and kept."""
    return [t.name for t in tables() if t.append_only]


# Append-only tables whose rows older than a retention setting are deleted, by the owner role
# (prune_signin_records: SIGNIN_RECORD_RETENTION_DAYS). The checkpoints don't seal them: every pruned
# row would read as a deleted one; their triggers and the app role's privileges protect them.
PRUNED_TABLES = frozenset({"axes_accesslog", "axes_accessfailurelog"})


def append_only_models() -> list[type[models.Model]]:
    """The models of those tables, by table name."""
    names = set(append_only_tables())
    found = {m._meta.db_table: m for m in apps.get_models() if m._meta.db_table in names and not m._meta.proxy}
    return [found[name] for name in sorted(found)]


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def setup_statements(cursor, *, owner: str, app: str, app_password: str | None) -> list[str]:  # type: ignore[no-untyped-def]
    """Create the two roles if missing and make the app's role a plain login (run by a superuser, or a
    role with CREATEROLE that is a member of the owner)."""
    done = []
    cursor.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [[owner, app]])
    existing = {row[0] for row in cursor.fetchall()}
    if owner not in existing:
        done.append(f"CREATE ROLE {quote(owner)} NOLOGIN")
    if app not in existing:
        done.append(f"CREATE ROLE {quote(app)} LOGIN")
    # Whatever it was before: no superuser, no role creation, no row-level-security bypass, and not a
    # member of the owner (which would let it SET ROLE to it).
    done.append(f"ALTER ROLE {quote(app)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOREPLICATION")
    for statement in done:
        cursor.execute(statement)
    if app_password is not None:
        # A parameter can't be bound in ALTER ROLE; the literal is quoted by the server's quote_literal.
        cursor.execute("SELECT quote_literal(%s)", [app_password])
        literal = cursor.fetchone()[0]
        cursor.execute(f"ALTER ROLE {quote(app)} PASSWORD {literal}")
        done.append(f"ALTER ROLE {quote(app)} PASSWORD '…'")
    cursor.execute(
        "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid "
        "JOIN pg_roles m ON m.oid = a.member WHERE r.rolname = %s AND m.rolname = %s",
        [owner, app],
    )
    if cursor.fetchone():
        cursor.execute(f"REVOKE {quote(owner)} FROM {quote(app)}")
        done.append(f"REVOKE {quote(owner)} FROM {quote(app)}")
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    if not cursor.fetchone()[0] and not _member(cursor, owner):
        cursor.execute(f"GRANT {quote(owner)} TO current_user")
        done.append(f"GRANT {quote(owner)} TO current_user")
    return done


def _member(cursor, role: str) -> bool:  # type: ignore[no-untyped-def]
    cursor.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", [role])
    return bool(cursor.fetchone()[0])


def ownership_statements(cursor, *, owner: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Hand every table, view, sequence and function in the schema to the owner role."""
    cursor.execute(
        """
        SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                              WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END, c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
          AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = %s)
          -- a sequence owned by a column (identity, serial) follows its table
          AND NOT (c.relkind = 'S' AND EXISTS (
              SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i')))
        ORDER BY 2
        """,
        [SCHEMA, owner],
    )
    statements = [
        f"ALTER {kind} {quote(SCHEMA)}.{quote(name)} OWNER TO {quote(owner)}" for kind, name in cursor.fetchall()
    ]
    cursor.execute(
        """
        SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = %s AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = %s)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        ORDER BY 1
        """,
        [SCHEMA, owner],
    )
    statements += [f"ALTER ROUTINE {signature} OWNER TO {quote(owner)}" for (signature,) in cursor.fetchall()]
    for statement in statements:
        cursor.execute(statement)
    return statements


def schema_statements(*, database: str, owner: str, app: str) -> list[str]:
    """The database and schema privileges, run by the login (the schema's owner, or a superuser)."""
    o, a = quote(owner), quote(app)
    return [
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {a}",
        f"GRANT USAGE, CREATE ON SCHEMA {quote(SCHEMA)} TO {o}",
        f"REVOKE CREATE ON SCHEMA {quote(SCHEMA)} FROM PUBLIC",
        f"REVOKE CREATE ON SCHEMA {quote(SCHEMA)} FROM {a}",
        f"GRANT USAGE ON SCHEMA {quote(SCHEMA)} TO {a}",
    ]


def grant_statements(existing: Iterable[str], *, owner: str, app: str) -> list[str]:
    """What the app's role may do, table by table, for the tables that exist now and those to come;
    run as the owner role."""
    o, a = quote(owner), quote(app)
    statements = [
        # Tables a later migration adds start append-only for the app; the grants below, which every
        # migrate as the owner runs again, open the ordinary ones.
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {quote(SCHEMA)} GRANT SELECT, INSERT ON TABLES TO {a}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA {quote(SCHEMA)} GRANT USAGE, SELECT ON SEQUENCES TO {a}",
    ]
    present = set(existing)
    for table in tables():
        if table.name not in present:
            continue
        target = f"{quote(SCHEMA)}.{quote(table.name)}"
        allowed = ["SELECT", "INSERT"]
        if not table.append_only and not table.written_once:
            allowed.append("UPDATE")
        if not table.no_delete:
            allowed.append("DELETE")
        statements.append(f"REVOKE ALL ON {target} FROM {a}")
        if table.written_once:  # REVOKE ALL on the table leaves column grants standing: these too
            kept = ", ".join(quote(c) for c in table.written_once)
            statements.append(f"REVOKE UPDATE ({kept}) ON {target} FROM {a}")
        statements.append(f"GRANT {', '.join(allowed)} ON {target} TO {a}")
        if table.written_once:
            statements.append(f"GRANT UPDATE ({', '.join(quote(c) for c in table.updatable)}) ON {target} TO {a}")
    # Tables no model describes (django_migrations): read only.
    known = {table.name for table in tables()}
    for name in sorted(present - known):
        statements.append(f"REVOKE ALL ON {quote(SCHEMA)}.{quote(name)} FROM {a}")
        statements.append(f"GRANT SELECT ON {quote(SCHEMA)}.{quote(name)} TO {a}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quote(SCHEMA)} TO {a}")
    return statements


def set_up(
    conn: "psycopg.Connection[Any]", *, owner: str, app: str, app_password: str | None
) -> tuple[list[str], list[str], str]:
    """Everything ``manage.py db_roles`` does, on a psycopg connection as the login (a superuser, or a
    role with CREATEROLE that may act as the owner), committed at the end: the roles, the schema
    handed to the owner, the grants. Returns (what was created or moved, the grants, the database)."""
    with conn.cursor() as cursor:
        done = setup_statements(cursor, owner=owner, app=app, app_password=app_password)
        done += ownership_statements(cursor, owner=owner)
        cursor.execute("SELECT current_database()")
        database = str(cursor.fetchone()[0])  # type: ignore[index]
        for statement in schema_statements(database=database, owner=owner, app=app):
            cursor.execute(statement)
        cursor.execute(f"SET ROLE {quote(owner)}")
        cursor.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            [SCHEMA],
        )
        existing = [row[0] for row in cursor.fetchall()]
        grants = grant_statements(existing, owner=owner, app=app)
        for statement in grants:
            cursor.execute(statement)
        cursor.execute("RESET ROLE")
    conn.commit()
    return done, grants, database


def apply_grants(connection: BaseDatabaseWrapper, *, owner: str, app: str) -> list[str]:
    """Run grant_statements on this connection (the owner, or a superuser)."""
    with connection.cursor() as cursor:
        statements = grant_statements(connection.introspection.table_names(cursor), owner=owner, app=app)
        for statement in statements:
            cursor.execute(statement)
    return statements


def refusals(connection: BaseDatabaseWrapper) -> list[str]:
    """Why this connection could rewrite the append-only tables, one line per reason; empty when it can't.

    It can when it is a superuser, when it owns a table or is a member of its owner (the owner has
    every privilege and can drop the trigger), or when it holds UPDATE, DELETE, TRUNCATE or TRIGGER.
    """
    names = append_only_tables()
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        user, superuser, bypassrls = cursor.fetchone()
        if superuser:
            return [f"the database role {user!r} is a superuser: it can change or delete any row"]
        cursor.execute(
            """
            SELECT c.relname,
                   pg_has_role(c.relowner, 'MEMBER'),
                   array_remove(ARRAY[
                       CASE WHEN has_table_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END,
                       CASE WHEN has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END,
                       CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
                       CASE WHEN has_table_privilege(c.oid, 'TRIGGER') THEN 'TRIGGER' END
                   ], NULL)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relname = ANY(%s) AND c.relkind IN ('r', 'p')
            ORDER BY c.relname
            """,
            [SCHEMA, names],
        )
        reasons = []
        owned, writable = [], []
        for name, owns, privileges in cursor.fetchall():
            if owns:
                owned.append(name)
            elif privileges:
                writable.append(f"{name} ({', '.join(privileges)})")
        if owned:
            reasons.append(f"the database role {user!r} owns (or is a member of the owner of): {', '.join(owned)}")
        if writable:
            reasons.append(f"the database role {user!r} may change rows of: {', '.join(writable)}")
        kept = [(t.name, column) for t in tables() if t.written_once for column in t.written_once]
        if kept:
            cursor.execute(
                """
                SELECT k.t || '.' || k.c FROM unnest(%s::text[], %s::text[]) AS k(t, c)
                JOIN pg_class r ON r.relname = k.t AND r.relnamespace = %s::regnamespace
                WHERE pg_has_role(r.relowner, 'MEMBER') OR has_column_privilege(r.oid, k.c, 'UPDATE')
                ORDER BY 1
                """,
                [[t for t, _ in kept], [c for _, c in kept], SCHEMA],
            )
            columns = [row[0] for row in cursor.fetchall()]
            if columns:
                reasons.append(f"the database role {user!r} may change columns kept as written: {', '.join(columns)}")
        if bypassrls:
            reasons.append(f"the database role {user!r} has BYPASSRLS")
    return reasons
