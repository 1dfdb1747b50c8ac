"""Create or update the owner and app database roles and their privileges; idempotent.

    DB_CONNECT_AS=owner manage.py db_roles [--app-password ...] [--owner NAME] [--app NAME]

Run it as a superuser (or a role with CREATEROLE that may act as the owner) before the first
``migrate`` and whenever roles may have drifted; ``migrate`` as the owner re-applies the grants.
See backoffice.audit.dbroles and docs/security.md, "Database roles".
"""

import os
from typing import Any

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from backoffice.audit import dbroles


class Command(BaseCommand):
    help = (
        "Create/update the owner role (owns the schema) and the app role (no UPDATE/DELETE/TRUNCATE on audit tables)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", default=settings.DB_OWNER_ROLE, help="owner role (default DB_OWNER_ROLE)")
        parser.add_argument("--app", default=settings.DB_APP_ROLE, help="app role (default DB_APP_ROLE)")
        parser.add_argument(
            "--app-password",
            default=os.environ.get("DB_APP_PASSWORD") or None,
            help="set the app role's password (default DB_APP_PASSWORD; unset leaves it as it is)",
        )

    def handle(self, *args: Any, owner: str, app: str, app_password: str | None, **options: Any) -> None:
        if owner == app:
            raise CommandError("The owner and app roles must differ.")
        # The login itself, not the owner role it may SET ROLE to: that role may not exist yet.
        params = connection.get_connection_params()
        try:
            with psycopg.connect(**params, autocommit=False) as conn:
                done, grants, database = dbroles.set_up(conn, owner=owner, app=app, app_password=app_password)
        except psycopg.Error as exc:
            raise CommandError(f"Setting up the database roles failed: {exc}") from exc
        created = [s for s in done if s.startswith(("CREATE", "GRANT", "REVOKE"))]
        moved = [s for s in done if " OWNER TO " in s]
        for statement in created:
            self.stdout.write(statement)
        self.stdout.write(
            f"Roles ready on {database}: {owner} owns the schema ({len(moved)} objects handed over now), "
            f"{app} may only read and append {len(dbroles.append_only_tables())} append-only tables "
            f"({len(grants)} grant statements applied)."
        )
