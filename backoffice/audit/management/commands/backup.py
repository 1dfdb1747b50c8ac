"""``DB_CONNECT_AS=owner manage.py backup FILE``: the whole database, pg_dump's custom format, as the owner.

See backoffice.audit.backup; ``manage.py restore`` puts it back into a new, empty database.
"""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from backoffice.audit.backup import BackupError, backup


class Command(BaseCommand):
    help = "Back the database up into FILE (pg_dump custom format), as the owner role: DB_CONNECT_AS=owner."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="where to write the backup (overwritten if it exists)")
        parser.add_argument("--owner", default=settings.DB_OWNER_ROLE, help="owner role (default DB_OWNER_ROLE)")

    def handle(self, *args: Any, file: Path, owner: str, **options: Any) -> None:
        if file.is_dir():
            raise CommandError(f"{file} is a folder: name the backup file to write.")
        if not file.parent.is_dir():
            raise CommandError(f"No folder {file.parent} to write the backup into.")
        try:
            done = backup(connection.get_connection_params(), file, owner=owner)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Backed up {done.database} to {done.path} ({done.bytes:,} bytes, {done.seconds:.1f} s). "
            f"Restore it with: manage.py restore {done.path} --database-url postgres://…/NEW_EMPTY_DATABASE"
        )
