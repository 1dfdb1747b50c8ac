"""Shipments: one courier pickup to one reference lab at one temperature, packed at the send-out desk.

A shipment is created for a lab, a handling class (room temperature, refrigerated, frozen), a
courier and a pickup time; specimens received at the desk whose send-outs go to that lab at that
temperature are packed into it (scanned or picked from the desk), each tube with every send-out it
carries; its manifest and the requisitions are printed; and **dispatch** hands it to the courier:
its specimens are shipped (specimens.services.specimen_ship), their tests are sent out, each
send-out is sent with its expected-by time, and one ORM^O01 per send-out is queued for the worker,
all in one transaction. Nothing leaves with a required question unanswered or an order that can't
be written (an ordering clinician without an NPI): dispatch lists every such problem at once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import lock, move, record, record_all
from backoffice.workflow import TransitionNotAllowed
from lab.models import ReferenceLab, SendOut, SendOutEvent, Shipment, ShipmentEvent, TestOrder, TestOrderEvent
from lab.sendouts.ordering import ORDER_RELATED, OrderNotBuildable, orm_order, queue_message
from lab.sendouts.services import DESK_PERM, missing_answers, require_desk
from lab.workflow import SEND_OUT, SHIPMENT, TEST_ORDER, SendOutStatus, ShipmentStatus, TestOrderStatus
from specimens.models import Specimen
from specimens.services import check_ship, specimen_ship
from specimens.workflow import Handling, Location, SpecimenStatus

# A pickup booked further ahead than this is a typo (a wrong month), not a plan.
LATEST_PICKUP = timedelta(days=14)
EARLIEST_PICKUP = timedelta(hours=12)  # a pickup being recorded after the courier came


def temperature(handling: str) -> str:
    """A handling class inside a sentence: "refrigerated (2 to 8 °C)", the unit's capital kept."""
    label = str(Handling(handling).label)
    return label[:1].lower() + label[1:]


class ShipmentProblems(TransitionNotAllowed):
    """Why a shipment can't be handed over, every reason at once."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("Not ready to hand over: " + " ".join(self.problems))


# --- Creating -------------------------------------------------------------------------------------


def check_create(by: User) -> None:
    require_desk(by, "pack shipments")


def shipment_create(
    *,
    reference_lab: ReferenceLab,
    handling: str,
    courier: str,
    pickup_at: datetime,
    by: User,
    now: datetime | None = None,
) -> Shipment:
    """Open a shipment for a courier pickup; specimens are packed into it next.

    ``now`` is when it is opened (the demo seed's clock; the present otherwise).
    """
    check_create(by)
    courier = " ".join(courier.split())
    if not reference_lab.is_active:
        raise TransitionNotAllowed(f"{reference_lab} is no longer used; choose another lab.")
    if handling not in Handling.values:
        raise TransitionNotAllowed("Choose the temperature: room temperature, refrigerated or frozen.")
    if not courier:
        raise TransitionNotAllowed('Say who picks it up, e.g. "Lab courier, route 12".')
    now = now or timezone.now()
    if pickup_at < now - EARLIEST_PICKUP or pickup_at > now + LATEST_PICKUP:
        raise TransitionNotAllowed("Give the pickup time: today or in the next two weeks.")
    with transaction.atomic():
        shipment = Shipment.objects.create(
            reference_lab=reference_lab,
            handling=handling,
            courier=courier[:80],
            pickup_at=pickup_at,
            created_by=by,
            created_at=now,
            status_changed_at=now,
        )
        record(
            shipment,
            by=by,
            action=ShipmentEvent.Action.CREATED,
            created=True,
            note=f"{reference_lab}, {temperature(handling)}, {courier} at {timezone.localtime(pickup_at):%m/%d %H:%M}",
        )
    return shipment


# --- Packing --------------------------------------------------------------------------------------


def waiting_of(specimen: Specimen) -> list[SendOut]:
    """The send-outs a tube carries that wait at the desk, locked (inside the caller's transaction)."""
    return list(
        SendOut.objects.select_for_update(no_key=True, of=("self",))
        .filter(order__specimen=specimen, status=SendOutStatus.WAITING)
        .select_related("reference_lab", "order__test")
        .order_by("id")
    )


def _where(specimen: Specimen) -> str:
    if specimen.status == SpecimenStatus.RECEIVED and specimen.location == Location.SEND_OUT_DESK:
        return ""
    if specimen.status in (SpecimenStatus.COLLECTED, SpecimenStatus.IN_TRANSIT):
        return f"{specimen.accession} isn't at the desk yet: receive it here first (Specimens)."
    return f"{specimen.accession} is {SpecimenStatus(specimen.status).label.lower()} at the {Location(specimen.location).label.lower()}; only specimens received at the send-out desk are packed."


def check_packing(shipment: Shipment, by: User) -> None:
    """Tubes go in and out of a shipment until it leaves (or is called off)."""
    require_desk(by, "pack shipments")
    if shipment.status != ShipmentStatus.OPEN:
        raise TransitionNotAllowed(f"This shipment is {SHIPMENT.name(shipment.status)}; its contents can't change.")


def check_pack(shipment: Shipment, specimen: Specimen, send_outs: Sequence[SendOut], by: User) -> None:
    """A tube goes in a shipment to the lab all its waiting send-outs go to, at its own temperature."""
    check_packing(shipment, by)
    if not send_outs:
        raise TransitionNotAllowed(f"{specimen.accession} has no send-out waiting at the desk.")
    where = _where(specimen)
    if where:
        raise TransitionNotAllowed(where)
    lab = shipment.reference_lab
    elsewhere = sorted({str(s.reference_lab) for s in send_outs if s.reference_lab_id != shipment.reference_lab_id})
    if elsewhere:
        tests = ", ".join(s.order.test.short_name for s in send_outs)
        raise TransitionNotAllowed(
            f"{specimen.accession} ({tests}) goes to {' and '.join(elsewhere)}, not {lab}: "
            f"pack it in a shipment to {elsewhere[0]}."
        )
    handling = specimen.container.handling
    if handling != shipment.handling:
        raise TransitionNotAllowed(
            f"{specimen.accession} travels {temperature(handling)}; this shipment is "
            f"{temperature(shipment.handling)}: pack it in a {temperature(handling)} shipment."
        )


def shipment_pack(*, shipment: Shipment, specimen: Specimen, by: User) -> list[SendOut]:
    """Pack a tube (scanned, or picked from the desk) with every send-out it carries."""
    with transaction.atomic():
        lock(shipment, related=("reference_lab",))
        lock(specimen, related=("container",))
        send_outs = waiting_of(specimen)
        check_pack(shipment, specimen, send_outs, by)
        for send_out in send_outs:
            send_out.shipment = shipment
            move(
                send_out,
                table=SEND_OUT,
                to=SendOutStatus.PACKED,
                by=by,
                action=SendOutEvent.Action.PACKED,
                note=f"{specimen.accession} in the {temperature(shipment.handling)} shipment for "
                f"{shipment.courier} at {timezone.localtime(shipment.pickup_at):%H:%M}",
                fields=("shipment",),
            )
    return send_outs


def shipment_unpack(*, shipment: Shipment, specimen: Specimen, by: User) -> list[SendOut]:
    """Take a tube back out of an open shipment: its send-outs wait at the desk again."""
    with transaction.atomic():
        lock(shipment)
        check_packing(shipment, by)
        send_outs = list(
            SendOut.objects.select_for_update(no_key=True, of=("self",))
            .filter(shipment=shipment, order__specimen=specimen, status=SendOutStatus.PACKED)
            .order_by("id")
        )
        if not send_outs:
            raise TransitionNotAllowed(f"{specimen.accession} isn't in this shipment.")
        for send_out in send_outs:
            send_out.shipment = None
            move(
                send_out,
                table=SEND_OUT,
                to=SendOutStatus.WAITING,
                by=by,
                action=SendOutEvent.Action.UNPACKED,
                note=f"{specimen.accession} back at the desk",
                fields=("shipment",),
            )
    return send_outs


def packed_in(shipment: Shipment, *, for_update: bool = False) -> list[SendOut]:
    """Its send-outs with everything their order message, requisition and manifest need (two queries)."""
    send_outs = (
        SendOut.objects.filter(shipment=shipment, status=SendOutStatus.PACKED)
        .select_related(*ORDER_RELATED, "order__specimen__container", "order__specimen__patient")
        .prefetch_related("orderable__questions")
        .order_by("order__specimen__accession", "id")
    )
    if for_update:
        send_outs = send_outs.select_for_update(no_key=True, of=("self",))
    return list(send_outs)


# --- Handing over to the courier ----------------------------------------------------------------------


@dataclass(frozen=True)
class Readiness:
    """What stands between a shipment and the courier: nothing, or each problem in words."""

    problems: list[str]

    def __bool__(self) -> bool:
        return not self.problems


def readiness(shipment: Shipment, send_outs: Sequence[SendOut]) -> Readiness:
    """Every reason the packed send-outs can't leave yet, each saying what to do."""
    problems: list[str] = []
    if not send_outs:
        return Readiness(["Pack at least one specimen first."])
    for send_out in send_outs:
        specimen = send_out.order.specimen
        label = f"{specimen.accession if specimen else send_out.placer_number} {send_out.order.test.short_name}"
        missing = missing_answers(send_out)
        if missing:
            problems.append(f"{label}: answer {', '.join(q.question.lower() for q in missing)}.")
        if specimen is not None and _where(specimen):
            problems.append(_where(specimen))
        try:
            orm_order(send_out, describe=False)
        except OrderNotBuildable as exc:
            problems.append(f"{label}: {exc}")
    return Readiness(list(dict.fromkeys(problems)))


def check_dispatch(shipment: Shipment, by: User, send_outs: Sequence[SendOut] | None = None) -> None:
    require_desk(by, "hand shipments to the courier")
    SHIPMENT.check(shipment.status, ShipmentStatus.DISPATCHED)
    ready = readiness(shipment, packed_in(shipment) if send_outs is None else send_outs)
    if not ready:
        raise ShipmentProblems(ready.problems)


def shipment_dispatch(*, shipment: Shipment, by: User, now: datetime | None = None) -> Shipment:
    """Hand the shipment to the courier: everything in it leaves, and one ORM per send-out is queued.

    In one transaction: each tube is shipped, each test sent out, each send-out sent with
    ``expected_by`` = now + the lab's turnaround for the test, each order message written and
    queued, the shipment dispatched. A refusal changes nothing. ``now`` is when it was handed over
    (the demo seed's clock; the present otherwise): sent-at, expected-by and each MSH-7 follow it.
    """
    with transaction.atomic():
        lock(shipment, related=("reference_lab",))
        lab = shipment.reference_lab
        send_outs = packed_in(shipment, for_update=True)
        check_dispatch(shipment, by, send_outs)
        now = now or timezone.now()
        courier = f"{lab} with {shipment.courier}"
        shipped: set[int] = set()
        for send_out in send_outs:
            specimen = send_out.order.specimen
            assert specimen is not None  # readiness checked it
            if specimen.pk not in shipped:
                check_ship(specimen, by)
                specimen_ship(specimen=specimen, by=by, note=f"To {courier}")
                shipped.add(specimen.pk)
            order = lock(TestOrder(pk=send_out.order_id))
            move(
                order,
                table=TEST_ORDER,
                to=TestOrderStatus.SENT_OUT,
                by=by,
                action=TestOrderEvent.Action.SENT_OUT,
                note=f"{send_out.orderable.lab_code} at {lab}, placer {send_out.placer_number}",
            )
            message = queue_message(send_out, kind="NW", now=now)
            send_out.sent_at = now
            send_out.expected_by = now + timedelta(hours=send_out.orderable.expected_hours)
            move(
                send_out,
                table=SEND_OUT,
                to=SendOutStatus.SENT,
                by=by,
                action=SendOutEvent.Action.SENT,
                note=f"With {shipment.courier}; results expected by "
                f"{timezone.localtime(send_out.expected_by):%m/%d %H:%M}; ORM NW {message.control_id} queued",
                fields=("sent_at", "expected_by"),
            )
        shipment.dispatched_at, shipment.dispatched_by = now, by
        move(
            shipment,
            table=SHIPMENT,
            to=ShipmentStatus.DISPATCHED,
            by=by,
            action=ShipmentEvent.Action.DISPATCHED,
            note=f"{len(shipped)} specimen{'s' if len(shipped) != 1 else ''}, {len(send_outs)} order"
            f"{'s' if len(send_outs) != 1 else ''}, to {shipment.courier}",
            fields=("dispatched_at", "dispatched_by"),
        )
    return shipment


def check_cancel_shipment(shipment: Shipment, by: User) -> None:
    require_desk(by, "cancel shipments")
    SHIPMENT.check(shipment.status, ShipmentStatus.CANCELLED)


def shipment_cancel(*, shipment: Shipment, by: User, reason: str) -> Shipment:
    """Call off a pickup before it leaves: everything packed in it waits at the desk again."""
    reason = " ".join(reason.split())
    if not reason:
        raise TransitionNotAllowed('Say why, e.g. "Courier didn\'t come; rebooked for tomorrow".')
    with transaction.atomic():
        lock(shipment)
        check_cancel_shipment(shipment, by)
        for send_out in SendOut.objects.select_for_update(no_key=True, of=("self",)).filter(
            shipment=shipment, status=SendOutStatus.PACKED
        ):
            send_out.shipment = None
            move(
                send_out,
                table=SEND_OUT,
                to=SendOutStatus.WAITING,
                by=by,
                action=SendOutEvent.Action.UNPACKED,
                note=f"Shipment cancelled: {reason}",
                fields=("shipment",),
            )
        move(
            shipment,
            table=SHIPMENT,
            to=ShipmentStatus.CANCELLED,
            by=by,
            action=ShipmentEvent.Action.CANCELLED,
            note=reason,
        )
    return shipment


# --- Prints ---------------------------------------------------------------------------------------------


def check_print(by: User) -> None:
    require_desk(by, "print manifests and requisitions")


def check_print_shipment(shipment: Shipment, by: User) -> None:
    """A manifest and requisitions are printed while packing and after (a copy goes in the box, one stays)."""
    check_print(by)
    if shipment.status == ShipmentStatus.CANCELLED:
        raise TransitionNotAllowed("This shipment was cancelled; there is nothing to print.")


def manifest_printed(*, shipment: Shipment, by: User, specimens: int) -> None:
    """Record that the shipment's manifest was printed."""
    check_print_shipment(shipment, by)
    with transaction.atomic():
        record(
            shipment,
            by=by,
            action=ShipmentEvent.Action.MANIFEST_PRINTED,
            note=f"{specimens} specimen{'s' if specimens != 1 else ''}",
        )


def requisitions_printed(*, send_outs: Sequence[SendOut], by: User) -> None:
    """Record each send-out's requisition print, in one INSERT."""
    check_print(by)
    with transaction.atomic():
        record_all(list(send_outs), by=by, action=SendOutEvent.Action.REQUISITION_PRINTED, note="PDF")


__all__ = [
    "DESK_PERM",
    "Readiness",
    "ShipmentProblems",
    "check_cancel_shipment",
    "check_create",
    "check_dispatch",
    "check_pack",
    "check_packing",
    "check_print",
    "check_print_shipment",
    "manifest_printed",
    "packed_in",
    "readiness",
    "requisitions_printed",
    "shipment_cancel",
    "shipment_create",
    "shipment_dispatch",
    "shipment_pack",
    "shipment_unpack",
    "waiting_of",
]
