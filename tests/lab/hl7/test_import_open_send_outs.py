"""``manage.py import_open_send_outs FILE.csv``: open send-outs from the previous system keep their numbers,
so the lab's results for them still match; all or nothing; idempotent."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from backoffice import roles
from backoffice.models import Handoff, Patient, User
from backoffice.workflow import HandoffStatus, PermissionRefused
from lab.models import SendOut, TestOrder
from lab.sendouts.carried_over import IMPORT_ROOM, ImportRefused, open_send_outs_import
from lab.workflow import IntakeOutcome, SendOutStatus, TestOrderStatus
from specimens.models import Specimen
from specimens.workflow import Location, SpecimenStatus
from tests.factories import PatientFactory, UserFactory
from tests.lab.hl7.intake_helpers import corpus_labs, csv_text, desk_user, intake, order_row

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int, int, int, int]:
    return (
        Patient.objects.count(),
        User.objects.count(),
        Handoff.objects.count(),
        Specimen.objects.count(),
        SendOut.objects.count(),
    )


def test_an_open_send_out_comes_in_with_its_own_placer_and_accession_as_text() -> None:
    corpus_labs()
    tech = desk_user()
    done = open_send_outs_import(
        text=csv_text([order_row("0000123"), order_row("ORD-2026-000042")]), by=tech, source="old.csv"
    )
    assert (done.created, done.already, done.patients_created, done.providers_created) == (2, 0, 2, 1)
    assert done.placers == ["0000123", "ORD-2026-000042"]
    send_out = SendOut.objects.select_related("order__handoff__patient", "order__specimen", "orderable").get(
        placer_number="0000123"
    )
    assert (send_out.status, send_out.reference_lab.name, send_out.orderable.lab_code) == (
        SendOutStatus.SENT,
        "Valley Pathology Associates",
        "LIPID",
    )
    assert send_out.sent_at == timezone.make_aware(timezone.datetime(2026, 3, 3, 16, 0))
    assert send_out.expected_by == send_out.sent_at + timedelta(hours=48)
    order = send_out.order
    assert (order.status, order.test.short_name, order.created_by) == (TestOrderStatus.SENT_OUT, "Lipids", tech)
    specimen = order.specimen
    assert specimen is not None
    assert (specimen.accession, specimen.status, specimen.location) == (
        "S000010020",
        SpecimenStatus.SHIPPED,
        Location.REFERENCE_LAB,
    )
    assert specimen.collected_at == timezone.make_aware(timezone.datetime(2026, 3, 3, 7, 15))
    handoff = order.handoff
    assert (handoff.status, handoff.exam_room.name, handoff.exam_room.is_active) == (
        HandoffStatus.COMPLETED,
        IMPORT_ROOM,
        False,
    )
    patient = handoff.patient
    assert (patient.mrn, patient.family_name, patient.given_name, patient.sex) == (
        "M100002",
        "Okoye",
        "Daniel Chidi",
        "M",
    )
    provider = handoff.ordering_clinician
    assert (provider.npi, provider.last_name, provider.first_name, provider.has_usable_password()) == (
        "1234567893",
        "Shah",
        "Priya",
        False,
    )
    assert provider.role_names == [roles.ROLE_CLINICIAN]
    assert send_out.events.get().note == (
        "Imported: row 2 of old.csv: placer 0000123, accession S000010020 · LIPID at Valley Pathology Associates"
    )


def test_the_labs_results_for_an_imported_order_match_it() -> None:
    corpus_labs()
    open_send_outs_import(text=csv_text([order_row("0000123")]), by=desk_user())
    [received] = intake("legacy_23_no_orc.hl7")
    assert (received.message.outcome, received.message.observations_filed) == (IntakeOutcome.MATCHED, 5)
    order = TestOrder.objects.get(send_out__placer_number="0000123")
    assert order.status == TestOrderStatus.RESULTED


def test_patients_and_providers_already_here_are_found_not_duplicated() -> None:
    corpus_labs()
    PatientFactory(mrn="M100002", family_name="OKOYE", given_name="Daniel", date_of_birth="1975-07-30", sex="M")
    shah = UserFactory(npi="1234567893", role=roles.ROLE_CLINICIAN)
    done = open_send_outs_import(text=csv_text([order_row("0000123"), order_row("ORD-2026-000046")]), by=desk_user())
    assert (done.patients_created, done.providers_created) == (0, 0)
    assert set(Handoff.objects.values_list("ordering_clinician", flat=True)) == {shah.pk}
    assert Patient.objects.filter(mrn="M100002").count() == 1


def test_importing_the_same_file_again_adds_nothing() -> None:
    corpus_labs()
    text = csv_text([order_row("0000123"), order_row("0000124")])
    tech = desk_user()
    open_send_outs_import(text=text, by=tech)
    before = counts()
    again = open_send_outs_import(text=text, by=tech)
    assert (again.created, again.already) == (0, 2)
    assert counts() == before


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"provider_npi": "1234567890"},
            "Row 3: 1234567890 is not a valid NPI: ten digits, the last one a check digit.",
        ),
        ({"date_of_birth": "14/02/1980"}, "Row 3: date_of_birth '14/02/1980' is not a date like 1980-02-14."),
        (
            {"collected_at": "yesterday"},
            "Row 3: collected_at 'yesterday' is not a date and time like 2026-03-01 08:15.",
        ),
        (
            {"reference_lab": "Nowhere Labs"},
            "Row 3: no reference lab is named 'Nowhere Labs' (its name or MSH-4 id, as in admin).",
        ),
        (
            {"test": "ZZZ"},
            "Row 3: Valley Pathology Associates has no test 'ZZZ' (its own code, our LOINC or short name).",
        ),
        ({"sex": "Q"}, "Row 3: sex 'Q' is not one of F, M, U, X."),
        ({"placer_number": "0000123"}, "Row 3: placer_number 0000123 is also on row 2."),
        ({"accession": ""}, "Row 3: accession is empty."),
        ({"diagnosis_codes": "E11"}, "Row 3: E11 is a category, not a billable code"),
        (
            {"mrn": "12-34"},
            "Row 3: mrn '12-34' is not in this clinic's MRN format (MRN_PATTERN [A-Z]{1,3}[0-9]{6,11}).",
        ),
    ],
)
def test_one_bad_row_means_nothing_is_imported_and_every_problem_is_listed(change: dict[str, str], error: str) -> None:
    corpus_labs()
    before = counts()
    rows = [order_row("0000123"), order_row("0000124") | change]
    with pytest.raises(ImportRefused) as refused:
        open_send_outs_import(text=csv_text(rows), by=desk_user())
    assert any(e.startswith(error) for e in refused.value.errors), refused.value.errors
    assert str(refused.value).endswith("nothing was imported.")
    assert counts()[0] == before[0] and counts()[2:] == before[2:]


def test_an_mrn_that_is_another_person_here_is_refused() -> None:
    corpus_labs()
    PatientFactory(mrn="M100002", family_name="Someone", given_name="Else", date_of_birth="1990-01-01")
    with pytest.raises(ImportRefused) as refused:
        open_send_outs_import(text=csv_text([order_row("0000123")]), by=desk_user())
    assert refused.value.errors == [
        "Row 2: MRN M100002 is SOMEONE, Else born 1990-01-01, not OKOYE, Daniel Chidi born 1975-07-30."
    ]


def test_a_placer_or_accession_already_another_orders_is_refused() -> None:
    corpus_labs()
    open_send_outs_import(text=csv_text([order_row("0000123")]), by=desk_user())
    clash = order_row("0000124") | {"accession": "S000010020"}
    with pytest.raises(ImportRefused) as refused:
        open_send_outs_import(text=csv_text([clash]), by=desk_user())
    assert refused.value.errors == ["Row 2: accession S000010020 is already another specimen's."]


def test_the_header_must_name_the_columns() -> None:
    with pytest.raises(ImportRefused) as refused:
        open_send_outs_import(text="mrn,name\nM1,Someone\n", by=desk_user())
    assert refused.value.errors[0].startswith("The header row lacks family_name, given_name, date_of_birth")


def test_only_the_desk_imports() -> None:
    with pytest.raises(PermissionRefused):
        open_send_outs_import(text=csv_text([]), by=UserFactory(role=roles.ROLE_CLINICIAN))


def test_the_command_imports_a_file_and_reports_what_it_did(tmp_path: Path) -> None:
    corpus_labs()
    path = tmp_path / "open.csv"
    path.write_text("\ufeff" + csv_text([order_row("0000123")]), encoding="utf-8")
    out = StringIO()
    call_command("import_open_send_outs", str(path), stdout=out)
    assert out.getvalue().strip() == "Imported 1 open send-out (0 already here); 1 patient and 1 provider created."
    bad = tmp_path / "bad.csv"
    bad.write_text(csv_text([order_row("0000124") | {"provider_npi": "1"}]), encoding="utf-8")
    err = StringIO()
    with pytest.raises(CommandError, match="1 problem; nothing was imported"):
        call_command("import_open_send_outs", str(bad), stderr=err)
    assert "Row 2: 1 is not a valid NPI" in err.getvalue()
    with pytest.raises(CommandError, match="No active user 'nobody'"):
        call_command("import_open_send_outs", str(path), "--by", "nobody")
