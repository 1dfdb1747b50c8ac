"""The critical-call escalation, run every minute by the task worker (`manage.py db_worker`).

The same chain as the back office's overdue check (backoffice.tasks): each run first enqueues its
successor a minute later, then escalates, so a worker killed mid-run leaves the next run queued.
`schedule_escalation` enqueues only when no run is pending, under its own advisory lock, so every
`migrate` (lab.apps starts the chain there) and any number of workers keep exactly one run waiting.
"""

from datetime import timedelta

from django.db import connection, transaction
from django.tasks import TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from lab.criticals.services import critical_calls_escalate

ESCALATION_INTERVAL = timedelta(minutes=1)
# Any fixed 64-bit number, the same in every process, and not the back office's key.
_SCHEDULE_LOCK_KEY = 0x6C61626372697473  # "labcrits"


@task()
def escalate_critical_calls() -> int:
    """Move open critical calls past their due time up the ladder; returns how many moved."""
    schedule_escalation(delay=ESCALATION_INTERVAL)
    return critical_calls_escalate()


def schedule_escalation(*, delay: timedelta = timedelta(0)) -> bool:
    """Enqueue a run of the escalation unless one is already pending; True when one was enqueued.

    Does nothing on a backend without a worker and deferred runs (Django's immediate or dummy
    backends), where a chain of runs can't work.
    """
    backend = escalate_critical_calls.get_backend()
    if not backend.supports_defer:
        return False
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SCHEDULE_LOCK_KEY])
        pending = DBTaskResult.objects.filter(
            backend_name=backend.alias,
            task_path=escalate_critical_calls.module_path,
            status=TaskResultStatus.READY,
        ).exists()
        if pending:
            return False
        run = escalate_critical_calls.using(run_after=timezone.now() + delay) if delay else escalate_critical_calls
        run.enqueue()
    return True
