"""ICD-10-CM diagnoses on a handoff (checked against the CMS code set) and a clinician's NPI."""

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from backoffice import icd10, roles
from backoffice.models import Handoff, validate_npi
from backoffice.services import handoff_create
from backoffice.workflow import TransitionNotAllowed
from lab.models import TestDefinition
from tests.factories import ExamRoomFactory, PatientFactory, UserFactory


@pytest.mark.parametrize(
    ("typed", "stored"), [("E11.9", "E11.9"), ("e119", "E11.9"), (" r53.83 ", "R53.83"), ("Z0000", "Z00.00")]
)
def test_a_billable_code_is_stored_as_cms_writes_it(typed: str, stored: str) -> None:
    assert icd10.check(typed) == stored


def test_a_category_or_an_unknown_code_is_refused_saying_why() -> None:
    with pytest.raises(ValidationError, match=r"E11 is a category, not a billable code: give the full code, e.g. E11"):
        icd10.check("E11")
    with pytest.raises(ValidationError, match="XYZ is not an ICD-10-CM code"):
        icd10.check("XYZ")
    with pytest.raises(ValidationError) as caught:
        icd10.parse_list("E11.9, XYZ; Q99999")
    assert len(caught.value.messages) == 2
    assert icd10.parse_list("E11.9; e11.9 R53.83") == ["E11.9", "R53.83"]
    assert icd10.describe("J02.9") == "Acute pharyngitis, unspecified"


@pytest.mark.parametrize(("npi", "valid"), [("1234567893", True), ("1234567890", False), ("123456789", False)])
def test_an_npi_is_ten_digits_with_its_check_digit(npi: str, valid: bool) -> None:
    if valid:
        validate_npi(npi)
    else:
        with pytest.raises(ValidationError, match="is not a valid NPI"):
            validate_npi(npi)


@pytest.mark.django_db
def test_the_handoff_keeps_its_diagnoses_and_refuses_a_bad_one() -> None:
    clinician = UserFactory(role=roles.ROLE_CLINICIAN)
    kwargs = {
        "patient": PatientFactory(),
        "ordering_clinician": clinician,
        "exam_room": ExamRoomFactory(),
        "by": clinician,
    }
    handoff = handoff_create(**kwargs, diagnosis_codes=["e119", "R53.83", "E11.9"])  # type: ignore[arg-type]
    assert Handoff.objects.get(pk=handoff.pk).diagnosis_codes == ["E11.9", "R53.83"]
    with pytest.raises(TransitionNotAllowed, match="E11 is a category"):
        handoff_create(**kwargs, diagnosis_codes=["E11"])  # type: ignore[arg-type]


@pytest.mark.django_db
def test_the_new_handoff_form_takes_diagnoses_and_says_what_is_wrong(client: Client) -> None:
    clinician = UserFactory(role=roles.ROLE_CLINICIAN)
    client.force_login(clinician)
    patient, room = PatientFactory(), ExamRoomFactory()
    tsh = TestDefinition.objects.get(short_name="TSH")
    data = {
        "patient": str(patient.uuid),
        "ordering_clinician": clinician.pk,
        "exam_room": room.pk,
        "priority": 2,
        "tests": [tsh.pk],
        "mobility": Handoff.Mobility.INDEPENDENT,
        "isolation": Handoff.Isolation.NONE,
    }
    refused = client.post(reverse("handoff_new"), data | {"diagnoses": "R53, E11.9"})
    assert refused.status_code == 422
    assert "R53 is a category, not a billable code" in refused.content.decode()
    assert not Handoff.objects.filter(patient=patient).exists()
    client.post(reverse("handoff_new"), data | {"diagnoses": "r53.83, E11.9"})
    handoff = Handoff.objects.get(patient=patient)
    assert handoff.diagnosis_codes == ["R53.83", "E11.9"]
    page = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
    assert '<span class="font-monospace">R53.83</span>' in page
