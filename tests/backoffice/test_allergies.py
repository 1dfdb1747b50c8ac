"""Structured allergies: recorded, taken off with a reason and "none known" confirmed, by whoever is with the
patient, with who and when; the banner's summary follows every change; the page is logged and per role."""

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from backoffice import roles
from backoffice.allergies import allergies_none_known, allergy_record, allergy_remove
from backoffice.models import AccessLog, Allergy, DrugClass, Handoff, Ingredient, Patient, User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from tests.factories import HandoffFactory, PatientFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT, first_name="Maria", last_name="Alvarez")


@pytest.fixture
def unasked() -> Handoff:
    return HandoffFactory(patient=PatientFactory(given_name="José", family_name="Gutiérrez"))


def _page(handoff: Handoff, name: str = "allergies", *args: object) -> str:
    return reverse(name, args=[handoff.uuid, *args])


def test_recording_an_allergy_keeps_the_banner_summary_and_who_asked(ma: User, unasked: Handoff) -> None:
    patient = unasked.patient
    allergy_record(
        patient=patient,
        by=ma,
        kind="ingredient",
        ingredient=Ingredient.objects.get(name="amoxicillin"),
        reaction="rash",
    )
    allergy_record(patient=patient, by=ma, kind="latex", severity="severe")
    patient.refresh_from_db()
    assert patient.allergy_list == ["Amoxicillin — rash", "Latex (severe)"]
    assert (patient.allergies_reviewed_by, patient.no_known_allergies) == (ma, False)
    assert apps.get_model("backoffice", "AllergyHistory").objects.filter(patient=patient).count() == 2
    with pytest.raises(TransitionNotAllowed, match="already on José Gutiérrez's allergies"):
        allergy_record(patient=patient, by=ma, kind="ingredient", ingredient=Ingredient.objects.get(name="amoxicillin"))


def test_bad_input_says_what_to_give_and_writes_nothing(ma: User, unasked: Handoff) -> None:
    for kind, message in (
        ("ingredient", "Choose the drug"),
        ("drug_class", "Choose the drug class"),
        ("food", "Say what"),
    ):
        with pytest.raises(TransitionNotAllowed, match=message):
            allergy_record(patient=unasked.patient, by=ma, kind=kind)
    with pytest.raises(PermissionRefused):
        allergy_record(patient=unasked.patient, by=UserFactory(role=roles.ROLE_LAB_TECH), kind="latex")
    assert not Allergy.objects.exists()


def test_taking_one_off_keeps_it_with_who_and_why_and_none_known_needs_an_empty_list(
    ma: User, unasked: Handoff
) -> None:
    patient = unasked.patient
    allergy = allergy_record(patient=patient, by=ma, kind="drug_class", drug_class=DrugClass.objects.get(name="NSAIDs"))
    with pytest.raises(TransitionNotAllowed, match="has allergies on record"):
        allergies_none_known(patient=patient, by=ma)
    with pytest.raises(TransitionNotAllowed, match="Say why"):
        allergy_remove(allergy=allergy, by=ma, reason=" ")
    allergy_remove(allergy=allergy, by=ma, reason="Tolerated ibuprofen since")
    allergies_none_known(patient=patient, by=ma)
    patient.refresh_from_db()
    allergy.refresh_from_db()
    assert (patient.allergies, patient.no_known_allergies) == ("", True)
    assert (allergy.removed_by, allergy.removed_reason) == (ma, "Tolerated ibuprofen since")


def test_the_migration_made_a_record_of_each_line_patients_had() -> None:
    """Legacy allergies text: backoffice/migrations/0021 links the lines that name a drug or class."""
    from importlib import import_module

    migration = import_module("backoffice.migrations.0021_drug_vocabulary_and_allergy_records")
    patient = PatientFactory(allergies="Penicillin — hives\nAspirin\nShellfish — swelling")
    migration.forwards(apps, None)
    records = {a.allergen: (a.kind, a.drug_class, a.ingredient, a.reaction) for a in patient.allergy_records.all()}
    assert records == {
        "Penicillin": ("drug_class", DrugClass.objects.get(name="Penicillins"), None, "hives"),
        "Aspirin": ("ingredient", None, Ingredient.objects.get(name="aspirin"), ""),
        "Shellfish": ("other", None, None, "swelling"),
    }
    assert sorted(a.summary_line for a in patient.allergy_records.all()) == sorted(patient.allergy_list)


# --- The page ------------------------------------------------------------------------------------


def test_the_page_answers_allergies_not_recorded_on_the_spot_and_logs_the_patient(
    client: Client, ma: User, unasked: Handoff
) -> None:
    client.force_login(ma)
    content = client.get(_page(unasked)).content.decode()
    assert "Allergies not recorded: ask" in content
    assert "Asked: no known allergies" in content
    log = AccessLog.objects.filter(what="patient allergies").latest("pk")
    assert list(log.patients.all()) == [unasked.patient]

    assert client.post(_page(unasked, "allergy_none_known")).status_code == 302
    patient = Patient.objects.get(pk=unasked.patient_id)
    assert patient.no_known_allergies and patient.allergies_reviewed_by == ma
    content = client.get(_page(unasked)).content.decode()
    assert "No known allergies: asked and recorded." in content
    assert "Maria Alvarez" in content


def test_the_page_records_and_takes_off_an_allergy(client: Client, ma: User, unasked: Handoff) -> None:
    client.force_login(ma)
    cephalosporins = DrugClass.objects.get(name="Cephalosporins")
    response = client.post(
        _page(unasked, "allergy_add"),
        {"kind": "drug_class", "drug_class": cephalosporins.pk, "reaction": "hives", "severity": "moderate"},
    )
    assert response.status_code == 302
    allergy = Allergy.objects.get()
    assert (
        client.get(reverse("handoff_detail", args=[unasked.uuid])).content.decode().count("Cephalosporins — hives") >= 1
    )

    response = client.post(_page(unasked, "allergy_add"), {"kind": "drug_class", "severity": "unknown"})
    assert response.status_code == 422
    assert "Choose the drug class the patient is allergic to." in response.content.decode()
    assert Allergy.objects.count() == 1

    client.post(_page(unasked, "allergy_remove", allergy.pk), {"reason": ""})
    assert Allergy.objects.get().removed_at is None
    client.post(_page(unasked, "allergy_remove", allergy.pk), {"reason": "Entered on the wrong patient"})
    content = client.get(_page(unasked)).content.decode()
    assert "<del>Cephalosporins — hives</del>" in content and "Entered on the wrong patient" in content


def test_lab_technicians_neither_see_nor_change_allergies_here(client: Client, unasked: Handoff) -> None:
    client.force_login(UserFactory(role=roles.ROLE_LAB_TECH))
    assert client.get(_page(unasked)).status_code == 403
    assert client.post(_page(unasked, "allergy_add"), {"kind": "latex"}).status_code == 403
    assert not Allergy.objects.exists()


@pytest.mark.parametrize("count", [1, 6])
def test_the_page_takes_the_same_queries_however_many_allergies(client: Client, ma: User, count: int) -> None:
    handoff = HandoffFactory()
    for ingredient in Ingredient.objects.order_by("name")[:count]:
        allergy_record(patient=handoff.patient, by=ma, kind="ingredient", ingredient=ingredient)
    allergy_remove(allergy=handoff.patient.allergy_records.first(), by=ma, reason="Entered in error")
    client.force_login(ma)
    client.get(_page(handoff))  # the session and the permissions, read once per session
    with CaptureQueriesContext(connection) as queries:
        assert client.get(_page(handoff)).status_code == 200
    # 1 the session, 2 the user, 3 their permissions, 4 the handoff with its patient, room and station,
    # 5 the staff it names, 6 who last asked about allergies, 7 the allergy records with who recorded and
    # removed them, 8 the access-log row with its patient (one statement), 9 the drug choices, 10 the classes.
    assert len(queries) == 10
