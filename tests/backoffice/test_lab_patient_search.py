"""Lab technicians search only the patients they need (issue 13, point 15).

POST /patients/search/ answers a lab technician (who hands no patient off and oversees no floor) with
the patients in the lab's work: a specimen the lab holds, a test open in the lab (a send-out is its
test's), or one of either that changed in the last LAB_SEARCH_RECENT_DAYS. Other matches are not
shown; a denied row names them (never the query), and the page says no patient in the lab's work
matches.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import roles
from backoffice.models import AccessAction, AccessLog, AccessOutcome, Patient, User
from backoffice.selectors import search_patients
from lab.models import TestOrder
from lab.services import test_orders_add
from lab.workflow import TestOrderStatus
from specimens.models import Specimen
from tests.factories import HandoffFactory, PatientFactory, UserFactory
from tests.specimens.helpers import collected, tests

pytestmark = pytest.mark.django_db


@pytest.fixture
def tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


def with_test(patient: Patient, *, status: str = TestOrderStatus.ORDERED, days_ago: int = 0) -> TestOrder:
    handoff = HandoffFactory(patient=patient)
    [order] = test_orders_add(handoff=handoff, tests=tests("CBC"), by=handoff.ordering_clinician)
    TestOrder.objects.filter(pk=order.pk).update(
        status=status, status_changed_at=timezone.now() - timedelta(days=days_ago)
    )
    return order


def search(client: Client, user: User, query: str) -> str:
    client.force_login(user)
    return client.post(reverse("patient_search"), {"q": query}).content.decode()


def logged(what: str) -> list[AccessLog]:
    return list(AccessLog.objects.filter(what=what).order_by("id"))


class TestTheLabsPatients:
    def test_a_patient_with_a_test_open_in_the_lab_is_found(self, client: Client, tech: User) -> None:
        rosa = PatientFactory(family_name="Gutierrez", given_name="Rosa")
        with_test(rosa)
        content = search(client, tech, "gutierrez")
        assert "GUTIERREZ, Rosa" in content
        [entry] = logged("patient search")
        assert list(entry.patients.values_list("pk", flat=True)) == [rosa.pk]
        assert not logged("patient search outside lab work")

    @pytest.mark.parametrize(("days_ago", "found"), [(5, True), (29, True), (31, False), (400, False)])
    def test_a_finished_test_counts_for_the_recent_days(
        self, client: Client, tech: User, days_ago: int, found: bool
    ) -> None:
        rosa = PatientFactory(family_name="Gutierrez", given_name="Rosa")
        with_test(rosa, status=TestOrderStatus.RESULTED, days_ago=days_ago)
        assert ("GUTIERREZ, Rosa" in search(client, tech, "Gutierrez")) is found

    def test_a_specimen_the_lab_holds_counts_however_old(self, client: Client, tech: User) -> None:
        ma = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
        handoff, [tube] = collected("CBC", ma=ma)
        long_ago = timezone.now() - timedelta(days=90)
        Specimen.objects.filter(pk=tube.pk).update(status_changed_at=long_ago)
        TestOrder.objects.filter(handoff=handoff).update(status=TestOrderStatus.RESULTED, status_changed_at=long_ago)
        assert handoff.patient.mrn in search(client, tech, handoff.patient.mrn)

    def test_a_short_query_finds_nobody_and_withholds_nobody(self, client: Client, tech: User) -> None:
        PatientFactory(family_name="Gutierrez")
        search(client, tech, "g")
        assert not logged("patient search outside lab work")
        assert not AccessLog.objects.filter(what="patient search", patients__isnull=False).exists()


class TestEveryoneElse:
    def test_a_patient_outside_the_labs_work_is_withheld_and_the_refusal_names_them(
        self, client: Client, tech: User
    ) -> None:
        rosa = PatientFactory(family_name="Gutierrez", given_name="Rosa", mrn="M300001")
        for query in ("Gutierrez", "M300001"):
            content = search(client, tech, query)
            assert "GUTIERREZ" not in content and "M300001" not in content.replace(f"“{query}”", "")
            assert f"No patient in the lab's work matches “{query}”." in content
            assert "from the last 30 days" in content
        denied = logged("patient search outside lab work")
        assert [(e.action, e.outcome) for e in denied] == [(AccessAction.DENIED, AccessOutcome.DENIED)] * 2
        assert all(list(e.patients.values_list("pk", flat=True)) == [rosa.pk] for e in denied)
        # The search itself is logged as ever, with nobody shown.
        assert [list(e.patients.all()) for e in logged("patient search")] == [[], []]

    def test_only_the_matches_outside_are_withheld(self, client: Client, tech: User) -> None:
        inside = PatientFactory(family_name="Gutierrez", given_name="Rosa")
        outside = PatientFactory(family_name="Gutierrez", given_name="Ana")
        with_test(inside)
        content = search(client, tech, "Gutierrez")
        assert "GUTIERREZ, Rosa" in content and "GUTIERREZ, Ana" not in content
        [shown] = logged("patient search")
        [denied] = logged("patient search outside lab work")
        assert list(shown.patients.values_list("pk", flat=True)) == [inside.pk]
        assert list(denied.patients.values_list("pk", flat=True)) == [outside.pk]

    @pytest.mark.parametrize("role", [roles.ROLE_MEDICAL_ASSISTANT, roles.ROLE_CLINICIAN, roles.ROLE_SUPERVISOR])
    def test_who_hands_patients_off_or_oversees_finds_any_patient(self, client: Client, role: str) -> None:
        PatientFactory(family_name="Gutierrez", given_name="Rosa")
        assert "GUTIERREZ, Rosa" in search(client, UserFactory(role=role), "Gutierrez")
        assert not logged("patient search outside lab work")


def test_the_lab_search_is_one_query(tech: User, django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    for n in range(12):
        patient = PatientFactory(family_name="Gutierrez", given_name=f"Rosa{n}")
        if n % 2:
            with_test(patient)
    tech = User.objects.get(pk=tech.pk)
    # 1. the user's permissions (the one-query backend), 2. the patients matching (the exact MRN, or the
    #    search column's words through patient_search_idx), each marked whether in the lab's work (the
    #    specimens' and tests' subqueries inside it) and with their open handoffs.
    with django_assert_num_queries(2):
        found = search_patients("Gutierrez", user=tech)
    assert len(found.patients) == 6 and len(found.withheld) == 4  # ten rows a page, the lab's first
