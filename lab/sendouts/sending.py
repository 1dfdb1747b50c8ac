"""Sending one order message to its reference lab, storing what came back, and retrying with backoff.

Run by the task worker (lab.sendouts.tasks.send_order_message), one message per run:

1. Claim it under a per-message advisory lock (two workers, or the desk's "send again" and a
   scheduled retry, never send the same message at once; the loser returns and the winner's
   outcome stands). Count the attempt and **schedule the next one before sending**, in one
   transaction: a worker killed mid-send still leaves the retry queued.
2. Send, outside any transaction (no row lock held over the network): MLLP with
   lab.hl7.transport.send_mllp, or a file dropped with drop_file into the lab's folder.
3. Record the outcome: an AA (or CA) ACK whose MSA-2 is our MSH-10 is *accepted*; AE/AR/CE/CR is
   *refused by the lab* (a person reads MSA-3 and decides: retrying the same text gets the same
   answer); a file written is *delivered*. Anything else (refused connection, timeout, garbage,
   an ACK for another message) is a failure: *retrying* at the time scheduled in step 1, until
   MAX_ATTEMPTS, then *gave up*. The desk shows each, and offers "send again" for the failed ones.

Backoff: RETRY_BASE doubled per failed attempt, at most RETRY_CAP (30 s, 1, 2, 4, 8, 16, 30, 30 min).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from backoffice.transitions import record
from lab.hl7 import er7
from lab.hl7.transport import TransportError, ack_code, drop_file, send_mllp
from lab.models import OutboundMessage, ReferenceLab, SendOutEvent
from lab.workflow import UNSENT_MESSAGE_STATUSES, MessageStatus

RETRY_BASE = timedelta(seconds=30)
RETRY_CAP = timedelta(minutes=30)
MAX_ATTEMPTS = 8
MLLP_TIMEOUT_SECONDS = 15.0
# A run enqueued for a retry the desk has since moved earlier (or a duplicate) finds the message
# not due yet and leaves it to the run scheduled for that time.
DUE_SLACK = timedelta(seconds=5)
ACCEPTED_CODES = ("AA", "CA")
# pg_try_advisory_lock(classid, objid): this class id, the message's id.
_ADVISORY_CLASS = 0x4C4F524D  # "LORM"


def backoff(attempts: int) -> timedelta:
    """How long after failed attempt number ``attempts`` (1 for the first) the next one runs."""
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_CAP)


@dataclass(frozen=True)
class Delivery:
    """What one attempt got: an ACK's text (MLLP), a file's path (folder), or the error."""

    ack: str | None = None
    path: str = ""
    error: str = ""


@contextmanager
def _sending(message_id: int) -> Iterator[bool]:
    """Hold this message's session advisory lock while it is sent; yields False when another has it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_ADVISORY_CLASS, message_id])
        (mine,) = cursor.fetchone()
    try:
        yield bool(mine)
    finally:
        if mine:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_ADVISORY_CLASS, message_id])


def transmit(
    message_id: int,
    *,
    now: datetime | None = None,
    through: Callable[[ReferenceLab, OutboundMessage], Delivery] | None = None,
) -> str:
    """One attempt at one message; returns what happened (for the task's result and the tests).

    ``through`` replaces the lab's transport (the demo seed plays a lab's answer with it).
    """
    from lab.sendouts.tasks import enqueue_send

    with _sending(message_id) as mine:
        if not mine:
            return "busy"
        now = now or timezone.now()
        with transaction.atomic():
            message = (
                OutboundMessage.objects.select_for_update(of=("self",))
                .select_related("send_out__reference_lab")
                .filter(pk=message_id)
                .first()
            )
            if message is None or message.status not in UNSENT_MESSAGE_STATUSES:
                return "done"
            if message.next_attempt_at is not None and message.next_attempt_at > now + DUE_SLACK:
                return "not due"
            message.attempts += 1
            message.last_attempt_at = now
            message.next_attempt_at = now + backoff(message.attempts) if message.attempts < MAX_ATTEMPTS else None
            message.save(update_fields=["attempts", "last_attempt_at", "next_attempt_at"])
            if message.next_attempt_at is not None:
                enqueue_send(message)  # the retry, queued before the network is touched
        delivery = (through or deliver)(message.send_out.reference_lab, message)
        return _record(message_id, delivery, now=timezone.now())


def deliver(lab: ReferenceLab, message: OutboundMessage) -> Delivery:
    """Hand the text to the lab's transport; never raises for a transport's failure."""
    try:
        if lab.transport == ReferenceLab.Transport.FOLDER:
            path = drop_file(Path(lab.drop_folder), f"ORM_{message.control_id}", message.text)
            return Delivery(path=str(path))
        assert lab.mllp_port is not None  # a check constraint: an MLLP lab has its host and port
        return Delivery(ack=send_mllp(lab.mllp_host, lab.mllp_port, message.text, timeout=MLLP_TIMEOUT_SECONDS))
    except TransportError as exc:
        return Delivery(error=str(exc))
    except OSError as exc:  # the folder: missing, full, no permission
        return Delivery(error=f"Can't write to {lab.drop_folder}: {exc.strerror or exc}")


def _ack_for(ack: str) -> str:
    """The MSA-2 of an ACK (the MSH-10 it answers), read tolerantly; "" when there is none."""
    segments = er7.split_segments(ack)
    delimiters = next((er7.delimiters_of(s) for s in segments if s.startswith("MSH")), er7.STANDARD)
    for seg in segments:
        if seg.startswith("MSA" + delimiters.field):
            fields = er7.fields_of(seg, delimiters)
            return er7.unescape(fields[2], delimiters).strip() if len(fields) > 2 else ""
    return ""


def _record(message_id: int, delivery: Delivery, *, now: datetime) -> str:
    from backoffice.services import system_user

    with transaction.atomic():
        message = OutboundMessage.objects.select_for_update(of=("self",)).select_related("send_out").get(pk=message_id)
        unsent = message.status in UNSENT_MESSAGE_STATUSES  # else withdrawn meanwhile: keep what came back only
        send_out = message.send_out
        what = f"ORM {message.kind} {message.control_id}"
        fields = ["status", "last_error", "ack_text", "ack_code", "acked_at", "next_attempt_at"]
        error = delivery.error
        if delivery.path:
            message.ack_text, message.acked_at, message.last_error = "", now, ""
            if unsent:
                message.status, message.next_attempt_at = MessageStatus.DELIVERED, None
                record(
                    send_out,
                    by=system_user(),
                    action=SendOutEvent.Action.DELIVERED,
                    note=f"{what} written to {delivery.path}",
                )
            message.save(update_fields=fields)
            return "delivered"
        if delivery.ack is not None:
            try:
                code, text = ack_code(delivery.ack)
            except ValueError:
                error = f"The lab answered without an acknowledgement (no MSA): {delivery.ack[:80]!r}"
            else:
                answers = _ack_for(delivery.ack)
                if answers != message.control_id:
                    error = (
                        f"The lab acknowledged another message (MSA-2 {answers or 'empty'}, ours {message.control_id})"
                    )
                else:
                    message.ack_text, message.ack_code, message.acked_at = delivery.ack, code[:2], now
                    if code in ACCEPTED_CODES:
                        message.last_error = ""
                        if unsent:
                            message.status, message.next_attempt_at = MessageStatus.ACCEPTED, None
                            record(
                                send_out,
                                by=system_user(),
                                action=SendOutEvent.Action.ACKNOWLEDGED,
                                note=f"{what}: MSA-1 {code}",
                            )
                        message.save(update_fields=fields)
                        return "accepted"
                    message.last_error = (f"{code}: {text}" if text else code)[:300]
                    if unsent:
                        message.status, message.next_attempt_at = MessageStatus.REJECTED, None
                        record(
                            send_out,
                            by=system_user(),
                            action=SendOutEvent.Action.REFUSED,
                            note=f"{what}: MSA-1 {code}" + (f" {text}" if text else ""),
                        )
                    message.save(update_fields=fields)
                    return "rejected"
        message.last_error = error[:300]
        if not unsent:
            message.save(update_fields=["last_error"])
            return "failed"
        if message.attempts >= MAX_ATTEMPTS:
            message.status, message.next_attempt_at = MessageStatus.GAVE_UP, None
            record(
                send_out,
                by=system_user(),
                action=SendOutEvent.Action.GAVE_UP,
                note=f"{what}: {message.attempts} attempts failed; last: {message.last_error}",
            )
            message.save(update_fields=["status", "last_error", "next_attempt_at"])
            return "gave up"
        message.status = MessageStatus.RETRYING
        message.save(update_fields=["status", "last_error"])
        return "retrying"
