"""Stored HTML/JS comes back escaped on every page that shows it; CSV cells never start a formula."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from backoffice.audit import csv_safe
from backoffice.models import Handoff, User
from tests.factories import HandoffFactory, PatientFactory

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


@pytest.fixture
def hostile_handoff(clinician: User, exam_room) -> Handoff:  # type: ignore[no-untyped-def]
    patient = PatientFactory(given_name=SCRIPT, family_name=IMG, allergies=f"{SCRIPT}\n{IMG}")
    return HandoffFactory(
        patient=patient, ordering_clinician=clinician, created_by=clinician, exam_room=exam_room, clinical_note=SCRIPT
    )


def _assert_escaped(content: str) -> None:
    assert "<script>alert" not in content
    assert "<img src=x" not in content
    assert "onerror=alert(1)>" not in content or "&gt;" in content


@pytest.mark.parametrize(
    ("role", "page"),
    [("medical_assistant", "queue"), ("supervisor", "board"), ("medical_assistant", "detail"), ("clinician", "detail")],
)
def test_hostile_patient_data_is_escaped_on_pages(  # type: ignore[no-untyped-def]
    client: Client, request, hostile_handoff: Handoff, role: str, page: str
) -> None:
    client.force_login(request.getfixturevalue(role))
    url = reverse("handoff_detail", args=[hostile_handoff.uuid]) if page == "detail" else reverse(page)
    response = client.get(url)
    assert response.status_code == 200
    content = response.content.decode()
    _assert_escaped(content)
    if page != "board":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_hostile_patient_data_is_escaped_on_the_audit_page(
    client: Client, auditor: User, medical_assistant: User, hostile_handoff: Handoff
) -> None:
    client.force_login(medical_assistant)
    client.get(reverse("handoff_detail", args=[hostile_handoff.uuid]))  # an access row naming the patient
    client.force_login(auditor)
    response = client.post(reverse("audit"), {"patient": hostile_handoff.patient.mrn})
    assert response.status_code == 200
    content = response.content.decode()
    _assert_escaped(content)
    assert "&lt;script&gt;" in content


def test_hostile_search_input_is_escaped_on_the_audit_page(client: Client, auditor: User) -> None:
    client.force_login(auditor)
    response = client.post(reverse("audit"), {"username": SCRIPT, "patient": IMG})
    assert response.status_code in (200, 422)
    _assert_escaped(response.content.decode())


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_csv_safe_neutralises_formula_prefixes(prefix: str) -> None:
    assert csv_safe(f"{prefix}HYPERLINK(1)") == f"'{prefix}HYPERLINK(1)"
    assert csv_safe("plain") == "plain"
    assert csv_safe(None) == ""


def test_audit_export_neutralises_formula_cells(client: Client, auditor: User, medical_assistant: User) -> None:
    patient = PatientFactory(given_name="@SUM(A1)", family_name='=HYPERLINK("http://evil")')
    handoff = HandoffFactory(patient=patient)
    client.force_login(medical_assistant)
    client.get(reverse("handoff_detail", args=[handoff.uuid]))
    client.force_login(auditor)
    response = client.post(reverse("audit_export"), {"patient": patient.mrn})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    names = [row[9] for row in rows[1:] if row[9]]
    assert names, rows
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert '\'=HYPERLINK("http://evil"), @SUM(A1)' in names
    # The procedures charge CSV runs every cell through csv_safe too:
    # tests/procedures/test_views.py checks it end to end with a formula in the patient's name.
