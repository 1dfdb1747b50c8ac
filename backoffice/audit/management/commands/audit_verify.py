"""Check the append-only tables against their chained checkpoints; exit 1 on the first problem per table.

    manage.py audit_verify [--head ID:HASH] [--stale-minutes 5] [--as-of ISO-TIME]

See backoffice.audit.seal for what is checked.
"""

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.audit.seal import verify


def _head(value: str) -> tuple[int, str]:
    checkpoint, _, digest = value.partition(":")
    if not checkpoint.isdigit() or len(digest) != 64:
        raise CommandError("--head takes ID:HASH, a checkpoint's id and its 64-character hash")
    return int(checkpoint), digest.lower()


def _as_of(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError("--as-of takes an ISO 8601 time with its offset, e.g. 2026-01-31T23:00:00+00:00") from None
    if moment.tzinfo is None:
        raise CommandError("--as-of needs its UTC offset, e.g. 2026-01-31T23:00:00+00:00")
    return moment


class Command(BaseCommand):
    help = "Verify the audit tables against the checkpoint chain: reports the first edited, deleted or inserted row per table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--head", help="ID:HASH of a checkpoint recorded outside the database (the worker logs each)"
        )
        parser.add_argument(
            "--stale-minutes",
            type=int,
            default=5,
            help="unsealed rows with the newest checkpoint older than this are a problem (default 5)",
        )
        parser.add_argument(
            "--as-of",
            type=_as_of,
            help="judge the newest checkpoint's age as of this time (a restored backup's: when it was taken)",
        )

    def handle(
        self, *args: Any, head: str | None, stale_minutes: int, as_of: datetime | None = None, **options: Any
    ) -> None:
        report = verify(stale_after=timedelta(minutes=stale_minutes), head=_head(head) if head else None, now=as_of)
        self.stdout.write(f"{report.checkpoints} checkpoints")
        for problem in (report.chain_problem, report.head_problem):
            if problem:
                self.stdout.write(self.style.ERROR(f"CHAIN: {problem}"))
        for table in report.tables:
            if table.problem:
                self.stdout.write(self.style.ERROR(f"{table.table}: {table.problem}"))
            else:
                kept = f"{table.sealed_rows} rows sealed (ids through {table.sealed_through}), "
                if table.removed_rows:
                    kept += f"{table.removed_rows} removed by retention, "
                if table.past_chain_rows:
                    kept += f"{table.past_chain_rows} older than the kept checkpoints, "
                self.stdout.write(f"{table.table}: ok, {kept}{table.unsealed_rows} not yet sealed")
        if report.stale_problem:
            self.stdout.write(self.style.ERROR(f"STALE: {report.stale_problem}"))
        if not report.ok:
            raise CommandError("audit_verify found problems (above)", returncode=1)
        self.stdout.write(self.style.SUCCESS("The audit tables match their checkpoints."))
