"""Results at the bench: entry on a lot that passed QC, correction, second-person verification, release, amendment."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice import roles
from backoffice.models import User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import CriticalCall, QCRun, Result, ResultEvent, TestOrderEvent
from lab.results import services
from lab.workflow import ResultStatus, TestOrderStatus
from specimens.models import Specimen
from specimens.workflow import SpecimenStatus
from tests.factories import UserFactory
from tests.lab.helpers import kit_lot, ladder, quantitative_qc
from tests.lab.results_helpers import at_bench, enter, fresh, order_of, passing_lot
from tests.specimens.helpers import collected

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


class TestEntry:
    def test_a_panel_is_entered_with_its_flags_computed_and_the_specimen_starts_testing(
        self, ma: User, tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech, sex="M")
        lot = passing_lot("Hemoglobin", by=tech)
        [result] = enter(specimen, "Hemoglobin", "12.04", by=tech, lot=lot)

        result = fresh(result)
        assert (result.value_numeric, result.flag, result.is_critical) == (Decimal("12.0"), "L", False)
        assert result.reference_text == "13.2\u201316.6 g/dL"  # the male range: 12.0 is low for him
        assert result.kit_lot == lot and result.status == R.ENTERED and result.entered_by == tech
        assert Specimen.objects.get(pk=specimen.pk).status == SpecimenStatus.IN_TESTING
        assert order_of(specimen, "Hemoglobin").status == TestOrderStatus.IN_PROGRESS
        assert list(result.events.values_list("action", flat=True)) == [ResultEvent.Action.ENTERED]

    def test_the_same_value_is_normal_for_a_woman(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech, sex="F")
        [result] = enter(specimen, "Hemoglobin", "12.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        assert result.flag == "N"

    def test_every_analyte_of_the_panel_needs_a_valid_value_and_nothing_is_half_written(
        self, ma: User, tech: User
    ) -> None:
        specimen = at_bench("Urine dipstick", ma=ma, lab_tech=tech)
        lot = passing_lot("Urine dipstick", by=tech)
        typed = ["Negative", "Negative", "Trace", "1.020", "Negative", "purple", "Negative", "0.2", "Negative", ""]
        with pytest.raises(services.InvalidValues) as refused:
            enter(specimen, "Urine dipstick", *typed, by=tech, lot=lot)
        assert len(refused.value.errors) == 2
        assert "pH is a number in [pH]." in str(refused.value)
        assert "Enter a value for LEU." in str(refused.value)
        assert not Result.objects.exists()
        assert Specimen.objects.get(pk=specimen.pk).status == SpecimenStatus.RECEIVED

    def test_an_ordinal_panel_is_flagged_abnormal_off_its_normal_values(self, ma: User, tech: User) -> None:
        specimen = at_bench("Urine dipstick", ma=ma, lab_tech=tech)
        typed = ["negative", "Negative", "Trace", "1.020", "Negative", "6.0", "1+", "0.2", "Positive", "Negative"]
        results = enter(specimen, "Urine dipstick", *typed, by=tech, lot=passing_lot("Urine dipstick", by=tech))
        flags = {r.analyte.short_name: (r.display_value, r.flag) for r in results}
        assert flags["GLU"] == ("Negative", "N")  # the scale's own spelling, whatever the case typed
        assert flags["KET"] == ("Trace", "A")
        assert flags["PRO"] == ("1+", "A")
        assert flags["NIT"] == ("Positive", "A")
        assert flags["pH"] == ("6.0 [pH]", "N")

    def test_a_panel_is_entered_once(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        lot = passing_lot("Hemoglobin", by=tech)
        enter(specimen, "Hemoglobin", "13.0", by=tech, lot=lot)
        with pytest.raises(TransitionNotAllowed, match="already entered; correct or amend"):
            enter(specimen, "Hemoglobin", "13.1", by=tech, lot=lot)

    def test_a_specimen_not_yet_received_at_the_bench_is_refused(self, ma: User, tech: User) -> None:
        _, [specimen] = collected("Hemoglobin", ma=ma)
        with pytest.raises(TransitionNotAllowed, match="once the bench has received it"):
            enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))

    def test_a_role_without_the_bench_may_not_enter(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        with pytest.raises(PermissionRefused):
            enter(specimen, "Hemoglobin", "13.0", by=ma, lot=passing_lot("Hemoglobin", by=tech))


class TestQCLockout:
    def test_a_lot_without_qc_is_refused_saying_what_to_run(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        lot = kit_lot("Hemoglobin", lot="NEW")
        quantitative_qc("Hemoglobin", levels=(("8.0", "0.3"), ("16.0", "0.5")))
        with pytest.raises(services.QCLockout, match=r"Run the level 1 \(low\) on .* lot NEW first"):
            enter(specimen, "Hemoglobin", "13.0", by=tech, lot=lot)
        assert not Result.objects.exists()

    def test_a_failed_control_locks_the_lot(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        lot = passing_lot("Hemoglobin", by=tech)
        control = lot.kit.tests.get().control_lots.get(level="level_2")
        QCRun.objects.create(kit_lot=lot, control_lot=control, performed_by=tech, value_numeric=20, passed=False)
        with pytest.raises(services.QCLockout, match="failed on"):
            enter(specimen, "Hemoglobin", "13.0", by=tech, lot=lot)

    def test_an_expired_lot_is_refused(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        lot = passing_lot("Hemoglobin", by=tech)
        lot.expiry_date = timezone.localdate() - dt.timedelta(days=1)
        lot.save(update_fields=["expiry_date"])
        with pytest.raises(services.QCLockout, match="expired on"):
            enter(specimen, "Hemoglobin", "13.0", by=tech, lot=lot)

    def test_yesterdays_qc_does_not_count_for_a_daily_rule(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        lot = passing_lot("Hemoglobin", by=tech)
        lot2 = kit_lot("Hemoglobin", lot="L2")
        for control in lot.kit.tests.get().control_lots.all():
            QCRun.objects.create(
                kit_lot=lot2,
                control_lot=control,
                performed_by=tech,
                value_numeric=control.target_mean,
                passed=True,
                performed_at=timezone.now() - dt.timedelta(days=1, hours=1),
            )
        with pytest.raises(services.QCLockout, match="QC is due"):
            enter(specimen, "Hemoglobin", "13.0", by=tech, lot=lot2)


class TestVerification:
    def test_the_person_who_entered_a_result_cannot_verify_it(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        with pytest.raises(PermissionRefused, match="a second person verifies it"):
            services.result_verify(result=fresh(result), by=tech)
        assert fresh(result).status == R.ENTERED

    def test_the_database_refuses_a_self_verified_result_too(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        with pytest.raises(IntegrityError), transaction.atomic():
            Result.objects.filter(pk=result.pk).update(status=R.VERIFIED, verified_by=tech)

    def test_a_second_person_verifies_and_releases_and_the_test_and_specimen_are_done(
        self, ma: User, tech: User, second_tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        services.result_verify(result=fresh(result), by=second_tech)

        result = fresh(result)
        assert (result.status, result.verified_by, result.released_by) == (R.RELEASED, second_tech, second_tech)
        assert list(result.events.values_list("action", flat=True)) == ["entered", "verified", "released"]
        order = order_of(specimen, "Hemoglobin")
        assert order.status == TestOrderStatus.RESULTED
        assert TestOrderEvent.objects.filter(order=order, action=TestOrderEvent.Action.RESULTED).exists()
        assert Specimen.objects.get(pk=specimen.pk).status == SpecimenStatus.DONE
        assert not CriticalCall.objects.exists()

    def test_a_specimen_stays_in_testing_while_another_of_its_tests_is_pending(
        self, ma: User, tech: User, second_tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", "POC glucose", ma=ma, lab_tech=tech)
        [hgb] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        services.result_verify(result=fresh(hgb), by=second_tech)
        assert Specimen.objects.get(pk=specimen.pk).status == SpecimenStatus.IN_TESTING
        assert order_of(specimen, "POC glucose").status == TestOrderStatus.IN_PROGRESS

    def test_a_moderate_or_verified_test_cannot_be_released_by_its_performer(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        with pytest.raises(TransitionNotAllowed, match="needs a second person's verification"):
            services.result_release(result=fresh(result), by=tech)

    def test_a_waived_test_the_clinic_lets_its_performer_release_is_released_without_a_second_person(
        self, ma: User, tech: User
    ) -> None:
        specimen = at_bench("POC glucose", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "POC glucose", "95", by=tech, lot=passing_lot("POC glucose", by=tech))
        services.result_release(result=fresh(result), by=tech)
        result = fresh(result)
        assert (result.status, result.verified_by, result.released_by) == (R.RELEASED, None, tech)

    def test_a_panel_is_verified_as_one_report(self, ma: User, tech: User, second_tech: User) -> None:
        specimen = at_bench("Urine dipstick", ma=ma, lab_tech=tech)
        typed = ["Negative"] * 3 + ["1.020", "Negative", "6.0", "Negative", "0.2", "Negative", "Negative"]
        results = enter(specimen, "Urine dipstick", *typed, by=tech, lot=passing_lot("Urine dipstick", by=tech))
        released = services.result_verify(result=fresh(results[3]), by=second_tech)
        assert len(released) == 10
        assert set(Result.objects.values_list("status", flat=True)) == {R.RELEASED}
        assert order_of(specimen, "Urine dipstick").status == TestOrderStatus.RESULTED

    def test_a_released_critical_opens_its_call_in_the_same_transaction(
        self, ma: User, tech: User, second_tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "6.8", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        assert (result.flag, result.is_critical) == ("LL", True)
        assert not CriticalCall.objects.exists()  # entered, not yet released: nobody is called yet
        services.result_verify(result=fresh(result), by=second_tech)
        call = CriticalCall.objects.get(result=result)
        assert call.clinician == specimen.handoff.ordering_clinician


class TestCorrection:
    def test_before_release_a_correction_edits_the_value_keeps_its_history_and_recomputes_the_flag(
        self, ma: User, tech: User, second_tech: User
    ) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech, sex="F")
        [result] = enter(specimen, "Hemoglobin", "6.8", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        services.result_send_back(result=fresh(result), by=second_tech, reason="Cuvette had a bubble: repeat")
        services.result_correct(result=fresh(result), value="12.8", by=tech)

        result = fresh(result)
        assert (result.display_value, result.flag, result.is_critical) == ("12.8 g/dL", "N", False)
        assert list(result.events.values_list("action", flat=True)) == ["entered", "sent_back", "corrected"]
        assert result.events.get(action="corrected").note == "6.8 g/dL → 12.8 g/dL (N)"
        history = result.history.order_by("pgh_id").values_list("value_numeric", flat=True)  # type: ignore[attr-defined]
        assert list(history) == [Decimal("6.8000"), Decimal("12.8000")]

    def test_the_verifier_cannot_send_back_their_own_result(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        with pytest.raises(TransitionNotAllowed, match="correct it yourself"):
            services.result_send_back(result=fresh(result), by=tech, reason="oops")

    def test_a_released_result_is_never_edited_in_place(self, ma: User, tech: User, second_tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        services.result_verify(result=fresh(result), by=second_tech)
        with pytest.raises(TransitionNotAllowed, match="amended with a reason, not edited"):
            services.result_correct(result=fresh(result), value="14.0", by=tech)


class TestAmendment:
    def test_an_amended_result_keeps_the_original_which_is_superseded_once_the_correction_is_released(
        self, ma: User, tech: User, second_tech: User, clinician: User
    ) -> None:
        specimen = at_bench("POC glucose", ma=ma, lab_tech=tech)
        [original] = enter(specimen, "POC glucose", "95", by=tech, lot=passing_lot("POC glucose", by=tech))
        services.result_release(result=fresh(original), by=tech)
        Result.objects.filter(pk=original.pk).update(acknowledged_at=timezone.now(), acknowledged_by=clinician)

        with pytest.raises(TransitionNotAllowed, match="Give the reason"):
            services.result_amend(result=fresh(original), value="59", reason=" ", by=tech)
        amended = services.result_amend(
            result=fresh(original), value="59", reason="Wrong patient's strip read; repeated", by=tech
        )
        assert (amended.status, amended.amends, amended.flag) == (R.ENTERED, original, "L")
        assert fresh(original).status == R.RELEASED  # the clinician still sees the original until then
        with pytest.raises(TransitionNotAllowed, match="already waiting"):
            services.result_amend(result=fresh(original), value="60", reason="again", by=second_tech)

        # An amendment goes through verification, even for a test its performer may release.
        with pytest.raises(TransitionNotAllowed, match="verified by a second person"):
            services.result_release(result=fresh(amended), by=tech)
        services.result_verify(result=fresh(amended), by=second_tech)
        original, amended = fresh(original), fresh(amended)
        assert original.status == R.SUPERSEDED and original.display_value == "95 mg/dL"
        assert amended.status == R.RELEASED and amended.acknowledged_at is None  # the clinician is told again
        assert original.events.get(action="superseded").note == (
            "Corrected to 59 mg/dL: Wrong patient's strip read; repeated"
        )
        assert list(Result.objects.filter(order=original.order).order_by("id")) == [original, amended]

    def test_only_a_released_result_is_amended(self, ma: User, tech: User) -> None:
        specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
        [result] = enter(specimen, "Hemoglobin", "13.0", by=tech, lot=passing_lot("Hemoglobin", by=tech))
        with pytest.raises(TransitionNotAllowed, match="correct it before release"):
            services.result_amend(result=fresh(result), value="14.0", reason="typo", by=tech)

    def test_an_amendment_to_a_critical_value_opens_a_new_call(self, ma: User, tech: User, second_tech: User) -> None:
        specimen = at_bench("POC glucose", ma=ma, lab_tech=tech)
        [original] = enter(specimen, "POC glucose", "95", by=tech, lot=passing_lot("POC glucose", by=tech))
        services.result_release(result=fresh(original), by=tech)
        amended = services.result_amend(result=fresh(original), value="35", reason="Meter misread", by=tech)
        services.result_verify(result=fresh(amended), by=second_tech)
        assert CriticalCall.objects.get().result == amended


def test_the_demo_seed_enters_normal_critical_waiting_and_amended_results(ma: User, tech: User) -> None:
    import io

    from django.core.management.base import OutputWrapper

    from backoffice.devtools.seed.lab_results import seed_lab_results

    for _ in range(3):
        at_bench("POC glucose", ma=ma, lab_tech=tech)
    at_bench("Urine dipstick", ma=ma, lab_tech=tech)
    at_bench("Hemoglobin", ma=ma, lab_tech=tech)  # no lot passes QC: it stays on the bench
    passing_lot("POC glucose", by=tech)
    passing_lot("Urine dipstick", by=tech)
    users = {"labtech": tech, "supervisor": UserFactory(role=roles.ROLE_SUPERVISOR)}
    out = io.StringIO()
    seed_lab_results(OutputWrapper(out), users=users)

    assert "Results: 2 released (1 amended), 1 critical released with its call, 1 waiting" in out.getvalue()
    critical = Result.objects.get(is_critical=True)
    assert (critical.status, critical.flag, critical.display_value) == (R.RELEASED, "LL", "38 mg/dL")
    assert CriticalCall.objects.get().result == critical
    assert Result.objects.filter(status=R.ENTERED).count() >= 1  # the waiting panel
    original = Result.objects.get(status=R.SUPERSEDED)
    assert Result.objects.get(amends=original).status == R.RELEASED
    assert not Result.objects.filter(order__test__short_name="Hemoglobin").exists()
    # Seeding again enters nothing.
    count = Result.objects.count()
    seed_lab_results(OutputWrapper(io.StringIO()), users=users)
    assert Result.objects.count() == count
