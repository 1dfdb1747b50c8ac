"""Patient search as people type it (issue 14, point 9): no accents, no case, as the identity check
compares names; a date of birth as the pages print it or in ISO; part of an MRN. The search column it
reads (Patient.search_text) is kept by every writer of patients, and read through its index."""

import datetime as dt
import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from backoffice import roles, services
from backoffice.models import AccessLog, AccessOutcome, Patient, User
from backoffice.selectors import find_patients, patient_match, search_patients
from backoffice.text import patient_search_text
from lab.sendouts.carried_over import open_send_outs_import
from tests.factories import HandoffFactory, PatientFactory, UserFactory
from tests.lab.hl7.intake_helpers import corpus_labs, csv_text, desk_user, order_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def jose() -> Patient:
    return PatientFactory(mrn="M200123", given_name="José", family_name="Gutiérrez", date_of_birth=dt.date(1980, 3, 14))


def found(query: str, user: User) -> list[Patient]:
    return find_patients(query, user=user)


class TestWhatItFinds:
    @pytest.mark.parametrize("query", ["jose gutierrez", "GUTIERREZ", "Gutierrez, Jose", "gutié", "JOSÉ gut"])
    def test_it_ignores_accents_and_case(self, ma: User, jose: Patient, query: str) -> None:
        PatientFactory(given_name="Josefina", family_name="Lopez")
        assert found(query, ma) == [jose]

    @pytest.mark.parametrize(
        "typed", ["jose gutierrez", "GUTIERREZ JOSE", "Gutiérrez, José", "josé  gutiérrez", "Jose Gutierrez"]
    )
    def test_whom_the_identity_check_accepts_the_search_finds(self, ma: User, jose: Patient, typed: str) -> None:
        assert services._name_matches(jose, typed)
        assert found(typed, ma) == [jose]

    def test_letters_without_their_accent_or_stroke_are_found_both_ways(self, ma: User) -> None:
        lukasz = PatientFactory(given_name="Łukasz", family_name="Søren-Ødegård")
        assert found("lukasz odegard", ma) == [lukasz]
        assert found("Łukasz Søren", ma) == [lukasz]
        assert services._name_matches(lukasz, "lukasz soren odegard")

    def test_an_apostrophe_is_typed_or_not(self, ma: User) -> None:
        obrien = PatientFactory(given_name="Siobhán", family_name="O'Brien")
        for query in ("obrien", "o'brien", "O\u2019Brien", "brien siobhan"):
            assert found(query, ma) == [obrien], query

    @pytest.mark.parametrize("query", ["03/14/1980", "3/14/1980", "1980-03-14", "03-14-1980"])
    def test_it_finds_by_date_of_birth(self, ma: User, jose: Patient, query: str) -> None:
        PatientFactory(date_of_birth=dt.date(1980, 3, 15))
        assert found(query, ma) == [jose]

    def test_a_name_and_a_date_of_birth_narrow_each_other(self, ma: User, jose: Patient) -> None:
        twin = PatientFactory(given_name="Rosa", family_name="Gutierrez", date_of_birth=dt.date(1980, 3, 14))
        other = PatientFactory(given_name="Ana", family_name="Gutierrez", date_of_birth=dt.date(1975, 1, 2))
        assert set(found("gutierrez 03/14/1980", ma)) == {jose, twin}
        assert found("gutierrez 1975-01-02", ma) == [other]
        assert found("rosa 03/14/1980", ma) == [twin]

    @pytest.mark.parametrize("query", ["0123", "200123", "00123", "2001", "123", "m2001"])
    def test_it_finds_by_part_of_the_mrn(self, ma: User, jose: Patient, query: str) -> None:
        PatientFactory(mrn="M300456")
        assert found(query, ma) == [jose]

    def test_two_digits_are_not_yet_a_part_of_an_mrn_and_a_name_never_matches_an_mrn(
        self, ma: User, jose: Patient
    ) -> None:
        assert found("12", ma) == []
        PatientFactory(given_name="Mia", family_name="Moreno")
        assert found("m", ma) == []  # too short to search at all
        assert [p.family_name for p in found("mo", ma)] == ["Moreno"]  # not M200123

    def test_a_scanned_mrn_still_finds_exactly_its_patient(self, ma: User, jose: Patient) -> None:
        PatientFactory(mrn="M2001230")  # contains M200123's digits
        assert found("M200123", ma) == [jose]

    def test_text_that_would_be_tsquery_syntax_is_only_text(self, ma: User, jose: Patient) -> None:
        for query in ("gut & !x", "gut | ros", "gut:*", "'gut'", "gut\\", "(gut", "<->"):
            found(query, ma)  # no syntax error
        assert found("gut & !", ma) == [jose]


class TestTheSearchColumnIsKeptByEveryWriter:
    def test_save_and_create_fill_it(self) -> None:
        patient = Patient.objects.create(
            mrn="M400001", given_name="Zoë", family_name="Núñez", date_of_birth="1990-01-01", sex="F"
        )
        assert Patient.objects.get(pk=patient.pk).search_text == "zoe nunez 400001 00001 0001 001"

    def test_a_save_of_some_fields_keeps_it_with_the_names(self, jose: Patient) -> None:
        jose.family_name = "Gutiérrez Peña"
        jose.save(update_fields=["family_name"])
        assert "pena" in Patient.objects.get(pk=jose.pk).search_text

    def test_bulk_create_and_bulk_update_fill_it(self) -> None:
        [made] = Patient.objects.bulk_create(
            [Patient(mrn="M400002", given_name="Inés", family_name="Ávila", date_of_birth="1990-01-01", sex="F")]
        )
        assert Patient.objects.get(mrn="M400002").search_text.startswith("ines avila")
        made.given_name = "Inès"
        Patient.objects.bulk_update([made], ["given_name"])
        assert Patient.objects.get(mrn="M400002").search_text.startswith("ines avila")

    def test_an_update_of_names_that_would_skip_it_is_refused(self, jose: Patient) -> None:
        with pytest.raises(TypeError, match="search_text"):
            Patient.objects.filter(pk=jose.pk).update(family_name="Other")
        Patient.objects.filter(pk=jose.pk).update(phone="555-0100")  # other fields as ever

    def test_the_admin_keeps_it(self, client: Client, jose: Patient) -> None:
        admin = User.objects.create_superuser("records-admin", "records@clinic.test", "correct-horse-battery-staple")
        client.force_login(admin)
        url = reverse("admin:backoffice_patient_change", args=[jose.pk])
        data = {
            "mrn": "M200123",
            "family_name": "Gutiérrez Núñez",
            "given_name": "José",
            "date_of_birth": "1980-03-14",
            "sex": "M",
            "preferred_language": "English",
            "allergies": "",
            "phone": "",
            "email": "",
            "address": "",
            "emergency_contact": "",
        }
        assert client.post(url, data).status_code == 302
        assert Patient.objects.get(pk=jose.pk).search_text.startswith("jose gutierrez nunez")

    def test_import_open_send_outs_keeps_it(self) -> None:
        corpus_labs()
        open_send_outs_import(text=csv_text([order_row("0000123")]), by=desk_user(), source="old.csv")
        patient = Patient.objects.get(mrn=order_row("0000123")["mrn"])
        assert patient.search_text == patient.make_search_text() != ""

    def test_the_scale_loader_fills_it(self, settings) -> None:  # type: ignore[no-untyped-def]
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
        call_command("seed_demo", "--scale", "--patients", "50", "--handoffs", "10", "--open", "2", stdout=StringIO())
        scale = Patient.objects.filter(mrn__startswith="S")
        assert scale.count() == 50
        assert all(p.search_text == p.make_search_text() != "" for p in scale)

    def test_the_migration_fills_it_for_patients_already_there(self, jose: Patient) -> None:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE backoffice_patient SET search_text = ''")
        migration = importlib.import_module("backoffice.migrations.0017_patient_search_text")
        with connection.schema_editor() as editor:
            migration.fill_search_text(apps, editor)
        assert Patient.objects.get(pk=jose.pk).search_text == patient_search_text(
            given_name="José", family_name="Gutiérrez", mrn="M200123"
        )


def test_the_search_reads_the_column_through_its_index(ma: User, jose: Patient) -> None:
    match = patient_match("gutierrez jo")
    assert match is not None
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = Patient.objects.filter(match).order_by().query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "patient_search_idx" in plan, plan


class TestTheLabsSearchStaysLimited:
    def test_a_date_of_birth_or_mrn_part_finds_no_more_for_a_lab_tech(self, jose: Patient) -> None:
        tech = UserFactory(role=roles.ROLE_LAB_TECH)
        for query in ("03/14/1980", "0123"):
            search = search_patients(query, user=tech)
            assert (search.patients, search.withheld, search.scoped) == ([], [jose.pk], True)

    def test_the_page_writes_the_denied_row_naming_them(self, client: Client, jose: Patient) -> None:
        client.force_login(UserFactory(role=roles.ROLE_LAB_TECH))
        content = client.post(reverse("patient_search"), {"q": "1980-03-14"}).content.decode()
        assert "No patient in the lab's work matches" in content
        denied = AccessLog.objects.get(what="patient search outside lab work")
        assert denied.outcome == AccessOutcome.DENIED
        assert list(denied.patients.values_list("pk", flat=True)) == [jose.pk]


def test_the_open_handoff_mark_still_shows(client: Client, ma: User, jose: Patient) -> None:
    HandoffFactory(patient=jose)
    client.force_login(ma)
    content = client.post(reverse("patient_search"), {"q": "gutierrez"}).content.decode()
    assert "GUTIÉRREZ, José" in content and "Already on the queue" in content


@pytest.mark.parametrize("query", ["gutierrez 03/14/1980", "0123", "M200123"])
def test_a_search_is_one_query_after_the_permissions(
    ma: User, jose: Patient, django_assert_num_queries, query: str
) -> None:  # type: ignore[no-untyped-def]
    PatientFactory.create_batch(5, family_name="Gutierrez")
    ma = User.objects.get(pk=ma.pk)
    # 1. the user's permissions (the one-query backend); 2. the exact MRN (a scanned wristband), and,
    # when it is no patient's, 3. the patients matching the date of birth and the search column's
    # words (patient_search_idx), with their open handoffs.
    with django_assert_num_queries(2 if query == "M200123" else 3):
        assert find_patients(query, user=ma) == [jose]
