"""The manifest and the requisitions: what a courier and a reference lab read on them."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from backoffice import icd10, roles
from backoffice.models import User
from lab.models import SendOutEvent, ShipmentEvent
from lab.sendouts import pdf, prints
from lab.sendouts.selectors import shipment_tubes
from tests.factories import UserFactory
from tests.lab.sendouts.helpers import packed
from tests.lab.sendouts.pdf_text import pages

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def _clinic_time_zone():  # type: ignore[no-untyped-def]
    with timezone.override("America/New_York"):
        yield


def test_printable_keeps_latin_letters_and_never_drops_a_character() -> None:
    assert pdf.printable("García Ñúñez") == "García Ñúñez"
    assert pdf.printable("Nguyễn Thảo") == "Nguyen Thao"
    assert pdf.printable("王 Li\x07") == "? Li"


def test_a_long_manifest_wraps_and_runs_onto_more_pages() -> None:
    row = pdf.ManifestRow(
        accession="S000012340",
        patient="WOLFESCHLEGELSTEINHAUSENBERGERDORFF, Hubert Blaine",
        mrn="M500001",
        date_of_birth=date(1950, 3, 4),
        tests="CMP (322000), Lipids (303756), TSH (004259), PSA (010322)",
        collected_at=datetime(2026, 12, 2, 9, 15, tzinfo=NEW_YORK),
        container="Gold-top SST · Serum",
    )
    manifest = pdf.Manifest(
        reference="SH-ABC123",
        lab=pdf.LabInfo(
            "Meridian Reference Laboratories", "4100 Harbor Gateway Drive, Torrance, CA 90501", "05D2045871"
        ),
        clinic=pdf.Clinic("Clinic back office", "CLINIC"),
        courier="Meridian courier, route 14",
        pickup_at=datetime(2026, 12, 2, 15, 30, tzinfo=NEW_YORK),
        handling="Refrigerated (2 to 8 °C)",
        rows=(row,) * 40,
        printed_at=datetime(2026, 12, 2, 14, 0, tzinfo=NEW_YORK),
        printed_by="Wei Chen",
    )
    text = pages(pdf.manifest_pdf(manifest))
    assert len(text) >= 2
    # A name longer than its column is broken across lines, never cut off.
    joined = [page.replace(" ", "") for page in text]
    assert all("WOLFESCHLEGELSTEINHAUSENBERGERDORFF,HubertBlaine" in page for page in joined)
    assert "Page 2" in text[1]


@pytest.mark.django_db
class TestFromASendOut:
    @pytest.fixture
    def users(self) -> tuple[User, User]:
        return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), UserFactory(role=roles.ROLE_LAB_TECH)

    def test_the_manifest_lists_each_tube_for_the_courier(self, users: tuple[User, User]) -> None:
        ma, tech = users
        box, [serum] = packed("CMP", "Lipids", ma=ma, lab_tech=tech)
        tubes = shipment_tubes(box)
        printed = prints.print_manifest(shipment=box, tubes=tubes, by=tech)
        [page] = pages(printed.pdf)
        patient = serum.patient
        for expected in (
            f"Specimen manifest {prints.reference(box)}",
            "REFRIGERATED (2 TO 8 °C)",
            "Quest Diagnostics West",
            "05D0642827",
            "Lab courier, route 12",
            f"{timezone.localtime(box.pickup_at):%m/%d/%Y %H:%M}",
            serum.accession,
            f"{patient.family_name.upper()}, {patient.given_name}",
            f"{patient.date_of_birth:%m/%d/%Y}",
            patient.mrn,
            "CMP (",
            "Lipids (",
            f"{timezone.localtime(serum.collected_at):%m/%d/%Y %H:%M}",  # type: ignore[arg-type]
            "Gold-top SST",
        ):
            assert expected in page, expected
        assert printed.patient_ids == [patient.pk]
        assert printed.name == f"manifest-{prints.reference(box)}"
        assert box.events.latest("id").action == ShipmentEvent.Action.MANIFEST_PRINTED
        assert b"/Title (Specimen manifest" in printed.pdf

    def test_a_requisition_per_order_says_who_what_why_and_how_drawn(self, users: tuple[User, User]) -> None:
        ma, tech = users
        box, [serum] = packed("CMP", "Lipids", ma=ma, lab_tech=tech)
        send_outs = [s for t in shipment_tubes(box) for s in t.send_outs]
        printed = prints.print_requisitions(send_outs=send_outs, by=tech, name="requisitions")
        text = pages(printed.pdf)
        assert len(text) == 2
        handoff = serum.handoff
        clinician = handoff.ordering_clinician
        collector = serum.collected_by
        assert collector is not None
        lipids = next(page for page in text if "24331-1" in page)
        for expected in (
            "Laboratory requisition",
            serum.accession,
            f"{serum.patient.family_name.upper()}, {serum.patient.given_name}",
            f"{serum.patient.date_of_birth:%m/%d/%Y}",
            serum.patient.mrn,
            clinician.get_full_name(),
            clinician.npi,
            "E78.5",
            icd10.describe("E78.5"),
            "Lipid panel",
            "Fasting status (LOINC 49541-6)",
            "Yes",
            "Serum (SNOMED CT 119364003)",
            "Gold-top SST",
            collector.get_full_name(),
        ):
            assert expected in lipids, expected
        send_out = next(s for s in send_outs if s.order.test.short_name == "Lipids")
        assert send_out.placer_number in lipids and send_out.orderable.lab_code in lipids
        for s in send_outs:
            assert s.events.latest("id").action == SendOutEvent.Action.REQUISITION_PRINTED

    def test_an_unanswered_question_and_a_missing_diagnosis_are_printed_loud(self, users: tuple[User, User]) -> None:
        from backoffice.models import Handoff
        from lab.models import SendOut

        ma, tech = users
        box, [serum] = packed("Lipids", ma=ma, lab_tech=tech)
        Handoff.objects.filter(pk=serum.handoff_id).update(diagnosis_codes=[])
        SendOut.objects.filter(shipment=box).update(answers={})
        send_outs = [s for t in shipment_tubes(box) for s in t.send_outs]
        [page] = pages(prints.print_requisitions(send_outs=send_outs, by=tech, name="r").pdf)
        assert "NOT ANSWERED" in page
        assert "No diagnosis given: ask the ordering provider before sending." in page
