"""The transports, for real: an MLLP listener on 127.0.0.1 in a thread (ephemeral port), the blocking
MLLP client against it and against misbehaving peers, ACK reading, and the atomic file drop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import hl7
import pytest

from lab.hl7 import transport
from lab.hl7.build import HD, Endpoint, build_ack, read_header
from lab.hl7.listener import MAX_MESSAGE_BYTES, MllpListener, NotHL7, check_hl7, serve
from lab.hl7.transport import TransportError, ack_code, drop_file, send_mllp

HOST = "127.0.0.1"
EST = timezone(timedelta(hours=-5))
US = Endpoint(HD("BACKOFFICE"), HD("CLINIC"))


def oru(control_id: str = "LAB0001", *, notes: int = 0) -> str:
    """An ORU^R01; ``notes`` adds that many NTE rows of 1,000 characters each (to make it long)."""
    segments = [
        f"MSH|^~\\&|LABIF|NATLAB|BACKOFFICE|CLINIC|20261203101500-0500||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        "PID|1||M0100001^^^CLINIC^MR||Martinez^Rosa||19800131|F",
        "OBR|1|000042||2345-7^Glucose^LN|||20261202080500-0500|||||||||||||||20261203101000-0500|||F",
        "OBX|1|NM|2345-7^Glucose^LN||98|mg/dL^mg/dL^UCUM|70-99|N|||F",
    ]
    segments += [f"NTE|{n}|L|" + f"line {n:05d} ".ljust(1000, ".") for n in range(1, notes + 1)]
    return "\r".join(segments) + "\r"


class Store:
    """The Django side, as far as the listener can tell: store the raw text, then return the ACK."""

    def __init__(self, *, delay: float = 0.0, fail: bool = False) -> None:
        self.messages: list[str] = []
        self.rejected: list[tuple[str, str]] = []
        self.stored = threading.Event()
        self.stored_at: list[float] = []
        self.delay = delay
        self.fail = fail
        self.lock = threading.Lock()

    def on_message(self, raw: str) -> str:
        if self.fail:
            raise RuntimeError("database is down")
        with self.lock:
            self.messages.append(raw)
            self.stored_at.append(time.monotonic())
        self.stored.set()
        time.sleep(self.delay)  # the ACK waits for whatever follows the store
        header = read_header(raw)
        return build_ack(header, code="AA", sender=US, control_id=f"ACK{len(self.messages)}", now=datetime.now(EST))

    def on_rejected(self, raw: str, reason: str) -> None:
        self.rejected.append((raw, reason))


class Running:
    def __init__(self, listener: MllpListener, thread: threading.Thread, stop: threading.Event) -> None:
        self.listener = listener
        self.thread = thread
        self.stop_event = stop

    @property
    def port(self) -> int:
        return self.listener.port

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()


def start(store: Store, **kwargs: object) -> Running:
    listener = MllpListener(store.on_message, on_rejected=store.on_rejected, **kwargs)  # type: ignore[arg-type]
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=listener.serve, args=(HOST, 0), kwargs={"ready": ready, "stop": stop}, daemon=True)
    thread.start()
    assert ready.wait(10)
    return Running(listener, thread, stop)


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def running(store: Store) -> Iterator[Running]:
    server = start(store)
    yield server
    server.stop()


def exchange(port: int, payload: bytes, *, frames: int = 1, timeout: float = 5) -> list[bytes]:
    """Send raw bytes and read ``frames`` whole MLLP frames back (bytes included)."""
    with socket.create_connection((HOST, port), timeout=timeout) as connection:
        connection.sendall(payload)
        data = b""
        while data.count(b"\x1c\r") < frames:
            chunk = connection.recv(65536)
            if not chunk:
                break
            data += chunk
    return [frame + b"\x1c\r" for frame in data.split(b"\x1c\r") if frame]


# The round trip


def test_round_trip_framing_msa_and_the_raw_message_stored(running: Running, store: Store) -> None:
    message = oru("LAB0001")
    [reply] = exchange(running.port, b"\x0b" + message.encode() + b"\x1c\r")
    assert reply[:1] == b"\x0b" and reply[-2:] == b"\x1c\r"
    assert reply.count(b"\x0b") == 1 and reply.count(b"\x1c") == 1
    ack = reply[1:-2].decode()
    assert ack.endswith("\r") and "\n" not in ack
    m = hl7.parse(ack)
    assert m["MSA.F1"] == "AA"
    assert m["MSA.F2"] == "LAB0001"
    assert (m["MSH.F5"], m["MSH.F6"]) == ("LABIF", "NATLAB")
    assert store.messages == [message]  # exactly what was sent, CRs and all


def test_the_message_is_stored_before_the_ack_reaches_the_client() -> None:
    store = Store(delay=0.3)
    server = start(store)
    try:
        sent_at = time.monotonic()
        ack = send_mllp(HOST, server.port, oru("LAB0002"), timeout=5)
        acked_at = time.monotonic()
    finally:
        server.stop()
    assert store.stored.is_set()
    assert store.messages == [oru("LAB0002")]
    assert sent_at < store.stored_at[0] < acked_at
    assert acked_at - store.stored_at[0] >= 0.3  # the ACK waited for the callback to return
    assert ack_code(ack) == ("AA", "")


def test_a_message_over_64_kib_passes(running: Running, store: Store) -> None:
    message = oru("BIG1", notes=300)
    assert len(message.encode()) > 4 * 64 * 1024
    ack = send_mllp(HOST, running.port, message, timeout=10)
    assert ack_code(ack)[0] == "AA"
    assert hl7.parse(ack)["MSA.F2"] == "BIG1"
    assert store.messages == [message]
    assert MAX_MESSAGE_BYTES == 16 * 1024 * 1024


def test_garbage_gets_ar_and_the_connection_carries_on(running: Running, store: Store) -> None:
    payload = b"\x0bGET / HTTP/1.1\r\n\x1c\r" + b"no start byte\x1c\r" + b"\x0b" + oru("LAB0003").encode() + b"\x1c\r"
    replies = exchange(running.port, payload, frames=3)
    codes = [hl7.parse(reply[1:-2].decode())["MSA.F1"] for reply in replies]
    assert codes == ["AR", "AR", "AA"]
    first = hl7.parse(replies[0][1:-2].decode())
    assert first["MSA.F2"] == ""  # there was no MSH-10 to echo
    assert "not HL7" in first["MSA.F3"]
    assert store.messages == [oru("LAB0003")]  # garbage never reached on_message
    assert [reason for _, reason in store.rejected] == [
        "not HL7: does not start with an MSH, BHS or FHS segment: 'GET / HTTP/1.1'",
        "not an MLLP block (no <VT> start)",
    ]
    assert store.rejected[0][0] == "GET / HTTP/1.1\r\n"


def test_an_ar_echoes_whatever_header_could_be_read(running: Running, store: Store) -> None:
    # An MSH python-hl7 can read, then a second MSH it can't split: not HL7 it can parse.
    broken = "MSH|^~\\&|LABIF|NATLAB|BACKOFFICE|CLINIC|20261203||ORU^R01|LAB0004|T|2.3\rMSH|\r"
    m = hl7.parse(send_mllp(HOST, running.port, broken, timeout=5))
    assert (m["MSA.F1"], m["MSA.F2"]) == ("AR", "LAB0004")
    assert (m["MSH.F5"], m["MSH.F6"], m["MSH.F11"], m["MSH.F12"]) == ("LABIF", "NATLAB", "T", "2.3")
    assert m["MSA.F3"].startswith("not HL7: python-hl7 can't parse it")
    assert store.messages == []
    assert store.rejected[0][0] == broken


def test_several_messages_on_one_connection_are_acked_in_order(running: Running, store: Store) -> None:
    payload = b"".join(b"\x0b" + oru(f"LAB1{n}").encode() + b"\x1c\r" for n in range(3))
    replies = exchange(running.port, payload, frames=3)
    assert [hl7.parse(r[1:-2].decode())["MSA.F2"] for r in replies] == ["LAB10", "LAB11", "LAB12"]
    assert len(store.messages) == 3


def test_lf_segment_ends_and_a_batch_are_hl7(running: Running, store: Store) -> None:
    assert ack_code(send_mllp(HOST, running.port, oru("LF1").replace("\r", "\n"), timeout=5))[0] == "AA"
    # send_mllp normalises to CR on the wire; a raw LF message is accepted too:
    [reply] = exchange(running.port, b"\x0b" + oru("LF2").replace("\r", "\n").encode() + b"\x1c\r")
    assert hl7.parse(reply[1:-2].decode())["MSA.F1"] == "AA"
    assert store.messages[-1] == oru("LF2").replace("\r", "\n")


def test_a_failing_callback_closes_without_an_ack() -> None:
    store = Store(fail=True)
    server = start(store)
    try:
        with pytest.raises(TransportError, match="closed the connection without an ACK") as caught:
            send_mllp(HOST, server.port, oru("LAB0005"), timeout=5)
        assert caught.value.kind == "closed"
        # the listener itself is fine
        store.fail = False
        assert ack_code(send_mllp(HOST, server.port, oru("LAB0005"), timeout=5))[0] == "AA"
    finally:
        server.stop()


def test_a_slow_callback_does_not_block_other_connections() -> None:
    release = threading.Event()
    seen: list[str] = []

    def on_message(raw: str) -> str:
        seen.append(read_header(raw).control_id)
        if read_header(raw).control_id == "SLOW":
            release.wait(10)
        return build_ack(read_header(raw), sender=US, control_id="A", now=datetime.now(EST))

    listener = MllpListener(on_message)
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=listener.serve, args=(HOST, 0), kwargs={"ready": ready, "stop": stop})
    thread.start()
    assert ready.wait(10)
    results: dict[str, str] = {}
    slow = threading.Thread(target=lambda: results.update(slow=send_mllp(HOST, listener.port, oru("SLOW"), timeout=10)))
    slow.start()
    try:
        deadline = time.monotonic() + 5
        while "SLOW" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        fast = send_mllp(HOST, listener.port, oru("FAST"), timeout=5)
        assert hl7.parse(fast)["MSA.F2"] == "FAST"
        assert "slow" not in results  # the slow one is still waiting
    finally:
        release.set()
        slow.join(10)
        stop.set()
        thread.join(10)
    assert hl7.parse(results["slow"])["MSA.F2"] == "SLOW"


def test_an_async_callback() -> None:
    async def on_message(raw: str) -> str:
        await asyncio.sleep(0.01)
        return build_ack(read_header(raw), sender=US, control_id="ASYNC", now=datetime.now(EST))

    listener = MllpListener(on_message)
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=listener.serve, args=(HOST, 0), kwargs={"ready": ready, "stop": stop})
    thread.start()
    try:
        assert ready.wait(10)
        assert hl7.parse(send_mllp(HOST, listener.port, oru("A1"), timeout=5))["MSH.F10"] == "ASYNC"
    finally:
        stop.set()
        thread.join(10)


def test_a_message_over_the_limit_gets_ar_and_the_connection_closes(store: Store) -> None:
    server = start(store, max_message_bytes=1024)
    try:
        replies = exchange(server.port, b"\x0b" + oru("HUGE", notes=20).encode() + b"\x1c\r")
        assert len(replies) == 1
        m = hl7.parse(replies[0][1:-2].decode())
        assert m["MSA.F1"] == "AR"
        assert m["MSA.F3"] == "message over 1024 bytes"
        assert store.messages == []
    finally:
        server.stop()


def test_the_listener_closes_cleanly_when_cancelled(store: Store) -> None:
    async def scenario() -> bytes:
        listener = MllpListener(store.on_message)
        task = asyncio.create_task(listener.run(HOST, 0))
        while listener.address is None:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection(HOST, listener.port)
        writer.write(b"\x0b" + oru("C1").encode())  # half a message, then silence
        await writer.drain()
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        tail = await asyncio.wait_for(reader.read(), 5)  # the listener closed our connection
        writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(HOST, listener.port)  # and no longer listens
        return tail

    assert asyncio.run(scenario()) == b""
    assert store.messages == []


def test_serve_for_a_management_command(store: Store) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    ready, stop = threading.Event(), threading.Event()
    thread = threading.Thread(
        target=serve, args=(HOST, port, store.on_message), kwargs={"ready": ready, "stop": stop}, daemon=True
    )
    thread.start()
    try:
        assert ready.wait(10)
        assert ack_code(send_mllp(HOST, port, oru("SERVE1"), timeout=5))[0] == "AA"
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert store.messages == [oru("SERVE1")]


def test_check_hl7() -> None:
    check_hl7(oru())
    check_hl7(oru().replace("\r", "\r\n"))
    check_hl7("FHS|^~\\&|LAB\rBHS|^~\\&|LAB\r" + oru("B1") + oru("B2") + "BTS|2\rFTS|1\r")
    for garbage in ("", "   ", "hello", "PID|1||x", "MSH|", "MSHX^~\\&|", "BHS|^~\\&|LAB\rBTS|0"):
        with pytest.raises(NotHL7):
            check_hl7(garbage)


# send_mllp against misbehaving peers


def one_shot_server(handler: Callable[[socket.socket], None]) -> tuple[int, threading.Thread]:
    """A TCP server that accepts one connection and hands it to ``handler``."""
    listening = socket.socket()
    listening.bind((HOST, 0))
    listening.listen(1)
    port = listening.getsockname()[1]

    def run() -> None:
        with listening:
            connection, _ = listening.accept()
            with connection:
                handler(connection)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


def test_send_mllp_refused() -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    with pytest.raises(TransportError, match=rf"connection to 127\.0\.0\.1:{port} refused") as caught:
        send_mllp(HOST, port, oru(), timeout=2)
    assert caught.value.kind == "refused"


def test_send_mllp_times_out_waiting_for_the_ack() -> None:
    gate = threading.Event()
    port, thread = one_shot_server(lambda connection: gate.wait(5))
    started = time.monotonic()
    try:
        with pytest.raises(TransportError, match=r"no ACK from 127\.0\.0\.1:\d+ within 0\.3s") as caught:
            send_mllp(HOST, port, oru(), timeout=0.3)
    finally:
        gate.set()
        thread.join(5)
    assert caught.value.kind == "timeout"
    assert 0.25 < time.monotonic() - started < 2


def test_send_mllp_deadline_covers_a_trickling_peer() -> None:
    def trickle(connection: socket.socket) -> None:
        connection.recv(65536)
        with contextlib.suppress(OSError):  # the client gives up half-way: that is the point
            for _ in range(20):
                connection.sendall(b"\x0bMSH")
                time.sleep(0.1)

    port, thread = one_shot_server(trickle)
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        send_mllp(HOST, port, oru(), timeout=0.5)
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 1.5
    thread.join(5)


def test_send_mllp_bad_frame() -> None:
    def http(connection: socket.socket) -> None:
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n\x1c\r")

    port, thread = one_shot_server(http)
    with pytest.raises(TransportError, match="not an MLLP frame") as caught:
        send_mllp(HOST, port, oru(), timeout=2)
    assert caught.value.kind == "bad_frame"
    thread.join(5)


def test_send_mllp_peer_closes_mid_ack() -> None:
    def half(connection: socket.socket) -> None:
        connection.recv(65536)
        connection.sendall(b"\x0bMSH|^~\\&|LAB")

    port, thread = one_shot_server(half)
    with pytest.raises(TransportError, match="in the middle of the ACK") as caught:
        send_mllp(HOST, port, oru(), timeout=2)
    assert caught.value.kind == "closed"
    thread.join(5)


def test_send_mllp_frames_what_it_sends() -> None:
    received: list[bytes] = []

    def echo_ack(connection: socket.socket) -> None:
        data = b""
        while not data.endswith(b"\x1c\r"):
            data += connection.recv(65536)
        received.append(data)
        connection.sendall(b"\r\n\x0bMSH|^~\\&|LAB\rMSA|AA|1\r\x1c\r")

    port, thread = one_shot_server(echo_ack)
    ack = send_mllp(HOST, port, "MSH|^~\\&|US\nPID|1|Zoë\n", timeout=2)
    thread.join(5)
    assert received == [b"\x0bMSH|^~\\&|US\rPID|1|Zo\xc3\xab\r\x1c\r"]
    assert ack == "MSH|^~\\&|LAB\rMSA|AA|1\r"  # leading whitespace before <VT> tolerated


# ACK reading


@pytest.mark.parametrize(
    ("ack", "expected"),
    [
        ("MSH|^~\\&|LAB|X|US|Y|20261203||ACK^R01^ACK|9|P|2.5.1\rMSA|AA|LAB1\r", ("AA", "")),
        ("MSH|^~\\&|LAB\rMSA|AE|LAB1|Unknown test code \\F\\ 483\r", ("AE", "Unknown test code | 483")),
        (
            "\x0bMSH|^~\\&|LAB\nMSA|ar|LAB1\nERR|||207^Application internal error^HL70357|E||||Try later\n\x1c\r",
            ("AR", "Try later"),
        ),
        (
            "MSH|^~\\&|LAB\r\nMSA|AE|LAB1\r\nERR|||101^Required field missing^HL70357|E\r\n",
            ("AE", "Required field missing"),
        ),
        (
            "MSH|^~\\&|LAB|||||ACK|1|P|2.3\rMSA|AR|LAB1\rERR|PID^1^3^101&Required field missing&HL70357\r",
            ("AR", "Required field missing"),
        ),
        ("MSH#$~\\&#LAB\rMSA#CA#LAB1#ok\r", ("CA", "ok")),
    ],
)
def test_ack_code_reads_msa_tolerantly(ack: str, expected: tuple[str, str]) -> None:
    assert ack_code(ack) == expected


def test_ack_code_without_msa() -> None:
    with pytest.raises(ValueError, match="no MSA"):
        ack_code("MSH|^~\\&|LAB\rPID|1\r")
    with pytest.raises(ValueError, match="no MSA"):
        ack_code("garbage")


# The file drop

NAME = re.compile(r"ORM_000042_[0-9a-f]{32}\.hl7")


def test_drop_file_writes_whole_files_under_names_that_cannot_collide(tmp_path: Path) -> None:
    message = "MSH|^~\\&|US\nPID|1||M1\r\nORC|NW|000042\r"
    first = drop_file(tmp_path, "ORM_000042", message)
    second = drop_file(tmp_path, "ORM_000042", message)
    assert first != second
    assert first.parent == tmp_path and NAME.fullmatch(first.name) and NAME.fullmatch(second.name)
    assert first.read_bytes() == b"MSH|^~\\&|US\rPID|1||M1\rORC|NW|000042\r"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, second.name])  # no temp left
    assert first.stat().st_mode & 0o777 == 0o640
    assert NAME.fullmatch(drop_file(tmp_path, "ORM_000042.hl7", message).name)
    assert re.fullmatch(r"a_b_[0-9a-f]{32}\.hl7", drop_file(tmp_path, "../a b", message).name)


def test_drop_file_shows_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    real_fsync = os.fsync

    def fsync_and_look(descriptor: int) -> None:
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        real_fsync(descriptor)

    monkeypatch.setattr(transport.os, "fsync", fsync_and_look)
    final = drop_file(tmp_path, "ORM_000042", "MSH|^~\\&|US\r")
    # While the data was being written and synced, only a hidden temporary file existed.
    assert len(seen[0]) == 1 and seen[0][0].startswith(".ORM_000042.") and seen[0][0].endswith(".tmp")
    assert not any(name.endswith(".hl7") for name in seen[0])
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


def test_a_failed_drop_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(source: str, target: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(transport.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        drop_file(tmp_path, "ORM_000042", "MSH|^~\\&|US\r")
    assert list(tmp_path.iterdir()) == []
