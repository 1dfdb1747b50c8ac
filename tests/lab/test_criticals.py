"""Critical values: the call-back a released critical result opens, its attempts and read-back, the
escalation ladder run by the task worker, acknowledgement in the app, the report and the pages."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.db.models import F
from django.tasks import TaskResultStatus
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from backoffice import roles
from backoffice.models import AccessLog, User
from backoffice.services import (
    SYSTEM_USERNAME,
    handoff_assign_station,
    handoff_claim,
    handoff_verify_identity,
)
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.criticals import services
from lab.criticals.selectors import notification_report
from lab.criticals.tasks import ESCALATION_INTERVAL, escalate_critical_calls, schedule_escalation
from lab.models import Analyte, CriticalCall, CriticalCallAttempt, EscalationStep, KitLot, QCRun, Result, TestOrder
from lab.results.services import result_release, results_enter
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import CallOutcome, CriticalCallStatus
from tests.factories import HandoffFactory, PatientFactory, StationFactory, UserFactory
from tests.lab.helpers import kit_lot, ladder, quantitative_qc
from tests.specimens.helpers import confirm, received, tests

Action = services.Action
READ_BACK, NO_READ_BACK, NOT_REACHED = CallOutcome.READ_BACK, CallOutcome.NO_READ_BACK, CallOutcome.NOT_REACHED
GLUCOSE = "POC glucose"


# --- Reaching a released critical result the way the bench does ------------------------------------


def glucose_lot(by: User) -> KitLot:
    """A glucometer strip lot whose level 1 and level 2 controls passed today."""
    lot = kit_lot(GLUCOSE)
    for control in quantitative_qc(GLUCOSE, levels=(("50", "4"), ("300", "15"))):
        QCRun.objects.create(
            kit_lot=lot, control_lot=control, performed_by=by, value_numeric=control.target_mean, passed=True
        )
    return lot


def released(
    typed: str, *, ma: User, lab_tech: User, lot: KitLot, clinician: User | None = None, **patient: object
) -> Result:
    """A fingerstick glucose of an adult, collected, received, entered on `lot` and released by the tech."""
    born = timezone.localdate() - dt.timedelta(days=50 * 366)
    who = {"ordering_clinician": clinician, "created_by": clinician} if clinician else {}
    handoff = HandoffFactory(patient=PatientFactory(date_of_birth=born, **patient), **who)
    test_orders_add(handoff=handoff, tests=tests(GLUCOSE), by=handoff.ordering_clinician)
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=StationFactory(), by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=handoff.patient.mrn)
    [specimen] = tests_start_collection(handoff=handoff, by=ma)
    confirm(specimen, ma)
    received(specimen, ma=ma, lab_tech=lab_tech)
    order = TestOrder.objects.get(handoff=handoff)
    analyte = Analyte.objects.get(test__short_name=GLUCOSE)
    [result] = results_enter(order=order, values={analyte.pk: typed}, kit_lot=lot, by=lab_tech)
    result_release(result=result, by=lab_tech)
    return Result.objects.select_related("order__handoff").get(pk=result.pk)


@pytest.fixture
def lot(lab_tech: User) -> KitLot:
    return glucose_lot(lab_tech)


@pytest.fixture
def steps() -> list[EscalationStep]:
    return ladder()


@pytest.fixture
def call(
    medical_assistant: User, lab_tech: User, lot: KitLot, clinician: User, steps: list[EscalationStep]
) -> CriticalCall:
    result = released("520", ma=medical_assistant, lab_tech=lab_tech, lot=lot, clinician=clinician)
    return CriticalCall.objects.get(result=result)


def past_due(call: CriticalCall, minutes: int = 1) -> None:
    """Move the clock on until the call has been due for `minutes`: its times all shift back together."""
    due_at, result_id = CriticalCall.objects.values_list("due_at", "result_id").get(pk=call.pk)
    shift = due_at - (timezone.now() - dt.timedelta(minutes=minutes))
    CriticalCall.objects.filter(pk=call.pk).update(
        due_at=F("due_at") - shift, opened_at=F("opened_at") - shift, escalated_at=F("escalated_at") - shift
    )
    Result.objects.filter(pk=result_id).update(released_at=F("released_at") - shift)


def read_back(call: CriticalCall, by: User, **kwargs: str) -> CriticalCallAttempt:
    fields = {
        "contact_name": "Priya Shah",
        "contact_role": "Ordering clinician",
        "outcome": READ_BACK,
        "read_back_identifiers": "Rosa Martinez, DOB 04/12/1961",
        "read_back_value": "glucose 520 mg/dL",
    } | kwargs
    return services.critical_call_attempt(call=call, by=by, **fields)  # type: ignore[arg-type]


# --- Opening on release --------------------------------------------------------------------------------


@pytest.mark.django_db
class TestOpening:
    def test_a_released_critical_result_opens_a_call_to_its_ordering_clinician(
        self, call: CriticalCall, clinician: User
    ) -> None:
        result = call.result
        assert (result.flag, result.is_critical) == ("HH", True)
        assert call.status == CriticalCallStatus.OPEN
        assert call.clinician == clinician
        assert call.step == 1
        assert call.patient_id == result.patient_id
        assert result.released_at is not None
        assert call.due_at - result.released_at == dt.timedelta(minutes=30)
        [opened] = call.events.all()
        assert opened.action == Action.OPENED
        assert opened.note == "Glucose 520 mg/dL (HH): call within 30 min"

    def test_a_critically_low_value_opens_one_too(self, medical_assistant: User, lab_tech: User, lot: KitLot) -> None:
        result = released("35", ma=medical_assistant, lab_tech=lab_tech, lot=lot)
        assert result.flag == "LL"
        assert CriticalCall.objects.filter(result=result, status=CriticalCallStatus.OPEN).exists()

    def test_a_value_short_of_a_critical_limit_opens_none(
        self, medical_assistant: User, lab_tech: User, lot: KitLot
    ) -> None:
        result = released("450", ma=medical_assistant, lab_tech=lab_tech, lot=lot)
        assert result.flag == "H"
        assert not CriticalCall.objects.exists()

    def test_the_first_rung_sets_the_time_and_without_a_ladder_it_is_thirty_minutes(
        self, medical_assistant: User, lab_tech: User, lot: KitLot
    ) -> None:
        without = CriticalCall.objects.get(result=released("600", ma=medical_assistant, lab_tech=lab_tech, lot=lot))
        assert (without.due_at - without.opened_at) == dt.timedelta(minutes=30)
        EscalationStep.objects.create(position=1, target="ordering", due_minutes=20)
        with_rung = CriticalCall.objects.get(result=released("600", ma=medical_assistant, lab_tech=lab_tech, lot=lot))
        assert (with_rung.due_at - with_rung.opened_at) == dt.timedelta(minutes=20)
        assert services.notification_limit_minutes() == 20


# --- Attempts and the read-back ---------------------------------------------------------------------------


@pytest.mark.django_db
class TestAttempts:
    def test_not_reached_is_recorded_and_the_call_stays_open(self, call: CriticalCall, lab_tech: User) -> None:
        attempt = services.critical_call_attempt(
            call=call,
            by=lab_tech,
            contact_name="Priya Shah",
            contact_role="Ordering clinician",
            outcome=NOT_REACHED,
            note="  Voicemail,   left no PHI ",
            read_back_identifiers="ignored without a read-back",
        )
        call.refresh_from_db()
        assert call.status == CriticalCallStatus.OPEN
        assert (attempt.called_by, attempt.outcome, attempt.note) == (lab_tech, NOT_REACHED, "Voicemail, left no PHI")
        assert attempt.read_back_identifiers == attempt.read_back_value == ""
        event = call.events.latest("id")
        assert (event.action, event.from_status, event.to_status) == (Action.ATTEMPT, "open", "open")
        assert event.note == "Priya Shah (Ordering clinician): Not reached: Voicemail, left no PHI"

    def test_reached_without_a_read_back_keeps_it_open(self, call: CriticalCall, lab_tech: User) -> None:
        services.critical_call_attempt(
            call=call, by=lab_tech, contact_name="Priya Shah", contact_role="Ordering clinician", outcome=NO_READ_BACK
        )
        call.refresh_from_db()
        assert call.status == CriticalCallStatus.OPEN
        assert call.closed_at is None

    def test_a_read_back_of_two_identifiers_and_the_value_closes_the_call(
        self, call: CriticalCall, lab_tech: User
    ) -> None:
        attempt = read_back(call, lab_tech)
        call.refresh_from_db()
        assert call.status == CriticalCallStatus.CLOSED
        assert (call.closed_at, call.closed_by, call.closed_how) == (attempt.at, lab_tech, "read back")
        assert attempt.read_back_identifiers == "Rosa Martinez, DOB 04/12/1961"
        assert attempt.read_back_value == "glucose 520 mg/dL"
        event = call.events.latest("id")
        assert (event.action, event.from_status, event.to_status) == (Action.CLOSED, "open", "closed")
        assert "read back Rosa Martinez, DOB 04/12/1961; glucose 520 mg/dL" in event.note

    @pytest.mark.parametrize("missing", ["read_back_identifiers", "read_back_value"])
    def test_a_read_back_needs_both_the_identifiers_and_the_value(
        self, call: CriticalCall, lab_tech: User, missing: str
    ) -> None:
        with pytest.raises(TransitionNotAllowed, match="two patient identifiers and the value"):
            read_back(call, lab_tech, **{missing: "   "})
        call.refresh_from_db()
        assert call.status == CriticalCallStatus.OPEN
        assert not call.attempts.exists()

    def test_the_database_refuses_a_read_back_without_what_was_read_back(
        self, call: CriticalCall, lab_tech: User
    ) -> None:
        with pytest.raises(IntegrityError), transaction.atomic():
            CriticalCallAttempt.objects.create(
                call=call, called_by=lab_tech, contact_name="X", contact_role="Y", outcome=READ_BACK
            )

    def test_it_asks_whom_was_called_and_how_it_went(self, call: CriticalCall, lab_tech: User) -> None:
        with pytest.raises(TransitionNotAllowed, match="Choose how the call went"):
            read_back(call, lab_tech, outcome="maybe")
        with pytest.raises(TransitionNotAllowed, match="whom you called"):
            read_back(call, lab_tech, contact_name=" ")

    def test_a_closed_call_takes_no_more_attempts(self, call: CriticalCall, lab_tech: User) -> None:
        read_back(call, lab_tech)
        with pytest.raises(TransitionNotAllowed, match=r"This critical call was closed at .* \(read back\)"):
            read_back(call, lab_tech)
        assert call.attempts.count() == 1

    def test_only_the_bench_and_supervisors_record_calls(
        self, call: CriticalCall, supervisor: User, clinician: User, medical_assistant: User
    ) -> None:
        for refused in (clinician, medical_assistant):
            with pytest.raises(PermissionRefused):
                read_back(call, refused)
        read_back(call, supervisor)
        call.refresh_from_db()
        assert call.closed_by == supervisor


# --- Acknowledgement in the app ---------------------------------------------------------------------------


@pytest.mark.django_db
class TestAcknowledge:
    def test_the_ordering_clinician_acknowledges_in_the_app_and_it_closes(
        self, call: CriticalCall, clinician: User
    ) -> None:
        services.critical_call_acknowledge(call=call, by=clinician)
        call.refresh_from_db()
        assert (call.status, call.closed_by, call.closed_how) == ("closed", clinician, "acknowledged in app")
        assert call.events.latest("id").action == Action.ACKNOWLEDGED
        with pytest.raises(TransitionNotAllowed, match="closed"):
            services.critical_call_acknowledge(call=call, by=clinician)

    def test_another_clinician_may_not(self, call: CriticalCall) -> None:
        with pytest.raises(PermissionRefused, match="only they or the ordering clinician"):
            services.critical_call_acknowledge(call=call, by=UserFactory(role=roles.ROLE_CLINICIAN))

    def test_the_covering_clinician_may_once_it_is_with_them(
        self, call: CriticalCall, steps: list[EscalationStep]
    ) -> None:
        covering = steps[1].person
        assert covering is not None
        with pytest.raises(PermissionRefused):
            services.critical_call_acknowledge(call=call, by=covering)
        past_due(call)
        services.critical_calls_escalate()
        call = CriticalCall.objects.get(pk=call.pk)
        services.critical_call_acknowledge(call=call, by=covering)
        assert CriticalCall.objects.get(pk=call.pk).closed_by == covering


# --- The ladder ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
class TestEscalate:
    def test_a_call_past_due_moves_to_the_covering_then_the_director_then_stays_flagged(
        self, call: CriticalCall, steps: list[EscalationStep]
    ) -> None:
        _, covering, director = steps
        now = timezone.now()
        assert services.critical_calls_escalate(now=now) == 0  # not due yet

        past_due(call)
        assert services.critical_calls_escalate(now=now) == 1
        call.refresh_from_db()
        assert (call.clinician, call.step, call.status) == (covering.person, 2, "open")
        assert call.due_at == now + dt.timedelta(minutes=15)
        event = call.events.latest("id")
        assert event.action == Action.ESCALATED
        assert event.actor.username == SYSTEM_USERNAME
        assert event.note == "Not read back in time: now Cora Covering (covering clinician), within 15 min"

        assert services.critical_calls_escalate(now=now) == 0  # the covering clinician's time runs
        past_due(call)
        assert services.critical_calls_escalate() == 1
        call.refresh_from_db()
        assert (call.clinician, call.step) == (director.person, 3)

        # The last rung: nobody further to escalate to; flagged once, open and overdue.
        past_due(call, minutes=2)
        assert services.critical_calls_escalate() == 0
        call.refresh_from_db()
        assert (call.clinician, call.step, call.status, call.is_overdue) == (director.person, 3, "open", True)
        flagged = call.events.latest("id")
        assert flagged.action == Action.ESCALATED
        assert "at the last rung (Dana Director): keep calling" in flagged.note
        services.critical_calls_escalate()
        assert call.events.filter(action=Action.ESCALATED).count() == 3

    def test_closed_calls_and_calls_not_yet_due_are_left_alone(
        self, call: CriticalCall, lab_tech: User, medical_assistant: User, lot: KitLot
    ) -> None:
        not_due = CriticalCall.objects.get(result=released("510", ma=medical_assistant, lab_tech=lab_tech, lot=lot))
        past_due(call)
        read_back(CriticalCall.objects.get(pk=call.pk), lab_tech)
        assert services.critical_calls_escalate() == 0
        assert CriticalCall.objects.get(pk=not_due.pk).step == 1

    def test_the_read_back_after_escalation_closes_it_with_the_director(
        self, call: CriticalCall, lab_tech: User, steps: list[EscalationStep]
    ) -> None:
        for _ in range(2):
            past_due(call)
            services.critical_calls_escalate()
        read_back(
            CriticalCall.objects.get(pk=call.pk),
            lab_tech,
            contact_name="Dana Director",
            contact_role="Medical director",
        )
        call.refresh_from_db()
        assert (call.status, call.step) == ("closed", 3)


def pending_runs() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(task_path=escalate_critical_calls.module_path, status=TaskResultStatus.READY)
    )


@pytest.mark.django_db
class TestScheduling:
    def test_enqueues_only_when_none_is_pending(self) -> None:
        DBTaskResult.objects.all().delete()
        assert schedule_escalation() is True
        assert schedule_escalation() is False
        assert schedule_escalation(delay=ESCALATION_INTERVAL) is False
        assert len(pending_runs()) == 1

    def test_every_migrate_starts_the_chain_once(self) -> None:
        from django.core.management.sql import emit_post_migrate_signal

        DBTaskResult.objects.all().delete()
        for _ in range(2):
            emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
        assert len(pending_runs()) == 1

    def test_a_run_escalates_and_schedules_its_successor_a_minute_later(self, call: CriticalCall) -> None:
        DBTaskResult.objects.all().delete()
        past_due(call)
        before = timezone.now()
        assert escalate_critical_calls.call() == 1
        assert CriticalCall.objects.get(pk=call.pk).step == 2
        [successor] = pending_runs()
        assert successor.run_after >= before + ESCALATION_INTERVAL


# The worker commits in its own transactions and calls close_old_connections(), which a test wrapped
# in a transaction can't survive; serialized_rollback puts the migrated roles and catalogs back after.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_runs_the_ladder_to_the_covering_clinician_then_the_director() -> None:
    ma = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    tech = UserFactory(role=roles.ROLE_LAB_TECH)
    _, covering, director = ladder()
    call = CriticalCall.objects.get(result=released("520", ma=ma, lab_tech=tech, lot=glucose_lot(tech)))
    DBTaskResult.objects.all().delete()

    def run_worker() -> DBTaskResult:
        result = escalate_critical_calls.enqueue()
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        return result

    assert run_worker().return_value == 0  # not due yet: still with the ordering clinician
    assert CriticalCall.objects.get(pk=call.pk).step == 1

    past_due(call)  # the ordering clinician's 30 minutes have run out
    DBTaskResult.objects.all().delete()
    assert run_worker().return_value == 1
    call.refresh_from_db()
    assert (call.step, call.clinician) == (2, covering.person)

    past_due(call)  # and the covering clinician's 15
    DBTaskResult.objects.all().delete()
    assert run_worker().return_value == 1
    call.refresh_from_db()
    assert (call.step, call.clinician, call.status) == (3, director.person, "open")
    assert list(call.events.values_list("action", flat=True)) == ["opened", "escalated", "escalated"]
    # The batch worker left the next run alone: it is queued for a minute later.
    [successor] = pending_runs()
    assert successor.run_after > timezone.now() + ESCALATION_INTERVAL - dt.timedelta(seconds=30)


# Committed rows, so the worker's thread (its own connection) sees them; serialized rollback as above.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_escalation_skips_a_call_someone_is_recording_and_takes_it_on_the_next_run() -> None:
    import threading

    from django.db import connection

    tech = UserFactory(role=roles.ROLE_LAB_TECH)
    ladder()
    call = CriticalCall.objects.get(
        result=released("520", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), lab_tech=tech, lot=glucose_lot(tech))
    )
    past_due(call)
    moved: list[int] = []

    def worker() -> None:
        try:
            moved.append(services.critical_calls_escalate())
        finally:
            connection.close()

    with transaction.atomic():
        # A lab technician's attempt holds the row, as critical_call_attempt's lock() does.
        CriticalCall.objects.select_for_update(no_key=True).get(pk=call.pk)
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive()  # it did not wait for the lock
    assert moved == [0]
    assert services.critical_calls_escalate() == 1
    assert CriticalCall.objects.get(pk=call.pk).step == 2


# --- The report --------------------------------------------------------------------------------------------------


def backdate(call: CriticalCall, *, released_ago: int, closed_after: int | None) -> None:
    """Release the call's result `released_ago` minutes ago and close the call `closed_after` minutes later."""
    at = timezone.now() - dt.timedelta(minutes=released_ago)
    Result.objects.filter(pk=call.result_id).update(released_at=at)
    if closed_after is not None:
        CriticalCall.objects.filter(pk=call.pk).update(closed_at=at + dt.timedelta(minutes=closed_after))


@pytest.mark.django_db
def test_the_report_gives_minutes_to_notification_and_every_one_over_the_limit(
    medical_assistant: User, lab_tech: User, lot: KitLot, supervisor: User, steps: list[EscalationStep]
) -> None:
    def new_call() -> CriticalCall:
        return CriticalCall.objects.get(result=released("520", ma=medical_assistant, lab_tech=lab_tech, lot=lot))

    quick, slow, still_open, last_week = new_call(), new_call(), new_call(), new_call()
    read_back(quick, lab_tech)
    read_back(slow, lab_tech)
    read_back(last_week, lab_tech)
    backdate(quick, released_ago=120, closed_after=12)
    backdate(slow, released_ago=100, closed_after=47)
    backdate(still_open, released_ago=40, closed_after=None)
    backdate(last_week, released_ago=60 * 24 * 10, closed_after=5)

    today = timezone.localdate()
    report = notification_report(user=supervisor, since=today - dt.timedelta(days=1), until=today, limit_minutes=30)

    by_call = {r.call.pk: r for r in report.rows}
    assert set(by_call) == {quick.pk, slow.pk, still_open.pk}
    assert (by_call[quick.pk].minutes, by_call[quick.pk].over_limit) == (12, False)
    assert (by_call[slow.pk].minutes, by_call[slow.pk].over_limit) == (47, True)
    assert (by_call[still_open.pk].minutes, by_call[still_open.pk].closed) == (40, False)
    assert by_call[still_open.pk].over_limit
    assert {r.call.pk for r in report.over} == {slow.pk, still_open.pk}
    assert report.closed_count == 2
    assert report.median_minutes == Decimal("29.5")
    assert by_call[quick.pk].call.told_name == "Priya Shah"  # type: ignore[attr-defined]
    assert by_call[quick.pk].call.attempt_count == 1  # type: ignore[attr-defined]

    earlier = notification_report(
        user=supervisor, since=today - dt.timedelta(days=11), until=today - dt.timedelta(days=9), limit_minutes=30
    )
    assert [r.call.pk for r in earlier.rows] == [last_week.pk]


# --- The pages ---------------------------------------------------------------------------------------------------


def rows_logged(what: str, user: User) -> list[AccessLog]:
    return list(AccessLog.objects.filter(what=what, user=user).order_by("id"))


@pytest.mark.django_db
class TestPages:
    def test_the_open_calls_list_for_the_bench_with_its_access_row(
        self, client: Client, call: CriticalCall, lab_tech: User
    ) -> None:
        client.force_login(lab_tech)
        response = client.get(reverse("lab:criticals:open"))
        assert response.status_code == 200
        html = response.content.decode()
        assert call.patient.family_name.upper() in html
        assert "Glucose &gt;" not in html and "Glucose 520 mg/dL" in html
        assert "Priya Shah" in html and "1 of 3: ordering clinician" in html
        assert "due in 29 min" in html
        [entry] = rows_logged("critical calls", lab_tech)
        assert entry.action == "list"
        assert list(entry.patients.values_list("pk", flat=True)) == [call.patient_id]

    def test_an_overdue_call_says_so(self, client: Client, call: CriticalCall, supervisor: User) -> None:
        past_due(call, minutes=12)
        client.force_login(supervisor)
        html = client.get(reverse("lab:criticals:open")).content.decode()
        assert "Overdue 12 min" in html

    def test_a_clinician_sees_only_their_own_and_a_medical_assistant_none(
        self, client: Client, call: CriticalCall, medical_assistant: User
    ) -> None:
        other = UserFactory(role=roles.ROLE_CLINICIAN)
        client.force_login(other)
        assert client.get(reverse("lab:criticals:open")).context["rows"] == []
        assert client.get(reverse("lab:criticals:detail", args=[call.uuid])).status_code == 404
        client.force_login(call.clinician)
        [row] = client.get(reverse("lab:criticals:open")).context["rows"]
        assert row.call == call and not row.record
        client.force_login(medical_assistant)
        assert client.get(reverse("lab:criticals:open")).status_code == 403
        assert AccessLog.objects.filter(user=medical_assistant, what="critical calls", outcome="denied").exists()

    def test_the_open_calls_list_runs_a_fixed_number_of_queries(
        self,
        client: Client,
        call: CriticalCall,
        lab_tech: User,
        medical_assistant: User,
        lot: KitLot,
        django_assert_num_queries,  # type: ignore[no-untyped-def]
    ) -> None:
        for value in ("35", "600", "480"):
            released(value, ma=medical_assistant, lab_tech=lab_tech, lot=lot)
        client.force_login(lab_tech)
        # 1 session, 2 user, 3 permissions and roles, 4 the ladder with its people, 5 the open calls with
        # patient, clinician, analyte and the order's handoff and ordering clinician, 6 the access log
        # row with its patients.
        with django_assert_num_queries(6):
            response = client.get(reverse("lab:criticals:open"))
        assert len(response.context["rows"]) == 4

    def test_the_call_page_shows_the_call_and_logs_a_view(
        self, client: Client, call: CriticalCall, lab_tech: User
    ) -> None:
        client.force_login(lab_tech)
        response = client.get(reverse("lab:criticals:detail", args=[call.uuid]))
        html = response.content.decode()
        assert response.status_code == 200
        assert "Record a call" in html and 'value="Priya Shah"' in html and 'value="Ordering clinician"' in html
        assert "Cora Covering" in html and "Dana Director" in html  # the ladder
        [entry] = rows_logged("critical call", lab_tech)
        assert (entry.action, entry.object_ref) == ("view", str(call.uuid))
        assert list(entry.patients.values_list("pk", flat=True)) == [call.patient_id]

    def test_the_call_page_gives_the_number_to_call_or_says_there_is_none(
        self, client: Client, call: CriticalCall, lab_tech: User
    ) -> None:
        client.force_login(lab_tech)
        url = reverse("lab:criticals:detail", args=[call.uuid])
        assert "no callback phone on file: page them or ask the front desk" in client.get(url).content.decode()
        User.objects.filter(pk=call.clinician_id).update(phone="(212) 555-0147")
        html = client.get(url).content.decode()
        assert '<a class="fw-semibold text-nowrap callback-phone" href="tel:(212)555-0147">(212) 555-0147</a>' in html

    def test_the_tech_records_not_reached_then_a_read_back_through_the_page(
        self, client: Client, call: CriticalCall, lab_tech: User
    ) -> None:
        client.force_login(lab_tech)
        url = reverse("lab:criticals:attempt", args=[call.uuid])
        base = {"contact_name": "Priya Shah", "contact_role": "Ordering clinician"}
        response = client.post(url, base | {"outcome": NOT_REACHED})
        assert response.status_code == 302 and response["Location"] == reverse("lab:criticals:detail", args=[call.uuid])
        assert CriticalCall.objects.get(pk=call.pk).status == "open"

        refused = client.post(url, base | {"outcome": READ_BACK, "read_back_value": "520"})
        assert refused.status_code == 422
        assert "A read-back needs the two patient identifiers" in refused.content.decode()
        assert call.attempts.count() == 1

        done = client.post(
            url, base | {"outcome": READ_BACK, "read_back_identifiers": "name and DOB", "read_back_value": "520 mg/dL"}
        )
        assert done["Location"] == reverse("lab:criticals:open")
        assert CriticalCall.objects.get(pk=call.pk).status == "closed"
        assert call.attempts.count() == 2

    def test_a_clinician_may_not_post_an_attempt_and_the_refusal_is_logged(
        self, client: Client, call: CriticalCall
    ) -> None:
        client.force_login(call.clinician)
        response = client.post(
            reverse("lab:criticals:attempt", args=[call.uuid]),
            {"contact_name": "x", "contact_role": "y", "outcome": NOT_REACHED},
        )
        assert response.status_code == 403
        entry = AccessLog.objects.get(user=call.clinician, object_ref=str(call.uuid))
        assert entry.outcome == "denied"
        assert list(entry.patients.values_list("pk", flat=True)) == [call.patient_id]

    def test_the_clinician_acknowledges_on_the_page(self, client: Client, call: CriticalCall) -> None:
        client.force_login(call.clinician)
        page = client.get(reverse("lab:criticals:detail", args=[call.uuid])).content.decode()
        assert "I have seen this critical value" in page and "Record a call" not in page
        client.post(reverse("lab:criticals:acknowledge", args=[call.uuid]))
        call.refresh_from_db()
        assert call.closed_how == "acknowledged in app"

    def test_the_report_per_role_with_its_access_row(
        self, client: Client, call: CriticalCall, lab_tech: User, supervisor: User
    ) -> None:
        read_back(call, lab_tech)
        for allowed in (lab_tech, supervisor):
            client.force_login(allowed)
            response = client.get(reverse("lab:criticals:report"))
            assert response.status_code == 200
            assert "<strong>1</strong> critical result, 1 told" in response.content.decode()
            [entry] = rows_logged("critical call times", allowed)
            assert list(entry.patients.values_list("pk", flat=True)) == [call.patient_id]
        client.force_login(call.clinician)
        assert client.get(reverse("lab:criticals:report")).status_code == 403

    def test_the_report_filters_by_date(self, client: Client, call: CriticalCall, lab_tech: User) -> None:
        client.force_login(lab_tech)
        response = client.get(reverse("lab:criticals:report"), {"since": "2020-01-01", "until": "2020-01-31"})
        assert response.context["report"].rows == []

    def test_the_panel_lists_open_and_overdue_calls_and_the_board_loads_it(
        self, client: Client, call: CriticalCall, supervisor: User
    ) -> None:
        past_due(call, minutes=3)
        client.force_login(supervisor)
        board = client.get(reverse("board")).content.decode()
        assert f'hx-get="{reverse("lab:criticals:panel")}"' in board
        panel = client.get(reverse("lab:criticals:panel")).content.decode()
        assert "1 open" in panel and "1 overdue" in panel and call.patient.family_name.upper() in panel
        [entry] = rows_logged("critical calls panel", supervisor)
        assert list(entry.patients.values_list("pk", flat=True)) == [call.patient_id]

    def test_the_panel_is_not_offered_to_a_role_that_may_not_see_critical_calls(
        self, client: Client, medical_assistant: User
    ) -> None:
        from django.template import Context, Template
        from django.test import RequestFactory

        request = RequestFactory().get("/")
        request.user = medical_assistant
        html = Template("{% load lab_criticals %}{% critical_calls_panel %}").render(Context({"request": request}))
        assert html.strip() == ""
        client.force_login(medical_assistant)
        assert client.get(reverse("lab:criticals:panel")).status_code == 403


# --- Demo data -------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_seed_sets_the_ladder_and_calls_one_overdue_and_one_read_back(
    medical_assistant: User, lab_tech: User, lot: KitLot
) -> None:
    from io import StringIO

    from django.core.management.base import OutputWrapper

    from backoffice.devtools.seed.lab_criticals import seed_lab_criticals

    users = {
        "clinician": UserFactory(role=roles.ROLE_CLINICIAN),
        "clinician2": UserFactory(role=roles.ROLE_CLINICIAN),
        "labtech": lab_tech,
    }
    out = OutputWrapper(StringIO())
    first, second = (released(v, ma=medical_assistant, lab_tech=lab_tech, lot=lot) for v in ("520", "35"))
    for _ in range(2):  # idempotent
        seed_lab_criticals(out, users=users)

    steps = list(EscalationStep.objects.order_by("position").values_list("target", "person", "due_minutes"))
    assert steps == [
        ("ordering", None, 30),
        ("covering", users["clinician2"].pk, 15),
        ("director", users["clinician"].pk, 15),
    ]
    overdue, closed = CriticalCall.objects.get(result=first), CriticalCall.objects.get(result=second)
    assert overdue.is_overdue and overdue.attempts.get().outcome == NOT_REACHED
    assert closed.status == "closed" and closed.attempts.get().outcome == READ_BACK


@pytest.mark.django_db
def test_the_nav_leads_lab_techs_and_clinicians_to_the_critical_calls(client: Client) -> None:
    for role, shown in (
        (roles.ROLE_LAB_TECH, True),
        (roles.ROLE_CLINICIAN, True),
        (roles.ROLE_MEDICAL_ASSISTANT, False),
    ):
        client.force_login(UserFactory(role=role))
        link = f'href="{reverse("lab:criticals:open")}">Critical calls</a>'
        assert (link in client.get(reverse("queue")).content.decode()) is shown, role
