"""The intake files a file's messages together: a few statements per piece of CHUNK messages, not
twenty per message, with the same outcome for each message as alone (lab.sendouts.intake)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import signals
from django.test.utils import CaptureQueriesContext

from backoffice import bulk
from backoffice.devtools.oru import Obs, oru_for
from backoffice.models import Patient
from backoffice.transitions import Batch
from backoffice.workflow import TransitionNotAllowed
from lab.models import Analyte, InboundMessage, InboundMessageEvent, Result, ResultEvent, SendOut, SendOutEvent
from lab.sendouts import intake as intake_module
from lab.sendouts.carried_over import open_send_outs_import
from lab.sendouts.intake import CHUNK, receive
from lab.workflow import SEND_OUT, IntakeChannel, IntakeOutcome, ResultStatus, SendOutStatus, TestOrderStatus
from tests.lab.hl7.intake_helpers import corpus_labs, csv_text, desk_user, order_row

pytestmark = pytest.mark.django_db
IO = IntakeOutcome

TSH = Obs(value_type="NM", loinc="3016-3", name="TSH", value="2.10", unit="m[IU]/L", range="0.45-4.50")


def open_tsh_orders(count: int, *, start: int = 0) -> list[SendOut]:
    """``count`` open TSH send-outs to Acme for Daniel Nowak's twin orders, imported as a clinic does."""
    corpus_labs()
    rows = []
    for n in range(start, start + count):
        row = order_row("ORD-2026-000050")
        row["placer_number"], row["accession"] = f"BATCH-{n:05d}", f"SB{n:07d}"
        rows.append(row)
    open_send_outs_import(text=csv_text(rows), by=desk_user(), source="batch.csv")
    placers = [f"BATCH-{n:05d}" for n in range(start, start + count)]
    found = SendOut.objects.filter(placer_number__in=placers).select_related(
        "order__specimen", "order__handoff__patient", "order__test", "reference_lab"
    )
    return sorted(found, key=lambda s: s.placer_number)


def results_file(send_outs: list[SendOut], *, tag: str = "B") -> bytes:
    return "".join(
        oru_for(s, observations=[TSH], status="F", control_id=f"{tag}{n:06d}") for n, s in enumerate(send_outs)
    ).encode()


def test_a_file_is_filed_in_the_same_few_statements_however_many_messages_it_holds() -> None:
    few, many = open_tsh_orders(10), open_tsh_orders(60, start=10)
    few_file, many_file = results_file(few, tag="S"), results_file(many, tag="L")
    with CaptureQueriesContext(connection) as small:
        receive(few_file, channel=IntakeChannel.FILE, source="few.hl7")
    with CaptureQueriesContext(connection) as large:
        received = receive(many_file, channel=IntakeChannel.FILE, source="many.hl7")
    assert [r.message.outcome for r in received] == [IO.MATCHED] * 60
    # Six times the messages, a handful more statements at most (the COPYs' id draws above 50 rows);
    # one at a time this was 21 statements a message.
    assert len(large.captured_queries) <= len(small.captured_queries) + 6
    assert len(large.captured_queries) < 40
    for s in many:
        s.refresh_from_db()
        s.order.refresh_from_db()
        assert (s.status, s.order.status) == (SendOutStatus.FINAL, TestOrderStatus.RESULTED)
        assert list(s.events.values_list("action", flat=True))[-1] == SendOutEvent.Action.FINAL
    filed = Result.objects.filter(order__send_out__in=many)
    assert filed.count() == 60 and {r.value_numeric for r in filed} == {Decimal("2.10")}
    assert ResultEvent.objects.filter(result__in=filed, action=ResultEvent.Action.REPORTED).count() == 60
    actions = InboundMessageEvent.objects.filter(message__source="many.hl7").values_list("action", flat=True)
    assert sorted(actions) == sorted([InboundMessageEvent.Action.RECEIVED, InboundMessageEvent.Action.FILED] * 60)


def test_a_file_longer_than_a_piece_is_filed_in_pieces_in_file_order() -> None:
    send_outs = open_tsh_orders(CHUNK + 3)
    received = receive(results_file(send_outs), channel=IntakeChannel.FILE, source="long.hl7")
    assert len(received) == CHUNK + 3 and {r.message.outcome for r in received} == {IO.MATCHED}
    stored = list(InboundMessage.objects.filter(source="long.hl7").order_by("id").values_list("control_id", flat=True))
    assert stored == [f"B{n:06d}" for n in range(CHUNK + 3)]


def test_one_message_failing_among_many_leaves_it_stored_with_the_error_and_files_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    send_outs = open_tsh_orders(5)
    real = intake_module.file_order_group

    def broken_for_the_third(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs["send_out"].placer_number == "BATCH-00002":
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr("lab.sendouts.intake.file_order_group", broken_for_the_third)
    received = receive(results_file(send_outs), channel=IntakeChannel.FILE, source="five.hl7")
    outcomes = [InboundMessage.objects.get(pk=r.message.pk).outcome for r in received]
    assert outcomes == [IO.MATCHED, IO.MATCHED, IO.RECEIVED, IO.MATCHED, IO.MATCHED]
    assert received[2].message.detail == "Stored, not filed: RuntimeError: disk full"
    assert Result.objects.filter(order__send_out__in=send_outs).count() == 4
    assert SendOut.objects.get(placer_number="BATCH-00002").status == SendOutStatus.SENT


def test_a_second_report_for_the_same_order_in_one_file_is_filed_after_the_first() -> None:
    [send_out] = open_tsh_orders(1)
    preliminary = oru_for(send_out, observations=[TSH], status="P", control_id="P1")
    changed = Obs(value_type="NM", loinc="3016-3", name="TSH", value="2.40", unit="m[IU]/L", range="0.45-4.50")
    final = oru_for(send_out, observations=[changed], status="F", control_id="F1")
    first, second = receive((preliminary + final).encode(), channel=IntakeChannel.FILE, source="two.hl7")
    assert (first.message.outcome, second.message.outcome) == (IO.MATCHED, IO.SUPERSEDED)
    send_out.refresh_from_db()
    assert send_out.status == SendOutStatus.FINAL
    filed = Result.objects.filter(order=send_out.order).order_by("id")
    assert [(r.value_numeric, r.status) for r in filed] == [
        (Decimal("2.10"), ResultStatus.SUPERSEDED),
        (Decimal("2.40"), ResultStatus.RELEASED),
    ]


def test_history_rows_the_intake_writes_say_they_came_from_it() -> None:
    send_outs = open_tsh_orders(3)
    receive(results_file(send_outs), channel=IntakeChannel.FILE, source="history.hl7")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.metadata FROM lab_resulthistory h JOIN pghistory_context c ON c.id = h.pgh_context_id "
            "WHERE h.pgh_label = 'insert' AND h.order_id = ANY(%s)",
            [[s.order_id for s in send_outs]],
        )
        contexts = [json.loads(row[0]) if isinstance(row[0], str) else row[0] for row in cursor.fetchall()]
    assert len(contexts) == 3
    assert {(c["intake"], c["source"]) for c in contexts} == {(IntakeChannel.FILE, "history.hl7")}


# --- The two helpers it is built on ------------------------------------------------------------------------


def test_bulk_insert_copies_many_rows_with_their_ids_bidi_stripped_and_counted() -> None:
    [send_out] = open_tsh_orders(1)
    actor = desk_user()
    events = [
        SendOutEvent(send_out=send_out, actor=actor, action=SendOutEvent.Action.FINAL, note=f"row {n}\u202e")
        for n in range(bulk.COPY_FROM)
    ]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        saved = bulk.insert(events)
    assert len(queries.captured_queries) == 2  # the ids drawn, then the COPY
    assert queries.captured_queries[1]["sql"].startswith('COPY "lab_sendoutevent"')
    assert all(e.pk and not e._state.adding for e in saved)
    stored = dict(SendOutEvent.objects.filter(pk__in=[e.pk for e in saved]).values_list("pk", "note"))
    assert stored == {e.pk: e.note for e in saved} and stored[saved[0].pk] == "row 0"
    # COPY fires the row triggers as an INSERT does: the events stay append-only.
    with pytest.raises(DatabaseError), transaction.atomic():
        SendOutEvent.objects.filter(pk=saved[0].pk).update(note="changed")


def test_bulk_build_makes_the_instance_model_init_makes() -> None:
    [send_out] = open_tsh_orders(1)
    actor, order = desk_user(), send_out.order
    values = {"order": order, "patient_id": order.handoff.patient_id, "specimen": order.specimen}
    values |= {"analyte": Analyte.objects.order_by("pk").first(), "value_text": "2.10", "entered_by": actor}
    built, made = bulk.build(Result, **values), Result(**values)
    fields = Result._meta.concrete_fields
    columns = [f.attname for f in fields if not (f.has_default() and callable(f.default))]
    assert [getattr(built, c) for c in columns] == [getattr(made, c) for c in columns]
    # Callable defaults (a uuid, now) are called for each, as __init__ calls them.
    fresh = [f.attname for f in fields if f.has_default() and callable(f.default)]
    assert "uuid" in fresh and all(getattr(built, c) is not None for c in fresh)
    assert built.uuid != made.uuid and built._state.adding and built.pk is None
    # Related instances given by name are cached, not read again; ids given as ids are kept.
    with CaptureQueriesContext(connection) as queries:
        assert (built.order, built.specimen, built.entered_by) == (order, order.specimen, actor)
    assert not queries.captured_queries
    # A one-to-one's other side is cached too, as the descriptor does.
    previous = Result.objects.create(**values)
    correction = bulk.build(Result, **(values | {"amends": previous}))
    assert (correction.amends_id, previous.amended_by) == (previous.pk, correction)
    with pytest.raises(TypeError, match="unexpected keyword arguments: colour"):
        bulk.build(Result, colour="red")
    # A model something listens to post_init for is made by __init__, so the listener hears of it.
    heard = []

    def listener(sender, instance, **kwargs):  # type: ignore[no-untyped-def]
        heard.append(instance)

    signals.post_init.connect(listener, sender=Result)
    try:
        listened = bulk.build(Result, **values)
    finally:
        signals.post_init.disconnect(listener, sender=Result)
    assert heard == [listened]


def test_bulk_insert_of_a_few_rows_is_one_insert() -> None:
    patient_count = Patient.objects.count()
    [send_out] = open_tsh_orders(1)
    assert Patient.objects.count() >= patient_count
    rows = [SendOutEvent(send_out=send_out, actor=desk_user(), action=SendOutEvent.Action.FINAL) for _ in range(3)]
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        bulk.insert(rows)
    assert len(queries.captured_queries) == 1 and all(r.pk for r in rows)


def test_a_batch_refuses_a_move_before_anything_is_written() -> None:
    first, second = open_tsh_orders(2)
    batch = Batch()
    with transaction.atomic():
        batch.move(first, table=SEND_OUT, to=SendOutStatus.FINAL, by=desk_user(), action=SendOutEvent.Action.FINAL)
        with pytest.raises(TransitionNotAllowed):
            batch.move(second, table=SEND_OUT, to=SendOutStatus.WAITING, by=desk_user(), action="back")
        assert SendOut.objects.get(pk=first.pk).status == SendOutStatus.SENT  # queued, not written
        batch.flush()
    first.refresh_from_db()
    assert first.status == SendOutStatus.FINAL and first.events.last().action == SendOutEvent.Action.FINAL  # type: ignore[union-attr]
