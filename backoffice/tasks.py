"""Background jobs (Django's tasks API), stored in Postgres and run by `manage.py db_worker`.

The overdue check runs every minute as a chain: each run first enqueues its successor (run_after one
minute later), then does its work. Enqueuing the successor first means a worker killed mid-run
leaves the next run queued. `schedule_overdue_check` enqueues only when no run of the check is
already waiting, under a Postgres advisory lock, so starting it again (every `migrate` does, see
backoffice.apps) or running many workers never piles up duplicates: there is at most one pending
run at any moment, whichever worker on whichever machine takes it.
"""

from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.tasks import Task, TaskResultStatus, task
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from backoffice.services import handoffs_flag_overdue

OVERDUE_CHECK_INTERVAL = timedelta(minutes=1)
# Any fixed 64-bit number, the same in every process: pg_advisory_xact_lock serialises the
# "is one pending? if not, enqueue" step across workers and `migrate`.
_SCHEDULE_LOCK_KEY = 0x6261636B6F666669  # "backoffi"


@task()
def flag_overdue_handoffs() -> int:
    """Flag waiting handoffs past QUEUE_OVERDUE_MINUTES_STAT/_ROUTINE; returns how many were newly flagged."""
    schedule_overdue_check(delay=OVERDUE_CHECK_INTERVAL)
    return handoffs_flag_overdue()


def schedule_overdue_check(*, delay: timedelta = timedelta(0)) -> bool:
    """Enqueue a run of the overdue check unless one is already pending; True when one was enqueued."""
    return schedule_once(flag_overdue_handoffs, lock_key=_SCHEDULE_LOCK_KEY, delay=delay)


def schedule_once(chained: Task[Any, Any], *, lock_key: int, delay: timedelta = timedelta(0)) -> bool:
    """Enqueue a run of a self-rescheduling task unless one is already pending; True when one was enqueued.

    The "is one pending? if not, enqueue" step runs under the task's own advisory lock, so `migrate`
    and any number of workers keep exactly one run waiting. Does nothing on a backend without a
    worker and deferred runs (Django's immediate or dummy backends), where a chain of runs can't work.
    """
    backend = chained.get_backend()
    if not backend.supports_defer:
        return False
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key])
        pending = DBTaskResult.objects.filter(
            backend_name=backend.alias,
            task_path=chained.module_path,
            status=TaskResultStatus.READY,
        ).exists()
        if pending:
            return False
        run = chained.using(run_after=timezone.now() + delay) if delay else chained
        run.enqueue()
    return True
