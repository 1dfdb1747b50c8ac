"""Quality control: the fail-closed lockout, runs with their computed pass or fail and Westgard rules,
failed QC putting released results up for review, the QC pages per role, and the demo seed.
"""

import datetime as dt
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from unittest import mock

import pytest
from django.core.management.base import OutputWrapper
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import roles
from backoffice.models import User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import ControlLot, Kit, KitLot, QCRule, QCRun, Result, ResultEvent, TestOrder
from lab.qc.lockout import qc_block
from lab.qc.selectors import levey_jennings, qc_board
from lab.qc.services import QCValueInvalid, qc_run_record
from lab.workflow import ControlLevel, QCFrequency, ResultStatus
from tests.factories import UserFactory
from tests.lab.helpers import kit_lot, qualitative_qc, quantitative_qc, test_named
from tests.security.conftest import current_code, enroll
from tests.specimens.helpers import labelled

pytestmark = pytest.mark.django_db

GLUCOSE_LEVELS = (("50", "4"), ("300", "15"))


@contextmanager
def clock(at: dt.datetime) -> Iterator[None]:
    """The services' "now", moved: runs are stamped with the time the test says."""
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


def ran(lot: KitLot, control: ControlLot, value: str, by: User, *, at: dt.datetime | None = None) -> QCRun:
    if at is None:
        return qc_run_record(kit_lot=lot, control_lot=control, value=value, by=by)
    with clock(at):
        return qc_run_record(kit_lot=lot, control_lot=control, value=value, by=by)


def morning(days_ago: int = 0, hour: int = 8) -> dt.datetime:
    """A time of day, this many days back, in the clinic's time zone."""
    day = timezone.localdate() - dt.timedelta(days=days_ago)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, 0)))


@pytest.fixture
def strep() -> tuple[KitLot, ControlLot, ControlLot]:
    negative, positive = qualitative_qc("Rapid strep")
    return kit_lot("Rapid strep", lot="STR-2611"), negative, positive


@pytest.fixture
def glucose() -> tuple[KitLot, ControlLot, ControlLot]:
    low, high = quantitative_qc("POC glucose", levels=GLUCOSE_LEVELS)
    return kit_lot("POC glucose", lot="GLU-88"), low, high


# --- The lockout -------------------------------------------------------------------------------


def test_a_new_lot_is_locked_until_both_controls_pass(strep, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    test = test_named("Rapid strep")
    assert "Run the negative control on Acme Diagnostics Rapid strep kit lot STR-2611 first" in qc_block(test, lot)
    ran(lot, negative, "Negative", lab_tech)
    assert "Run the positive control" in qc_block(test, lot)
    ran(lot, positive, "Positive", lab_tech)
    assert qc_block(test, lot) is None


def test_a_new_shipment_of_the_same_lot_number_needs_its_own_qc(strep, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    ran(lot, negative, "Negative", lab_tech)
    ran(lot, positive, "Positive", lab_tech)
    shipment = KitLot.objects.create(
        kit=lot.kit, lot_number=lot.lot_number, expiry_date=lot.expiry_date, received_on=timezone.localdate()
    )
    test = test_named("Rapid strep")
    assert qc_block(test, lot) is None
    assert "a new lot or shipment needs its QC" in qc_block(test, shipment)


def test_a_failed_control_locks_the_lot_until_it_passes_again(strep, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    test = test_named("Rapid strep")
    ran(lot, negative, "Negative", lab_tech)
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    failed = ran(lot, positive, "Negative", lab_tech, at=an_hour_ago)
    assert failed.passed is False
    assert qc_block(test, lot) == (
        "The positive control failed on Acme Diagnostics Rapid strep kit lot STR-2611 at "
        f"{timezone.localtime(an_hour_ago):%m/%d %H:%M}; find the cause and run it again."
    )
    ran(lot, positive, "Positive", lab_tech)
    assert qc_block(test, lot) is None


@pytest.mark.parametrize(
    ("frequency", "settings", "still_good", "due"),
    [
        # Daily: today's QC holds all day, and is due again tomorrow.
        (QCFrequency.DAILY, {}, dt.timedelta(hours=10), dt.timedelta(days=1)),
        # Each 8-hour shift: good for 8 hours after the run.
        (QCFrequency.SHIFT, {"shift_hours": 8}, dt.timedelta(hours=7, minutes=59), dt.timedelta(hours=8, minutes=1)),
        # Every 3 days: the run's day and the two after it.
        (QCFrequency.EVERY_N_DAYS, {"every_n_days": 3}, dt.timedelta(days=2), dt.timedelta(days=3)),
    ],
)
def test_passing_qc_goes_out_of_date_on_its_schedule(  # type: ignore[no-untyped-def]
    strep, lab_tech, frequency: str, settings: dict[str, int], still_good: dt.timedelta, due: dt.timedelta
) -> None:
    lot, negative, positive = strep
    test = test_named("Rapid strep")
    QCRule.objects.filter(test=test).update(frequency=frequency, **settings)
    at = morning(days_ago=5)
    lot.received_on = at.date() - dt.timedelta(days=1)
    lot.save(update_fields=["received_on"])
    ran(lot, negative, "Negative", lab_tech, at=at)
    ran(lot, positive, "Positive", lab_tech, at=at)
    assert qc_block(test, lot, at=at + still_good) is None
    assert qc_block(test, lot, at=at + due) == (
        f"QC is due on {lot.kit} lot STR-2611 ({QCFrequency(frequency).label.lower()}): run the negative control."
    )


def test_a_lot_only_rule_needs_no_more_qc_after_the_lot_passed(strep, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    test = test_named("Rapid strep")
    QCRule.objects.filter(test=test).update(frequency=QCFrequency.LOT_ONLY)
    ran(lot, negative, "Negative", lab_tech)
    ran(lot, positive, "Positive", lab_tech)
    assert qc_block(test, lot, at=timezone.now() + dt.timedelta(days=60)) is None


def test_an_expired_or_withdrawn_kit_lot_is_locked_whatever_its_qc(strep, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    test = test_named("Rapid strep")
    ran(lot, negative, "Negative", lab_tech)
    ran(lot, positive, "Positive", lab_tech)
    assert qc_block(test, lot, at=timezone.now() + dt.timedelta(days=181)) == (
        f"{lot.kit} lot STR-2611 expired on {lot.expiry_date:%m/%d/%Y}; use another lot."
    )
    lot.is_active = False
    lot.save(update_fields=["is_active"])
    assert qc_block(test, lot) == f"{lot.kit} lot STR-2611 is withdrawn; use another lot."


def test_an_expired_control_lot_leaves_the_level_without_a_current_control(strep, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    test = test_named("Rapid strep")
    ran(lot, negative, "Negative", lab_tech)
    ran(lot, positive, "Positive", lab_tech)
    ControlLot.objects.filter(pk=positive.pk).update(expiry_date=timezone.localdate() - dt.timedelta(days=1))
    assert qc_block(test, lot) == (
        f"No current positive control lot for Rapid strep; add one in admin, then run it on {lot.kit} lot STR-2611."
    )


def test_a_kit_of_another_test_or_a_test_without_a_rule_is_locked(strep) -> None:  # type: ignore[no-untyped-def]
    lot, _, _ = strep
    assert qc_block(test_named("Urine hCG"), lot) == f"{lot.kit} is not a kit for Urine hCG."
    hcg_lot = kit_lot("Urine hCG")
    assert "Urine hCG has no QC rule yet" in qc_block(test_named("Urine hCG"), hcg_lot)


# --- Runs: pass or fail computed ------------------------------------------------------------------


def test_a_qualitative_control_passes_only_on_its_expected_value(strep, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    run = ran(lot, positive, "positive", lab_tech)  # typed in any case, stored as the analyte spells it
    assert (run.value_text, run.passed, run.westgard, run.performed_by) == ("Positive", True, "", lab_tech)
    assert ran(lot, negative, "Positive", lab_tech).passed is False


def test_a_value_the_control_cannot_give_is_refused_and_nothing_is_written(strep, glucose, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, _ = strep
    with pytest.raises(QCValueInvalid, match="reads one of: Negative, Positive"):
        ran(lot, negative, "Weak positive", lab_tech)
    glucose_lot, low, _ = glucose
    with pytest.raises(QCValueInvalid, match="is not a number"):
        ran(glucose_lot, low, "fifty", lab_tech)
    with pytest.raises(QCValueInvalid, match="Enter the control's value"):
        ran(glucose_lot, low, "  ", lab_tech)
    assert not QCRun.objects.exists()


@pytest.mark.parametrize(
    ("value", "passed", "westgard"),
    [("50", True, ""), ("57.9", True, ""), ("42", True, ""), ("59", False, "1-2s"), ("63", False, "1-2s,1-3s")],
)
def test_a_quantitative_control_passes_within_2_sd(glucose, lab_tech, value: str, passed: bool, westgard: str) -> None:  # type: ignore[no-untyped-def]
    lot, low, _ = glucose  # level 1: 50 ± 4 mg/dL
    run = ran(lot, low, value, lab_tech)
    assert (run.value_numeric, run.passed, run.westgard) == (Decimal(value), passed, westgard)


def test_two_runs_in_a_row_beyond_2_sd_on_the_same_side_violate_2_2s(glucose, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, low, high = glucose
    ran(lot, low, "59", lab_tech, at=morning(days_ago=1))  # +2.25 SD: 1-2s
    ran(lot, high, "301", lab_tech)  # another control lot: not read with level 1's runs
    run = ran(lot, low, "58.5", lab_tech)  # +2.1 SD again
    assert run.westgard == "1-2s,2-2s"
    assert run.passed is False
    # On the other side, the next run is more than 4 SD from this one.
    assert ran(lot, low, "41", lab_tech).westgard == "1-2s,R-4s"


def test_a_run_within_2_sd_is_rejected_by_a_systematic_shift(glucose, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, low, _ = glucose
    for days_ago, value in ((4, "55"), (3, "56"), (2, "55")):
        assert ran(lot, low, value, lab_tech, at=morning(days_ago=days_ago)).passed
    run = ran(lot, low, "56", lab_tech)  # a fourth in a row beyond +1 SD
    assert (run.passed, run.westgard) == (False, "4-1s")


def test_only_the_bench_runs_qc_and_only_on_lots_and_controls_in_use(
    strep, glucose, lab_tech, medical_assistant
) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    with pytest.raises(PermissionRefused, match="run quality control"):
        ran(lot, negative, "Negative", medical_assistant)
    _, glucose_low, _ = glucose
    with pytest.raises(TransitionNotAllowed, match="a control for another test"):
        ran(lot, glucose_low, "50", lab_tech)
    ControlLot.objects.filter(pk=positive.pk).update(expiry_date=timezone.localdate() - dt.timedelta(days=1))
    with pytest.raises(TransitionNotAllowed, match="expired on"):
        ran(lot, ControlLot.objects.get(pk=positive.pk), "Positive", lab_tech)
    ControlLot.objects.filter(pk=negative.pk).update(is_active=False)
    with pytest.raises(TransitionNotAllowed, match="withdrawn"):
        ran(lot, ControlLot.objects.get(pk=negative.pk), "Negative", lab_tech)
    expired = KitLot.objects.create(
        kit=lot.kit,
        lot_number="OLD-1",
        expiry_date=timezone.localdate() - dt.timedelta(days=1),
        received_on=timezone.localdate() - dt.timedelta(days=200),
    )
    with pytest.raises(TransitionNotAllowed, match="OLD-1 expired"):
        ran(expired, positive, "Positive", lab_tech)
    assert not QCRun.objects.exists()


# --- A failed QC puts released results up for review ---------------------------------------------


def released_result(lot: KitLot, *, at: dt.datetime, ma: User, by: User, verifier: User) -> Result:
    """A strep result released on this lot at ``at`` (the results services are another floor's work)."""
    handoff, [swab] = labelled("Rapid strep", ma=ma)
    order = TestOrder.objects.get(specimen=swab)
    return Result.objects.create(
        order=order,
        analyte=order.test.analytes.get(),
        patient=handoff.patient,
        specimen=swab,
        kit_lot=lot,
        status=ResultStatus.RELEASED,
        value_text="Negative",
        entered_at=at,
        entered_by=by,
        verified_at=at,
        verified_by=verifier,
        released_at=at,
        released_by=verifier,
        status_changed_at=at,
    )


def test_a_failed_run_marks_the_results_released_on_the_lot_since_its_last_pass(  # type: ignore[no-untyped-def]
    strep, lab_tech, supervisor, medical_assistant
) -> None:
    lot, negative, positive = strep
    other_lot = kit_lot("Rapid strep", lot="STR-OTHER")
    ran(lot, negative, "Negative", lab_tech, at=morning(days_ago=1, hour=7))
    ran(lot, positive, "Positive", lab_tech, at=morning(days_ago=1, hour=7))
    kwargs = {"ma": medical_assistant, "by": lab_tech, "verifier": supervisor}
    before = released_result(lot, at=morning(days_ago=1, hour=6), **kwargs)  # before the last pass
    ran(lot, negative, "Negative", lab_tech, at=morning(hour=7))
    after_negative_pass = released_result(lot, at=morning(hour=8), **kwargs)  # after the positive's pass only
    elsewhere = released_result(other_lot, at=morning(hour=8), **kwargs)

    failed = ran(lot, positive, "Negative", lab_tech, at=morning(hour=11))

    assert failed.passed is False
    marked = Result.objects.get(pk=after_negative_pass.pk)
    assert marked.needs_review is True
    assert marked.review_reason.startswith("Rapid strep Positive control lot P-1 failed on lot STR-2611 at ")
    assert marked.version == after_negative_pass.version + 1
    event = ResultEvent.objects.get(result=marked, action=ResultEvent.Action.MARKED_FOR_REVIEW)
    assert (event.actor, event.from_status, event.to_status) == (lab_tech, "released", "released")
    assert Result.objects.get(pk=before.pk).needs_review is False
    assert Result.objects.get(pk=elsewhere.pk).needs_review is False

    # A second failure finds nothing new to mark: the result stays with its first reason.
    ran(lot, positive, "Negative", lab_tech, at=morning(hour=12))
    assert ResultEvent.objects.filter(action=ResultEvent.Action.MARKED_FOR_REVIEW).count() == 1


def test_a_passing_run_marks_nothing(strep, lab_tech, supervisor, medical_assistant) -> None:  # type: ignore[no-untyped-def]
    lot, negative, _ = strep
    result = released_result(lot, at=morning(hour=6), ma=medical_assistant, by=lab_tech, verifier=supervisor)
    ran(lot, negative, "Negative", lab_tech)
    assert Result.objects.get(pk=result.pk).needs_review is False


# --- The board and the chart (selectors) ---------------------------------------------------------


def test_the_board_lists_each_lot_locked_or_not_and_what_to_run(strep, glucose, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, negative, _ = strep
    ran(lot, negative, "Negative", lab_tech)
    board = {entry.test.short_name: entry for entry in qc_board(user=lab_tech)}
    assert set(board) == {"Rapid strep", "POC glucose"}
    [status] = board["Rapid strep"].lots
    assert status.kit_lot == lot
    assert status.block == qc_block(test_named("Rapid strep"), lot)
    assert [(d.control_lot.level, d.due, d.status) for d in status.controls] == [
        (ControlLevel.NEGATIVE, False, f"Passed {timezone.localtime():%H:%M}"),
        (ControlLevel.POSITIVE, True, "Never run on this lot"),
    ]
    assert status.controls[1].choices == ["Negative", "Positive"]
    assert all(d.offer for d in status.controls)
    assert board["POC glucose"].quantitative is True
    assert board["Rapid strep"].quantitative is False


def test_the_board_offers_no_run_to_a_role_that_may_not_run_qc(strep, medical_assistant) -> None:  # type: ignore[no-untyped-def]
    [entry] = qc_board(user=medical_assistant)
    assert all(not d.offer and "run quality control" in d.offer.why for d in entry.lots[0].controls)


def test_the_levey_jennings_series_sits_on_the_target_lines(glucose, lab_tech) -> None:  # type: ignore[no-untyped-def]
    lot, low, _ = glucose
    for days_ago, value in ((3, "50"), (2, "59"), (1, "58.5"), (0, "46")):
        ran(lot, low, value, lab_tech, at=morning(days_ago=days_ago))
    chart = levey_jennings(low)
    assert [line.label for line in chart.lines] == ["+3 SD", "+2 SD", "+1 SD", "Mean", "-1 SD", "-2 SD", "-3 SD"]
    assert [line.value for line in chart.lines] == [Decimal(v) for v in ("62", "58", "54", "50", "46", "42", "38")]
    mean_y = chart.lines[3].y
    assert [p.z for p in chart.points] == [0.0, 2.25, 2.12, -1.0]
    assert [p.kind for p in chart.points] == ["ok", "outside", "reject", "ok"]
    assert chart.points[1].violations == ["1-2s"] and chart.points[2].violations == ["1-2s", "2-2s"]
    assert chart.points[0].y == mean_y and chart.points[1].y < mean_y < chart.points[3].y
    assert chart.violations == 2
    assert chart.rows[0].run.value_numeric == Decimal("46")
    assert chart.observed_mean == Decimal("53.375")


def test_a_qualitative_control_has_no_chart(strep) -> None:  # type: ignore[no-untyped-def]
    _, negative, _ = strep
    with pytest.raises(ValueError):
        levey_jennings(negative)


# --- Pages ------------------------------------------------------------------------------------------


def signed_in(role: str, request: pytest.FixtureRequest) -> Client:
    user: User = request.getfixturevalue(role)
    client = Client()
    if role == "admin_user":
        device = enroll(user)
        client.post(reverse("login"), {"username": user.username, "password": "correct-horse-battery-staple"})
        client.post(reverse("otp_verify"), {"code": current_code(device)})
    else:
        client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("role", "status"),
    [
        ("lab_tech", 200),
        ("supervisor", 200),
        ("medical_assistant", 403),
        ("clinician", 403),
        ("auditor", 403),
        ("admin_user", 403),
    ],
)
def test_the_qc_pages_are_the_benchs(role: str, status: int, request: pytest.FixtureRequest, glucose) -> None:  # type: ignore[no-untyped-def]
    lot, low, _ = glucose
    client = signed_in(role, request)
    assert client.get(reverse("lab:qc:board")).status_code == status
    assert client.get(reverse("lab:qc:chart", args=[low.pk])).status_code == status
    response = client.post(reverse("lab:qc:run", args=[lot.pk]), {"control_lot": low.pk, "value": "50"})
    assert response.status_code == (302 if status == 200 else status)
    assert QCRun.objects.count() == (1 if status == 200 else 0)


def test_the_board_shows_the_lock_and_a_form_for_each_control(client: Client, lab_tech, strep) -> None:  # type: ignore[no-untyped-def]
    lot, negative, _ = strep
    client.force_login(lab_tech)
    response = client.get(reverse("lab:qc:board"))
    html = response.content.decode()
    assert "Locked" in html
    assert "Run the negative control on Acme Diagnostics Rapid strep kit lot STR-2611 first" in html
    assert html.count(f'action="{reverse("lab:qc:run", args=[lot.pk])}"') == 2
    # The keyboard lands on the control's row, not on one of its values (Enter must not guess).
    assert f'aria-labelledby="read-{lot.pk}-{negative.pk}" tabindex="-1" autofocus' in html
    assert not re.search(r"<button[^>]*autofocus", html)


def test_running_a_control_from_the_board_says_pass_or_fail_and_what_it_means(client: Client, lab_tech, strep) -> None:  # type: ignore[no-untyped-def]
    lot, negative, positive = strep
    client.force_login(lab_tech)
    url = reverse("lab:qc:run", args=[lot.pk])
    response = client.post(url, {"control_lot": negative.pk, "value": "Negative"}, follow=True)
    assert response.redirect_chain == [(reverse("lab:qc:board") + f"?lot={lot.pk}", 302)]
    # The keyboard is on the lot's next control due.
    assert f'aria-labelledby="read-{lot.pk}-{positive.pk}" tabindex="-1" autofocus' in response.content.decode()
    assert "read Negative on lot STR-2611: passed. Still locked: Run the positive control" in response.content.decode()
    response = client.post(url, {"control_lot": positive.pk, "value": "Negative", "note": "Faint line"}, follow=True)
    assert "FAILED. Patient testing on this lot is locked until it passes." in response.content.decode()
    assert QCRun.objects.get(control_lot=positive).note == "Faint line"
    response = client.post(url, {"control_lot": positive.pk, "value": "Positive"}, follow=True)
    assert "passed. Patient testing is unlocked." in response.content.decode()
    assert qc_block(test_named("Rapid strep"), lot) is None


def test_a_refused_run_is_a_message_and_writes_nothing(client: Client, lab_tech, strep, glucose) -> None:  # type: ignore[no-untyped-def]
    lot, _, _ = strep
    _, glucose_low, _ = glucose
    client.force_login(lab_tech)
    url = reverse("lab:qc:run", args=[lot.pk])
    response = client.post(url, {"control_lot": glucose_low.pk, "value": "50"}, follow=True)
    assert "is a control for another test" in response.content.decode()
    response = client.post(url, {"control_lot": glucose_low.pk, "value": ""}, follow=True)
    assert "Enter the control&#x27;s value." in response.content.decode()
    assert client.post(url, {"control_lot": 999999, "value": "50"}).status_code == 404
    assert client.get(url).status_code == 405
    assert not QCRun.objects.exists()


def test_the_chart_page_draws_the_runs_with_a_text_alternative(client: Client, lab_tech, glucose, strep) -> None:  # type: ignore[no-untyped-def]
    lot, low, _ = glucose
    ran(lot, low, "50", lab_tech, at=morning(days_ago=1))
    ran(lot, low, "63", lab_tech)
    client.force_login(lab_tech)
    html = client.get(reverse("lab:qc:chart", args=[low.pk])).content.decode()
    assert 'role="img" aria-labelledby="lj-title lj-desc"' in html
    assert '<title id="lj-title">Levey-Jennings chart of POC glucose Level 1 (low) lot C1-1</title>' in html
    assert html.count("<circle cx=") == 2  # the passing run, and the legend's marker
    assert html.count("<rect x=") == 1  # the 1-3s run
    assert '<span class="fw-semibold">1-3s</span> beyond 3 SD' in html
    _, negative, _ = strep
    assert client.get(reverse("lab:qc:chart", args=[negative.pk])).status_code == 404


def test_the_board_reads_in_a_fixed_number_of_queries(  # type: ignore[no-untyped-def]
    client: Client, lab_tech, strep, glucose, django_assert_num_queries
) -> None:
    lot, negative, positive = strep
    glucose_lot, low, high = glucose
    for control, value in ((negative, "Negative"), (positive, "Positive")):
        ran(lot, control, value, lab_tech)
    for control, value in ((low, "51"), (high, "290")):
        ran(glucose_lot, control, value, lab_tech)
    kit_lot("Rapid strep", lot="STR-NEXT")  # a new shipment awaiting QC
    client.force_login(lab_tech)
    # 1 the session, 2 the user, 3 their permissions and role names (one UNION), 4 the tests with
    # their QC rules, 5 their analytes, 6 the lots in use with their kits, 7 the kits' tests,
    # 8 the current control lots, 9 the latest run of each level on each lot (DISTINCT ON).
    with django_assert_num_queries(9):
        response = client.get(reverse("lab:qc:board"))
    assert response.status_code == 200
    assert response.content.decode().count("STR-NEXT") >= 1


# --- Demo seed --------------------------------------------------------------------------------------


def test_the_demo_seed_builds_the_bench_with_history_and_one_failure() -> None:
    from backoffice.devtools.seed.lab_qc import seed_lab_qc

    users = {
        "labtech": UserFactory(username="labtech", role=roles.ROLE_LAB_TECH),
        "supervisor": UserFactory(username="supervisor", role=roles.ROLE_SUPERVISOR),
    }
    out = io.StringIO()
    seed_lab_qc(OutputWrapper(out), users=users)
    assert "QC:" in out.getvalue()
    board = {entry.test.short_name: entry for entry in qc_board(user=users["labtech"])}
    assert {
        "Rapid strep",
        "COVID-19 Ag",
        "Flu A Ag",
        "Flu B Ag",
        "Urine hCG",
        "POC glucose",
        "Hemoglobin",
        "PT/INR",
    } <= set(board)
    assert QCRun.objects.filter(passed=False).count() >= 1
    assert QCRun.objects.filter(performed_at__lt=timezone.now() - dt.timedelta(days=18)).exists()
    lots = [status for entry in board.values() for status in entry.lots]
    assert any(status.locked and "new lot or shipment" in (status.block or "") for status in lots)
    assert any(status.locked and "expired" in (status.block or "") for status in lots)
    assert any(not status.locked for status in lots)
    for control in ControlLot.objects.exclude(target_mean=None):
        assert len(levey_jennings(control).points) >= 15
    # Seeding again adds nothing.
    runs, kits = QCRun.objects.count(), Kit.objects.count()
    seed_lab_qc(OutputWrapper(io.StringIO()), users=users)
    assert (QCRun.objects.count(), Kit.objects.count()) == (runs, kits)


def test_a_failed_run_from_the_board_says_how_many_results_go_for_review(  # type: ignore[no-untyped-def]
    client: Client, strep, lab_tech, supervisor, medical_assistant
) -> None:
    lot, negative, _ = strep
    ran(lot, negative, "Negative", lab_tech, at=morning(hour=7))
    for hour in (8, 9):
        released_result(lot, at=morning(hour=hour), ma=medical_assistant, by=lab_tech, verifier=supervisor)
    client.force_login(lab_tech)
    response = client.post(
        reverse("lab:qc:run", args=[lot.pk]), {"control_lot": negative.pk, "value": "Positive"}, follow=True
    )
    assert "FAILED. Patient testing on this lot is locked until it passes. 2 released results marked for review." in (
        response.content.decode()
    )
    assert Result.objects.filter(kit_lot=lot, needs_review=True).count() == 2


@pytest.mark.django_db
def test_a_result_sent_for_review_by_a_failed_qc_says_so_where_it_is_read(client) -> None:  # type: ignore[no-untyped-def]
    from lab.qc.services import qc_run_record
    from tests.lab.helpers import released_critical_result

    result = released_critical_result()  # released on a hemoglobin lot whose controls passed
    level_1 = ControlLot.objects.get(test=result.order.test, level="level_1")
    qc_run_record(kit_lot=result.kit_lot, control_lot=level_1, value="1.0", by=result.verified_by)  # far off: fails
    result.refresh_from_db()
    assert result.needs_review and result.review_reason
    client.force_login(result.order.handoff.ordering_clinician)
    assert "Under review" in client.get(reverse("lab:inbox:inbox")).content.decode()
    client.force_login(result.verified_by)
    assert "Under review" in client.get(reverse("lab:results:result", args=[result.uuid])).content.decode()
