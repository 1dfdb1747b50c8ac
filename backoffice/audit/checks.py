"""The production start-up check: the app's database role must not be able to rewrite the audit tables.

``manage.py check --deploy --database default`` runs it as a system check (a deployment check that
runs only when a database is named, so neither ``migrate`` nor a plain ``check --deploy`` runs it); ``backoffice.wsgi`` and ``backoffice.asgi`` run it before serving
when DEBUG is off, and refuse to start (ImproperlyConfigured) with the same message. So do the
processes that write the audit tables without serving pages, ``manage.py db_worker`` (the task worker,
backoffice.audit.management.commands.db_worker) and ``manage.py hl7_listen``, when started as a
process (``refuse_to_start_command``, from their ``run_from_argv``; ``call_command`` in the tests
doesn't run it).
"""

import sys
from typing import Any, TextIO

from django.core.checks import CheckMessage, Error, Tags, register
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

HINT = (
    "Serve the app as a role that owns nothing and has only SELECT and INSERT on these tables: run "
    "`DB_CONNECT_AS=owner manage.py db_roles` once, migrate with DB_CONNECT_AS=owner, and point DATABASE_URL "
    "at DB_APP_ROLE's login (docs/security.md, 'Database roles')."
)


def problems(using: str = "default") -> list[str]:
    from backoffice.audit.dbroles import refusals

    return refusals(connections[using])


# A deployment check (so `migrate`, which runs the database checks as the owner, never runs it) that
# needs a database named: `check --deploy` alone, as the header tests run it, doesn't connect.
@register(Tags.database, deploy=True)
def app_role_cannot_rewrite_audit_tables(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    if not databases or "default" not in databases:
        return []
    return [
        Error(f"The app could rewrite the audit trail: {reason}.", hint=HINT, id="audit.E001")
        for reason in problems("default")
    ]


def refuse_to_start_if_app_role_can_rewrite() -> None:
    """Raise ImproperlyConfigured, naming the tables, when the app's connection could change them."""
    from django.conf import settings

    if settings.DEBUG:
        return
    reasons = problems("default")
    connections["default"].close()  # the worker processes open their own
    if reasons:
        raise ImproperlyConfigured(
            "Refusing to start: the app could rewrite the audit trail: " + "; ".join(reasons) + ". " + HINT
        )


def refuse_to_start_command(name: str, stderr: TextIO | None = None) -> None:
    """What a serving command (worker, listener) runs first: exit 1 with the refusal's message."""
    try:
        refuse_to_start_if_app_role_can_rewrite()
    except ImproperlyConfigured as exc:
        (stderr or sys.stderr).write(f"manage.py {name}: {exc}\n")
        raise SystemExit(1) from None
