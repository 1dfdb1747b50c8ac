"""The bench, a specimen's result entry, verification and amendment pages, per role, with their access log."""

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import roles
from backoffice.models import AccessLog, User
from lab.models import CriticalCall, Result
from lab.workflow import ResultStatus
from tests.factories import UserFactory
from tests.lab.helpers import kit_lot, ladder, quantitative_qc
from tests.lab.results_helpers import at_bench, enter, fresh, order_of, passing_lot

pytestmark = pytest.mark.django_db
R = ResultStatus


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH, first_name="Lee", last_name="Chen")


@pytest.fixture
def second_tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH, first_name="Ana", last_name="Ruiz")


@pytest.fixture(autouse=True)
def _ladder() -> None:
    ladder()


def _as(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def _entry(specimen, short_name: str, *typed: str, lot, **extra: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    order = order_of(specimen, short_name)
    prefix = f"t{order.pk}"
    data = {
        "order": str(order.uuid),
        f"{prefix}-kit_lot": str(lot.pk),
        **{f"{prefix}-{k}": v for k, v in extra.items()},
    }
    for analyte, value in zip(order.test.analytes.order_by("position"), typed, strict=True):
        data[f"{prefix}-a{analyte.pk}"] = value
    return data


class TestTheBench:
    def test_it_lists_received_specimens_stat_first_with_the_patients_time_in_the_clinic(
        self, client: Client, ma: User, tech: User
    ) -> None:
        routine = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        stat = at_bench("POC glucose", ma=ma, lab_tech=tech, stat=True)
        response = _as(client, tech).get(reverse("lab:results:bench"))
        rows = response.context["rows"]
        assert [r.specimen for r in rows] == [stat, routine]
        assert rows[0].in_clinic_minutes is not None and rows[0].in_clinic_minutes >= 0
        content = response.content.decode()
        assert "min</strong> in the clinic" in content and "STAT" in content
        log = AccessLog.objects.filter(what="lab bench").latest("id")
        assert set(log.patients.all()) == {routine.patient, stat.patient}

    def test_a_resulted_specimen_leaves_the_bench(self, client: Client, ma: User, tech: User) -> None:
        specimen = at_bench("POC glucose", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "POC glucose", "95", by=tech, lot=passing_lot("POC glucose", by=tech))
        c = _as(client, tech)
        assert len(c.get(reverse("lab:results:bench")).context["rows"]) == 1  # entered, not yet released
        c.post(reverse("lab:results:release", args=[result.uuid]))
        assert c.get(reverse("lab:results:bench")).context["rows"] == []

    @pytest.mark.parametrize("specimens", [1, 4])
    def test_the_bench_takes_the_same_queries_whatever_its_length(
        self,
        client: Client,
        ma: User,
        tech: User,
        django_assert_num_queries,
        specimens: int,  # type: ignore[no-untyped-def]
    ) -> None:
        for _ in range(specimens):
            at_bench("Hemoglobin", "POC glucose", ma=ma, lab_tech=tech)
        c = _as(client, tech)
        # 1 session, 2 user, 3 permissions and roles, 4 the specimens with patient, handoff and container,
        # 5 their pending in-house tests with the test (prefetch), 6 the access log row with its patients.
        with django_assert_num_queries(6):
            response = c.get(reverse("lab:results:bench"))
        assert len(response.context["rows"]) == specimens
        assert all(len(r.pending) == 2 for r in response.context["rows"])

    def test_a_scanned_accession_opens_its_results(self, client: Client, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        response = _as(client, tech).post(reverse("lab:results:scan"), {"accession": specimen.accession.lower()})
        assert response["Location"] == reverse("lab:results:specimen", args=[specimen.uuid])

    @pytest.mark.parametrize("role", [roles.ROLE_MEDICAL_ASSISTANT, roles.ROLE_CLINICIAN, roles.ROLE_AUDITOR])
    def test_roles_without_the_bench_are_refused_and_logged(self, client: Client, role: str) -> None:
        user = UserFactory(role=role)
        assert _as(client, user).get(reverse("lab:results:bench")).status_code == 403
        assert AccessLog.objects.filter(user=user, what="lab bench", outcome="denied").exists()


class TestEntryPage:
    def test_it_offers_usable_lots_and_says_why_the_others_are_locked(
        self, client: Client, ma: User, tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        passing_lot("Hemoglobin", by=tech, lot="GOOD")
        kit_lot("Hemoglobin", lot="NEWLOT")
        response = _as(client, tech).get(reverse("lab:results:specimen", args=[specimen.uuid]))
        content = response.content.decode()
        assert response.status_code == 200
        [panel] = response.context["panels"]
        assert [c.lot.lot_number for c in panel.usable_lots] == ["GOOD"]
        assert "Lot NEWLOT: Run the level 1 (low) on" in content
        assert 'inputmode="decimal" autofocus' in content
        assert '<span class="input-group-text">g/dL</span>' in content
        log = AccessLog.objects.filter(what="specimen results").latest("id")
        assert (log.object_ref, list(log.patients.all())) == (str(specimen.uuid), [specimen.patient])

    def test_a_test_whose_qc_is_missing_is_locked_saying_what_to_run(
        self, client: Client, ma: User, tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        kit_lot("Hemoglobin", lot="NEWLOT")
        quantitative_qc("Hemoglobin", levels=(("8.0", "0.3"), ("16.0", "0.5")))
        c = _as(client, tech)
        content = c.get(reverse("lab:results:specimen", args=[specimen.uuid])).content.decode()
        assert "QC lockout: no kit lot for Hemoglobin may be used for patients now." in content
        assert "Run the level 1 (low) on Acme Diagnostics Hemoglobin kit lot NEWLOT first" in content
        assert "result-entry" not in content

    def test_a_critical_value_is_loud_before_saving_and_needs_an_explicit_confirm(
        self, client: Client, ma: User, tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        lot = passing_lot("Hemoglobin", by=tech)
        c = _as(client, tech)
        url = reverse("lab:results:enter", args=[specimen.uuid])
        response = c.post(url, _entry(specimen, "Hemoglobin", "6.8", lot=lot))
        content = response.content.decode()
        assert response.status_code == 200
        assert "alert-stop" in content and "STOP: critical value:" in content
        assert "Hgb 6.8 g/dL (LL, critically low)" in content
        assert "Save critical result" in content
        assert not Result.objects.exists()

        response = c.post(url, _entry(specimen, "Hemoglobin", "6.8", lot=lot, confirm_critical="on"))
        assert response.status_code == 302
        [result] = Result.objects.all()
        assert (result.flag, result.is_critical, result.entered_by) == ("LL", True, tech)
        assert not CriticalCall.objects.exists()  # called on release

    def test_a_wrong_value_is_shown_on_its_field_and_nothing_is_saved(
        self, client: Client, ma: User, tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        lot = passing_lot("Hemoglobin", by=tech)
        response = _as(client, tech).post(
            reverse("lab:results:enter", args=[specimen.uuid]), _entry(specimen, "Hemoglobin", "high", lot=lot)
        )
        assert response.status_code == 422
        assert "Hgb is a number in g/dL." in response.content.decode()
        assert not Result.objects.exists()

    def test_a_clinician_sees_results_but_no_entry_form(self, client: Client, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        passing_lot("Hemoglobin", by=tech)
        c = _as(client, specimen.handoff.ordering_clinician)
        response = c.get(reverse("lab:results:specimen", args=[specimen.uuid]))
        assert response.status_code == 200
        assert "result-entry" not in response.content.decode()
        assert c.post(reverse("lab:results:enter", args=[specimen.uuid]), {}).status_code == 403


class TestVerifyAndAmend:
    def test_the_enterer_is_not_offered_verification_and_a_second_tech_verifies(
        self, client: Client, ma: User, tech: User, second_tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        page = reverse("lab:results:specimen", args=[specimen.uuid])
        content = _as(client, tech).get(page).content.decode()
        assert "Verify and release" not in content
        assert "You entered this result; a second person verifies it before release." in content
        # Posted anyway: refused and logged, nothing changes.
        client.post(reverse("lab:results:verify", args=[result.uuid]))
        assert fresh(result).status == R.ENTERED
        assert AccessLog.objects.filter(user=tech, object_ref=str(result.uuid), outcome="denied").exists()

        other = Client()
        other.force_login(second_tech)
        assert reverse("lab:results:specimen", args=[specimen.uuid]) in str(
            other.get(reverse("lab:results:verification")).content
        )
        assert "Verify and release Hemoglobin" in other.get(page).content.decode()
        other.post(reverse("lab:results:verify", args=[result.uuid]))
        assert fresh(result).status == R.RELEASED

    def test_an_amendment_shows_the_original_struck_through(
        self, client: Client, ma: User, tech: User, second_tech: User
    ) -> None:
        specimen = at_bench("POC glucose", ma=ma, lab_tech=tech)
        [original] = enter(specimen, "POC glucose", "95", by=tech, lot=passing_lot("POC glucose", by=tech))
        c = _as(client, tech)
        c.post(reverse("lab:results:release", args=[original.uuid]))
        c.post(reverse("lab:results:amend", args=[original.uuid]), {"value": "", "reason": "x"})
        assert not Result.objects.filter(amends=original).exists()
        c.post(reverse("lab:results:amend", args=[original.uuid]), {"value": "59", "reason": "Misread the meter"})
        amended = Result.objects.get(amends=original)
        other = Client()
        other.force_login(second_tech)
        other.post(reverse("lab:results:verify", args=[amended.uuid]))
        content = other.get(reverse("lab:results:result", args=[amended.uuid])).content.decode()
        assert "<del>95 mg/dL</del>" in content
        assert "Amends 95 mg/dL: Misread the meter" in content
        log = AccessLog.objects.filter(what="result").latest("id")
        assert (log.object_ref, list(log.patients.all())) == (str(amended.uuid), [specimen.patient])


def test_a_result_sent_back_shows_why_until_it_is_corrected(
    client: Client, ma: User, tech: User, second_tech: User
) -> None:
    from lab.results import services

    specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
    [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
    services.result_send_back(result=fresh(result), by=second_tech, reason="Cuvette had a bubble: repeat")
    c = _as(client, tech)
    page = reverse("lab:results:specimen", args=[specimen.uuid])
    assert "Sent back: Cuvette had a bubble: repeat" in c.get(page).content.decode()
    c.post(reverse("lab:results:correct", args=[result.uuid]), {"value": "12.6"})
    content = c.get(page).content.decode()
    assert "Sent back:" not in content
    assert fresh(result).display_value == "12.6 g/dL"


def test_a_locked_lot_posted_anyway_is_refused_and_nothing_is_saved(client: Client, ma: User, tech: User) -> None:
    specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
    passing_lot("Hemoglobin", by=tech, lot="GOOD")
    locked = kit_lot("Hemoglobin", lot="NEWLOT")
    response = _as(client, tech).post(
        reverse("lab:results:enter", args=[specimen.uuid]), _entry(specimen, "Hemoglobin", "13.0", lot=locked)
    )
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()
    assert not Result.objects.exists()


def test_the_verification_list_shows_others_results_and_logs_their_patients(
    client: Client, ma: User, tech: User, second_tech: User
) -> None:
    mine = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
    theirs = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
    lot = passing_lot("Hemoglobin", by=tech)
    enter(mine, "Hemoglobin", "13.0", by=second_tech, lot=lot)
    enter(theirs, "Hemoglobin", "13.1", by=tech, lot=lot)
    response = _as(client, second_tech).get(reverse("lab:results:verification"))
    assert [r.specimen for r in response.context["results"]] == [theirs]
    log = AccessLog.objects.filter(what="results to verify").latest("id")
    assert list(log.patients.all()) == [theirs.patient]
