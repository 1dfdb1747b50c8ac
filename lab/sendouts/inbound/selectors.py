"""Reads for the desk's inbound pages, each with the access check and the joins its page prints.

Who may look: the send-out desk (``lab.run_send_out_desk``) with ``lab.view_inboundmessage``: lab
technicians and supervisors. Anyone else gets a 404, logged as a refusal by the view.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Window
from django.http import Http404

from backoffice.models import User
from lab.models import InboundMessage, InboundMessageEvent
from lab.sendouts.intake import DESK_PERM, QUEUE_PERM
from lab.workflow import IntakeOutcome

IO = IntakeOutcome
# A queue shows this many, oldest first; the rest are counted.
QUEUE_SHOWN = 100
RECENT_SHOWN = 25
_WITH_ORDER = (
    "reference_lab",
    "send_out__order__handoff__patient",
    "send_out__order__test",
    "send_out__order__specimen",
    "resolved_by",
)


def may_work(user: User) -> bool:
    return user.is_active and user.has_perm(DESK_PERM) and user.has_perm(QUEUE_PERM)


def _require(user: User) -> None:
    if not may_work(user):
        raise Http404


def _open(outcome: str) -> QuerySet[InboundMessage]:
    # The partial index inbound_open_queue_idx: queued (unmatched or held), not yet resolved.
    return InboundMessage.objects.filter(outcome=outcome, resolved_at__isnull=True)


@dataclass(frozen=True)
class Counts:
    unmatched: int
    held: int
    not_filed: int  # stored, but an error stopped filing: for the desk to look at


def queue_counts(*, user: User) -> Counts:
    """How many wait in each queue (one query); the desk's page can show them too."""
    _require(user)
    counts = InboundMessage.objects.aggregate(
        unmatched=Count("pk", filter=Q(outcome=IO.UNMATCHED, resolved_at__isnull=True)),
        held=Count("pk", filter=Q(outcome=IO.IDENTITY_HOLD, resolved_at__isnull=True)),
        not_filed=Count("pk", filter=Q(outcome=IO.RECEIVED) & ~Q(detail="")),
    )
    return Counts(**counts)


def recent_messages(*, user: User) -> list[InboundMessage]:
    """The latest messages received, newest first, with the lab, and the order and patient they went to."""
    _require(user)
    return list(InboundMessage.objects.select_related(*_WITH_ORDER).order_by("-received_at", "-id")[:RECENT_SHOWN])


def queue(*, user: User, outcome: str) -> list[InboundMessage]:
    """One queue, oldest first (the first QUEUE_SHOWN, each carrying the total as ``total``)."""
    _require(user)
    if outcome not in (IO.UNMATCHED, IO.IDENTITY_HOLD):
        raise Http404
    rows = (
        _open(outcome)
        .select_related(*_WITH_ORDER)
        .annotate(total=Window(Count("pk")))
        .order_by("received_at", "id")[:QUEUE_SHOWN]
    )
    return list(rows)


def queue_total(rows: list[InboundMessage]) -> int:
    return getattr(rows[0], "total", len(rows)) if rows else 0


def not_filed(*, user: User) -> list[InboundMessage]:
    """Stored messages an unexpected error stopped from being filed (their detail says which)."""
    _require(user)
    return list(
        InboundMessage.objects.filter(outcome=IO.RECEIVED)
        .exclude(detail="")
        .select_related("reference_lab")
        .order_by("received_at", "id")[:QUEUE_SHOWN]
    )


def message_for_user(*, user: User, uuid: str) -> InboundMessage:
    _require(user)
    try:
        return InboundMessage.objects.select_related(*_WITH_ORDER, "reference_lab__profile", "duplicate_of").get(
            uuid=uuid
        )
    except (InboundMessage.DoesNotExist, ValueError):
        raise Http404 from None


def message_events(message: InboundMessage) -> list[InboundMessageEvent]:
    return list(message.events.select_related("actor").order_by("-at", "-id"))


def patient_of_message(ref: str) -> int | None:
    """The access log's subject: the patient of the order a message was filed to or held against.

    An unmatched message names no patient of ours: nothing links it to a chart, so none is logged.
    """
    return (
        InboundMessage.objects.filter(uuid=ref, send_out__isnull=False)
        .values_list("send_out__order__handoff__patient_id", flat=True)
        .first()
    )
