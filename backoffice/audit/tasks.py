"""The every-minute checkpoint over the append-only tables (backoffice.audit.seal), run by the worker.

A chain like the overdue check (backoffice.tasks): each run first enqueues its successor a minute
later, then seals; ``schedule_seal`` keeps at most one run pending, and every ``migrate`` starts it.
"""

from datetime import timedelta

from django.tasks import task

from backoffice.audit.seal import seal
from backoffice.tasks import schedule_once

SEAL_INTERVAL = timedelta(minutes=1)
_SCHEDULE_LOCK_KEY = 0x6175646974736368  # "auditsch"


@task()
def seal_append_only_rows() -> int:
    """Write the next checkpoint; returns how many rows it sealed."""
    schedule_seal(delay=SEAL_INTERVAL)
    return seal().rows


def schedule_seal(*, delay: timedelta = timedelta(0)) -> bool:
    """Enqueue a run of the checkpoint unless one is already pending; True when one was enqueued."""
    return schedule_once(seal_append_only_rows, lock_key=_SCHEDULE_LOCK_KEY, delay=delay)
