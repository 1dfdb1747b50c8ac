"""Load demo data for `make run`, or bulk volumes for benchmarks with `--scale`.

The data and the code that writes it live in backoffice.devtools.seed: catalogs (staff, rooms,
stations, order templates, competencies), clinic_day (the demo clinic day), specimens (label
printers, and specimens in every state), lab_qc / lab_results / lab_criticals (kits, QC history,
results and critical calls), sendouts (reference labs, and send-outs in every state the desk shows),
sendout_results (what the labs send back, through the HL7 intake)
and scale (the COPY loader); this command parses the options, calls
into them and prints the demo logins.

Both modes are idempotent: they key on natural keys (username, MRN, station code, room name) and
on markers (fixed UUIDs for demo handoffs and the specimen visits, the "S" MRN prefix for scale
patients).
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from backoffice.devtools.demo_totp import DEMO_TOTP_SECRET
from backoffice.devtools.seed.catalogs import (
    DEMO_PASSWORD,
    DEMO_USERS,
    seed_competencies,
    seed_rooms_and_stations,
    seed_staff,
)
from backoffice.devtools.seed.clinic_day import seed_handoffs, seed_patients
from backoffice.devtools.seed.clinic_now import seed_clinic_now
from backoffice.devtools.seed.lab_criticals import seed_lab_criticals
from backoffice.devtools.seed.lab_history import seed_lab_history
from backoffice.devtools.seed.lab_qc import seed_lab_qc
from backoffice.devtools.seed.lab_results import seed_lab_results
from backoffice.devtools.seed.medications import seed_allergy_records, seed_medications
from backoffice.devtools.seed.scale import seed_scale
from backoffice.devtools.seed.sendout_results import seed_sendout_results
from backoffice.devtools.seed.sendouts import seed_reference_labs, seed_sendouts
from backoffice.devtools.seed.specimens import seed_specimen_storage, seed_specimens
from backoffice.models import User


class Command(BaseCommand):
    help = "Load demo users, rooms, stations, patients and handoffs; with --scale, bulk data for benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--scale", action="store_true", help="Bulk-load benchmark volumes (COPY) instead of the demo clinic day."
        )
        parser.add_argument("--patients", type=int, default=100_000, help="Scale patients (default 100,000).")
        parser.add_argument(
            "--handoffs", type=int, default=200_000, help="Scale historical handoffs (default 200,000)."
        )
        parser.add_argument("--open", type=int, default=500, help="Scale open handoffs (default 500).")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        with transaction.atomic():
            users = seed_staff(self.stdout)
            seed_rooms_and_stations(self.stdout)
            if options["scale"]:
                counts = {name: options[name] for name in ("patients", "handoffs", "open")}
                if min(counts.values()) < 0 or (counts["handoffs"] + counts["open"] and not counts["patients"]):
                    raise CommandError("Volumes must be zero or more, and handoffs need at least one patient.")
                seed_scale(
                    self.stdout,
                    users=users,
                    patients=counts["patients"],
                    historical=counts["handoffs"],
                    open_count=counts["open"],
                )
            else:
                seed_competencies(self.stdout, users=users)
                patients = seed_patients(self.stdout)
                seed_medications(self.stdout)
                seed_allergy_records(self.stdout, patients)
                seed_handoffs(self.stdout, users=users, patients=patients)
                # The reference labs first: the visits' send-out tests join the desk as they are collected.
                seed_reference_labs(self.stdout)
                # The send-out desk's own visits (tubes waiting, packed, sent and acknowledged, retrying,
                # overdue), earlier in the day than the specimen visits that follow on the same stations.
                seed_sendouts(self.stdout, users=users)
                seed_specimens(self.stdout, users=users)
                # The in-house bench: kits and QC history, results on the bench's specimens, critical calls.
                seed_lab_qc(self.stdout, users=users)
                seed_lab_results(self.stdout, users=users)
                seed_lab_criticals(self.stdout, users=users)
                seed_specimen_storage(self.stdout, users=users)
                # What the reference labs send back for yesterday's send-outs, through the HL7 intake: last,
                # once the call-back ladder is there for the critical one (and the in-house calls are worked).
                seed_sendout_results(self.stdout, users=users)
                # "In the clinic now": a patient waiting for a point-of-care result, one who left before theirs.
                seed_clinic_now(self.stdout, users=users)
                # Four weeks of finished point-of-care work for the turnaround dashboard, on the walk-in chair.
                seed_lab_history(self.stdout, users=users)
        self.stdout.write(f"Done in {time.monotonic() - started:.1f}s.")
        self._print_logins(users)

    def _print_logins(self, users: dict[str, User]) -> None:
        from django_otp.plugins.otp_totp.models import TOTPDevice

        roles_by_user = {u.username: u.role for u in DEMO_USERS}
        with_code = set(
            TOTPDevice.objects.filter(user__in=users.values(), confirmed=True).values_list("user__username", flat=True)
        )
        rows = [
            ("Username", "Role", "Password", "Two-step code"),
            *((name, role, DEMO_PASSWORD, "yes" if name in with_code else "") for name, role in roles_by_user.items()),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        self.stdout.write(self.style.SUCCESS("\nDemo logins:"))
        for i, row in enumerate(rows):
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            self.stdout.write(f"  {self.style.MIGRATE_HEADING(line) if i == 0 else line}")
        if with_code:
            key = " ".join(DEMO_TOTP_SECRET[i : i + 4] for i in range(0, len(DEMO_TOTP_SECRET), 4))
            self.stdout.write(
                "\nTwo-step code: after the password, those marked enter a 6-digit code. Add the demo key\n"
                f"  {key}\n"
                "to an authenticator app (time-based), or run `.venv/bin/python manage.py demo_code` for the code now."
            )
