"""``manage.py hl7_import PATH... [--json]``: result files from an interface engine's drop folder or a catch-up.

Each file is read as it is (UTF-8 or latin-1, CR/LF/CRLF, MLLP bytes left in, FHS/BHS batches with
several messages) and every message goes through the same intake as the MLLP listener and the
desk's upload (lab.sendouts.intake.receive): stored first, then matched and filed, in file order.
A folder is read file by file (``*.hl7`` and ``*.txt``, by name). Re-importing a file files nothing
twice: each message already received is kept as a duplicate of the first.

``--json`` prints one JSON object per message, one per line: control id, sending lab, outcome
(matched, amended, superseded, unmatched, identity_hold, duplicate, rejected), the placer and
accession it was filed to, how many observations were filed and whether a critical value was raised.
"""

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backoffice.services import system_user
from lab.sendouts.intake import Received, Senders, receive, summary
from lab.workflow import IntakeChannel

SUFFIXES = (".hl7", ".txt")


def _files(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise CommandError(f"{name}: no such file or folder.")
    return found


class Command(BaseCommand):
    help = "Import HL7 v2 ORU^R01 result files (batches too): store, match and file every message in order."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Result files, or folders of *.hl7 / *.txt files.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object per message (JSON Lines).")

    def handle(self, *args: Any, **options: Any) -> None:
        files = _files(options["paths"])
        actor = system_user()
        senders = Senders()  # the labs and their profiles, read once for the whole run
        everything: list[Received] = []
        for path in files:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise CommandError(f"{path}: {exc.strerror or exc}") from exc
            for received in receive(
                data, channel=IntakeChannel.FILE, source=str(path)[:300], by=actor, senders=senders
            ):
                everything.append(received)
                message = received.message
                if options["json"]:
                    self.stdout.write(json.dumps(received.as_json(), ensure_ascii=False))
                else:
                    self.stdout.write(
                        f"{path.name}: {message.control_id or '(no MSH-10)'} {message.outcome}: {message.detail}"
                    )
        if not options["json"]:
            self.stdout.write(self.style.SUCCESS(f"{summary(everything)}."))
