"""``manage.py restore FILE --database-url URL``: a backup into a new, empty database, then audit_verify.

Refuses a database that holds any table; makes the owner and app roles (as db_roles does), restores as
the owner, applies the app role's grants again and runs ``audit_verify`` on the result, judging the
newest checkpoint's age as of when the backup was taken. Exit 1 when audit_verify finds a problem.
See backoffice.audit.backup.
"""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.audit.backup import BackupError, restore

BASE_DIR = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = (
        "Restore a `manage.py backup` FILE into the new, empty database at --database-url (a superuser's, or "
        "one with CREATEROLE acting as the owner), re-apply the app role's grants and run audit_verify on it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="a file `manage.py backup` wrote")
        parser.add_argument("--database-url", required=True, help="postgres://… of a new, empty database")
        parser.add_argument("--owner", default=settings.DB_OWNER_ROLE, help="owner role (default DB_OWNER_ROLE)")
        parser.add_argument("--app", default=settings.DB_APP_ROLE, help="app role (default DB_APP_ROLE)")

    def handle(self, *args: Any, file: Path, database_url: str, owner: str, app: str, **options: Any) -> None:
        if owner == app:
            raise CommandError("The owner and app roles must differ.")
        try:
            done = restore(file, database_url, owner=owner, app=app)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Restored {file} into {done.database} in {done.seconds:.1f} s: {owner} owns it, {app} has "
            f"its grants ({done.grants} statements). The backup was taken at {done.created_at:%Y-%m-%d %H:%M:%S} UTC."
        )
        self.stdout.write("audit_verify on the restored database:")
        env = {k: v for k, v in os.environ.items() if k not in ("DB_CONNECT_AS", "DATABASE_OWNER_URL")}
        env["DATABASE_URL"] = database_url
        verified = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "audit_verify", "--as-of", done.created_at.isoformat()],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        self.stdout.write(verified.stdout.rstrip())
        if verified.returncode != 0:
            self.stderr.write(verified.stderr.rstrip())
            raise CommandError(
                f"Restored, but audit_verify found problems in {done.database} (above): the backup, or the "
                "database it was taken from, was changed outside the app.",
                returncode=1,
            )
