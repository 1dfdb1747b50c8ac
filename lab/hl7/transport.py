"""How an order reaches a reference lab: over MLLP to its interface, or as a file dropped in a folder
its interface engine picks up. And reading the ACK that comes back.

MLLP (HL7 v2 Minimal Lower Layer Protocol, release 2): each message is framed as ``<VT> message
<FS><CR>`` (``\\x0b`` … ``\\x1c\\x0d``) and the receiver answers on the same connection with the ACK,
framed the same way. ``send_mllp`` is a plain blocking socket client, for a background task: one
message, one ACK, one connection, a deadline over the whole exchange, and every failure raised as a
``TransportError`` saying what happened (the caller retries with backoff).

Text goes on the wire as UTF-8 (``lab.hl7.build`` declares ``UNICODE UTF-8`` in MSH-18 when a
message is not plain ASCII), segment ends normalised to CR.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import time
import uuid
from pathlib import Path

from lab.hl7 import er7

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
MAX_ACK_BYTES = 1024 * 1024  # an ACK is a few hundred bytes; anything this long is not one
FILE_SUFFIX = ".hl7"
_LINE_ENDS = re.compile(r"\r\n|\n")


class TransportError(Exception):
    """A message could not be delivered, or no proper ACK came back.

    ``kind`` says which: ``refused``, ``timeout``, ``closed`` (the peer hung up before a whole ACK),
    ``bad_frame`` (bytes that are not an MLLP frame), ``network`` (any other socket error).
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def frame(message: str, encoding: str = "utf-8") -> bytes:
    """``message`` as one MLLP block, segment ends normalised to CR."""
    return START_BLOCK + _cr(message).encode(encoding) + END_BLOCK


def decode(payload: bytes) -> str:
    """Bytes received as text: UTF-8 when they are, else Latin-1 (which maps every byte, so nothing
    a lab sent is ever lost to a decoding error)."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return payload.decode("latin-1")


def send_mllp(host: str, port: int, message: str, *, timeout: float, encoding: str = "utf-8") -> str:
    """Send one message over MLLP and return the ACK's text (without its framing).

    ``timeout`` bounds the whole exchange (connect, send, wait for the ACK), in seconds.
    Raises ``TransportError`` on refusal, timeout, a connection closed early or a malformed frame.
    """
    where = f"{host}:{port}"
    deadline = time.monotonic() + timeout
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        raise TransportError("refused", f"MLLP connection to {where} refused") from exc
    except TimeoutError as exc:
        raise TransportError("timeout", f"MLLP connection to {where} timed out after {timeout:g}s") from exc
    except OSError as exc:
        raise TransportError("network", f"MLLP connection to {where} failed: {exc}") from exc
    with connection:
        try:
            connection.sendall(frame(message, encoding))
            received = bytearray()
            while END_BLOCK not in received:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                connection.settimeout(remaining)
                chunk = connection.recv(65536)
                if not chunk:
                    detail = "without an ACK" if not received else "in the middle of the ACK"
                    raise TransportError("closed", f"{where} closed the connection {detail}")
                received += chunk
                if len(received) > MAX_ACK_BYTES:
                    raise TransportError("bad_frame", f"{where} sent over {MAX_ACK_BYTES} bytes and no ACK frame end")
        except TimeoutError as exc:
            raise TransportError("timeout", f"no ACK from {where} within {timeout:g}s") from exc
        except TransportError:
            raise
        except OSError as exc:
            raise TransportError("network", f"MLLP exchange with {where} failed: {exc}") from exc
    block = bytes(received[: received.index(END_BLOCK)])
    start = block.find(START_BLOCK)
    if start == -1 or block[:start].strip():
        raise TransportError("bad_frame", f"{where} answered {bytes(received[:40])!r}…, not an MLLP frame")
    return decode(block[start + 1 :])


def ack_code(ack_text: str) -> tuple[str, str]:
    """MSA-1 (the acknowledgment code, e.g. AA) and the text that goes with it, read tolerantly.

    The text is MSA-3, or where a 2.5+ lab left it empty in favour of ERR, the ERR's user message
    (ERR-8) or error code text (ERR-3.2); 2.3's ERR-1 code text too. Any delimiters, CR/LF segment
    ends, MLLP bytes left in. Raises ``ValueError`` when there is no MSA segment at all.
    """
    segments = er7.split_segments(ack_text)
    delimiters = next((er7.delimiters_of(s) for s in segments if s.startswith("MSH")), er7.STANDARD)
    msa = next((s for s in segments if s.startswith("MSA" + delimiters.field)), None)
    if msa is None:
        raise ValueError("no MSA segment: this is not an acknowledgement")
    fields = er7.fields_of(msa, delimiters)
    code = er7.first_component(fields[1], delimiters).strip().upper() if len(fields) > 1 else ""
    text = er7.unescape(fields[3], delimiters).strip() if len(fields) > 3 else ""
    if not text:
        for seg in segments:
            if seg.startswith("ERR" + delimiters.field):
                err = er7.fields_of(seg, delimiters)
                candidates = [
                    er7.unescape(err[8], delimiters) if len(err) > 8 else "",
                    er7.unescape(er7.component(err[3], 2, delimiters), delimiters) if len(err) > 3 else "",
                    _v23_error_text(err[1], delimiters) if len(err) > 1 else "",
                ]
                text = next((c.strip() for c in candidates if c.strip()), "")
                if text:
                    break
    return code, text


def _v23_error_text(value: str, delimiters: er7.Delimiters) -> str:
    """2.3's ERR-1 is segment^sequence^field^code&text&system: the code's text."""
    code = er7.component(value, 4, delimiters)
    parts = code.split(delimiters.subcomponent)
    return er7.unescape(parts[1], delimiters) if len(parts) > 1 else ""


def drop_file(
    folder: Path, name: str, message: str, *, encoding: str = "utf-8", mode: int = 0o640, suffix: str = FILE_SUFFIX
) -> Path:
    """Write ``message`` into ``folder`` for an interface engine to pick up, atomically.

    The text is written to a hidden temporary file in the same folder (``.name….tmp``: no pick-up
    pattern matches it), flushed and fsynced, then renamed to ``<name>_<32 hex>.hl7``: the random
    part means two drops never collide, and the rename means the engine sees the whole file or none
    of it. The folder is fsynced after, so the name survives a crash. Segment ends are CR.
    Returns the final path.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "message"
    if stem.lower().endswith(suffix.lower()):
        stem = stem[: -len(suffix)] or "message"
    final = folder / f"{stem}_{uuid.uuid4().hex}{suffix}"
    data = _cr(message).encode(encoding)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return final


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # a platform or share that can't open folders: the rename is still atomic
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _cr(message: str) -> str:
    return _LINE_ENDS.sub("\r", message)
