"""An MLLP listener for what reference labs send us, on asyncio and python-hl7's ``hl7.mllp``.

For every MLLP block a connection brings, in order:

- input that can't be parsed as HL7 (no MSH, python-hl7 can't split it, a frame that didn't start
  with ``<VT>``, a block over the size limit) is answered with an AR, built by ``build_ack`` from
  whatever header could be read; ``on_rejected(raw, reason)`` hears of it first when given;
- anything else goes to ``on_message(raw) -> ack``, and the ACK it returns is what the lab gets.
  The Django side stores the raw message there before returning the ACK, so an ACK never precedes
  the stored message. A sync callback runs in a worker thread (``asyncio.to_thread``) and an async
  one is awaited, so a slow database never stalls the other connections.

If ``on_message`` raises (or returns no ACK), nothing is acknowledged: the connection is closed and
the lab's interface engine, which keeps a message until it is ACKed, sends it again. The issue's
rule is that AE/AR is only for input that isn't HL7, and a negative ACK for a storage failure would
tell many engines to give up on a message we never kept.

python-hl7's stream reader keeps asyncio's default 64 KiB limit, which a result with an embedded PDF
or a long narrative exceeds; ``MAX_MESSAGE_BYTES`` raises it to 16 MiB.

``MllpListener.run()`` serves until cancelled or ``stop()``ped; on the way out it stops accepting,
cancels the connections' tasks and closes them. ``serve()`` runs one in the calling thread, for a
management command (Ctrl-C or SIGTERM stop it) or a test thread (``ready`` and ``stop`` events).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import cast

import hl7
from hl7.mllp import start_hl7_server

from lab.hl7 import er7
from lab.hl7.build import Endpoint, HierarchicDesignator, build_ack, read_header
from lab.hl7.transport import END_BLOCK, START_BLOCK, decode, frame

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_ACK_SENDER = Endpoint(HierarchicDesignator("CLINIC_BACKOFFICE"))

OnMessage = Callable[[str], str] | Callable[[str], Awaitable[str]]
OnRejected = Callable[[str, str], None] | Callable[[str, str], Awaitable[None]]


class NotHL7(ValueError):
    """Input that can't be parsed as HL7 v2; its message says why."""


def check_hl7(raw: str) -> None:
    """Raise ``NotHL7`` unless ``raw`` is HL7 v2 python-hl7 can parse (a message, a batch or a file;
    CR, LF or CRLF segment ends). This is the only gate before storage: it is deliberately loose."""
    segments = er7.split_segments(raw)
    if not segments:
        raise NotHL7("empty message")
    first = segments[0]
    if first[:3] not in ("MSH", "BHS", "FHS") or len(first) < 8 or first[3].isalnum() or first[3].isspace():
        raise NotHL7(f"does not start with an MSH, BHS or FHS segment: {first[:20]!r}")
    if not any(s.startswith("MSH" + first[3]) for s in segments):
        raise NotHL7("no MSH segment")
    try:
        hl7.parse_hl7("\r".join(segments))
    except Exception as exc:  # python-hl7 raises several kinds, IndexError among them
        raise NotHL7(f"python-hl7 can't parse it: {exc}") from exc


class MllpListener:
    """One MLLP server: ``run()`` it in an event loop, or ``serve()`` it in a thread."""

    def __init__(
        self,
        on_message: OnMessage,
        *,
        on_rejected: OnRejected | None = None,
        ack_sender: Endpoint = DEFAULT_ACK_SENDER,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.on_message = on_message
        self.on_rejected = on_rejected
        self.ack_sender = ack_sender
        self.max_message_bytes = max_message_bytes
        self.address: tuple[str, int] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def port(self) -> int:
        if self.address is None:
            raise RuntimeError("the listener is not listening yet")
        return self.address[1]

    async def run(self, host: str, port: int, *, ready: threading.Event | None = None) -> None:
        """Listen on ``host:port`` (0 for any free port; ``address`` tells which) until cancelled or stopped."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await start_hl7_server(self._connected, host, port, limit=self.max_message_bytes)
        self.address = server.sockets[0].getsockname()[:2]
        logger.info("HL7 MLLP listener on %s:%s", *self.address)
        if ready is not None:
            ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()
            logger.info("HL7 MLLP listener on %s:%s closed", *self.address)

    def stop(self) -> None:
        """Stop ``run()``; safe from any thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop finished in the meantime
                loop.call_soon_threadsafe(stopping.set)

    def serve(
        self, host: str, port: int, *, ready: threading.Event | None = None, stop: threading.Event | None = None
    ) -> None:
        """Run the listener in this thread until Ctrl-C, SIGTERM (in the main thread) or ``stop`` is set."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            if threading.current_thread() is threading.main_thread():
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signal.SIGTERM, self.stop)
            watcher = asyncio.create_task(self._stop_when_set(stop)) if stop is not None else None
            try:
                await self.run(host, port, ready=ready)
            finally:
                if watcher is not None:
                    watcher.cancel()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())

    async def _stop_when_set(self, stop: threading.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.05)
        self.stop()

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                try:
                    block = await reader.readuntil(END_BLOCK)
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        logger.warning("HL7 from %s: connection closed in the middle of a message", peer)
                    return
                except asyncio.LimitOverrunError:
                    reason = f"message over {self.max_message_bytes} bytes"
                    await self._reply(writer, await self._reject("", reason, peer))
                    return  # the rest of that block is still coming: no way to find the next one
                block = block[: -len(END_BLOCK)]
                start = block.find(START_BLOCK)
                if start == -1 or block[:start].strip():
                    raw = decode(block)
                    ack = await self._reject(raw, "not an MLLP block (no <VT> start)", peer)
                else:
                    raw = decode(block[start + 1 :])
                    try:
                        check_hl7(raw)
                    except NotHL7 as exc:
                        ack = await self._reject(raw, f"not HL7: {exc}", peer)
                    else:
                        try:
                            ack = await self._call_on_message(raw)
                        except Exception:
                            logger.exception("HL7 from %s: on_message failed; closing without an ACK", peer)
                            return
                        if not ack:
                            logger.error("HL7 from %s: on_message returned no ACK; closing without one", peer)
                            return
                await self._reply(writer, ack)
        except ConnectionError:
            logger.warning("HL7 from %s: connection lost", peer)
        except Exception:
            logger.exception("HL7 from %s: closing the connection after an unexpected error", peer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _call_on_message(self, raw: str) -> str:
        result: object
        if inspect.iscoroutinefunction(self.on_message):
            result = await cast(Callable[[str], Awaitable[str]], self.on_message)(raw)
        else:
            result = await asyncio.to_thread(self.on_message, raw)
            if inspect.isawaitable(result):
                result = await result
        if not isinstance(result, str):
            raise TypeError(f"on_message returned {type(result).__name__}, not the ACK's text")
        return result

    async def _reject(self, raw: str, reason: str, peer: object) -> str:
        logger.warning("HL7 from %s rejected (AR): %s", peer, reason)
        if self.on_rejected is not None:
            try:
                if inspect.iscoroutinefunction(self.on_rejected):
                    await cast(Callable[[str, str], Awaitable[None]], self.on_rejected)(raw, reason)
                else:
                    await asyncio.to_thread(self.on_rejected, raw, reason)
            except Exception:
                logger.exception("HL7 from %s: on_rejected failed", peer)
        return build_ack(
            read_header(raw),
            code="AR",
            text=reason[:200],
            sender=self.ack_sender,
            control_id=uuid.uuid4().hex[:20],
            now=datetime.now().astimezone(),
        )

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, ack: str) -> None:
        writer.write(frame(ack))
        await writer.drain()


def serve(
    host: str,
    port: int,
    on_message: OnMessage,
    *,
    ready: threading.Event | None = None,
    stop: threading.Event | None = None,
    on_rejected: OnRejected | None = None,
    ack_sender: Endpoint = DEFAULT_ACK_SENDER,
) -> None:
    """Listen on ``host:port`` in this thread until Ctrl-C, SIGTERM or ``stop``; ``ready`` is set once
    the socket is bound."""
    MllpListener(on_message, on_rejected=on_rejected, ack_sender=ack_sender).serve(host, port, ready=ready, stop=stop)
