"""``manage.py hl7_listen --host 127.0.0.1 --port 2575``: the MLLP listener for reference labs' results.

A process of its own (``make run`` starts one beside the web server). Each message a connection
brings goes through the same intake as the file import and the desk's upload
(lab.sendouts.intake.receive): its raw text is stored and committed first, then matched and filed,
and only then is the ACK returned (AA once stored; AR for input that isn't HL7, which is stored too).
If storing fails nothing is acknowledged and the connection closes, so the lab's engine resends.
Messages up to 16 MiB are read (python-hl7's default limit is 64 KiB). Ctrl-C or SIGTERM stops it.
With production settings it refuses to start, like the web server, when its database role could
rewrite the audit tables (backoffice.audit.checks, audit.E001).
"""

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from backoffice.audit.checks import refuse_to_start_command
from lab.hl7.listener import MllpListener
from lab.sendouts.intake import ack, receive, store_rejected
from lab.workflow import IntakeChannel

logger = logging.getLogger(__name__)


def on_message(raw: str, *, source: str = "MLLP") -> str:
    """Store, match and file what one MLLP block carried; the ACK of its (first) message."""
    close_old_connections()
    try:
        received = receive(raw, channel=IntakeChannel.MLLP, source=source)
        return ack(received[0])
    finally:
        close_old_connections()


def on_rejected(raw: str, reason: str, *, source: str = "MLLP") -> None:
    """What the listener refused before the intake saw it (not HL7, too big): stored all the same."""
    close_old_connections()
    try:
        store_rejected(raw, reason=reason, channel=IntakeChannel.MLLP, source=source)
    finally:
        close_old_connections()


def make_listener(source: str) -> MllpListener:
    """The listener ``hl7_listen`` serves: every block through the intake, every refusal stored."""
    return MllpListener(
        lambda raw: on_message(raw, source=source),
        on_rejected=lambda raw, reason: on_rejected(raw, reason, source=source),
    )


class Command(BaseCommand):
    help = "Listen for HL7 v2 results over MLLP; store, match and file each message, then ACK it."

    def run_from_argv(self, argv: list[str]) -> None:
        refuse_to_start_command("hl7_listen")
        super().run_from_argv(argv)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=2575, help="TCP port (default 2575, HL7's registered port).")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        listener = make_listener(f"MLLP {host}:{port}")
        self.stdout.write(f"HL7 MLLP listener on {host}:{port} (Ctrl-C to stop).")
        self.stdout.flush()
        listener.serve(host, port)
        self.stdout.write("HL7 MLLP listener stopped.")
