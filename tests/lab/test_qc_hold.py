"""A failed QC holds the lot's unreleased results and puts its released ones up for review, until dealt with.

Unreleased: neither verified nor released until the test is repeated (a correction) on a lot whose QC
passes again. Released: marked for review on every page the result is read, until a verifier closes
the review (the result stands) or it is amended. The entry holds the kit lot FOR SHARE, so a QC run
on that lot can't decide while results are being entered on it.
"""

import psycopg
import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse

from backoffice import roles
from backoffice.models import AccessLog, User
from backoffice.workflow import TransitionNotAllowed
from lab.models import ControlLot, KitLot, QCRun, Result, ResultEvent
from lab.qc.services import qc_run_record
from lab.results import services
from lab.results.selectors import result_actions
from lab.workflow import ControlLevel, ResultStatus
from tests.factories import UserFactory
from tests.lab.results_helpers import at_bench, enter, fresh, passing_lot

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


def _control(lot: KitLot, level: str) -> ControlLot:
    return ControlLot.objects.get(test__in=lot.kit.tests.all(), level=level)


def _fail_positive(lot: KitLot, by: User) -> QCRun:
    run = qc_run_record(kit_lot=lot, control_lot=_control(lot, ControlLevel.POSITIVE), value="Negative", by=by)
    assert run.passed is False
    return run


def _pass_positive(lot: KitLot, by: User) -> QCRun:
    run = qc_run_record(kit_lot=lot, control_lot=_control(lot, ControlLevel.POSITIVE), value="Positive", by=by)
    assert run.passed is True
    return run


def _strep_entered(ma: User, tech: User) -> tuple[KitLot, Result]:
    lot = passing_lot("Rapid strep", by=tech, lot="STR-1")
    [result] = enter(at_bench("Rapid strep", ma=ma, lab_tech=tech), "Rapid strep", "Negative", by=tech, lot=lot)
    return lot, result


class TestAnUnreleasedResultIsHeld:
    def test_a_failed_qc_holds_it_from_verification_and_release(self, ma: User, tech: User, second_tech: User) -> None:
        lot, result = _strep_entered(ma, tech)
        _fail_positive(lot, tech)

        held = fresh(result)
        assert held.needs_review and held.status == R.ENTERED
        assert held.review_reason.startswith("Rapid strep Positive control lot P-1 failed on lot STR-1 at ")
        with pytest.raises(
            services.QCLockout,
            match=r"Strep A is held: a control failed on lot STR-1 after it was run\. Repeat it once the lot's QC passes",
        ):
            services.result_verify(result=held, by=second_tech)
        with pytest.raises(TransitionNotAllowed):
            services.result_release(result=held, by=tech)
        # The page asks the same guards: no verify button, the reason instead.
        assert not result_actions(held, second_tech).verify
        assert "is held" in result_actions(held, second_tech).verify.why
        assert fresh(result).status == R.ENTERED

    def test_it_is_repeated_once_qc_passes_and_then_verified(self, ma: User, tech: User, second_tech: User) -> None:
        lot, result = _strep_entered(ma, tech)
        _fail_positive(lot, tech)
        with pytest.raises(services.QCLockout, match=r"Held by a failed QC: repeat the test once it passes\. The"):
            services.result_correct(result=fresh(result), value="Negative", by=tech)
        assert not result_actions(fresh(result), tech).correct

        _pass_positive(lot, tech)
        repeated = services.result_correct(result=fresh(result), value="Negative", by=tech)
        assert (repeated.needs_review, repeated.review_reason) == (False, "")
        event = ResultEvent.objects.filter(result=result, action=ResultEvent.Action.CORRECTED).get()
        assert event.note == "Negative → Negative (N), repeated after QC passed"

        [released] = services.result_verify(result=fresh(result), by=second_tech)
        assert released.status == R.RELEASED

    def test_a_result_run_before_the_last_passing_qc_is_not_held(self, ma: User, tech: User) -> None:
        lot, result = _strep_entered(ma, tech)
        _pass_positive(lot, tech)  # a later pass brackets the result
        _fail_positive(lot, tech)
        assert fresh(result).needs_review is False

    def test_the_qc_board_says_how_many_it_held(self, client: Client, ma: User, tech: User) -> None:
        lot, _ = _strep_entered(ma, tech)
        client.force_login(tech)
        response = client.post(
            reverse("lab:qc:run", args=[lot.pk]),
            {"control_lot": _control(lot, ControlLevel.POSITIVE).pk, "value": "Negative"},
            follow=True,
        )
        assert "FAILED. Patient testing on this lot is locked until it passes. 1 unreleased result held until" in (
            response.content.decode()
        )


class TestAReleasedResultUnderReview:
    def _released_under_review(self, ma: User, tech: User) -> tuple[KitLot, Result]:
        lot, result = _strep_entered(ma, tech)
        services.result_verify(result=fresh(result), by=UserFactory(role=roles.ROLE_LAB_TECH))
        _fail_positive(lot, tech)
        under_review = fresh(result)
        assert under_review.needs_review and under_review.status == R.RELEASED
        return lot, under_review

    def test_a_verifier_closes_the_review_saying_what_it_found(self, ma: User, tech: User, second_tech: User) -> None:
        _, result = self._released_under_review(ma, tech)
        with pytest.raises(TransitionNotAllowed, match="Say what the review found"):
            services.result_close_review(result=result, by=second_tech, note="  ")
        services.result_close_review(result=result, by=second_tech, note="Repeated after QC passed: negative again")
        closed = fresh(result)
        assert (closed.needs_review, closed.review_reason, closed.status) == (False, "", R.RELEASED)
        event = ResultEvent.objects.get(result=result, action=ResultEvent.Action.REVIEW_CLOSED)
        assert (event.actor, event.note) == (second_tech, "Repeated after QC passed: negative again")
        with pytest.raises(TransitionNotAllowed, match="not under review"):
            services.result_close_review(result=closed, by=second_tech, note="again")

    def test_it_is_amended_with_a_repeat_once_qc_passes(self, ma: User, tech: User) -> None:
        lot, result = self._released_under_review(ma, tech)
        with pytest.raises(services.QCLockout, match=r"Under review after a failed QC: repeat the test once it passes"):
            services.result_amend(result=result, value="Positive", reason="Repeat after QC failure", by=tech)
        assert not result_actions(result, tech).amend
        _pass_positive(lot, tech)
        amended = services.result_amend(
            result=fresh(result), value="Positive", reason="Repeat after QC failure", by=tech
        )
        assert (amended.amends_id, amended.needs_review) == (result.pk, False)

    def test_only_a_verifier_closes_it_from_the_page(self, client: Client, ma: User, tech: User) -> None:
        _, result = self._released_under_review(ma, tech)
        clinician = UserFactory(role=roles.ROLE_CLINICIAN)
        assert result_actions(result, tech).close_review
        assert not result_actions(result, clinician).close_review
        client.force_login(tech)
        page = client.get(reverse("lab:results:specimen", args=[result.specimen.uuid])).content.decode()
        assert "Close review" in page
        response = client.post(reverse("lab:results:close_review", args=[result.uuid]), {"note": ""}, follow=True)
        assert "This field is required." in response.content.decode()
        assert fresh(result).needs_review is True  # nothing written
        client.post(reverse("lab:results:close_review", args=[result.uuid]), {"note": "Checked: stands"})
        assert fresh(result).needs_review is False

        client.force_login(clinician)
        assert client.post(reverse("lab:results:close_review", args=[result.uuid]), {"note": "x"}).status_code == 403
        assert AccessLog.objects.filter(user=clinician, outcome="denied", what="result review closed").exists()


class TestTheReviewList:
    def test_it_lists_held_and_released_results_under_review(self, client: Client, ma: User, tech: User) -> None:
        lot, held = _strep_entered(ma, tech)
        [released] = enter(at_bench("Rapid strep", ma=ma, lab_tech=tech), "Rapid strep", "Positive", by=tech, lot=lot)
        services.result_verify(result=fresh(released), by=UserFactory(role=roles.ROLE_LAB_TECH))
        _fail_positive(lot, tech)
        client.force_login(tech)
        response = client.get(reverse("lab:results:verification"))
        assert [r.pk for r in response.context["under_review"]] == [held.pk, released.pk]
        content = response.content.decode()
        assert "Held, not released" in content and "Released, under review" in content
        log = AccessLog.objects.filter(what="results to verify").latest("id")
        assert set(log.patients.all()) == {held.patient, released.patient}

    @pytest.mark.parametrize("count", [1, 3])
    def test_the_page_takes_the_same_queries_whatever_its_length(
        self,
        client: Client,
        ma: User,
        tech: User,
        second_tech: User,
        count: int,
        django_assert_num_queries,  # type: ignore[no-untyped-def]
    ) -> None:
        lot = passing_lot("Rapid strep", by=tech, lot="STR-1")
        for _ in range(count):
            enter(at_bench("Rapid strep", ma=ma, lab_tech=tech), "Rapid strep", "Negative", by=tech, lot=lot)
        _fail_positive(lot, tech)
        client.force_login(second_tech)
        # 1 session, 2 user, 3 permissions and roles, 4 results to verify with patient, test, handoff,
        # specimen, performer and original, 5 results under review with patient, test, specimen and lot,
        # 6 the access log row with its patients.
        with django_assert_num_queries(6):
            response = client.get(reverse("lab:results:verification"))
        assert len(response.context["results"]) == len(response.context["under_review"]) == count


# Committed rows, so a second connection sees the kit lot; serialized rollback puts the catalogs back.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_entering_results_holds_the_lot_against_a_qc_run_until_it_commits() -> None:
    ma = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    tech = UserFactory(role=roles.ROLE_LAB_TECH)
    lot = passing_lot("Rapid strep", by=tech, lot="STR-1")
    specimen = at_bench("Rapid strep", ma=ma, lab_tech=tech)
    other = psycopg.connect(**connection.get_connection_params(), autocommit=True)  # embedded or not
    try:
        with transaction.atomic():
            enter(specimen, "Rapid strep", "Negative", by=tech, lot=lot)
            # What qc_run_record's lock(kit_lot) asks for: refused while the entry is open.
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT 1 FROM lab_kitlot WHERE id = %s FOR NO KEY UPDATE NOWAIT", [lot.pk])
            # Other entries on the same lot go on side by side.
            other.execute("SELECT 1 FROM lab_kitlot WHERE id = %s FOR SHARE NOWAIT", [lot.pk])
        other.execute("SELECT 1 FROM lab_kitlot WHERE id = %s FOR NO KEY UPDATE NOWAIT", [lot.pk])
    finally:
        other.close()
