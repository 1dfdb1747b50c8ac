"""Send-outs from collection on: a placer order number, the reference lab and its test code; the
ask-at-order-entry answers, cancelling at the desk, sending a failed order message again, and the
overdue flag. Shipments (packing, printing, dispatch) are in lab.sendouts.shipments.

Each function runs inside the caller's transaction or opens its own, locks what it changes, checks
the SEND_OUT table and appends the event (backoffice.transitions). Each ``check_*`` guard is what
the desk's pages ask too (lab.sendouts.selectors), so a page offers exactly what the service accepts.
"""

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import connection, transaction
from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import edit, lock, move, record, require
from backoffice.workflow import TransitionNotAllowed
from lab.models import (
    AskAtOrderEntry,
    Orderable,
    OutboundMessage,
    SendOut,
    SendOutEvent,
    TestDefinition,
    TestOrder,
    TestOrderEvent,
)
from lab.workflow import (
    DELIVERED_MESSAGE_STATUSES,
    SEND_OUT,
    TEST_ORDER,
    UNSENT_MESSAGE_STATUSES,
    CancelReason,
    MessageStatus,
    SendOutStatus,
    TestOrderStatus,
)

# Sent and not final yet: tracked against expected-by.
AWAITING_RESULTS_STATUSES: tuple[str, ...] = (SendOutStatus.SENT, SendOutStatus.PRELIMINARY)

# Placer order numbers are text: eight digits, zero-padded, never reused (a database sequence).
PLACER_DIGITS = 8


def next_placer_number() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('lab_placer_number_seq')")
        (number,) = cursor.fetchone()
    return f"{number:0{PLACER_DIGITS}d}"


def default_orderable(test: TestDefinition) -> Orderable | None:
    """The reference lab a send-out test goes to: its default orderable at an active lab."""
    return (
        Orderable.objects.filter(test=test, is_default=True, reference_lab__is_active=True)
        .select_related("reference_lab")
        .first()
    )


def send_out_open(*, order: TestOrder, by: User) -> SendOut | None:
    """Called as a send-out test's specimen is collected (inside that transaction): it joins the desk.

    The order keeps the send-out it had if its first specimen was rejected and it is collected again:
    one placer number per order. Without a reference lab set up for the test, the order says so and
    no send-out is opened (the desk lists it as needing a lab).
    """
    assert transaction.get_connection().in_atomic_block, "called inside the collection's transaction"
    if order.test.performed != TestDefinition.Performed.SEND_OUT:
        return None
    existing = SendOut.objects.filter(order=order).first()
    if existing is not None:
        return existing
    orderable = default_orderable(order.test)
    if orderable is None:
        record(
            order,
            by=by,
            action=TestOrderEvent.Action.COLLECTED,
            note=f"No reference lab is set up for {order.test.short_name}: add one in admin (Orderables).",
        )
        return None
    send_out = SendOut.objects.create(
        order=order,
        reference_lab=orderable.reference_lab,
        orderable=orderable,
        placer_number=next_placer_number(),
        status=SendOutStatus.WAITING,
    )
    record(
        send_out,
        by=by,
        action=SendOutEvent.Action.CREATED,
        created=True,
        note=f"Placer {send_out.placer_number} · {orderable.lab_code} at {orderable.reference_lab}",
    )
    return send_out


# --- Ask-at-order-entry answers -----------------------------------------------------------------

DESK_PERM = "lab.run_send_out_desk"
# Answers can change until the order leaves: after that the lab has what was sent.
ANSWERABLE_STATUSES: tuple[str, ...] = (SendOutStatus.WAITING, SendOutStatus.PACKED)


def require_desk(by: User, doing: str) -> None:
    require(by, DESK_PERM, doing)


def questions_of(send_out: SendOut) -> list[AskAtOrderEntry]:
    """The lab's questions for this test, in order (prefetched by the desk's selectors)."""
    return sorted(send_out.orderable.questions.all(), key=lambda q: (q.position, q.pk))


def answer_text(question: AskAtOrderEntry, value: str) -> str:
    """An answer as a person reads it: a coded one by its text ("Yes"), others as typed."""
    if question.value_type == AskAtOrderEntry.ValueType.CODED:
        return next((text for code, text, _ in question.choices if code == value), value)
    return value


def missing_answers(send_out: SendOut) -> list[AskAtOrderEntry]:
    """Required questions without an answer: the order can't leave without them."""
    answers = send_out.answers or {}
    return [q for q in questions_of(send_out) if q.required and not str(answers.get(q.loinc_code, "")).strip()]


def _checked_answer(question: AskAtOrderEntry, raw: str) -> str:
    value = " ".join(str(raw).split())
    if not value:
        return ""
    if question.value_type == AskAtOrderEntry.ValueType.CODED:
        codes = [code for code, _, _ in question.choices]
        if value not in codes:
            raise TransitionNotAllowed(
                f"{question.question}: choose one of {', '.join(t for _, t, _ in question.choices)}."
            )
    elif question.value_type == AskAtOrderEntry.ValueType.NUMBER:
        try:
            Decimal(value)
        except InvalidOperation:
            raise TransitionNotAllowed(f"{question.question}: give a number, e.g. 12.") from None
        if not Decimal(value).is_finite():
            raise TransitionNotAllowed(f"{question.question}: give a number, e.g. 12.")
    elif len(value) > 120:
        raise TransitionNotAllowed(f"{question.question}: keep the answer under 120 characters.")
    return value


def check_answer(send_out: SendOut, by: User) -> None:
    require_desk(by, "answer a lab's questions")
    if send_out.status not in ANSWERABLE_STATUSES:
        raise TransitionNotAllowed(
            f"This send-out is {SEND_OUT.name(send_out.status)}; the lab has the answers it was sent with."
        )
    if not send_out.orderable.questions.exists():
        raise TransitionNotAllowed(
            f"{send_out.orderable.reference_lab} asks nothing for {send_out.orderable.lab_name}."
        )


def send_out_answer(*, send_out: SendOut, answers: Mapping[str, str], by: User) -> SendOut:
    """Record the ask-at-order-entry answers (by the question's LOINC); they go with the order as OBX rows.

    Every answer is checked before anything is saved; an empty one clears it. One event names what changed.
    """
    with transaction.atomic():
        lock(send_out, related=("orderable__reference_lab",))
        check_answer(send_out, by)
        questions = {q.loinc_code: q for q in questions_of(send_out)}
        unknown = sorted(set(answers) - set(questions))
        if unknown:
            raise TransitionNotAllowed(f"{send_out.orderable.reference_lab} doesn't ask {', '.join(unknown)}.")
        stored = dict(send_out.answers or {})
        said = []
        for code, raw in answers.items():
            question = questions[code]
            value = _checked_answer(question, raw)
            if value == stored.get(code, ""):
                continue
            if value:
                stored[code] = value
                said.append(f"{question.question}: {answer_text(question, value)}")
            else:
                stored.pop(code, None)
                said.append(f"{question.question}: cleared")
        if not said:
            return send_out  # nothing changed: no event
        send_out.answers = stored
        edit(send_out, by=by, action=SendOutEvent.Action.ANSWERED, fields=("answers",), note="; ".join(said))
    return send_out


# --- Cancelling at the desk ------------------------------------------------------------------------

CANCELLABLE_STATUSES: tuple[str, ...] = (
    SendOutStatus.WAITING,
    SendOutStatus.PACKED,
    SendOutStatus.SENT,
    SendOutStatus.PRELIMINARY,
)


def check_cancel(send_out: SendOut, by: User) -> None:
    """The desk cancels a send-out not yet final (the clinician cancelled it, the lab can't run it)."""
    require_desk(by, "cancel send-outs")
    SEND_OUT.check(send_out.status, SendOutStatus.CANCELLED)


def send_out_cancel(*, send_out: SendOut, reason: str, by: User, note: str = "") -> SendOut:
    """Cancel a send-out: out of its shipment if packed, its test cancelled (the clinician is told), and
    the lab told with an ORM ORC-1 CA if it may have the order already.

    An order message not yet tried is withdrawn instead (nothing reached the lab); one that was tried,
    even without an acknowledgement, may have arrived, so the cancel is sent after it. A sent one
    without any order message of ours (brought over from a previous system) is cancelled at the lab too.
    """
    if reason not in CancelReason.values:
        raise TransitionNotAllowed("Choose why the send-out is cancelled.")
    note = " ".join(note.split())
    if reason == CancelReason.OTHER and not note:
        raise TransitionNotAllowed("Say why the send-out is cancelled.")
    require_desk(by, "cancel send-outs")
    with transaction.atomic():
        lock(send_out, related=("order__test", "order__handoff", "shipment", "reference_lab"))
        check_cancel(send_out, by)
        order = lock(send_out.order, related=("test", "handoff"))
        _cancel(send_out, order, reason=reason, note=note, by=by)
    return send_out


def send_out_cancel_with_handoff(*, send_out: SendOut, order: TestOrder, by: User, reason: str) -> SendOut:
    """The send-out's handoff is being cancelled (handoff_cancel checked who may; the caller holds the
    test order's lock): cancelled as the desk would, the lab told with ORC-1 CA if it may have it."""
    assert transaction.get_connection().in_atomic_block, "called inside the handoff's cancel"
    lock(send_out, related=("shipment", "reference_lab"))
    SEND_OUT.check(send_out.status, SendOutStatus.CANCELLED)
    _cancel(send_out, order, reason=CancelReason.OTHER, note=f"Handoff cancelled: {reason}", by=by)
    return send_out


def _cancel(send_out: SendOut, order: TestOrder, *, reason: str, note: str, by: User) -> None:
    """Cancel a locked send-out and its locked test order, telling the lab if it may have the order."""
    from lab.sendouts.ordering import queue_message

    why = CancelReason(reason).label + (f": {note}" if note else "")
    was_sent = send_out.status in (SendOutStatus.SENT, SendOutStatus.PRELIMINARY)
    orders = list(
        OutboundMessage.objects.select_for_update(of=("self",)).filter(send_out=send_out, kind=OutboundMessage.Kind.NEW)
    )
    # Sent with no order message of ours: it came over from the clinic's previous system, so the
    # lab has it.
    tried = was_sent and not orders
    for message in orders:
        # Tried at all, it may have arrived (a timeout can follow a delivery): the cancel follows it.
        tried = tried or message.attempts > 0 or message.status in DELIVERED_MESSAGE_STATUSES
        if message.status in (*UNSENT_MESSAGE_STATUSES, MessageStatus.GAVE_UP):
            message.status, message.next_attempt_at = MessageStatus.WITHDRAWN, None
            message.save(update_fields=["status", "next_attempt_at"])
    told = ""
    if tried:
        cancel = queue_message(send_out, kind=OutboundMessage.Kind.CANCEL)
        told = f"; the lab is told (ORM CA {cancel.control_id})"
    fields: list[str] = []
    if send_out.status == SendOutStatus.PACKED:
        send_out.shipment = None
        fields.append("shipment")
    move(
        send_out,
        table=SEND_OUT,
        to=SendOutStatus.CANCELLED,
        by=by,
        action=SendOutEvent.Action.CANCELLED,
        note=why + told,
        fields=fields,
    )
    order.cancel_reason, order.cancel_note, order.cancelled_by = reason, note[:300], by
    order_fields = ["cancel_reason", "cancel_note", "cancelled_by"]
    if order.handoff.ordering_clinician_id == by.pk:
        order.acknowledged_at, order.acknowledged_by = timezone.now(), by
        order_fields += ["acknowledged_at", "acknowledged_by"]
    move(
        order,
        table=TEST_ORDER,
        to=TestOrderStatus.CANCELLED,
        by=by,
        action=TestOrderEvent.Action.CANCELLED,
        note=f"Send-out {send_out.placer_number} cancelled: {why}",
        fields=order_fields,
    )


# --- Order messages: sending again by hand ------------------------------------------------------------

RETRYABLE_STATUSES: tuple[str, ...] = (MessageStatus.RETRYING, MessageStatus.GAVE_UP)


def check_retry(message: OutboundMessage, by: User) -> None:
    require_desk(by, "send order messages")
    if message.status not in RETRYABLE_STATUSES:
        raise TransitionNotAllowed(
            f"This order message is {MessageStatus(message.status).label.lower()}; only a failed one is sent again."
        )


def message_retry(*, message: OutboundMessage, by: User) -> OutboundMessage:
    """Send a failed order message again now (the lab's interface is back): the worker picks it up at once.

    One that gave up gets a fresh round of attempts; the event says how many failed before.
    """
    from lab.sendouts.tasks import enqueue_send

    with transaction.atomic():
        lock(message)
        check_retry(message, by)
        send_out = lock(message.send_out)
        before = f"after {message.attempts} failed attempt{'s' if message.attempts != 1 else ''}"
        last = f" (last: {message.last_error})" if message.last_error else ""
        if message.status == MessageStatus.GAVE_UP:
            message.attempts = 0
        message.status, message.next_attempt_at = MessageStatus.RETRYING, timezone.now()
        message.save(update_fields=["status", "attempts", "next_attempt_at"])
        record(
            send_out,
            by=by,
            action=SendOutEvent.Action.RETRIED,
            note=f"ORM {message.kind} {message.control_id} sent again {before}{last}",
        )
        enqueue_send(message)
    return message


# --- Overdue ------------------------------------------------------------------------------------------


def send_outs_flag_overdue(now: datetime | None = None) -> int:
    """Flag send-outs still without final results past their expected-by time; return how many were flagged.

    ``overdue_since`` is when the time passed; one OVERDUE event by the system user names whom to call.
    The desk and the supervisor board list them until the results are final or the send-out is
    cancelled. Rows are taken FOR UPDATE SKIP LOCKED, so any number of workers can run this and none
    waits behind the desk working a row.
    """
    from backoffice.services import system_user

    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            SendOut.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status__in=AWAITING_RESULTS_STATUSES, overdue_since__isnull=True, expected_by__lte=now)
            .select_related("reference_lab", "orderable")
            .order_by("expected_by", "id")
        )
        if not due:
            return 0
        system = system_user()
        for send_out in due:
            lab = send_out.reference_lab
            expected = timezone.localtime(send_out.expected_by)
            send_out.overdue_since = send_out.expected_by
            call = f"; call {lab}" + (f" at {lab.phone}" if lab.phone else "")
            edit(
                send_out,
                by=system,
                action=SendOutEvent.Action.OVERDUE,
                fields=("overdue_since",),
                note=f"No final results from {lab} for {send_out.orderable.lab_name}, expected by "
                f"{expected:%m/%d %H:%M}{call}. On the supervisor board until final.",
            )
    return len(due)
