"""Send-outs from collection: the placer order number, the reference lab and its dialect profile."""

import pytest
from django.core.exceptions import ValidationError

from backoffice import roles
from backoffice.models import User
from lab.models import DialectProfile, ReferenceLab, SendOut, SendOutEvent, TestOrder
from lab.sendouts.services import PLACER_DIGITS
from lab.services import tests_start_collection
from lab.workflow import SendOutStatus
from specimens import services as specimen_services
from tests.factories import UserFactory
from tests.lab.sendout_helpers import reference_lab
from tests.specimens.helpers import collected, confirm, reason, received

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


class TestAtCollection:
    def test_a_collected_send_out_gets_a_placer_number_as_text_and_joins_the_desk(self, ma: User) -> None:
        lab = reference_lab()
        _, [tube] = collected("CBC", ma=ma)
        send_out = SendOut.objects.select_related("orderable").get(order__specimen=tube)
        assert (send_out.reference_lab, send_out.status) == (lab, SendOutStatus.WAITING)
        assert len(send_out.placer_number) == PLACER_DIGITS and send_out.placer_number.isdigit()
        assert send_out.placer_number.startswith("0")  # text: the leading zeros are the number's
        event = SendOutEvent.objects.get(send_out=send_out)
        assert (event.action, event.actor) == (SendOutEvent.Action.CREATED, ma)
        assert event.note == f"Placer {send_out.placer_number} · {send_out.orderable.lab_code} at {lab}"

    def test_each_order_gets_its_own_number_and_in_house_tests_none(self, ma: User) -> None:
        reference_lab()
        collected("CBC", "TSH", "Hemoglobin", ma=ma)
        numbers = list(SendOut.objects.values_list("placer_number", flat=True))
        assert len(numbers) == len(set(numbers)) == 2
        assert not SendOut.objects.filter(order__test__short_name="Hemoglobin").exists()

    def test_a_recollected_order_keeps_its_placer_number(self, ma: User) -> None:
        reference_lab()
        lab_tech = UserFactory(role=roles.ROLE_LAB_TECH)
        handoff, [tube] = collected("TSH", ma=ma)
        first = SendOut.objects.get(order__specimen=tube).placer_number
        received(tube, ma=ma, lab_tech=lab_tech, at="send_out")
        specimen_services.specimen_reject(specimen=tube, reason=reason("RH"), by=lab_tech)
        [again] = tests_start_collection(handoff=handoff, by=ma)
        confirm(again, ma)
        order = TestOrder.objects.get(handoff=handoff)
        assert order.specimen == again
        assert SendOut.objects.get(order=order).placer_number == first
        assert SendOut.objects.count() == 1

    def test_without_a_reference_lab_the_order_says_so(self, ma: User) -> None:
        handoff, _ = collected("PSA", ma=ma)
        assert not SendOut.objects.exists()
        order = TestOrder.objects.get(handoff=handoff)
        assert order.events.filter(note__startswith="No reference lab is set up for PSA").exists()


class TestTheCatalog:
    def test_the_three_example_profiles_are_shipped_and_readable(self) -> None:
        names = set(DialectProfile.objects.values_list("name", flat=True))
        assert {
            "National reference lab, HL7 2.5.1 LRI",
            "Legacy HL7 2.3 interface",
            "Hospital outreach LIS, HL7 2.3.1",
        } <= names
        for profile in DialectProfile.objects.all():
            assert profile.as_profile().name == profile.name

    def test_a_profile_an_admin_types_is_checked(self) -> None:
        profile = DialectProfile(name="Broken", definition={"mrn": [{"field": "PID-9"}]})
        with pytest.raises(ValidationError, match="our MRN can be in PID-3, PID-2, PID-4"):
            profile.full_clean()
        DialectProfile(name="Fine", definition={"mrn": "PID-4", "accession": "OBR-18"}).full_clean()

    def test_a_lab_says_how_it_is_reached(self) -> None:
        lab = reference_lab()
        lab.transport, lab.drop_folder = ReferenceLab.Transport.FOLDER, ""
        with pytest.raises(ValidationError, match="Say which folder"):
            lab.full_clean()
        lab.clia_number = "5D0642827"
        with pytest.raises(ValidationError, match="two digits, the letter D and seven digits"):
            lab.full_clean()


def test_the_admin_role_keeps_the_labs_but_not_the_desks_records() -> None:
    admin = UserFactory(role=roles.ROLE_ADMIN)
    assert admin.has_perm("lab.change_referencelab") and admin.has_perm("lab.add_dialectprofile")
    assert admin.has_perm("lab.change_orderable") and admin.has_perm("lab.add_askatorderentry")
    for perm in ("lab.run_send_out_desk", "lab.view_inboundmessage", "lab.change_sendout", "lab.add_shipment"):
        assert not admin.has_perm(perm), perm
    tech = UserFactory(role=roles.ROLE_LAB_TECH)
    assert tech.has_perm("lab.run_send_out_desk") and tech.has_perm("lab.view_inboundmessage")
