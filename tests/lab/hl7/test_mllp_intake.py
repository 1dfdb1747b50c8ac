"""A real MLLP round trip on 127.0.0.1 through ``hl7_listen``'s listener and the Django intake.

The listener runs in a thread on a free port, with the very callbacks the management command uses
(lab.management.commands.hl7_listen.make_listener); the client is the desk's own MLLP sender
(lab.hl7.transport.send_mllp), or a raw socket where the framing itself is checked. Transactional:
the listener's worker threads have their own database connections, so only committed rows are
seen there, which is the point: the ACK must not leave before the raw message is committed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from django.db import connections

from lab.hl7.listener import MllpListener
from lab.hl7.read import split_messages
from lab.hl7.transport import END_BLOCK, START_BLOCK, frame, send_mllp
from lab.management.commands import hl7_listen
from lab.models import InboundMessage, Result
from lab.workflow import IntakeChannel, IntakeOutcome
from tests.lab.hl7.intake_helpers import corpus_bytes, corpus_orders

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

HOST = "127.0.0.1"
IO = IntakeOutcome


def msa(ack: str) -> list[str]:
    segment = next(s for s in ack.replace("\n", "\r").split("\r") if s.startswith("MSA"))
    return segment.split("|")


@pytest.fixture
def listener() -> Iterator[MllpListener]:
    server = hl7_listen.make_listener("MLLP test")
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=server.serve, args=(HOST, 0), kwargs={"ready": ready, "stop": stop}, daemon=True)
    thread.start()
    assert ready.wait(5)
    yield server
    stop.set()
    thread.join(5)
    connections.close_all()


def message(name: str, index: int = 0) -> str:
    return split_messages(corpus_bytes(name))[index]


def test_a_result_over_mllp_is_stored_filed_and_acked_aa_with_its_control_id(listener: MllpListener) -> None:
    corpus_orders("ORD-2026-000042")
    text = message("national_251_cmp_final.hl7")
    ack = send_mllp(HOST, listener.port, text, timeout=20)
    assert msa(ack)[1:3] == ["AA", "ACME20260302101500000123"]
    stored = InboundMessage.objects.get()
    assert (stored.channel, stored.source, stored.outcome, stored.raw) == (
        IntakeChannel.MLLP,
        "MLLP test",
        IO.MATCHED,
        text,
    )
    assert Result.objects.filter(inbound=stored).count() == 14


def test_the_raw_message_is_committed_before_the_ack_is_sent(
    listener: MllpListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the listener's thread sees through a connection of its own as it builds the ACK: the stored row."""
    corpus_orders("ORD-2026-000042")
    seen: list[tuple[str, str]] = []
    real_ack = hl7_listen.ack

    def checking_ack(received, **kwargs):  # type: ignore[no-untyped-def]
        def look() -> None:
            # A second thread, so a second connection: it sees only what is committed.
            row = InboundMessage.objects.filter(pk=received.message.pk).values_list("raw", "outcome").first()
            seen.append(row or ("", ""))
            connections.close_all()

        probe = threading.Thread(target=look)
        probe.start()
        probe.join(10)
        return real_ack(received, **kwargs)

    monkeypatch.setattr(hl7_listen, "ack", checking_ack)
    text = message("national_251_cmp_final.hl7")
    ack = send_mllp(HOST, listener.port, text, timeout=20)
    assert msa(ack)[1] == "AA"
    assert seen == [(text, IO.MATCHED)]


def test_the_ack_is_framed_and_answers_each_message_of_a_connection_in_order(listener: MllpListener) -> None:
    corpus_orders("ORD-2026-000053", "ORD-2026-000054")
    first, second = message("mllp_framed.hl7", 0), message("mllp_framed.hl7", 1)
    with socket.create_connection((HOST, listener.port), timeout=20) as sock:
        sock.sendall(frame(first) + frame(second))
        received = b""
        while received.count(END_BLOCK) < 2:
            chunk = sock.recv(65536)
            assert chunk, "the listener closed before both ACKs"
            received += chunk
    blocks = [b for b in received.split(END_BLOCK) if b]
    assert all(b.startswith(START_BLOCK) for b in blocks)
    acks = [b[1:].decode() for b in blocks]
    assert [msa(a)[1:3] for a in acks] == [["AA", "MGH26030915100007"], ["AA", "MGH26030915100008"]]
    assert list(InboundMessage.objects.order_by("id").values_list("outcome", flat=True)) == [IO.MATCHED, IO.MATCHED]


def test_a_message_over_64_kib_passes_whole(listener: MllpListener) -> None:
    corpus_orders("ORD-2026-000056")
    text = message("large_pathology_over_64k.hl7")
    assert len(text.encode()) > 64 * 1024
    ack = send_mllp(HOST, listener.port, text, timeout=20)
    assert msa(ack)[1:3] == ["AA", "MGH26031417450033"]
    stored = InboundMessage.objects.get()
    assert stored.raw == text and stored.outcome == IO.MATCHED


def test_garbage_gets_ar_and_is_stored_as_sent(listener: MllpListener) -> None:
    garbage = corpus_bytes("garbage.hl7").decode()
    ack = send_mllp(HOST, listener.port, garbage, timeout=20)
    assert msa(ack)[1] == "AR"
    stored = InboundMessage.objects.get()
    assert (stored.outcome, stored.channel) == (IO.REJECTED, IntakeChannel.MLLP)
    assert stored.raw == garbage.replace("\r\n", "\r")  # the MLLP client sends CR segment ends
    assert stored.detail.startswith("Refused: not HL7")


def test_an_unmatched_result_and_a_duplicate_are_acked_aa(listener: MllpListener) -> None:
    corpus_orders("ORD-2026-000050")
    unknown = message("unknown_accession.hl7")
    assert msa(send_mllp(HOST, listener.port, unknown, timeout=20))[1:3] == ["AA", "ACME20260304071500000222"]
    twice = message("duplicate_control_id.hl7")
    assert msa(send_mllp(HOST, listener.port, twice, timeout=20))[1] == "AA"
    assert msa(send_mllp(HOST, listener.port, twice, timeout=20))[1] == "AA"
    assert list(InboundMessage.objects.order_by("id").values_list("outcome", flat=True)) == [
        IO.UNMATCHED,
        IO.MATCHED,
        IO.DUPLICATE,
    ]
