"""Send-outs at the desk, reached the way the app reaches them: collected, handed over, received, packed."""

import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from backoffice.models import Handoff, User
from backoffice.workflow import Priority
from lab.models import ReferenceLab, SendOut, Shipment
from lab.sendouts import shipments
from lab.sendouts.services import send_out_answer
from specimens.models import Specimen
from specimens.workflow import Handling, Location
from tests.lab.sendout_helpers import reference_lab
from tests.specimens.helpers import collected, received

_npis = itertools.count(100000000)


def npi() -> str:
    """A fresh valid NPI: nine digits and the Luhn check digit over 80840 and them (CMS)."""
    base = str(next(_npis))
    digits = [int(c) for c in "80840" + base]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return base + str((10 - total % 10) % 10)


def with_npi(user: User) -> User:
    user.npi = npi()
    user.save(update_fields=["npi"])
    return user


def at_desk(
    *short_names: str,
    ma: User,
    lab_tech: User,
    stat: bool = False,
    diagnoses: tuple[str, ...] = ("E78.5",),
    note: str = "",
) -> tuple[Handoff, list[Specimen]]:
    """These send-out tests collected, handed to the send-out desk and received there.

    The ordering clinician has an NPI; the handoff carries the ICD-10-CM codes (``diagnoses``).
    """
    handoff, specimens = collected(*short_names, ma=ma)
    Handoff.objects.filter(pk=handoff.pk).update(
        diagnosis_codes=list(diagnoses),
        priority=Priority.STAT if stat else Priority.ROUTINE,
        clinical_note=note,
    )
    with_npi(handoff.ordering_clinician)
    for specimen in specimens:
        received(specimen, ma=ma, lab_tech=lab_tech, at=Location.SEND_OUT_DESK)
    handoff.refresh_from_db()
    return handoff, [Specimen.objects.get(pk=s.pk) for s in specimens]


def send_outs_of(specimen: Specimen) -> list[SendOut]:
    return list(SendOut.objects.filter(order__specimen=specimen).select_related("order__test").order_by("id"))


def shipment(lab: ReferenceLab, *, by: User, handling: str = Handling.REFRIGERATED) -> Shipment:
    return shipments.shipment_create(
        reference_lab=lab,
        handling=handling,
        courier="Lab courier, route 12",
        pickup_at=timezone.now() + timedelta(hours=2),
        by=by,
    )


def fasting(send_out: SendOut, *, by: User, answer: str = "Y") -> SendOut:
    return send_out_answer(send_out=send_out, answers={"49541-6": answer}, by=by)


def packed(
    *short_names: str, ma: User, lab_tech: User, lab: ReferenceLab | None = None
) -> tuple[Shipment, list[Specimen]]:
    """A refrigerated shipment with these tests' tubes packed, every question answered."""
    lab = lab or ReferenceLab.objects.first() or reference_lab()
    _, tubes = at_desk(*short_names, ma=ma, lab_tech=lab_tech)
    box = shipment(lab, by=lab_tech)
    for tube in tubes:
        shipments.shipment_pack(shipment=box, specimen=tube, by=lab_tech)
        for send_out in send_outs_of(tube):
            if send_out.orderable.questions.exists():
                fasting(send_out, by=lab_tech)
    return box, tubes


# --- A reference lab's interface on 127.0.0.1 -------------------------------------------------------


@dataclass
class FakeLab:
    """An MLLP listener that answers each message with what ``answer`` returns for it (an ACK, or None to hang up)."""

    answer: Callable[[str], bytes | None]
    received: list[str] = field(default_factory=list)
    port: int = 0


def ack_for(message: str, code: str = "AA", text: str = "") -> bytes:
    """An ACK of ``message``: MSA-1 ``code``, MSA-2 its MSH-10, framed for MLLP."""
    msh = next(seg for seg in message.split("\r") if seg.startswith("MSH"))
    control = msh.split("|")[9]
    ack = f"MSH|^~\\&|LAB|LAB|CLINICBO|CLINIC|20261202120000||ACK^O01^ACK|A{control}|P|2.5.1\rMSA|{code}|{control}|{text}\r"
    return b"\x0b" + ack.encode() + b"\x1c\x0d"


@contextmanager
def fake_lab(answer: Callable[[str], bytes | None] = ack_for) -> Iterator[FakeLab]:
    """Listen on a free port of 127.0.0.1 in a thread until the block ends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    lab = FakeLab(answer=answer, port=server.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\x1c\x0d" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                text = data.strip(b"\x0b").split(b"\x1c")[0].decode()
                lab.received.append(text)
                reply = lab.answer(text)
                if reply is not None:
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield lab
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def point_at(lab: ReferenceLab, fake: FakeLab) -> ReferenceLab:
    ReferenceLab.objects.filter(pk=lab.pk).update(mllp_host="127.0.0.1", mllp_port=fake.port)
    lab.refresh_from_db()
    return lab
