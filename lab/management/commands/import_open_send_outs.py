"""``manage.py import_open_send_outs FILE.csv [--by USERNAME]``: open send-outs from the previous system.

Finds or creates each row's patient (by MRN) and ordering provider (by NPI), then the open order
with its existing placer number and accession (any format, kept as text), so that the lab's results
for orders placed before the switch still match. All or nothing: any bad row and nothing is
imported, every problem listed with its row number. Running it again adds nothing new. The columns
are documented in README ("Commands for the send-outs' HL7").
"""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.models import User
from backoffice.services import system_user
from lab.sendouts.carried_over import ImportRefused, open_send_outs_import


class Command(BaseCommand):
    help = "Import open send-out orders (patients by MRN, providers by NPI, existing placer and accession numbers)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", metavar="FILE.csv")
        parser.add_argument(
            "--by", metavar="USERNAME", help="The staff member recorded as importing them (default: the system user)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: save the CSV as UTF-8 and try again.") from exc
        by = system_user()
        if options["by"]:
            found = User.objects.filter(username=options["by"], is_active=True).first()
            if found is None:
                raise CommandError(f"No active user {options['by']!r}.")
            by = found
        try:
            done = open_send_outs_import(text=text, by=by, source=path.name)
        except ImportRefused as exc:
            for error in exc.errors:
                self.stderr.write(error)
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {done.created} open send-out{'s' if done.created != 1 else ''}"
                f" ({done.already} already here); {done.patients_created} patient"
                f"{'s' if done.patients_created != 1 else ''} and {done.providers_created} provider"
                f"{'s' if done.providers_created != 1 else ''} created."
            )
        )
