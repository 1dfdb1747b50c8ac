"""The overdue check: the service that flags waiting handoffs, its task chain, and a real worker running it."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from backoffice import services
from backoffice.models import Handoff, HandoffEvent, User
from backoffice.tasks import OVERDUE_CHECK_INTERVAL, flag_overdue_handoffs, schedule_overdue_check
from backoffice.workflow import HandoffStatus, Priority
from tests.factories import HandoffFactory

FLAGGED = HandoffEvent.Action.FLAGGED_OVERDUE


def waiting_for(handoff: Handoff, minutes: float, *, now: object = None) -> Handoff:
    """Backdate a handoff so that it has waited `minutes` at `now`."""
    at = (now or timezone.now()) - timedelta(minutes=minutes)  # type: ignore[operator]
    Handoff.objects.filter(pk=handoff.pk).update(created_at=at)
    handoff.refresh_from_db()
    return handoff


def make(minutes: float, *, priority: int = Priority.ROUTINE, now: object = None) -> Handoff:
    return waiting_for(HandoffFactory(priority=priority), minutes, now=now)


def flagged_ids() -> set[int]:
    return set(Handoff.objects.filter(overdue_since__isnull=False).values_list("pk", flat=True))


def pending_checks() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=flag_overdue_handoffs.module_path, status=TaskResultStatus.READY))


@pytest.mark.django_db
class TestFlagOverdue:
    def test_flags_only_waiting_handoffs_past_their_threshold(self) -> None:
        now = timezone.now()
        stat_late = make(5, priority=Priority.STAT, now=now)
        stat_early = make(4.9, priority=Priority.STAT, now=now)
        routine_late = make(20, now=now)
        routine_early = make(19.9, now=now)
        routine_at_stat_limit = make(6, now=now)

        assert services.handoffs_flag_overdue(now=now) == 2

        assert flagged_ids() == {stat_late.pk, routine_late.pk}
        for early in (stat_early, routine_early, routine_at_stat_limit):
            early.refresh_from_db()
            assert early.overdue_since is None
            assert not early.events.filter(action=FLAGGED).exists()
        stat_late.refresh_from_db()
        routine_late.refresh_from_db()
        # overdue_since is when the threshold passed, not when the worker noticed.
        assert stat_late.overdue_since == stat_late.created_at + timedelta(minutes=5)
        assert routine_late.overdue_since == routine_late.created_at + timedelta(minutes=20)

    def test_thresholds_come_from_settings(self, settings: object) -> None:
        settings.QUEUE_OVERDUE_MINUTES_ROUTINE = 30  # type: ignore[attr-defined]
        settings.QUEUE_OVERDUE_MINUTES_STAT = 2  # type: ignore[attr-defined]
        now = timezone.now()
        routine_25 = make(25, now=now)
        routine_31 = make(31, now=now)
        stat_3 = make(3, priority=Priority.STAT, now=now)

        assert services.handoffs_flag_overdue(now=now) == 2
        assert flagged_ids() == {routine_31.pk, stat_3.pk}
        assert routine_25.pk not in flagged_ids()

    def test_writes_one_event_per_newly_flagged_handoff_by_the_system_user(self) -> None:
        now = timezone.now()
        late = make(45, now=now)

        services.handoffs_flag_overdue(now=now)

        event = late.events.get(action=FLAGGED)
        assert event.at == now
        assert event.from_status == event.to_status == HandoffStatus.WAITING
        assert event.note == "Waiting 45 min; the limit is 20 min."
        system = User.objects.get(pk=event.actor_id)
        assert system.username == services.SYSTEM_USERNAME
        assert not system.is_active
        assert not system.has_usable_password()
        assert not system.groups.exists()

    def test_is_idempotent(self) -> None:
        now = timezone.now()
        late = make(30, now=now)

        assert services.handoffs_flag_overdue(now=now) == 1
        first = Handoff.objects.get(pk=late.pk).overdue_since
        assert services.handoffs_flag_overdue(now=now + timedelta(minutes=1)) == 0
        assert services.handoffs_flag_overdue(now=now + timedelta(minutes=2)) == 0

        assert Handoff.objects.get(pk=late.pk).overdue_since == first
        assert late.events.filter(action=FLAGGED).count() == 1
        assert User.objects.filter(username=services.SYSTEM_USERNAME).count() == 1

    def test_does_not_touch_the_version(self) -> None:
        late = make(30)
        services.handoffs_flag_overdue()
        assert Handoff.objects.get(pk=late.pk).version == late.version

    def test_clears_when_claimed_and_flags_again_when_released(self, medical_assistant: User) -> None:
        late = make(30)
        services.handoffs_flag_overdue()
        assert late.pk in flagged_ids()

        services.handoff_claim(handoff=late, by=medical_assistant)
        assert services.handoffs_flag_overdue() == 0
        assert late.pk not in flagged_ids()

        # Back on the queue, still waiting since it was handed off: overdue again, with a new event.
        services.handoff_release(handoff=late, by=medical_assistant)
        assert services.handoffs_flag_overdue() == 1
        assert late.events.filter(action=FLAGGED).count() == 2

    def test_clears_when_closed(self, supervisor: User) -> None:
        late = make(30)
        services.handoffs_flag_overdue()
        services.handoff_cancel(handoff=late, by=supervisor, reason="Patient left")

        services.handoffs_flag_overdue()

        assert late.pk not in flagged_ids()

    def test_clears_when_the_threshold_is_raised(self, settings: object) -> None:
        late = make(30)
        services.handoffs_flag_overdue()
        settings.QUEUE_OVERDUE_MINUTES_ROUTINE = 60  # type: ignore[attr-defined]

        services.handoffs_flag_overdue()

        assert late.pk not in flagged_ids()


@pytest.mark.django_db
class TestIsOverdue:
    def test_uses_the_flag_when_set(self) -> None:
        handoff = make(1)
        assert not handoff.is_overdue()
        handoff.overdue_since = timezone.now()
        assert handoff.is_overdue()

    def test_falls_back_to_the_live_computation_between_runs(self) -> None:
        handoff = make(21)
        assert handoff.overdue_since is None
        assert handoff.is_overdue()
        stat = make(5, priority=Priority.STAT)
        assert stat.is_overdue()

    def test_a_claimed_handoff_is_not_overdue(self, medical_assistant: User) -> None:
        handoff = make(60)
        services.handoffs_flag_overdue()
        handoff = services.handoff_claim(handoff=handoff, by=medical_assistant)
        assert not handoff.is_overdue()


@pytest.mark.django_db
class TestScheduling:
    def test_enqueues_only_when_none_is_pending(self) -> None:
        DBTaskResult.objects.all().delete()

        assert schedule_overdue_check() is True
        assert schedule_overdue_check() is False
        assert schedule_overdue_check(delay=OVERDUE_CHECK_INTERVAL) is False

        assert len(pending_checks()) == 1

    def test_a_run_schedules_its_successor_a_minute_later(self) -> None:
        DBTaskResult.objects.all().delete()
        late = make(30)

        before = timezone.now()
        assert flag_overdue_handoffs.call() == 1

        assert late.pk in flagged_ids()
        [successor] = pending_checks()
        assert successor.run_after >= before + OVERDUE_CHECK_INTERVAL


# The worker commits in its own transactions and calls close_old_connections(), which a test wrapped
# in a transaction can't survive; serialized_rollback puts the migrated roles back afterwards.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_runs_the_overdue_check() -> None:
    DBTaskResult.objects.all().delete()
    late = make(6, priority=Priority.STAT)
    not_yet = make(10)

    result = flag_overdue_handoffs.enqueue()
    assert result.status == TaskResultStatus.READY

    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == 1
    assert flagged_ids() == {late.pk}
    assert not_yet.pk not in flagged_ids()
    assert late.events.filter(action=FLAGGED).count() == 1
    # The next run is queued for a minute later, so the batch worker left it alone.
    [successor] = pending_checks()
    assert successor.run_after > timezone.now() + OVERDUE_CHECK_INTERVAL - timedelta(seconds=30)
