"""manage.py prune_signin_records: delete sign-in records older than SIGNIN_RECORD_RETENTION_DAYS (as the owner)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.audit.retention import NotOwner, prune


class Command(BaseCommand):
    help = (
        "Delete django-axes' failed sign-ins and sign-ins older than SIGNIN_RECORD_RETENTION_DAYS. "
        "Run as the owner role: DB_CONNECT_AS=owner manage.py prune_signin_records (e.g. nightly)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, help="Keep this many days instead of SIGNIN_RECORD_RETENTION_DAYS.")

    def handle(self, *args: Any, days: int | None = None, **options: Any) -> None:
        if days is not None and days < 1:
            raise CommandError("--days must be at least 1.")
        try:
            pruned = prune(days=days)
        except NotOwner as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Deleted {pruned.failures} failed sign-ins and {pruned.sign_ins} sign-ins from before "
            f"{pruned.before:%Y-%m-%d %H:%M} UTC."
        )
