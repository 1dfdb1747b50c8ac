"""Reads of the send-out desk for its pages, with the access check and the joins applied together, and
what a user may do to a send-out or a shipment (asked of the guards the services run)."""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Window
from django.http import Http404
from django.utils import timezone

from backoffice.models import Patient, User, minutes_label, whole_minutes
from backoffice.transitions import Offer, offer
from backoffice.workflow import Priority
from lab.models import AskAtOrderEntry, OutboundMessage, ReferenceLab, SendOut, SendOutEvent, Shipment, ShipmentEvent
from lab.sendouts import services, shipments
from lab.sendouts.services import AWAITING_RESULTS_STATUSES, DESK_PERM, answer_text, questions_of
from lab.workflow import MessageStatus, SendOutStatus, ShipmentStatus
from specimens.models import Specimen
from specimens.workflow import Handling, Location, SpecimenStatus

# Sent send-outs listed on the desk (overdue and failed first); the rest are counted.
SENT_SHOWN = 50
# Order messages that need a person: failed for good, refused, or still failing.
TROUBLED_MESSAGE_STATUSES: tuple[str, ...] = (MessageStatus.RETRYING, MessageStatus.GAVE_UP, MessageStatus.REJECTED)


def _require(user: User) -> None:
    if not user.has_perm(DESK_PERM):
        raise Http404


# --- Rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """One ask-at-order-entry question of one send-out, and its answer so far ("" when none)."""

    send_out: SendOut
    question: AskAtOrderEntry
    answer: str

    @property
    def shown(self) -> str:
        return answer_text(self.question, self.answer) if self.answer else ""

    @property
    def missing(self) -> bool:
        return self.question.required and not self.answer


def questions(send_out: SendOut) -> list[Question]:
    given = send_out.answers or {}
    return [Question(send_out, q, str(given.get(q.loinc_code, "")).strip()) for q in questions_of(send_out)]


@dataclass
class Tube:
    """One specimen with the send-outs it carries: a row of the desk, a shipment's page and the manifest."""

    specimen: Specimen
    send_outs: list[SendOut]
    now: datetime
    open_shipments: list[Shipment] = field(default_factory=list)  # open ones it can be packed in

    @property
    def patient(self) -> Patient:
        return self.specimen.patient

    @property
    def handoff(self):  # type: ignore[no-untyped-def]
        return self.send_outs[0].order.handoff

    @property
    def is_stat(self) -> bool:
        return self.handoff.priority == Priority.STAT

    @property
    def reference_lab(self) -> ReferenceLab:
        return self.send_outs[0].reference_lab

    @property
    def handling(self) -> str:
        return self.specimen.container.handling

    @property
    def at_desk(self) -> bool:
        return self.specimen.status == SpecimenStatus.RECEIVED and self.specimen.location == Location.SEND_OUT_DESK

    @property
    def where(self) -> str:
        """Where a tube not yet at the desk is, and who moves it next, in words."""
        status = self.specimen.status
        if status == SpecimenStatus.COLLECTED:
            return "Still at the bedside: the MA hands it over to the send-out desk"
        if status == SpecimenStatus.IN_TRANSIT:
            if self.specimen.location == Location.SEND_OUT_DESK:
                return "On its way here: receive it when it arrives (Specimens)"
            return f"On its way to the {Location(self.specimen.location).label.lower()}, not here"
        return f"{SpecimenStatus(status).label}, {Location(self.specimen.location).label.lower()}"

    @property
    def waiting_minutes(self) -> int:
        since = self.specimen.received_at or self.specimen.collected_at or self.specimen.status_changed_at
        return whole_minutes(since, self.now)

    @property
    def waiting_label(self) -> str:
        return minutes_label(self.waiting_minutes)

    @cached_property
    def questions(self) -> list[Question]:
        return [q for s in self.send_outs for q in questions(s)]

    @property
    def missing(self) -> list[Question]:
        return [q for q in self.questions if q.missing]

    @property
    def diagnosis_codes(self) -> list[str]:
        return list(self.handoff.diagnosis_codes)

    @property
    def clinician(self) -> User:
        return self.handoff.ordering_clinician

    @property
    def sort_key(self) -> tuple[int, datetime, int]:
        return (self.handoff.priority, self.specimen.received_at or self.specimen.status_changed_at, self.specimen.pk)


def tubes_of(send_outs: Iterable[SendOut], now: datetime) -> list[Tube]:
    """Send-outs grouped by the tube that carries them, STAT first then longest waiting."""
    by_specimen: dict[int, Tube] = {}
    for send_out in send_outs:
        specimen = send_out.order.specimen
        if specimen is None:
            continue
        tube = by_specimen.get(specimen.pk)
        if tube is None:
            by_specimen[specimen.pk] = Tube(specimen, [send_out], now)
        else:
            tube.send_outs.append(send_out)
    return sorted(by_specimen.values(), key=lambda t: t.sort_key)


# Everything a desk row, a shipment row or a requisition shows of a send-out, in one join.
ROW_RELATED = (
    "reference_lab",
    "orderable",
    "order__test",
    "order__handoff__patient",
    "order__handoff__ordering_clinician",
    "order__specimen__container",
    "order__specimen__specimen_type",
    "order__specimen__patient",
    "order__specimen__collected_by",
    "order__specimen__labelled_by",
)


def _rows(queryset: QuerySet[SendOut]) -> QuerySet[SendOut]:
    return queryset.select_related(*ROW_RELATED).prefetch_related("orderable__questions")


@dataclass
class Group:
    """The tubes waiting at the desk for one lab at one temperature, and the open shipments they fit."""

    reference_lab: ReferenceLab
    handling: str
    tubes: list[Tube]
    open_shipments: list[Shipment]

    @property
    def handling_label(self) -> str:
        return Handling(self.handling).label

    @property
    def stat_count(self) -> int:
        return sum(t.is_stat for t in self.tubes)


@dataclass
class SentRow:
    """A send-out sent and not final: its order message's fate, and whether it is overdue."""

    send_out: SendOut
    message: OutboundMessage | None
    now: datetime

    @property
    def overdue(self) -> bool:
        expected = self.send_out.expected_by
        return self.send_out.overdue_since is not None or (expected is not None and expected <= self.now)

    @property
    def troubled(self) -> bool:
        return self.message is not None and self.message.status in TROUBLED_MESSAGE_STATUSES

    @property
    def is_stat(self) -> bool:
        return self.send_out.order.handoff.priority == Priority.STAT


@dataclass
class Desk:
    groups: list[Group]
    elsewhere: list[Tube]  # send-outs whose tube isn't at the desk yet
    open_shipments: list[Shipment]
    sent: list[SentRow]
    sent_total_over: bool  # more sent send-outs than shown
    cancels: list[OutboundMessage]  # cancel messages the lab hasn't taken yet
    now: datetime

    @property
    def patient_ids(self) -> list[int]:
        ids = [t.patient.pk for g in self.groups for t in g.tubes]
        ids += [t.patient.pk for t in self.elsewhere]
        ids += [r.send_out.order.handoff.patient_id for r in self.sent]
        ids += [m.send_out.order.handoff.patient_id for m in self.cancels]
        return ids

    @property
    def waiting_count(self) -> int:
        return sum(len(g.tubes) for g in self.groups)

    @property
    def missing_count(self) -> int:
        return sum(1 for g in self.groups for t in g.tubes if t.missing)

    @property
    def overdue_count(self) -> int:
        return sum(r.overdue for r in self.sent)

    @property
    def troubled_count(self) -> int:
        return sum(r.troubled for r in self.sent) + len(self.cancels)


def open_shipments() -> list[Shipment]:
    """Shipments being packed, soonest pickup first, each with how many tubes are in it."""
    packed = Q(send_outs__status=SendOutStatus.PACKED)
    return list(
        Shipment.objects.filter(status=ShipmentStatus.OPEN)
        .select_related("reference_lab")
        .annotate(tube_count=Count("send_outs__order__specimen", filter=packed, distinct=True))
        .order_by("pickup_at", "id")
    )


def desk(*, user: User, now: datetime | None = None) -> Desk:
    """The desk: tubes waiting per lab and temperature, open shipments, sent send-outs and their messages.

    Six queries: the waiting send-outs with their rows, their questions, the open shipments with
    their counts, the sent send-outs with their rows, their order messages, the cancels not through.
    """
    _require(user)
    now = now or timezone.now()
    waiting = _rows(SendOut.objects.filter(status=SendOutStatus.WAITING))
    tubes = tubes_of(waiting, now)
    shipments_open = open_shipments()
    fits: dict[tuple[int, str], list[Shipment]] = defaultdict(list)
    for s in shipments_open:
        fits[(s.reference_lab_id, s.handling)].append(s)
    grouped: dict[tuple[int, str], Group] = {}
    elsewhere = []
    for tube in tubes:
        if not tube.at_desk:
            elsewhere.append(tube)
            continue
        key = (tube.reference_lab.pk, tube.handling)
        tube.open_shipments = fits.get(key, [])
        group = grouped.get(key)
        if group is None:
            grouped[key] = Group(tube.reference_lab, tube.handling, [tube], fits.get(key, []))
        else:
            group.tubes.append(tube)
    order = {h: n for n, h in enumerate(Handling.values)}
    groups = sorted(grouped.values(), key=lambda g: (-g.stat_count, g.reference_lab.name, order.get(g.handling, 9)))
    messages = Prefetch(
        "messages",
        queryset=OutboundMessage.objects.filter(kind=OutboundMessage.Kind.NEW).order_by("-created_at", "-id"),
        to_attr="new_messages",
    )
    # An order message not through comes first whatever its expected-by, so none is cut off the list.
    not_through = OutboundMessage.objects.filter(
        send_out=OuterRef("pk"), kind=OutboundMessage.Kind.NEW, status__in=TROUBLED_MESSAGE_STATUSES
    )
    sent_rows = list(
        SendOut.objects.filter(status__in=AWAITING_RESULTS_STATUSES)
        .select_related("reference_lab", "orderable", "order__test", "order__handoff__patient", "order__specimen")
        .prefetch_related(messages)
        .order_by(Exists(not_through).desc(), "expected_by", "id")[: SENT_SHOWN + 1]
    )
    sent = [SentRow(s, s.new_messages[0] if s.new_messages else None, now) for s in sent_rows[:SENT_SHOWN]]
    sent.sort(key=lambda r: (not r.troubled, not r.overdue, not r.is_stat, r.send_out.expected_by or now))
    cancels = list(
        OutboundMessage.objects.filter(kind=OutboundMessage.Kind.CANCEL, status__in=TROUBLED_MESSAGE_STATUSES)
        .select_related("send_out__order__test", "send_out__order__handoff__patient", "send_out__reference_lab")
        .order_by("created_at", "id")
    )
    return Desk(groups, elsewhere, shipments_open, sent, len(sent_rows) > SENT_SHOWN, cancels, now)


# --- One shipment, one send-out ------------------------------------------------------------------------


def shipment_for_user(*, user: User, uuid: str) -> Shipment:
    _require(user)
    try:
        return Shipment.objects.select_related("reference_lab", "created_by", "dispatched_by").get(uuid=uuid)
    except (Shipment.DoesNotExist, ValueError):
        raise Http404 from None


def shipment_tubes(shipment: Shipment, now: datetime | None = None) -> list[Tube]:
    """The tubes in a shipment (packed, or sent with it), by accession: as the manifest lists them."""
    now = now or timezone.now()
    statuses = (
        (SendOutStatus.PACKED,)
        if shipment.status == ShipmentStatus.OPEN
        else (*AWAITING_RESULTS_STATUSES, SendOutStatus.FINAL, SendOutStatus.CANCELLED)
    )
    messages = Prefetch(
        "messages", queryset=OutboundMessage.objects.order_by("-created_at", "-id"), to_attr="all_messages"
    )
    send_outs = _rows(SendOut.objects.filter(shipment=shipment, status__in=statuses)).prefetch_related(messages)
    return sorted(tubes_of(send_outs, now), key=lambda t: t.specimen.accession)


def packable_tubes(shipment: Shipment, now: datetime | None = None) -> list[Tube]:
    """Tubes waiting at the desk that can go in this open shipment: its lab, its temperature."""
    if shipment.status != ShipmentStatus.OPEN:
        return []
    now = now or timezone.now()
    waiting = _rows(
        SendOut.objects.filter(
            status=SendOutStatus.WAITING,
            reference_lab=shipment.reference_lab_id,
            order__specimen__container__handling=shipment.handling,
            order__specimen__status=SpecimenStatus.RECEIVED,
            order__specimen__location=Location.SEND_OUT_DESK,
        )
    )
    return tubes_of(waiting, now)


def shipment_events(shipment: Shipment) -> list[ShipmentEvent]:
    return list(shipment.events.select_related("actor").order_by("-at", "-id"))


def send_out_for_user(*, user: User, uuid: str) -> SendOut:
    _require(user)
    try:
        return _rows(SendOut.objects.all()).select_related("shipment").get(uuid=uuid)
    except (SendOut.DoesNotExist, ValueError):
        raise Http404 from None


def send_out_messages(send_out: SendOut) -> list[OutboundMessage]:
    return list(send_out.messages.order_by("created_at", "id"))


def send_out_events(send_out: SendOut) -> list[SendOutEvent]:
    return list(send_out.events.select_related("actor").order_by("-at", "-id"))


def reference_labs() -> QuerySet[ReferenceLab]:
    return ReferenceLab.objects.filter(is_active=True).order_by("name")


# --- What a user may do -----------------------------------------------------------------------------------


class SendOutActions:
    """What this user may do to this send-out now, each asked of the guard its service runs."""

    NAMES = ("answer", "cancel")

    def __init__(self, send_out: SendOut, user: User) -> None:
        self.send_out = send_out
        self.user = user

    def _offer(self, check: Callable[[SendOut, User], None]) -> Offer:
        return offer(lambda: check(self.send_out, self.user))

    @cached_property
    def answer(self) -> Offer:
        return self._offer(services.check_answer)

    @cached_property
    def cancel(self) -> Offer:
        return self._offer(services.check_cancel)

    def retry(self, message: OutboundMessage) -> Offer:
        return offer(lambda: services.check_retry(message, self.user))

    def allowed(self) -> set[str]:
        return {name for name in self.NAMES if getattr(self, name)}


def send_out_actions(send_out: SendOut, user: User) -> SendOutActions:
    return SendOutActions(send_out, user)


class ShipmentActions:
    """What this user may do to this shipment now; ``dispatch`` carries every reason it can't leave yet."""

    NAMES = ("pack", "dispatch", "cancel", "print")

    def __init__(self, shipment: Shipment, user: User, send_outs: list[SendOut] | None = None) -> None:
        self.shipment = shipment
        self.user = user
        self.send_outs = send_outs

    @cached_property
    def pack(self) -> Offer:
        return offer(lambda: shipments.check_packing(self.shipment, self.user))

    @cached_property
    def dispatch(self) -> Offer:
        return offer(lambda: shipments.check_dispatch(self.shipment, self.user, self.send_outs))

    @cached_property
    def cancel(self) -> Offer:
        return offer(lambda: shipments.check_cancel_shipment(self.shipment, self.user))

    @cached_property
    def print(self) -> Offer:
        return offer(lambda: shipments.check_print_shipment(self.shipment, self.user))

    def allowed(self) -> set[str]:
        return {name for name in self.NAMES if getattr(self, name)}


def shipment_actions(shipment: Shipment, user: User, send_outs: list[SendOut] | None = None) -> ShipmentActions:
    return ShipmentActions(shipment, user, send_outs)


# --- The supervisor board ------------------------------------------------------------------------------

BOARD_SHOWN = 10


@dataclass(frozen=True)
class Overdue:
    send_outs: list[SendOut]
    total: int


def overdue_for_board(*, user: User, now: datetime | None = None) -> Overdue:
    """Send-outs past expected-by without final results, most overdue first: one query (a window count).

    Counted live from expected-by, like the queue's overdue handoffs, so one turns red on time even
    when the worker's flag (``overdue_since``, every five minutes) hasn't run yet.
    """
    _require(user)
    now = now or timezone.now()
    send_outs: list[SendOut] = list(
        SendOut.objects.filter(status__in=AWAITING_RESULTS_STATUSES, expected_by__lte=now)
        .select_related("reference_lab", "order__test", "order__handoff__patient", "order__handoff__ordering_clinician")
        .annotate(total=Window(Count("pk")))
        .order_by("expected_by", "id")[:BOARD_SHOWN]
    )
    return Overdue(send_outs, getattr(send_outs[0], "total", 0) if send_outs else 0)
