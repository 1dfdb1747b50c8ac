"""Our rows as the ORM^O01 a reference lab receives: built from a real send-out, read back with
python-hl7 field by field, and validated by hl7apy in strict mode (with the #151 workaround only)."""

from datetime import timedelta

import hl7
import pytest
from django.utils import timezone

from backoffice import icd10, roles
from backoffice.models import Handoff, User
from lab.hl7.build import timestamp
from lab.models import OutboundMessage, ReferenceLab, SendOut
from lab.sendouts import ordering, shipments
from tests.factories import UserFactory
from tests.lab.hl7.strict import assert_strictly_valid
from tests.lab.sendout_helpers import reference_lab
from tests.lab.sendouts.helpers import at_desk, fasting, send_outs_of, shipment

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


def dispatched(*tests: str, ma: User, tech: User, stat: bool = False, note: str = "") -> list[OutboundMessage]:
    lab = ReferenceLab.objects.first() or reference_lab()
    handoff, tubes = at_desk(*tests, ma=ma, lab_tech=tech, stat=stat, diagnoses=("E78.5", "Z13.6"), note=note)
    box = shipment(lab, by=tech)
    for tube in tubes:
        shipments.shipment_pack(shipment=box, specimen=tube, by=tech)
        for send_out in send_outs_of(tube):
            if send_out.orderable.questions.exists():
                fasting(send_out, by=tech)
    shipments.shipment_dispatch(shipment=box, by=tech)
    return list(OutboundMessage.objects.filter(send_out__order__handoff=handoff).order_by("id"))


def field(message: hl7.Message, segment: str, number: int, repeat: int = 0) -> str:
    return str(message.segments(segment)[repeat][number])


def test_a_lipid_panels_order_carries_every_field_chapter_4_asks_for(ma: User, tech: User) -> None:
    [sent] = dispatched("Lipids", ma=ma, tech=tech, stat=True, note="On atorvastatin 40 mg")
    send_out = SendOut.objects.select_related(*ordering.ORDER_RELATED).get(pk=sent.send_out_id)
    order, lab = send_out.order, send_out.reference_lab
    patient, clinician, specimen = order.handoff.patient, order.handoff.ordering_clinician, order.specimen
    assert specimen is not None and specimen.collected_at is not None
    message = hl7.parse(sent.text)
    # MSH: who to whom, when (with its UTC offset), what, which, production, which version.
    assert field(message, "MSH", 3) == lab.our_application and field(message, "MSH", 4) == lab.our_facility
    assert field(message, "MSH", 5) == lab.receiving_application and field(message, "MSH", 6) == lab.receiving_facility
    assert field(message, "MSH", 7) == timestamp(timezone.localtime(sent.created_at))
    assert field(message, "MSH", 7)[-5] in "+-"
    assert field(message, "MSH", 9) == "ORM^O01^ORM_O01"
    assert field(message, "MSH", 10) == sent.control_id
    assert (field(message, "MSH", 11), field(message, "MSH", 12)) == ("P", "2.5.1")
    # PID: our MRN typed MR with our assigning authority, the name, birth date and sex.
    assert field(message, "PID", 3) == f"{patient.mrn}^^^CLINIC&2.16.840.1.113883.19.5&ISO^MR"
    assert field(message, "PID", 5) == f"{patient.family_name}^{patient.given_name}"
    assert field(message, "PID", 7) == f"{patient.date_of_birth:%Y%m%d}"
    assert field(message, "PID", 8) == patient.sex
    # ORC: a new order, our placer, no filler, our accession as the placer group, STAT, by NPI.
    placer = f"{send_out.placer_number}^{lab.our_application}^2.16.840.1.113883.19.5^ISO"
    assert field(message, "ORC", 1) == "NW"
    assert field(message, "ORC", 2) == placer and field(message, "ORC", 3) == ""
    assert field(message, "ORC", 4) == f"{specimen.accession}^{lab.our_application}^2.16.840.1.113883.19.5^ISO"
    assert field(message, "ORC", 7) == "^^^^^S"
    assert field(message, "ORC", 12).startswith(f"{clinician.npi}^{clinician.last_name}^{clinician.first_name}")
    assert field(message, "ORC", 12).endswith("^NPI&2.16.840.1.113883.4.6&ISO^^^^NPI")
    # OBR: the same placer, no filler, LOINC with the lab's code as the alternate, collection, collector.
    assert field(message, "OBR", 2) == placer and field(message, "OBR", 3) == ""
    assert field(message, "OBR", 4) == (
        f"24331-1^{order.test.name}^LN^{send_out.orderable.lab_code}^{send_out.orderable.lab_name}^L"
    )
    assert field(message, "OBR", 7) == timestamp(timezone.localtime(specimen.collected_at))
    collector = specimen.collected_by
    assert collector is not None
    assert field(message, "OBR", 10) == f"{collector.username}^{collector.last_name}^{collector.first_name}"
    assert field(message, "OBR", 11) == "O"
    assert field(message, "OBR", 13) == "On atorvastatin 40 mg"
    assert field(message, "OBR", 15) == "119364003&Serum&SCT"
    assert field(message, "OBR", 16) == field(message, "ORC", 12)
    assert field(message, "OBR", 18) == specimen.accession
    assert field(message, "OBR", 27) == "^^^^^S"
    # One DG1 per ICD-10-CM reason, with its CMS description; the fasting answer as an OBX, OBX-11 O.
    assert [field(message, "DG1", 3, n) for n in range(2)] == [
        f"E78.5^{icd10.describe('E78.5')}^I10C",
        f"Z13.6^{icd10.describe('Z13.6')}^I10C",
    ]
    assert field(message, "DG1", 6) == "W"
    assert field(message, "OBX", 2) == "CWE" and field(message, "OBX", 3) == "49541-6^Fasting status^LN"
    assert field(message, "OBX", 5) == "Y^Yes^HL70136" and field(message, "OBX", 11) == "O"
    with pytest.raises(KeyError):
        message.segments("SPM")  # ORM carries no specimen segment, and no result rows
    assert_strictly_valid(sent.text)


def test_every_message_of_a_shipment_is_strictly_valid_and_unique(ma: User, tech: User) -> None:
    sent = dispatched("CMP", "Lipids", ma=ma, tech=tech)
    assert len({m.control_id for m in sent}) == 2
    for message in sent:
        assert_strictly_valid(message.text)
        assert field(hl7.parse(message.text), "ORC", 1) == "NW"


def test_a_legacy_23_lab_gets_its_own_version_ids_and_names(ma: User, tech: User) -> None:
    lab = reference_lab()
    ReferenceLab.objects.filter(pk=lab.pk).update(
        hl7_version=ReferenceLab.Version.V23, processing_id=ReferenceLab.ProcessingId.TRAINING
    )
    [sent] = dispatched("Lipids", ma=ma, tech=tech)
    message = hl7.parse(sent.text)
    send_out = SendOut.objects.select_related("order__specimen").get(pk=sent.send_out_id)
    assert (field(message, "MSH", 9), field(message, "MSH", 11), field(message, "MSH", 12)) == ("ORM^O01", "T", "2.3")
    assert field(message, "ORC", 2) == send_out.placer_number  # no namespace: the bare id a 2.3 interface expects
    assert send_out.order.specimen is not None
    assert field(message, "ORC", 4) == send_out.order.specimen.accession
    assert field(message, "DG1", 2) == "I10" and field(message, "DG1", 3).endswith("^I10")
    assert field(message, "OBX", 2) == "CE"
    assert_strictly_valid(sent.text)


def test_a_cancel_is_the_same_order_with_orc_1_ca(ma: User, tech: User) -> None:
    [sent] = dispatched("TSH", ma=ma, tech=tech)
    send_out = SendOut.objects.select_related(*ordering.ORDER_RELATED).get(pk=sent.send_out_id)
    cancel = ordering.orm_text(send_out, action="CA", control_id="ORM999999999", now=timezone.now())
    message = hl7.parse(cancel)
    assert field(message, "ORC", 1) == "CA"
    assert field(message, "ORC", 2) == field(hl7.parse(sent.text), "ORC", 2)
    assert_strictly_valid(cancel)


def test_control_ids_come_from_a_sequence_and_never_repeat() -> None:
    ids = [ordering.next_control_id() for _ in range(3)]
    assert len(set(ids)) == 3 and all(i.startswith("ORM") and len(i) == 12 for i in ids)


def test_what_stops_an_order_is_said_in_words(ma: User, tech: User) -> None:
    reference_lab()
    handoff, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
    [send_out] = send_outs_of(tube)
    send_out = SendOut.objects.select_related(*ordering.ORDER_RELATED).get(pk=send_out.pk)
    Handoff.objects.filter(pk=handoff.pk).update(clinical_note="")
    clinician = send_out.order.handoff.ordering_clinician
    clinician.npi = "1234567890"  # fails the Luhn check
    with pytest.raises(
        ordering.OrderNotBuildable, match="staff record can't go on an order: '1234567890' is not an NPI"
    ):
        ordering.orm_order(send_out)
    clinician.npi = ""
    with pytest.raises(ordering.OrderNotBuildable, match="has no NPI on file"):
        ordering.orm_order(send_out)


def test_the_header_time_is_the_clinics_local_time_with_its_offset(ma: User, tech: User) -> None:
    [sent] = dispatched("TSH", ma=ma, tech=tech)
    msh7 = field(hl7.parse(sent.text), "MSH", 7)
    offset = timezone.localtime(sent.created_at).utcoffset()
    assert offset is not None and offset != timedelta(0)  # America/New_York, not UTC
    assert msh7.endswith(("-0500", "-0400"))
