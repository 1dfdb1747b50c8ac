"""State changes of lab test orders, and collecting the specimens they need.

Each change goes through backoffice.transitions with the TEST_ORDER table. Collection is composed
here, on lab's floor: lab knows which tests share a container, specimens labels and tracks the
containers. When a specimen moves, specimens tells lab through the listener lab registers at start-up
(LabConfig.ready), inside the specimen's own transaction.
"""

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from backoffice.models import Handoff, HandoffEvent, User
from backoffice.services import handoff_lock_for_items, require_works_handoff
from backoffice.transitions import edit, lock, move, record, record_all, require
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import RecollectionCall, RecollectionCallEvent, SendOut, TestDefinition, TestOrder, TestOrderEvent
from lab.selectors import TESTS_SEPARATOR, DrawItem, draws_for_handoff, left_behind_by_handoff, pending_bench_orders
from lab.sendouts.services import send_out_cancel_with_handoff, send_out_open
from lab.workflow import CALL, OPEN_SEND_OUT_STATUSES, TEST_ORDER, CallKind, CallStatus, CancelReason, TestOrderStatus
from specimens.hooks import SpecimenListener
from specimens.models import Specimen
from specimens.services import Draw, specimens_start_collection
from specimens.workflow import SpecimenStatus

Action = TestOrderEvent.Action
S = TestOrderStatus


def test_orders_add(*, handoff: Handoff, tests: Sequence[TestDefinition], by: User) -> list[TestOrder]:
    """Order catalog tests on an open handoff; the handoff is locked and records what was ordered."""
    if not tests:
        return []
    inactive = [t.name for t in tests if not t.is_active]
    if inactive:
        raise TransitionNotAllowed(f"No longer offered: {', '.join(inactive)}.")
    with transaction.atomic():
        handoff_lock_for_items(handoff=handoff, by=by, items="Lab tests: " + ", ".join(t.short_name for t in tests))
        orders = TestOrder.objects.bulk_create([TestOrder(handoff=handoff, test=t, created_by=by) for t in tests])
        record_all(orders, by=by, action=Action.ORDERED, created=True)
    return orders


def check_cancel(order: TestOrder, by: User) -> None:
    """Who may cancel a test: the MA working the handoff, its ordering clinician, or a supervisor."""
    require(by, "lab.cancel_testorder", "cancel lab tests")
    handoff = order.handoff
    if not (handoff.ordering_clinician_id == by.pk or by.has_perm("backoffice.view_board")):
        require_works_handoff(handoff, by)
    if order.status != S.ORDERED:
        # Once drawn, the specimen is the lab's: it is rejected, or its test resulted, not cancelled here.
        raise TransitionNotAllowed(
            f"{order.test.short_name} is {TEST_ORDER.name(order.status)}; it can't be cancelled."
        )
    if order.specimen_id is not None:
        # Its tube is labelled and waits at the bedside: record that draw first, so no label is left over.
        raise TransitionNotAllowed(
            f"{order.test.short_name} has a labelled tube waiting; record it as not collected first."
        )
    TEST_ORDER.check(order.status, S.CANCELLED)


def test_order_cancel(*, order: TestOrder, reason: str, by: User, note: str = "") -> TestOrder:
    """Cancel a test that won't be collected (the patient refused, the draw failed, ordered in error).

    The ordering clinician is told: the test waits on their list until they acknowledge it, unless
    they cancelled it themselves. The handoff records it and, if nothing else is open, can complete.
    """
    if reason not in CancelReason.values:
        raise TransitionNotAllowed("Choose why the test is cancelled.")
    note = " ".join(note.split())
    if reason == CancelReason.OTHER and not note:
        raise TransitionNotAllowed("Say why the test is cancelled.")
    require(by, "lab.cancel_testorder", "cancel lab tests")
    with transaction.atomic():
        handoff = lock(Handoff(pk=order.handoff_id), related=("patient",))
        lock(order, related=("test",))
        order.handoff = handoff
        check_cancel(order, by)
        why = CancelReason(reason).label + (f": {note}" if note else "")
        order.cancel_reason, order.cancel_note, order.cancelled_by = reason, note[:300], by
        order.needs_recollection = False
        fields: list[str] = ["cancel_reason", "cancel_note", "cancelled_by", "needs_recollection"]
        if handoff.ordering_clinician_id == by.pk:
            order.acknowledged_at, order.acknowledged_by = timezone.now(), by
            fields += ["acknowledged_at", "acknowledged_by"]
        move(order, table=TEST_ORDER, to=S.CANCELLED, by=by, action=Action.CANCELLED, note=why, fields=fields)
        edit(
            handoff,
            by=by,
            action=HandoffEvent.Action.ITEMS_CANCELLED,
            note=f"Lab test {order.test.short_name} cancelled: {why}",
            fields=(),
        )
    return order


# A test in one of these (on the bench) refuses its handoff's cancel: its result is entered or its
# specimen rejected first. The cancel's handler and the page's question both read this.
CANCEL_REFUSING_STATUSES = (S.IN_PROGRESS,)


def _cancel_refusals(on_bench: Sequence[str]) -> list[str]:
    """Why the handoff's cancel is refused, given the short names of its tests in CANCEL_REFUSING_STATUSES."""
    if not on_bench:
        return []
    one = len(on_bench) == 1
    return [
        f"{', '.join(on_bench)} {'is' if one else 'are'} being tested at the bench; enter "
        f"{'its result' if one else 'their results'} or reject the specimen before cancelling the handoff."
    ]


def tests_cancel_blockers(handoff: Handoff) -> list[str]:
    """Why tests_close_for_cancel would refuse now (hooks.handoff_cancel_blockers): one query."""
    on_bench = (
        TestOrder.objects.filter(handoff=handoff, status__in=CANCEL_REFUSING_STATUSES)
        .order_by("id")
        .values_list("test__short_name", flat=True)
    )
    return _cancel_refusals(list(on_bench))


def tests_close_for_cancel(handoff: Handoff, by: User, reason: str) -> None:
    """The handoff is being cancelled (handoff_cancel checked who may, and holds its lock): its tests
    not yet on the bench are cancelled, in that transaction, and its open send-outs with them (the
    reference lab is sent ORC-1 CA if it may have the order). The ordering clinician sees them on
    their list unless they cancelled. A test the bench has started refuses the cancel
    (CANCEL_REFUSING_STATUSES).
    """
    orders = list(
        TestOrder.objects.select_for_update(of=("self",), no_key=True)
        .filter(handoff=handoff, status__in=(S.ORDERED, S.COLLECTED, *CANCEL_REFUSING_STATUSES, S.SENT_OUT))
        .select_related("test")
        .order_by("id")
    )
    refusals = _cancel_refusals([o.test.short_name for o in orders if o.status in CANCEL_REFUSING_STATUSES])
    if refusals:
        raise TransitionNotAllowed(" ".join(refusals))
    labelled = [o.test.short_name for o in orders if o.status == S.ORDERED and o.specimen_id is not None]
    if labelled:  # specimens' handler runs first and releases them: this is a floor out of order
        raise TransitionNotAllowed(f"{', '.join(labelled)} still has a labelled tube; record it as not collected.")
    send_outs = {
        so.order_id: so
        for so in SendOut.objects.filter(order__in=orders, status__in=OPEN_SEND_OUT_STATUSES).order_by("id")
    }
    note = f"Handoff cancelled: {reason}"[:300]
    for order in orders:
        order.handoff = handoff
        if order.pk in send_outs:
            send_out_cancel_with_handoff(send_out=send_outs[order.pk], order=order, by=by, reason=reason)
            continue
        order.cancel_reason, order.cancel_note, order.cancelled_by = CancelReason.OTHER, note, by
        order.needs_recollection = False
        fields: list[str] = ["cancel_reason", "cancel_note", "cancelled_by", "needs_recollection"]
        if handoff.ordering_clinician_id == by.pk:
            order.acknowledged_at, order.acknowledged_by = timezone.now(), by
            fields += ["acknowledged_at", "acknowledged_by"]
        move(order, table=TEST_ORDER, to=S.CANCELLED, by=by, action=Action.CANCELLED, note=note, fields=fields)


def check_acknowledge(order: TestOrder, by: User) -> None:
    """The ordering clinician (or a supervisor, for one who is away) acknowledges a cancelled test."""
    require(by, "lab.cancel_testorder", "acknowledge cancelled tests")
    if order.handoff.ordering_clinician_id != by.pk and not by.has_perm("backoffice.view_board"):
        raise PermissionRefused(
            f"This test was ordered by {order.handoff.ordering_clinician}; only they or a supervisor acknowledge it."
        )
    if order.status != S.CANCELLED or order.acknowledged_at is not None:
        raise TransitionNotAllowed(f"{order.test.short_name} has no cancellation waiting to be seen.")


def test_order_acknowledge(*, order: TestOrder, by: User) -> TestOrder:
    """The ordering clinician has seen that the test won't be done."""
    with transaction.atomic():
        lock(order, related=("test", "handoff__ordering_clinician"))
        check_acknowledge(order, by)
        order.acknowledged_at, order.acknowledged_by = timezone.now(), by
        edit(order, by=by, action=Action.ACKNOWLEDGED, fields=("acknowledged_at", "acknowledged_by"))
    return order


def tests_start_collection(*, handoff: Handoff, by: User) -> list[Specimen]:
    """Label one container per specimen type and container the handoff's tests still need, in order of draw.

    Tests sharing a container share one specimen (CBC and HbA1c: one EDTA tube). Each test then
    points at the specimen that serves it; it counts as collected once the bedside check passes.
    """
    with transaction.atomic():
        lock(handoff)
        draws = draws_for_handoff(handoff)
        specimens = specimens_start_collection(
            handoff=handoff,
            draws=[
                Draw(
                    specimen_type=d.specimen_type,
                    container=d.container,
                    tests_label=d.tests_label,
                    recollection_of=_rejected_before(handoff, d) if d.needs_recollection else None,
                )
                for d in draws
            ],
            by=by,
        )
        for draw, specimen in zip(draws, specimens, strict=True):
            # Only the link is new: the test stays "ordered" until its specimen is collected.
            TestOrder.objects.filter(pk__in=[o.pk for o in draw.orders]).update(specimen=specimen)
            record_all(draw.orders, by=by, action=Action.LABELLED, note=f"Specimen {specimen.accession}")
    return specimens


def _rejected_before(handoff: Handoff, draw: DrawItem) -> Specimen | None:
    """The rejected specimen a recollection replaces: the latest of its kind on this handoff."""
    return (
        Specimen.objects.filter(
            handoff=handoff,
            specimen_type=draw.specimen_type,
            container=draw.container,
            status=SpecimenStatus.REJECTED,
        )
        .order_by("-rejected_at")
        .first()
    )


def _orders_of(specimen: Specimen) -> list[TestOrder]:
    return list(TestOrder.objects.select_for_update(no_key=True).filter(specimen=specimen).order_by("id"))


def _collected(specimen: Specimen, by: User) -> None:
    """The specimen is drawn: its tests are collected, and a send-out test joins the send-out desk."""
    for order in _orders_of(specimen):
        order.needs_recollection = False
        move(
            order,
            table=TEST_ORDER,
            to=S.COLLECTED,
            by=by,
            action=Action.COLLECTED,
            note=f"Specimen {specimen.accession}",
            fields=("needs_recollection",),
        )
        send_out_open(order=order, by=by)


def _not_collected(specimen: Specimen, by: User) -> None:
    """The draw failed: the tests keep waiting for a specimen (or are cancelled by the clinician)."""
    orders = _orders_of(specimen)
    TestOrder.objects.filter(pk__in=[o.pk for o in orders]).update(specimen=None)
    record_all(orders, by=by, action=Action.RECOLLECT, note=f"Specimen {specimen.accession} not collected")


def _testing_started(specimen: Specimen, by: User) -> None:
    """The bench started on the specimen: its collected tests are in progress."""
    for order in _orders_of(specimen):
        if order.status == S.COLLECTED:
            move(order, table=TEST_ORDER, to=S.IN_PROGRESS, by=by, action=Action.IN_PROGRESS, note=specimen.accession)


def _testing_pending(specimen: Specimen) -> str | None:
    """In-house tests on the specimen still without released results: it isn't done until they are."""
    waiting = list(pending_bench_orders(specimen.pk).values_list("test__short_name", flat=True).order_by("id"))
    if not waiting:
        return None
    names = ", ".join(waiting)
    return (
        f"{names} {'has' if len(waiting) == 1 else 'have'} no released result yet: "
        "enter it at the bench, or reject the specimen."
    )


def _rejected(specimen: Specimen, by: User) -> None:
    """The specimen can't be tested: each of its tests goes back to be collected again, first in line.

    The handoff records it (a new version, so the queue and board re-render its row with the
    "Recollect" item at once) when the patient is still in the back office's hands.
    """
    reason = specimen.rejection_reason
    handoff = lock(Handoff(pk=specimen.handoff_id), related=("patient",))
    orders = _orders_of(specimen)
    tests = ", ".join(
        o.test.short_name for o in TestOrder.objects.filter(pk__in=[o.pk for o in orders]).select_related("test")
    )
    if handoff.is_open:
        edit(
            handoff,
            by=by,
            action=HandoffEvent.Action.RECOLLECT,
            note=f"{specimen.accession} ({tests}): {reason}",
            fields=(),
        )
    else:
        # The patient has left: the ordering clinician calls them back to have it drawn again.
        call = RecollectionCall.objects.create(
            handoff=handoff,
            patient_id=handoff.patient_id,
            specimen=specimen,
            clinician_id=handoff.ordering_clinician_id,
            tests_label=tests[:120],
            reason=f"{specimen.accession} {specimen.container}: {reason}"
            + (f" ({specimen.rejection_note})" if specimen.rejection_note else ""),
        )
        record(call, by=by, action=RecollectionCallEvent.Action.OPENED, note=call.reason, created=True)
    for order in orders:
        order.needs_recollection = True
        order.specimen = None
        fields = ("needs_recollection", "specimen")
        note = f"Specimen {specimen.accession} rejected: {reason}"
        move(order, table=TEST_ORDER, to=S.ORDERED, by=by, action=Action.RECOLLECT, note=note, fields=fields)


def tests_patient_left(handoff: Handoff, by: User) -> None:
    """The patient has left (hooks.patient_left, in the handoff's transaction, under its lock): each tube
    whose in-house tests are still running becomes a "call the patient with the result", each rejected
    tube still to be drawn again a call-back, both on the ordering clinician's follow-ups. The tests
    themselves go on as they were: the bench still results them, a recollection is still to collect."""
    behind = left_behind_by_handoff([handoff.pk]).get(handoff.pk)
    if behind is None:
        return
    left = [
        (tube, orders, CallKind.RESULT, f"Left before the result ({tube.accession} {tube.container})")
        for tube, orders in behind.results
    ] + [
        (
            tube,
            orders,
            CallKind.RECOLLECT,
            f"Left before the new draw; {tube.accession} {tube.container}: {tube.rejection_reason}",
        )
        for tube, orders in behind.recollections
    ]
    calls = [
        RecollectionCall(
            handoff=handoff,
            patient_id=handoff.patient_id,
            specimen=tube,
            kind=kind,
            clinician_id=handoff.ordering_clinician_id,
            tests_label=TESTS_SEPARATOR.join(o.test.short_name for o in orders)[:120],
            reason=reason[:400],
        )
        for tube, orders, kind, reason in left
    ]
    RecollectionCall.objects.bulk_create(calls)
    record_all(calls, by=by, action=RecollectionCallEvent.Action.OPENED, note=lambda c: c.reason, created=True)


def check_close_call(call: RecollectionCall, by: User) -> None:
    """The ordering clinician records the call; a supervisor may, for a clinician who is away."""
    require(by, "lab.close_recollectioncall", "record call-backs")
    if call.clinician_id != by.pk and not by.has_perm("backoffice.view_board"):
        raise PermissionRefused(f"This call-back is {call.clinician}'s; only they or a supervisor can record it.")
    CALL.check(call.status, CallStatus.DONE)


def recollection_call_close(*, call: RecollectionCall, by: User, outcome: str) -> RecollectionCall:
    """Record that the patient was called back (and what they said) for their recollection."""
    outcome = outcome.strip()
    if not outcome:
        raise TransitionNotAllowed('Say what came of the call, e.g. "Coming back Thursday at 9".')
    require(by, "lab.close_recollectioncall", "record call-backs")
    with transaction.atomic():
        lock(call)
        check_close_call(call, by)
        call.outcome = outcome[:300]
        move(
            call,
            table=CALL,
            to=CallStatus.DONE,
            by=by,
            action=RecollectionCallEvent.Action.CALLED,
            note=outcome,
            fields=("outcome",),
        )
    return call


SPECIMEN_LISTENER = SpecimenListener(
    collected=_collected,
    not_collected=_not_collected,
    rejected=_rejected,
    testing_started=_testing_started,
    testing_pending=_testing_pending,
)
