"""A scanned wristband is told from a typed MRN (issue 13, point 8).

Scanners send WRISTBAND_SCAN_PREFIX (and WRISTBAND_SCAN_SUFFIX) around what they read; the server
reads them (backoffice.identifiers.read_entry). An MRN without them, typed or pasted from the patient
banner, is no wristband check: identity then also needs the full name and date of birth (two
identifiers, Joint Commission NPSG.01.01.01), and the method is recorded on the handoff and its event.
"""

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from backoffice import services
from backoffice.identifiers import as_scanned, read_entry, without_scanner_marks
from backoffice.models import AccessLog, Handoff, HandoffEvent, Patient, User
from backoffice.workflow import HandoffStatus, IdentityMethod, TransitionNotAllowed
from specimens.accession import normalise
from specimens.models import Specimen
from tests.factories import StationFactory
from tests.specimens.helpers import labelled

pytestmark = pytest.mark.django_db

Action = HandoffEvent.Action


def claimed(handoff: Handoff, ma: User) -> Handoff:
    services.handoff_claim(handoff=handoff, by=ma)
    return services.handoff_assign_station(handoff=handoff, station=StationFactory(), by=ma)


def verify(client: Client, ma: User, handoff: Handoff, **data: str):  # type: ignore[no-untyped-def]
    client.force_login(ma)
    return client.post(reverse("handoff_verify", args=[handoff.uuid]), data)


class TestReadingTheScannersMarks:
    def test_the_default_prefix_is_code_128s_aim_code_id(self) -> None:
        assert read_entry("]C0M100001").scanned and read_entry("]C0M100001").text == "M100001"
        assert as_scanned("M100001") == "]C0M100001"

    @pytest.mark.parametrize("value", ["M100001", " M100001 ", "]C0", "M100001]C0", "]c0M100001"])
    def test_anything_else_was_typed(self, value: str) -> None:
        entry = read_entry(value)
        assert not entry.scanned
        assert entry.text == value.strip()

    @override_settings(WRISTBAND_SCAN_PREFIX="", WRISTBAND_SCAN_SUFFIX="#END")
    def test_a_suffix_alone_marks_a_scan(self) -> None:
        assert read_entry("M100001#END") == read_entry(as_scanned("M100001"))
        assert read_entry("M100001#END").scanned and not read_entry("M100001").scanned

    def test_scan_fields_that_dont_care_take_what_was_read(self) -> None:
        assert without_scanner_marks(as_scanned("S000012347")) == "S000012347"
        assert normalise(as_scanned("S-0000-12347")) == "S000012347"


class TestTheService:
    def test_a_typed_mrn_alone_is_refused_and_nothing_is_written(
        self, handoff: Handoff, medical_assistant: User
    ) -> None:
        claimed(handoff, medical_assistant)
        before = handoff.events.count()
        with pytest.raises(TransitionNotAllowed, match="typed or pasted, not scanned: ask the patient's full name"):
            services.handoff_verify_identity(handoff=handoff, by=medical_assistant, typed_mrn="M100001")
        assert handoff.events.count() == before
        assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.CLAIMED

    def test_a_typed_mrn_with_name_and_birth_date_verifies_and_says_it_was_typed(
        self, handoff: Handoff, medical_assistant: User, patient: Patient
    ) -> None:
        claimed(handoff, medical_assistant)
        services.handoff_verify_identity(
            handoff=handoff,
            by=medical_assistant,
            typed_mrn="m100001",
            full_name="Rosa Martinez",
            date_of_birth=patient.date_of_birth,
        )
        stored = Handoff.objects.get(pk=handoff.pk)
        assert (stored.status, stored.identity_method) == (HandoffStatus.IDENTITY_VERIFIED, IdentityMethod.TYPED_MRN)
        event = stored.events.latest("id")
        assert (event.action, event.note) == (
            Action.IDENTITY_VERIFIED,
            "MRN typed (not scanned); name and date of birth confirmed",
        )

    def test_every_typed_identifier_must_match(
        self, handoff: Handoff, medical_assistant: User, patient: Patient
    ) -> None:
        claimed(handoff, medical_assistant)
        with pytest.raises(services.IdentityMismatch, match="The MRN given does not match"):
            services.handoff_verify_identity(
                handoff=handoff,
                by=medical_assistant,
                typed_mrn="M999999",
                full_name="Rosa Martinez",
                date_of_birth=patient.date_of_birth,
            )
        mismatch = handoff.events.get(action=Action.IDENTITY_MISMATCH)
        assert "MRN typed, with full name and date of birth" in mismatch.note


class TestThePage:
    def test_a_scanned_wristband_verifies_and_is_recorded_as_scanned(
        self, client: Client, handoff: Handoff, medical_assistant: User
    ) -> None:
        claimed(handoff, medical_assistant)
        response = verify(client, medical_assistant, handoff, scanned_mrn=as_scanned("M100001"))
        assert response.status_code == 302
        stored = Handoff.objects.get(pk=handoff.pk)
        assert (stored.status, stored.identity_method) == (HandoffStatus.IDENTITY_VERIFIED, IdentityMethod.SCANNED)
        assert stored.events.latest("id").note == "Wristband scanned"
        page = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        assert "(wristband scanned)" in page

    def test_an_mrn_pasted_from_the_banner_is_not_a_scan(
        self, client: Client, handoff: Handoff, medical_assistant: User
    ) -> None:
        claimed(handoff, medical_assistant)
        response = verify(client, medical_assistant, handoff, scanned_mrn="M100001")
        assert response.status_code == 422
        assert "The MRN was typed or pasted, not scanned: ask the patient&#x27;s full name" in response.content.decode()
        assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.CLAIMED
        assert not handoff.events.filter(action=Action.IDENTITY_MISMATCH).exists()

    def test_a_typed_mrn_with_name_and_birth_date_verifies_as_typed(
        self, client: Client, handoff: Handoff, medical_assistant: User, patient: Patient
    ) -> None:
        claimed(handoff, medical_assistant)
        response = verify(
            client,
            medical_assistant,
            handoff,
            scanned_mrn="M100001",
            full_name="Rosa Martínez",
            date_of_birth=patient.date_of_birth.isoformat(),
        )
        assert response.status_code == 302
        assert Handoff.objects.get(pk=handoff.pk).identity_method == IdentityMethod.TYPED_MRN
        page = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        assert "(MRN typed, with full name and date of birth)" in page

    def test_a_scanned_specimen_label_is_still_no_wristband(self, client: Client, medical_assistant: User) -> None:
        _, [tube] = labelled("CBC", ma=medical_assistant)
        from tests.factories import HandoffFactory

        handoff = HandoffFactory()
        claimed(handoff, medical_assistant)
        for value in (as_scanned(tube.accession), tube.accession):
            response = verify(client, medical_assistant, handoff, scanned_mrn=value)
            assert response.status_code == 422
            assert "That is a specimen label, not a wristband." in response.content.decode()

    def test_the_patient_search_takes_a_scanned_wristband(
        self, client: Client, clinician: User, patient: Patient
    ) -> None:
        client.force_login(clinician)
        content = client.post(reverse("patient_search"), {"q": as_scanned("M100001")}).content.decode()
        assert "M100001" in content and "MARTÍNEZ, Rosa" in content
        entry = AccessLog.objects.get(what="patient search")
        assert list(entry.patients.values_list("pk", flat=True)) == [patient.pk]


class TestTheBedsideCheck:
    """The tube's label and the wristband at the draw: recorded as scanned only with the scanner's marks."""

    @pytest.mark.parametrize(
        ("wristband", "typed_box", "method"),
        [(True, False, "scanned"), (False, False, "typed"), (True, True, "typed")],
    )
    def test_the_method_is_read_from_the_wristband_field(
        self, client: Client, medical_assistant: User, wristband: bool, typed_box: bool, method: str
    ) -> None:
        handoff, [tube] = labelled("CBC", ma=medical_assistant)
        mrn = handoff.patient.mrn
        data = {"label": as_scanned(tube.accession), "wristband": as_scanned(mrn) if wristband else mrn}
        if typed_box:
            data["typed"] = "on"
        client.force_login(medical_assistant)
        client.post(reverse("specimens:confirm", args=[handoff.uuid]), data)
        stored = Specimen.objects.get(pk=tube.pk)
        assert (stored.status, stored.verify_method) == ("collected", method)
