"""Sending order messages: to a fake MLLP interface on 127.0.0.1 and to a folder; the ACK stored,
failures retried with capped backoff, given up after the last attempt; and through the worker."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from backoffice import roles
from lab.models import OutboundMessage, ReferenceLab, SendOutEvent
from lab.sendouts import sending, shipments
from lab.sendouts.tasks import send_order_message
from lab.workflow import MessageStatus
from tests.factories import UserFactory
from tests.lab.sendout_helpers import reference_lab
from tests.lab.sendouts.helpers import ack_for, fake_lab, packed, point_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def message() -> OutboundMessage:
    ma, tech = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), UserFactory(role=roles.ROLE_LAB_TECH)
    reference_lab()
    box, _ = packed("TSH", ma=ma, lab_tech=tech)
    shipments.shipment_dispatch(shipment=box, by=tech)
    return OutboundMessage.objects.select_related("send_out__reference_lab").get()


def fresh(message: OutboundMessage) -> OutboundMessage:
    return OutboundMessage.objects.select_related("send_out__reference_lab").get(pk=message.pk)


def pending_runs(message: OutboundMessage) -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(
            task_path=send_order_message.module_path, status=TaskResultStatus.READY, args_kwargs__args=[message.pk]
        ).order_by("run_after")
    )


def refused_port() -> int:
    """A port on 127.0.0.1 nobody listens on (a listener opened and closed again)."""
    with fake_lab() as lab:
        port = lab.port
    return port


def test_backoff_doubles_and_is_capped() -> None:
    assert [sending.backoff(n) for n in range(1, 9)] == [
        timedelta(seconds=30),
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(minutes=8),
        timedelta(minutes=16),
        timedelta(minutes=30),
        timedelta(minutes=30),
    ]


def test_an_aa_is_stored_and_the_send_out_says_so(message: OutboundMessage) -> None:
    with fake_lab() as lab:
        point_at(message.send_out.reference_lab, lab)
        assert sending.transmit(message.pk) == "accepted"
    assert lab.received == [message.text]
    message = fresh(message)
    assert (message.status, message.ack_code, message.attempts) == (MessageStatus.ACCEPTED, "AA", 1)
    assert f"MSA|AA|{message.control_id}" in message.ack_text
    assert message.acked_at is not None and message.next_attempt_at is None
    event = message.send_out.events.latest("id")
    assert (event.action, event.note) == (SendOutEvent.Action.ACKNOWLEDGED, f"ORM NW {message.control_id}: MSA-1 AA")
    assert sending.transmit(message.pk) == "done"  # the retry queued before sending finds nothing to do


def test_an_ae_is_the_labs_refusal_with_its_words_and_is_not_retried(message: OutboundMessage) -> None:
    with fake_lab(lambda text: ack_for(text, "AE", "Unknown test code 004259")) as lab:
        point_at(message.send_out.reference_lab, lab)
        assert sending.transmit(message.pk) == "rejected"
    message = fresh(message)
    assert (message.status, message.ack_code, message.next_attempt_at) == (MessageStatus.REJECTED, "AE", None)
    assert message.last_error == "AE: Unknown test code 004259"
    assert message.send_out.events.latest("id").action == SendOutEvent.Action.REFUSED


def test_a_refused_connection_is_retried_with_backoff_until_it_gives_up(message: OutboundMessage) -> None:
    port = refused_port()
    ReferenceLab.objects.filter(pk=message.send_out.reference_lab_id).update(mllp_port=port)
    now = timezone.now()
    assert sending.transmit(message.pk, now=now) == "retrying"
    message = fresh(message)
    assert (message.status, message.attempts) == (MessageStatus.RETRYING, 1)
    assert message.last_error == f"MLLP connection to 127.0.0.1:{port} refused"
    assert message.next_attempt_at == now + timedelta(seconds=30)
    assert pending_runs(message)[-1].run_after == now + timedelta(seconds=30)
    assert sending.transmit(message.pk, now=now + timedelta(seconds=10)) == "not due"
    at = now
    for attempt in range(2, sending.MAX_ATTEMPTS):
        at = fresh(message).next_attempt_at  # type: ignore[assignment]
        assert sending.transmit(message.pk, now=at) == "retrying"
        assert fresh(message).next_attempt_at == at + sending.backoff(attempt)
    final = fresh(message).next_attempt_at
    assert final is not None
    assert sending.transmit(message.pk, now=final) == "gave up"
    message = fresh(message)
    assert (message.status, message.attempts, message.next_attempt_at) == (
        MessageStatus.GAVE_UP,
        sending.MAX_ATTEMPTS,
        None,
    )
    event = message.send_out.events.latest("id")
    assert event.action == SendOutEvent.Action.GAVE_UP
    assert event.note == f"ORM NW {message.control_id}: 8 attempts failed; last: {message.last_error}"


def test_an_ack_for_another_message_is_a_failure(message: OutboundMessage) -> None:
    with fake_lab(lambda text: ack_for(text.replace(message.control_id, "ORM000000000"))) as lab:
        point_at(message.send_out.reference_lab, lab)
        assert sending.transmit(message.pk) == "retrying"
    assert "acknowledged another message (MSA-2 ORM000000000" in fresh(message).last_error


def test_a_peer_that_hangs_up_without_an_ack_is_a_failure(message: OutboundMessage) -> None:
    with fake_lab(lambda text: None) as lab:
        point_at(message.send_out.reference_lab, lab)
        assert sending.transmit(message.pk) == "retrying"
    assert "closed the connection without an ACK" in fresh(message).last_error


def test_a_folder_lab_gets_a_file_written_whole(message: OutboundMessage, tmp_path: Path) -> None:
    ReferenceLab.objects.filter(pk=message.send_out.reference_lab_id).update(
        transport=ReferenceLab.Transport.FOLDER, drop_folder=str(tmp_path)
    )
    assert sending.transmit(message.pk) == "delivered"
    [written] = tmp_path.glob("ORM_*.hl7")
    assert written.read_bytes().decode() == message.text
    message = fresh(message)
    assert message.status == MessageStatus.DELIVERED and message.acked_at is not None
    assert message.send_out.events.latest("id").note == f"ORM NW {message.control_id} written to {written}"


def test_a_missing_folder_is_retried_and_says_which(message: OutboundMessage, tmp_path: Path) -> None:
    gone = tmp_path / "not-mounted"
    ReferenceLab.objects.filter(pk=message.send_out.reference_lab_id).update(
        transport=ReferenceLab.Transport.FOLDER, drop_folder=str(gone)
    )
    assert sending.transmit(message.pk) == "retrying"
    assert fresh(message).last_error.startswith(f"Can't write to {gone}:")


def test_a_withdrawn_message_is_not_sent(message: OutboundMessage) -> None:
    OutboundMessage.objects.filter(pk=message.pk).update(status=MessageStatus.WITHDRAWN)
    with fake_lab() as lab:
        point_at(message.send_out.reference_lab, lab)
        assert sending.transmit(message.pk) == "done"
    assert not lab.received


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_sends_it_and_stores_the_ack() -> None:
    ma, tech = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), UserFactory(role=roles.ROLE_LAB_TECH)
    reference_lab()
    box, _ = packed("TSH", ma=ma, lab_tech=tech)
    shipments.shipment_dispatch(shipment=box, by=tech)
    message = OutboundMessage.objects.select_related("send_out__reference_lab").get()
    with fake_lab() as lab:
        point_at(message.send_out.reference_lab, lab)
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    assert len(lab.received) == 1
    assert fresh(message).status == MessageStatus.ACCEPTED


def test_the_overdue_check_queues_its_successor_first_and_never_twice() -> None:
    from lab.sendouts.tasks import OVERDUE_CHECK_INTERVAL, flag_overdue_send_outs, schedule_overdue_send_outs

    DBTaskResult.objects.all().delete()
    before = timezone.now()
    assert flag_overdue_send_outs.call() == 0
    [successor] = DBTaskResult.objects.filter(
        task_path=flag_overdue_send_outs.module_path, status=TaskResultStatus.READY
    )
    assert successor.run_after is not None and successor.run_after >= before + OVERDUE_CHECK_INTERVAL
    assert not schedule_overdue_send_outs()  # one is pending: migrate and every worker leave it at one
