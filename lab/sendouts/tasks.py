"""The send-out desk's background work, run by the task worker (`manage.py db_worker`).

- ``send_order_message``: one attempt at one ORM (lab.sendouts.sending.transmit). Queued in the
  transaction that writes the message (dispatch, cancel, "send again"), so the two commit together;
  each attempt queues the next one, with backoff, before it touches the network.
- ``flag_overdue_send_outs``: every five minutes, send-outs past expected-by without final results
  are flagged (lab.sendouts.services.send_outs_flag_overdue) for the desk and the supervisor board.
  The same chain as the back office's overdue check (backoffice.tasks.schedule_once): each run
  first enqueues its successor, and `migrate` starts the chain (lab.apps) when no run is pending.
"""

from datetime import timedelta

from django.tasks import task

from backoffice.tasks import schedule_once
from lab.models import OutboundMessage
from lab.sendouts.sending import transmit
from lab.sendouts.services import send_outs_flag_overdue

OVERDUE_CHECK_INTERVAL = timedelta(minutes=5)
# Any fixed 64-bit number, the same in every process, and no other chain's key.
_SCHEDULE_LOCK_KEY = 0x6C616273656E646F  # "labsendo"


@task()
def send_order_message(message_id: int) -> str:
    """Send one order message to its lab (or store why not, and when it is tried again)."""
    return transmit(message_id)


def enqueue_send(message: OutboundMessage) -> None:
    """Queue an attempt at ``message`` for its ``next_attempt_at`` (now when it has none)."""
    run = send_order_message.using(run_after=message.next_attempt_at) if message.next_attempt_at else send_order_message
    run.enqueue(message.pk)


@task()
def flag_overdue_send_outs() -> int:
    """Flag send-outs past expected-by without final results; returns how many were newly flagged."""
    schedule_overdue_send_outs(delay=OVERDUE_CHECK_INTERVAL)
    return send_outs_flag_overdue()


def schedule_overdue_send_outs(*, delay: timedelta = timedelta(0)) -> bool:
    """Enqueue a run of the overdue check unless one is already pending; True when one was enqueued."""
    return schedule_once(flag_overdue_send_outs, lock_key=_SCHEDULE_LOCK_KEY, delay=delay)
