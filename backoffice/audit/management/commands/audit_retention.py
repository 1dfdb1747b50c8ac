"""``DB_CONNECT_AS=owner manage.py audit_retention [--years N] [--dry-run]``: remove the access rows and
checkpoints older than ACCESS_LOG_RETENTION_YEARS (6, never fewer), recorded in a retention checkpoint
so audit_verify reads it as retention, not tampering. See backoffice.audit.log_retention.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.audit.log_retention import RetentionRefused, retain


class Command(BaseCommand):
    help = (
        "Remove access-log rows (with their patient rows and break-glass marks) and audit checkpoints older than "
        "ACCESS_LOG_RETENTION_YEARS; refuses anything younger. Run as the owner role, e.g. monthly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--years", type=int, help="keep this many years (at least ACCESS_LOG_RETENTION_YEARS, and six)"
        )
        parser.add_argument("--dry-run", action="store_true", help="say what would be removed; remove nothing")

    def handle(self, *args: Any, years: int | None = None, dry_run: bool = False, **options: Any) -> None:
        try:
            done = retain(years=years, dry_run=dry_run)
        except RetentionRefused as exc:
            raise CommandError(str(exc)) from exc
        rows = ", ".join(f"{n:,} {table}" for table, n in done.removed.items())
        when = f"from before {done.before:%Y-%m-%d %H:%M} UTC"
        if dry_run:
            self.stdout.write(f"Would remove {rows} and {done.checkpoints_pruned:,} checkpoints {when}.")
        elif done.checkpoint is None:
            self.stdout.write(f"Nothing to remove {when}.")
        else:
            self.stdout.write(
                f"Removed {rows} and {done.checkpoints_pruned:,} checkpoints {when}; recorded in retention "
                f"checkpoint #{done.checkpoint.pk} {done.checkpoint.hash}."
            )
