"""The critical-call escalation, run every minute by the task worker (`manage.py db_worker`).

The same chain as the back office's overdue check (backoffice.tasks): each run first enqueues its
successor a minute later, then escalates, so a worker killed mid-run leaves the next run queued.
`schedule_escalation` enqueues only when no run is pending, under its own advisory lock, so every
`migrate` (lab.apps starts the chain there) and any number of workers keep exactly one run waiting.
"""

from datetime import timedelta

from django.tasks import task

from backoffice.tasks import schedule_once
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
    """Enqueue a run of the escalation unless one is already pending; True when one was enqueued."""
    return schedule_once(escalate_critical_calls, lock_key=_SCHEDULE_LOCK_KEY, delay=delay)
