"""Open send-outs a clinic brings from its previous system, with their placer and accession numbers.

``manage.py import_open_send_outs FILE.csv`` reads one row per order still waiting for results and
finds or creates what it needs: the patient by MRN, the ordering provider by NPI, then the order as
the app keeps one (a closed visit, the test sent out, its specimen at the reference lab under the
accession it already has, a send-out under the placer number it already has, both as text in any
format), so the lab's results for it still match exactly when they arrive.

Every row is checked before anything is written; one bad row means nothing is imported, and every
problem is listed with its row number. Importing the same file again finds what the first run wrote
and adds nothing. The columns are in README ("Bringing open send-outs along").
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from backoffice import icd10, roles
from backoffice.identifiers import is_mrn
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, User, validate_npi
from backoffice.services import SYSTEM_USERNAME
from backoffice.transitions import record, require
from backoffice.workflow import HandoffStatus, TransitionNotAllowed
from lab.models import Orderable, ReferenceLab, SendOut, SendOutEvent, TestOrder, TestOrderEvent
from lab.workflow import SendOutStatus, TestOrderStatus
from specimens.models import Specimen, SpecimenEvent
from specimens.workflow import Location, SpecimenStatus

REQUIRED = (
    "mrn",
    "family_name",
    "given_name",
    "date_of_birth",
    "sex",
    "provider_npi",
    "provider_family_name",
    "provider_given_name",
    "reference_lab",
    "test",
    "placer_number",
    "accession",
    "collected_at",
)
OPTIONAL = ("sent_at", "diagnosis_codes")
COLUMNS = REQUIRED + OPTIONAL
# The visits these orders came from happened before the switch: they are filed under this room.
IMPORT_ROOM = "Before the switch (imported)"
SEXES = {value for value, _ in Patient.Sex.choices}


class ImportRefused(TransitionNotAllowed):
    """The file can't be imported as it is: ``errors`` lists every problem by row; nothing was written."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} problem{'s' if len(errors) != 1 else ''}; nothing was imported.")


@dataclass
class Row:
    number: int
    mrn: str
    family: str
    given: str
    dob: dt.date
    sex: str
    npi: str
    provider_family: str
    provider_given: str
    orderable: Orderable
    placer: str
    accession: str
    collected_at: dt.datetime
    sent_at: dt.datetime
    diagnoses: list[str] = field(default_factory=list)


@dataclass
class Imported:
    created: int = 0
    already: int = 0
    patients_created: int = 0
    providers_created: int = 0
    placers: list[str] = field(default_factory=list)


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed.casefold() if c.isalnum())


def _when(text: str) -> dt.datetime | None:
    text = text.strip()
    moment = parse_datetime(text.replace("T", " ")) if text else None
    if moment is None:
        day = parse_date(text) if text else None
        moment = dt.datetime.combine(day, dt.time(0, 0)) if day else None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _labs() -> dict[str, ReferenceLab]:
    labs: dict[str, ReferenceLab] = {}
    for lab in ReferenceLab.objects.all():
        labs[lab.name.casefold()] = lab
        labs.setdefault(lab.their_facility.casefold(), lab)
    return labs


def _orderable(lab: ReferenceLab, test: str) -> Orderable | None:
    """The lab's code for the test, or our test's LOINC or short name, at that lab."""
    choices = list(Orderable.objects.filter(reference_lab=lab).select_related("test", "reference_lab"))
    for matches in (
        lambda o: o.lab_code == test,
        lambda o: o.test.loinc_code == test,
        lambda o: o.test.short_name.casefold() == test.casefold(),
    ):
        found = [o for o in choices if matches(o)]
        if len(found) == 1:
            return found[0]
    return None


def read_rows(lines: Iterable[str]) -> list[Row]:
    """Every row of the CSV checked; ImportRefused lists each problem with its row number."""
    reader = csv.DictReader(lines)
    header = [(name or "").strip() for name in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportRefused([f"The header row lacks {', '.join(missing)} (columns: {', '.join(COLUMNS)})."])
    unknown = [c for c in header if c and c not in COLUMNS]
    if unknown:
        raise ImportRefused([f"Unknown columns {', '.join(unknown)} (columns: {', '.join(COLUMNS)})."])
    reader.fieldnames = header
    labs = _labs()
    rows: list[Row] = []
    errors: list[str] = []
    placers: dict[str, int] = {}
    accessions: dict[str, int] = {}
    for number, raw in enumerate(reader, start=2):
        cell = {k: (v or "").strip() for k, v in raw.items() if k}
        if not any(cell.values()):
            continue
        wrong: list[str] = []
        for name in REQUIRED:
            if not cell.get(name):
                wrong.append(f"{name} is empty")
        if cell.get("mrn") and not is_mrn(cell["mrn"]):
            wrong.append(f"mrn {cell['mrn']!r} is not in this clinic's MRN format (MRN_PATTERN {settings.MRN_PATTERN})")
        dob = parse_date(cell.get("date_of_birth", "")) if cell.get("date_of_birth") else None
        if cell.get("date_of_birth") and dob is None:
            wrong.append(f"date_of_birth {cell['date_of_birth']!r} is not a date like 1980-02-14")
        sex = cell.get("sex", "").upper()[:1]
        if cell.get("sex") and sex not in SEXES:
            wrong.append(f"sex {cell['sex']!r} is not one of {', '.join(sorted(SEXES))}")
        npi = cell.get("provider_npi", "")
        if npi:
            try:
                validate_npi(npi)
            except ValidationError as exc:
                wrong.extend(exc.messages)
        lab = labs.get(cell.get("reference_lab", "").casefold())
        if cell.get("reference_lab") and lab is None:
            wrong.append(f"no reference lab is named {cell['reference_lab']!r} (its name or MSH-4 id, as in admin)")
        orderable = _orderable(lab, cell.get("test", "")) if lab and cell.get("test") else None
        if lab and cell.get("test") and orderable is None:
            wrong.append(f"{lab} has no test {cell['test']!r} (its own code, our LOINC or short name)")
        placer, accession = cell.get("placer_number", ""), cell.get("accession", "")
        if len(placer) > 30:
            wrong.append("placer_number is over 30 characters")
        if len(accession) > 24:
            wrong.append("accession is over 24 characters")
        for value, seen, what in ((placer, placers, "placer_number"), (accession, accessions, "accession")):
            if value and value in seen:
                wrong.append(f"{what} {value} is also on row {seen[value]}")
            elif value:
                seen[value] = number
        collected = _when(cell.get("collected_at", "")) if cell.get("collected_at") else None
        if cell.get("collected_at") and collected is None:
            wrong.append(f"collected_at {cell['collected_at']!r} is not a date and time like 2026-03-01 08:15")
        sent = _when(cell["sent_at"]) if cell.get("sent_at") else collected
        if cell.get("sent_at") and sent is None:
            wrong.append(f"sent_at {cell['sent_at']!r} is not a date and time like 2026-03-01 16:00")
        diagnoses: list[str] = []
        if cell.get("diagnosis_codes"):
            try:
                diagnoses = icd10.parse_list(cell["diagnosis_codes"])
            except ValidationError as exc:
                wrong.extend(exc.messages)
        if wrong:
            errors.extend(f"Row {number}: {w}." for w in wrong)
            continue
        assert dob and orderable and collected and sent
        rows.append(
            Row(
                number=number,
                mrn=cell["mrn"][:20],
                family=cell["family_name"][:80],
                given=cell["given_name"][:80],
                dob=dob,
                sex=sex,
                npi=npi,
                provider_family=cell["provider_family_name"][:150],
                provider_given=cell["provider_given_name"][:150],
                orderable=orderable,
                placer=placer,
                accession=accession,
                collected_at=collected,
                sent_at=sent,
                diagnoses=diagnoses,
            )
        )
    if errors:
        raise ImportRefused(errors)
    return rows


def _check_against_the_app(rows: list[Row]) -> list[str]:
    """Patients found by MRN must be the same person; placers and accessions new, or this file's own."""
    errors = []
    patients = {p.mrn: p for p in Patient.objects.filter(mrn__in=[r.mrn for r in rows])}
    send_outs = {
        s.placer_number: s
        for s in SendOut.objects.filter(placer_number__in=[r.placer for r in rows]).select_related(
            "order__specimen", "order__handoff__patient"
        )
    }
    taken = set(Specimen.objects.filter(accession__in=[r.accession for r in rows]).values_list("accession", flat=True))
    for row in rows:
        patient = patients.get(row.mrn)
        if patient is not None and (
            _folded(patient.family_name) != _folded(row.family)
            or _folded(patient.given_name.split()[0] if patient.given_name else "")
            != _folded(row.given.split()[0] if row.given else "")
            or patient.date_of_birth != row.dob
        ):
            errors.append(
                f"Row {row.number}: MRN {row.mrn} is {patient.family_name.upper()}, {patient.given_name} born "
                f"{patient.date_of_birth.isoformat()}, not {row.family.upper()}, {row.given} born {row.dob.isoformat()}."
            )
        existing = send_outs.get(row.placer)
        if existing is not None:
            specimen = existing.order.specimen
            if specimen is None or specimen.accession != row.accession or existing.order.handoff.patient.mrn != row.mrn:
                errors.append(f"Row {row.number}: placer {row.placer} is already another order's.")
        elif row.accession in taken:
            errors.append(f"Row {row.number}: accession {row.accession} is already another specimen's.")
    return errors


def _provider(row: Row, clinician_role: Group, found: dict[str, User]) -> tuple[User, bool]:
    user = found.get(row.npi) or User.objects.filter(npi=row.npi).first()
    if user is not None:
        found[row.npi] = user
        return user, False
    base = f"{row.provider_given[:1]}{row.provider_family}".lower()
    base = "".join(c for c in unicodedata.normalize("NFKD", base) if c.isalnum())[:30] or "provider"
    username, n = base, 1
    while User.objects.filter(username=username).exists():
        n += 1
        username = f"{base}{n}"
    # A clinician who can't sign in until an admin sets a password: their results wait in the inbox.
    user = User(
        username=username, first_name=row.provider_given, last_name=row.provider_family, npi=row.npi, title="Clinician"
    )
    user.set_unusable_password()
    user.save()
    user.groups.add(clinician_role)
    found[row.npi] = user
    return user, True


def open_send_outs_import(*, text: str, by: User, source: str = "") -> Imported:
    """Import every row of the CSV ``text``, all or nothing; ImportRefused lists what is wrong.

    ``by`` is a member of the send-out desk, or the system user when an operator runs the command.
    """
    if by.username != SYSTEM_USERNAME:
        require(by, "lab.run_send_out_desk", "import open send-outs")
    rows = read_rows(io.StringIO(text.lstrip("\ufeff")))
    done = Imported()
    where = f"row {{}} of {source}" if source else "row {}"
    with transaction.atomic():
        errors = _check_against_the_app(rows)
        if errors:
            raise ImportRefused(errors)
        room, _ = ExamRoom.objects.get_or_create(name=IMPORT_ROOM, defaults={"is_active": False})
        clinician_role = Group.objects.get(name=roles.ROLE_CLINICIAN)
        providers: dict[str, User] = {}
        existing = set(
            SendOut.objects.filter(placer_number__in=[r.placer for r in rows]).values_list("placer_number", flat=True)
        )
        for row in rows:
            if row.placer in existing:
                done.already += 1
                continue
            patient, created = Patient.objects.get_or_create(
                mrn=row.mrn,
                defaults={"family_name": row.family, "given_name": row.given, "date_of_birth": row.dob, "sex": row.sex},
            )
            done.patients_created += created
            provider, made = _provider(row, clinician_role, providers)
            done.providers_created += made
            _create_order(
                row, patient=patient, provider=provider, room=room, by=by, note=f"Imported: {where.format(row.number)}"
            )
            done.created += 1
            done.placers.append(row.placer)
    return done


def _create_order(row: Row, *, patient: Patient, provider: User, room: ExamRoom, by: User, note: str) -> SendOut:
    """The order as the app keeps one: a closed visit, the test sent out, its specimen at the lab, the send-out."""
    test = row.orderable.test
    at = row.collected_at
    handoff = Handoff.objects.create(
        patient=patient,
        ordering_clinician=provider,
        exam_room=room,
        clinical_note="Open send-out carried over from the previous system.",
        diagnosis_codes=row.diagnoses,
        status=HandoffStatus.COMPLETED,
        claimed_by=by,
        claimed_at=at,
        identity_verified_at=at,
        identity_verified_by=by,
        identity_method="imported",
        closed_at=at,
        created_at=at,
        created_by=by,
    )
    record(handoff, by=by, action=HandoffEvent.Action.CREATED, created=True, note=note)
    specimen = Specimen.objects.create(
        accession=row.accession,
        handoff=handoff,
        patient=patient,
        specimen_type=test.specimen_type,
        container=test.container,
        collection_method=test.specimen_type.collection_method,
        tests_label=test.short_name,
        status=SpecimenStatus.SHIPPED,
        location=Location.REFERENCE_LAB,
        status_changed_at=row.sent_at,
        labelled_at=at,
        labelled_by=by,
        collected_at=at,
        collected_by=by,
        verified_at=at,
        verified_by=by,
        verify_method="imported",
    )
    record(specimen, by=by, action=SpecimenEvent.Action.SHIPPED, created=True, note=note)
    order = TestOrder.objects.create(
        handoff=handoff,
        test=test,
        status=TestOrderStatus.SENT_OUT,
        specimen=specimen,
        status_changed_at=row.sent_at,
        created_at=at,
        created_by=by,
    )
    record(order, by=by, action=TestOrderEvent.Action.ORDERED, created=True, note=note)
    send_out = SendOut.objects.create(
        order=order,
        reference_lab=row.orderable.reference_lab,
        orderable=row.orderable,
        placer_number=row.placer,
        status=SendOutStatus.SENT,
        status_changed_at=row.sent_at,
        sent_at=row.sent_at,
        expected_by=row.sent_at + timedelta(hours=row.orderable.expected_hours),
        created_at=at,
    )
    record(
        send_out,
        by=by,
        action=SendOutEvent.Action.CREATED,
        created=True,
        note=f"{note}: placer {row.placer}, accession {row.accession} · {row.orderable.lab_code} at {row.orderable.reference_lab}",
    )
    return send_out
