"""Send-outs from collection on: a placer order number, the reference lab and its test code.

Each function runs inside the caller's transaction or opens its own, locks what it changes, checks
the SEND_OUT table and appends the event (backoffice.transitions).
"""

from django.db import connection, transaction

from backoffice.models import User
from backoffice.transitions import record
from lab.models import Orderable, SendOut, SendOutEvent, TestDefinition, TestOrder, TestOrderEvent
from lab.workflow import SendOutStatus

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
