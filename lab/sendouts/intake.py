"""Taking results back: every ORU^R01 a reference lab sends, from any of the three ways in.

One code path for the MLLP listener (``manage.py hl7_listen``), the file import (``manage.py
hl7_import``) and the desk's upload page: ``receive(data, channel=..., source=..., by=...)``.

1. **Store.** ``split_messages`` cuts the input into messages in file order (batches, MLLP bytes,
   CR/LF/CRLF), taken in pieces of CHUNK (an MLLP block is one). Each piece's raw texts are written
   with their import records (InboundMessage) and committed before anything is filed or
   acknowledged: the ACK is built from the stored row, so an ACK never precedes it. Input that isn't
   HL7 is stored too, as ``rejected`` (AR); a message whose sender and MSH-10 were already received
   is stored as a ``duplicate`` of it and files nothing new (AA: the lab may stop resending).
2. **Match**, exactly, per the sending lab's dialect profile: the placer number and our accession
   are compared as text after the EI namespace is dropped (lab.hl7.read.normalize_id), never as
   numbers; a send-out that the two keys disagree on, or that went to another lab, is no match.
   Nothing is ever fuzzy-matched: no order found is the **unmatched** queue (the message kept whole,
   nothing filed to any chart, no patient created).
3. **Check identity**: the message's patient must agree with the order's on name (case, accents
   and punctuation aside; a missing middle name is no mismatch) and date of birth, and our MRN when
   sent. Otherwise the message goes on **identity hold**: nothing filed, the order stays open, both
   identities shown side by side at the desk.
4. **File** (lab.sendouts.filing) and move the send-out along SEND_OUT (sent → preliminary →
   final; X cancelled), its test resulted once final.

A message is filed all or nothing: every order group must match and pass the identity check. A
piece's messages are matched and filed together, in one transaction after the one that stored
them: their keys read in one query, their send-outs and orders locked in one, every result written
in one COPY (backoffice.bulk), every status move and event in one statement per table
(backoffice.transitions.Batch). Should anything fail, that transaction is rolled back and each
message is filed alone, so an unexpected error leaves only its own message stored and
``received``, with the error in its detail, for the desk. Two reports for one order in a piece (a
preliminary and its final) are filed one after the other, in file order.

Both queues are worked from the send-out desk (lab.sendouts.inbound): ``inbound_attach`` files a
queued message to the order a person names (recorded; the identity check still applies) and
``inbound_resolve`` closes it with a reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pghistory
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from backoffice import bulk
from backoffice.identifiers import is_mrn
from backoffice.models import User
from backoffice.services import system_user
from backoffice.transitions import Batch, edit, lock, record, require
from backoffice.workflow import TransitionNotAllowed
from lab.hl7.build import Endpoint, HierarchicDesignator, build_ack, read_header
from lab.hl7.profiles import DialectProfile, MrnPlace
from lab.hl7.read import HL7ParseError, OrderGroup, ParsedMessage, message_header, parse_oru, split_messages
from lab.models import (
    InboundMessage,
    ReferenceLab,
    Result,
    SendOut,
    SendOutEvent,
    TestDefinition,
    TestOrder,
    TestOrderEvent,
)
from lab.models import InboundMessageEvent as Event
from lab.sendouts.filing import (
    Analytes,
    Filed,
    current_results_of,
    file_order_group,
    identity_disagreements,
    identity_text,
    mrn_differs,
    report_filed,
    report_status,
)
from lab.workflow import (
    FILED_OUTCOMES,
    INBOUND,
    SEND_OUT,
    TEST_ORDER,
    CancelReason,
    IntakeChannel,
    IntakeOutcome,
    SendOutStatus,
    TestOrderStatus,
)
from specimens.models import Specimen

logger = logging.getLogger(__name__)

IO = IntakeOutcome
SO = SendOutStatus
DESK_PERM = "lab.run_send_out_desk"
QUEUE_PERM = "lab.view_inboundmessage"
# The ACK's sender when the message's lab is unknown (MSH-3 of our answer).
OUR_APPLICATION = "CLINICBO"
OUR_FACILITY = "CLINIC"
# Read where every shipped profile looks, to show an unknown sender's keys and patient: never to match.
ANY_PLACE = DialectProfile(
    name="any place (display only)",
    mrn=(MrnPlace("PID-3", "MR"), MrnPlace("PID-4"), MrnPlace("PID-2"), MrnPlace("PID-3")),
    placer=("ORC-2", "OBR-2"),
    accession=("ORC-4", "OBR-18", "SPM-2"),
    filler=("ORC-3", "OBR-3"),
)
_DETAIL = 500
# How a summary counts messages by outcome: "2 filed, 1 unmatched".
OUTCOME_SAID: dict[str, str] = {
    IO.RECEIVED: "stored, not filed",
    IO.MATCHED: "filed",
    IO.AMENDED: "filed as corrections",
    IO.SUPERSEDED: "filed as finals over preliminaries",
    IO.UNMATCHED: "unmatched",
    IO.IDENTITY_HOLD: "on identity hold",
    IO.DUPLICATE: "already received",
    IO.REJECTED: "not HL7, refused",
}


def summary(received: Sequence[Received]) -> str:
    """``3 messages: 2 filed, 1 unmatched``, in the order of IntakeOutcome."""
    counts: dict[str, int] = {}
    for r in received:
        counts[r.message.outcome] = counts.get(r.message.outcome, 0) + 1
    said = ", ".join(f"{counts[o]} {OUTCOME_SAID[o]}" for o in IntakeOutcome.values if o in counts)
    total = len(received)
    return f"{total} message{'s' if total != 1 else ''}: {said or 'none'}"


# --- Who sent it ---------------------------------------------------------------------------------


class Senders:
    """The reference labs by their MSH-3/MSH-4 and their parsed profiles, read once per batch; and
    each test's analytes with their ranges (lab.sendouts.filing.Analytes), read once per batch too.

    A batch is one ``receive`` call: an ``hl7_import`` run, one MLLP block, one upload. A message
    whose filing fails is rolled back to its savepoint, and with it any analyte it added: ``forget``
    drops the analytes read so far, so the next message reads them again.
    """

    def __init__(self) -> None:
        self._labs: dict[tuple[str, str], ReferenceLab | None] = {}
        self._labs_by_pk: dict[int, ReferenceLab] = {}
        self._tests: dict[int, TestDefinition] = {}
        self._profiles: dict[int, DialectProfile] = {}
        self._analytes: dict[int, Analytes] = {}

    def lab(self, application: str, facility: str) -> ReferenceLab | None:
        key = (application, facility)
        if key not in self._labs:
            self._labs[key] = (
                ReferenceLab.objects.select_related("profile")
                .filter(their_application=application, their_facility=facility)
                .first()
            )
        return self._labs[key]

    def lab_by_pk(self, pk: int) -> ReferenceLab:
        known = self._labs_by_pk.get(pk)
        if known is None:
            known = next((lab for lab in self._labs.values() if lab is not None and lab.pk == pk), None)
            known = self._labs_by_pk[pk] = known or ReferenceLab.objects.get(pk=pk)
        return known

    def test(self, pk: int) -> TestDefinition:
        known = self._tests.get(pk)
        if known is None:
            known = self._tests[pk] = TestDefinition.objects.get(pk=pk)
        return known

    def profile(self, lab: ReferenceLab) -> DialectProfile:
        known = self._profiles.get(lab.pk)
        if known is None:
            known = self._profiles[lab.pk] = lab.profile.as_profile()
        return known

    def analytes(self, order: TestOrder) -> Analytes:
        """The order's test's analytes and ranges, as this batch has read (and added to) them."""
        known = self._analytes.get(order.test_id)
        if known is None:
            known = self._analytes[order.test_id] = Analytes(order)
        return known

    def forget(self) -> None:
        """Read the analytes afresh: what a rolled-back filing added to them is gone."""
        self._analytes.clear()


# --- The way in ------------------------------------------------------------------------------------


@dataclass
class Received:
    """One message as the caller reports it: the stored row, and its ACK (for MLLP)."""

    message: InboundMessage
    ack_code: str  # AA, or AR for input that isn't HL7

    def as_json(self) -> dict[str, object]:
        """The object ``hl7_import --json`` prints for this message."""
        m = self.message
        return {
            "control_id": m.control_id,
            "sending_lab": m.reference_lab.name if m.reference_lab_id and m.reference_lab else m.sending_facility,
            "outcome": str(m.outcome),
            "placer": m.placer,
            "accession": m.accession,
            "observations_filed": m.observations_filed,
            "critical": m.critical,
            "detail": m.detail,
        }


# How many messages are stored together (one transaction), then matched and filed together (another):
# an hl7_import file or an upload goes in pieces of this many; the MLLP listener's block is one.
CHUNK = 250


def receive(
    data: bytes | str,
    *,
    channel: str,
    source: str = "",
    by: User | None = None,
    senders: Senders | None = None,
) -> list[Received]:
    """Store, match and file every message of ``data`` in order; one Received each (never an exception
    for bad input: it is stored as rejected). ``by`` is the person uploading, else the system user."""
    if channel not in IntakeChannel.values:
        raise ValueError(f"unknown intake channel {channel!r}")
    actor = by or system_user()
    senders = senders or Senders()
    texts = split_messages(data) if data else []
    if not texts or not any(t.strip() for t in texts):
        texts = [data.decode("latin-1") if isinstance(data, bytes) else data]
    received: list[Received] = []
    # The history rows the intake writes say where they came from (as a page's say which request).
    with pghistory.context(intake=channel, source=source[:300], user=actor.pk):
        for piece in _pieces(texts):
            received += _receive_piece(piece, channel=channel, source=source, by=actor, senders=senders)
    return received


def _pieces(texts: Sequence[str]) -> list[list[str]]:
    """``texts`` in file order, cut every CHUNK messages and before a message that repeats one earlier
    in its piece (same sender and MSH-10): the first is filed before its repeat is stored as its duplicate."""
    pieces: list[list[str]] = [[]]
    seen: set[tuple[str, str, str]] = set()
    for text in texts:
        key = _key_of(text)
        if len(pieces[-1]) >= CHUNK or (key is not None and key in seen):
            pieces.append([])
            seen = set()
        pieces[-1].append(text)
        if key is not None:
            seen.add(key)
    return [p for p in pieces if p]


def _key_of(text: str) -> tuple[str, str, str] | None:
    try:
        header = message_header(text)
    except HL7ParseError:
        return None
    return (
        (header.sending_application[:60], header.sending_facility[:60], header.control_id[:60])
        if header.control_id
        else None
    )


def _receive_piece(texts: Sequence[str], *, channel: str, source: str, by: User, senders: Senders) -> list[Received]:
    """Store the messages (committed), then match and file those received in one transaction. Should
    that fail, each is matched and filed alone, so one message's error leaves it stored and ``received``
    with the error in its detail, and files the others."""
    messages = _store_all(texts, channel=channel, source=source, by=by, senders=senders)
    waiting = [m for m in messages if m.outcome == IO.RECEIVED]
    if len(waiting) > 1:
        try:
            with transaction.atomic():
                _process_all(waiting, by=by, senders=senders)
        except Exception:
            logger.warning("HL7 intake: filing %d messages together failed: filing each alone", len(waiting))
            senders.forget()
            fresh = InboundMessage.objects.select_related("reference_lab").in_bulk([m.pk for m in waiting])
            messages = [fresh.get(m.pk, m) for m in messages]
            for message in messages:
                if message.pk in fresh:
                    _process_alone(message, by=by, senders=senders)
    elif waiting:
        _process_alone(waiting[0], by=by, senders=senders)
    return [Received(m, "AR" if m.outcome == IO.REJECTED else "AA") for m in messages]


def _process_alone(message: InboundMessage, *, by: User, senders: Senders) -> None:
    try:
        with transaction.atomic():
            _process_all([message], by=by, senders=senders)
    except Exception as exc:  # whatever went wrong, the stored message is kept
        logger.exception("HL7 intake: message %s stored but not filed", message.pk)
        senders.forget()
        message.refresh_from_db()
        why = f"Stored, not filed: {type(exc).__name__}: {exc}"[:_DETAIL]
        InboundMessage.objects.filter(pk=message.pk).update(detail=why)
        message.detail = why


def store_rejected(raw: str, *, reason: str, channel: str, source: str = "", by: User | None = None) -> Received:
    """Keep what a transport refused before the intake could read it (the MLLP listener's AR)."""
    with transaction.atomic():
        base: dict[str, object] = {"channel": channel, "source": source[:300], "raw": raw}
        message = _rejected(base, by=by or system_user(), detail=f"Refused: {reason}")
    return Received(message, "AR")


def ack(received: Received, *, text: str = "") -> str:
    """The original-mode ACK for a stored message: MSA-1 AA (AR for input that isn't HL7), MSA-2 its MSH-10."""
    message = received.message
    lab = message.reference_lab
    sender = Endpoint(
        HierarchicDesignator(lab.our_application if lab else OUR_APPLICATION),
        HierarchicDesignator(lab.our_facility if lab else OUR_FACILITY),
    )
    if not text and received.ack_code != "AA":
        text = message.detail
    return build_ack(
        read_header(message.raw),
        code=received.ack_code,
        text=text[:80],
        sender=sender,
        control_id=uuid.uuid4().hex[:20],
        now=timezone.localtime(),
    )


# --- 1. Store --------------------------------------------------------------------------------------


def _store_all(
    texts: Sequence[str], *, channel: str, source: str, by: User, senders: Senders, retry: bool = True
) -> list[InboundMessage]:
    """Write each raw message with its header, as received, rejected (not HL7) or a duplicate of one
    received before, and commit: a few statements for the whole piece."""
    base: dict[str, object] = {"channel": channel, "source": source[:300]}
    now = timezone.now()
    messages: list[InboundMessage] = []
    for text in texts:
        try:
            header = message_header(text)
        except HL7ParseError as exc:
            messages.append(_new(base, raw=text, outcome=IO.REJECTED, detail=f"Not HL7: {exc}", now=now))
            continue
        fields: dict[str, object] = {
            "control_id": header.control_id[:60],
            "sending_application": header.sending_application[:60],
            "sending_facility": header.sending_facility[:60],
            "message_type": header.message_type[:20],
            "hl7_version": header.version[:10],
            "reference_lab": senders.lab(header.sending_application, header.sending_facility),
        }
        messages.append(_new(base | fields, raw=text, outcome=IO.RECEIVED, detail="", now=now))
    try:
        with transaction.atomic():
            originals = _originals_of(messages)
            for message in messages:
                original = originals.get(_key(message))
                if message.outcome == IO.RECEIVED and original is not None:
                    _as_duplicate(message, original)
            bulk.insert(messages)
            actions: dict[str, str] = {IO.RECEIVED: Event.Action.RECEIVED, IO.REJECTED: Event.Action.REJECTED}
            batch = Batch()
            for message in messages:
                action = actions.get(message.outcome, Event.Action.DUPLICATE)
                batch.record(message, by=by, action=action, created=True, note=message.detail, at=now)
            batch.flush()
    except IntegrityError:
        # The same message arriving twice at once: the other copy won the unique constraint. Alone,
        # this one is stored as its duplicate; in a piece, each is stored alone to find which.
        if not retry:
            raise
        alone = len(texts) == 1
        return [
            m
            for text in texts
            for m in _store_all([text], channel=channel, source=source, by=by, senders=senders, retry=not alone)
        ]
    return messages


def _new(fields: Mapping[str, object], *, raw: str, outcome: str, detail: str, now: datetime) -> InboundMessage:
    return InboundMessage(
        **fields,
        raw=raw,
        received_at=now,
        outcome=outcome,
        detail=detail[:_DETAIL],
        processed_at=now if outcome != IO.RECEIVED else None,
    )


def _key(message: InboundMessage) -> tuple[str, str, str]:
    return (message.sending_application, message.sending_facility, message.control_id)


def _originals_of(messages: Sequence[InboundMessage]) -> dict[tuple[str, str, str], InboundMessage]:
    """The messages received before these (by sender and MSH-10), in one query."""
    keys = {_key(m) for m in messages if m.outcome == IO.RECEIVED and m.control_id}
    if not keys:
        return {}
    # On all three columns of the unique index (inbound_message_once_per_sender) and its condition, so
    # the planner reads that index; on control_id alone it scanned every message ever received.
    rows = (
        InboundMessage.objects.filter(
            sending_application__in={k[0] for k in keys},
            sending_facility__in={k[1] for k in keys},
            control_id__in={k[2] for k in keys},
        )
        .exclude(control_id="")
        .exclude(outcome=IO.DUPLICATE)
    )
    return {_key(m): m for m in rows if _key(m) in keys}


def _as_duplicate(message: InboundMessage, original: InboundMessage) -> None:
    when = timezone.localtime(original.received_at)
    detail = f"Already received {when:%m/%d/%Y %H:%M} ({original.get_outcome_display().lower()}): nothing new filed"
    message.outcome, message.detail, message.duplicate_of = IO.DUPLICATE, detail[:_DETAIL], original
    message.processed_at = message.received_at


def _rejected(fields: Mapping[str, object], *, by: User, detail: str) -> InboundMessage:
    """What a transport refused, stored alone with its event."""
    now = timezone.now()
    message = _new(
        {k: v for k, v in fields.items() if k != "raw"},
        raw=str(fields["raw"]),
        outcome=IO.REJECTED,
        detail=detail,
        now=now,
    )
    message.save()
    record(message, by=by, action=Event.Action.REJECTED, created=True, note=detail, at=now)
    return message


# --- 2. Match ------------------------------------------------------------------------------------------


@dataclass
class Match:
    group: OrderGroup
    send_out: SendOut | None
    why: str = ""  # why there is no send-out, or what to know about the one found


def _related(queryset):  # type: ignore[no-untyped-def]
    return queryset.select_related(
        "order__handoff__patient", "order__specimen", "order__test", "orderable", "reference_lab"
    )


def match_group(group: OrderGroup, lab: ReferenceLab, candidates: Candidates | None = None) -> Match:
    """The send-out this order group reports on, by exact placer number and accession, or why none.
    ``candidates`` are those read for a whole piece of messages (read for this group alone if not given)."""
    placer, accession = group.placer, group.accession
    if not placer and not accession:
        return Match(group, None, "no placer number or accession where the lab's profile looks")
    found = (candidates or Candidates([group])).of(group)
    return _choose(group, lab, found, placer=placer, accession=accession)


# What matching reads of a candidate: its keys and the order's patient (the identity check). The
# rest (its lab, test and orderable) is read when a refusal names them; filing locks and re-reads it.
_MATCH_RELATED = ("order__specimen", "order__handoff__patient")


class Candidates:
    """The send-outs any of these order groups' placer numbers or accessions name, read for a piece
    of messages at once; ``of(group)`` picks a group's own.

    First the placers' (one query on placer_number). An accession is then looked up only where a
    group names it and its placer found no send-out in that tube: the specimens it names, then their
    send-outs (two queries on their indexes; joined to the specimens by accession, the planner
    merge-joined the whole of lab_testorder's specimen index). Where the placer did find one, that
    send-out is all the disagreement check needs (lab.sendouts.intake._choose). So a lab that sends
    both keys, and they agree, costs one query a piece.
    """

    def __init__(self, groups: Sequence[OrderGroup]) -> None:
        self.by_placer: dict[str, list[SendOut]] = {}
        self.by_accession: dict[str, list[SendOut]] = {}
        self._seen: set[int] = set()
        placers = {g.placer for g in groups if g.placer}
        if placers:
            self._add(SendOut.objects.filter(placer_number__in=placers))
        wanted = {
            g.accession
            for g in groups
            if g.accession and not any(_accession(s) == g.accession for s in self.by_placer.get(g.placer, ()))
        }
        if wanted:
            specimens = list(Specimen.objects.filter(accession__in=wanted).order_by().values_list("pk", flat=True))
            if specimens:
                self._add(SendOut.objects.filter(order__specimen__in=specimens))

    def _add(self, queryset: QuerySet[SendOut]) -> None:
        for send_out in queryset.select_related(*_MATCH_RELATED).order_by():
            if send_out.pk in self._seen:
                continue
            self._seen.add(send_out.pk)
            self.by_placer.setdefault(send_out.placer_number, []).append(send_out)
            specimen = send_out.order.specimen
            if specimen is not None:
                self.by_accession.setdefault(specimen.accession, []).append(send_out)

    def of(self, group: OrderGroup) -> list[SendOut]:
        found = self.by_placer.get(group.placer, []) if group.placer else []
        found = found + (self.by_accession.get(group.accession, []) if group.accession else [])
        return list({s.pk: s for s in found}.values())


def _choose(group: OrderGroup, lab: ReferenceLab | None, candidates: list[SendOut], *, placer: str, accession: str):  # type: ignore[no-untyped-def]
    by_placer = [c for c in candidates if placer and c.placer_number == placer]
    by_accession = [c for c in candidates if accession and c.order.specimen and c.order.specimen.accession == accession]
    said = f"placer {placer or '—'} / accession {accession or '—'}"
    if by_placer:
        found = by_placer[0]
        if by_accession and found not in by_accession:
            other = by_accession[0]
            return Match(
                group,
                None,
                f"placer {placer} is {found.order.test.short_name} but accession {accession} is {other.placer_number}'s: they disagree",
            )
    elif len(by_accession) == 1:
        found = by_accession[0]
    elif by_accession:
        named = [
            c
            for c in by_accession
            if (group.service_code and c.orderable.lab_code == group.service_code)
            or (group.service_loinc and c.order.test.loinc_code == group.service_loinc)
        ]
        if len(named) != 1:
            return Match(
                group,
                None,
                f"accession {accession} holds {len(by_accession)} send-out tests and OBR-4 doesn't say which",
            )
        found = named[0]
    else:
        return Match(group, None, f"no order has {said}")
    if lab is not None and found.reference_lab_id != lab.pk:
        return Match(group, None, f"placer {found.placer_number} was sent to {found.reference_lab}, not {lab}")
    if found.status == SO.CANCELLED:
        return Match(group, None, f"placer {found.placer_number} was cancelled at the desk")
    return Match(group, found)


# --- 3 and 4. Check identity, file -------------------------------------------------------------------------


@dataclass
class Outcome:
    outcome: str
    detail: str
    send_out: SendOut | None = None
    placer: str = ""
    accession: str = ""
    filed: list[Filed] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(f.count for f in self.filed)

    @property
    def critical(self) -> bool:
        return any(f.critical for f in self.filed)


def _patient_line(send_out: SendOut) -> str:
    patient = send_out.order.handoff.patient
    return f"{patient.family_name.upper()}, {patient.given_name} · born {patient.date_of_birth.isoformat()} · MRN {patient.mrn}"


def _check_identities(matches: Sequence[Match]) -> Outcome | None:
    for m in matches:
        assert m.send_out is not None
        wrong = identity_disagreements(m.group.identity, m.send_out.order.handoff.patient)
        if wrong:
            detail = (
                f"The patient disagrees with placer {m.send_out.placer_number} on {', '.join(wrong)}. "
                f"The message: {identity_text(m.group.identity)}. The order: {_patient_line(m.send_out)}."
            )
            return Outcome(IO.IDENTITY_HOLD, detail, m.send_out, m.group.placer, m.group.accession)
    return None


def _mrn_notes(matches: Sequence[Match]) -> list[str]:
    notes = []
    for m in matches:
        assert m.send_out is not None
        patient = m.send_out.order.handoff.patient
        if mrn_differs(m.group.identity, patient):
            notes.append(
                f"the lab's MRN {m.group.identity.our_mrn} is not the order's ({patient.mrn}); name and DOB agree"
            )
    return notes


def _lock_all(
    send_outs: Sequence[SendOut], senders: Senders
) -> dict[int, tuple[SendOut, TestOrder, dict[tuple[int, str], Result]]]:
    """Lock these send-outs, then their test orders (each in id order, in one query) and the orders'
    released results: what filing decides on is what is committed, and stays so until it is done.
    Their patient, handoff and specimen are those the match read (filing changes none of them); the
    test and the lab come from the batch's own (``senders``)."""
    matched = {s.pk: s for s in send_outs}
    locked = SendOut._base_manager.select_for_update(no_key=True, of=("self",)).filter(pk__in=sorted(matched))
    by_pk = {s.pk: s for s in locked.order_by("pk")}
    orders = TestOrder._base_manager.select_for_update(no_key=True, of=("self",))
    order_of = {o.pk: o for o in orders.filter(pk__in=sorted({s.order_id for s in by_pk.values()})).order_by("pk")}
    current = current_results_of(list(order_of.values()))
    out = {}
    for pk, send_out in by_pk.items():
        order = send_out.order = order_of[send_out.order_id]
        seen = matched[pk].order
        if order.handoff_id == seen.handoff_id:
            order.handoff = seen.handoff
        if order.specimen_id == seen.specimen_id:
            order.specimen = seen.specimen
        order.test = senders.test(order.test_id)
        send_out.reference_lab = senders.lab_by_pk(send_out.reference_lab_id)
        out[pk] = (send_out, order, current[order.pk])
    return out


def _file_all(
    items: Sequence[tuple[InboundMessage, Sequence[Match]]], *, by: User, senders: Senders, batch: Batch
) -> list[Outcome]:
    """File every matched group of these messages (no send-out in two of them), their send-outs and
    orders locked together, all their results written at once; move each send-out (and its test)
    along with what the lab reported, queued on ``batch``. One Outcome per message."""
    locked = _lock_all([m.send_out for _, matches in items for m in matches if m.send_out is not None], senders)
    read: list[tuple[InboundMessage, Sequence[Match], list[Filed]]] = []
    for message, matches in items:
        filed = []
        for m in matches:
            assert m.send_out is not None
            send_out, order, current = locked[m.send_out.pk]
            filed.append(
                file_order_group(
                    message=message,
                    group=m.group,
                    send_out=send_out,
                    order=order,
                    lab=send_out.reference_lab,
                    current=current,
                    by=by,
                    analytes=senders.analytes(order),
                )
            )
        read.append((message, matches, filed))
    report_filed([f for _, _, filed in read for f in filed], by=by)
    outcomes = []
    for message, matches, filed in read:
        for m, one in zip(matches, filed, strict=True):
            assert m.send_out is not None
            send_out, order, _ = locked[m.send_out.pk]
            _advance(send_out, order, m.group, one, by=by, message=message, batch=batch)
        outcomes.append(_filed_outcome(matches, filed))
    return outcomes


def _filed_outcome(matches: Sequence[Match], filed: Sequence[Filed]) -> Outcome:
    first = matches[0].send_out
    assert first is not None
    count = sum(f.count for f in filed)
    amended = sum(f.amended for f in filed)
    replaced = sum(f.replaced for f in filed)
    outcome = IO.AMENDED if amended else IO.SUPERSEDED if replaced else IO.MATCHED
    keys = ", ".join(f"placer {m.send_out.placer_number}" for m in matches if m.send_out is not None)
    parts = [f"Filed {count} result{'s' if count != 1 else ''} to {keys}"]
    if amended:
        parts.append(f"{amended} correction{'s' if amended != 1 else ''}")
    if replaced:
        parts.append(f"{replaced} preliminary superseded")
    unchanged = sum(f.unchanged for f in filed)
    if unchanged:
        parts.append(f"{unchanged} unchanged")
    skipped = [s for f in filed for s in f.skipped]
    detail = "; ".join(parts + skipped + _mrn_notes(matches))
    return Outcome(outcome, detail, first, first.placer_number, _accession(first), list(filed))


def _accession(send_out: SendOut) -> str:
    specimen = send_out.order.specimen
    return specimen.accession if specimen else ""


def _group_status(group: OrderGroup) -> str:
    """What the report says of the whole order: OBR-25, else its rows (any preliminary one keeps it preliminary)."""
    if group.status in ("P", "F", "C", "X"):
        return group.status
    statuses = {report_status(o, group) for o in group.observations} - {None}
    if statuses and statuses <= {"X"}:
        return "X"
    return "P" if "P" in statuses else "F"


def _advance(
    send_out: SendOut,
    order: TestOrder,
    group: OrderGroup,
    filed: Filed,
    *,
    by: User,
    message: InboundMessage,
    batch: Batch,
) -> None:
    status = _group_status(group)
    A = SendOutEvent.Action
    note = f"{filed.count} filed from message {message.control_id or message.pk}"
    if status == "X":
        _cancelled_by_lab(send_out, order, by=by, batch=batch, note=f"Cancelled by {send_out.reference_lab} (OBR-25 X)")
        return
    target = SO.PRELIMINARY if status == "P" else SO.FINAL
    if SEND_OUT.allows(send_out.status, target):
        fields: tuple[str, ...] = ()
        if target == SO.FINAL:
            send_out.final_at = timezone.now()
            fields = ("final_at",)
        action = A.PRELIMINARY if target == SO.PRELIMINARY else A.FINAL
        batch.move(send_out, table=SEND_OUT, to=target, by=by, action=action, note=note, fields=fields)
    elif send_out.status == SO.FINAL:
        action = A.CORRECTED if filed.amended else A.FINAL if status != "P" else A.PRELIMINARY
        if filed.count or status == "C":
            batch.record(send_out, by=by, action=action, note=note)
    else:
        # Results for an order the desk hasn't marked sent: filed (the keys and the patient agree), said.
        action = A.PRELIMINARY if status == "P" else A.FINAL
        batch.record(
            send_out, by=by, action=action, note=f"{note}, while the desk shows it {SEND_OUT.name(send_out.status)}"
        )
    if send_out.status == SO.FINAL and order.status == TestOrderStatus.SENT_OUT:
        # For its turnaround (lab.turnaround): a send-out's results are in, and released, with its final.
        order.released_at = send_out.final_at or timezone.now()
        order.resulted_at = order.resulted_at or order.released_at
        batch.move(
            order,
            table=TEST_ORDER,
            to=TestOrderStatus.RESULTED,
            by=by,
            action=TestOrderEvent.Action.RESULTED,
            note=f"Placer {send_out.placer_number}: final from {send_out.reference_lab}",
            fields=("released_at", "resulted_at"),
        )


def _cancelled_by_lab(send_out: SendOut, order: TestOrder, *, by: User, batch: Batch, note: str) -> None:
    """The lab cancelled the test: the send-out is cancelled and the ordering clinician told (their list)."""
    if SEND_OUT.allows(send_out.status, SO.CANCELLED):
        batch.move(send_out, table=SEND_OUT, to=SO.CANCELLED, by=by, action=SendOutEvent.Action.CANCELLED, note=note)
    else:
        batch.record(send_out, by=by, action=SendOutEvent.Action.CANCELLED, note=note)
    if TEST_ORDER.allows(order.status, TestOrderStatus.CANCELLED):
        order.cancel_reason, order.cancel_note, order.cancelled_by = CancelReason.OTHER, note[:300], by
        batch.move(
            order,
            table=TEST_ORDER,
            to=TestOrderStatus.CANCELLED,
            by=by,
            action=TestOrderEvent.Action.CANCELLED,
            note=note,
            fields=("cancel_reason", "cancel_note", "cancelled_by"),
        )


def _parse(message: InboundMessage, senders: Senders, lab: ReferenceLab | None = None) -> ParsedMessage:
    lab = lab or message.reference_lab
    return parse_oru(message.raw, senders.profile(lab) if lab else ANY_PLACE, is_ours=is_mrn)


def _not_a_result(message: InboundMessage, parsed: ParsedMessage) -> str:
    if parsed.message_type != "ORU":
        kind = message.message_type or "a message with no type"
        return f"{kind} is not a result message (ORU^R01): kept here for review"
    if not parsed.orders:
        return "No order (OBR) in the message: kept here for review"
    if message.reference_lab is None:
        return (
            f"No reference lab sends as MSH-3 {message.sending_application or '—'} / MSH-4 "
            f"{message.sending_facility or '—'}: add it in admin, or attach the message to its order"
        )
    return ""


def _process_all(messages: Sequence[InboundMessage], *, by: User, senders: Senders) -> None:
    """Match and file messages ``_store_all`` has stored and committed, in file order, in the
    caller's transaction. Their rows are locked first; one another process has concluded meanwhile
    is left as it is. Each message is read, matched (the whole piece's keys in one query), checked
    and filed; a message naming a send-out an earlier one of the piece files to waits for the next
    round, which reads the send-out as the earlier one left it."""
    ours = set(
        InboundMessage._base_manager.select_for_update(no_key=True, of=("self",))
        .filter(pk__in=[m.pk for m in messages], outcome=IO.RECEIVED)
        .values_list("pk", flat=True)
    )
    batch = Batch()
    pending: list[tuple[InboundMessage, ParsedMessage]] = []
    for message in messages:
        if message.pk not in ours:
            continue
        INBOUND.check(message.outcome, IO.MATCHED)
        try:
            parsed = _parse(message, senders)
        except HL7ParseError as exc:
            not_hl7 = Outcome(IO.REJECTED, f"Not HL7: {exc}")
            _conclude(message, not_hl7, by=by, batch=batch, action=Event.Action.REJECTED)
            continue
        message.patient_text = identity_text(parsed.identity)[:200]
        message.tests_text = ", ".join(
            dict.fromkeys(g.service_text or g.service_loinc_text or g.service_code for g in parsed.orders)
        )[:200]
        why = _not_a_result(message, parsed)
        if why:
            first = parsed.orders[0] if parsed.orders else None
            placer, accession = (first.placer, first.accession) if first else ("", "")
            _conclude(message, Outcome(IO.UNMATCHED, why, None, placer, accession), by=by, batch=batch)
        else:
            pending.append((message, parsed))
    while pending:
        candidates = Candidates([g for _, parsed in pending for g in parsed.orders])
        used: set[int] = set()
        later: list[tuple[InboundMessage, ParsedMessage]] = []
        to_file: list[tuple[InboundMessage, Sequence[Match]]] = []
        for message, parsed in pending:
            assert message.reference_lab is not None
            matches = [match_group(group, message.reference_lab, candidates) for group in parsed.orders]
            touched = {m.send_out.pk for m in matches if m.send_out is not None}
            if touched & used:
                later.append((message, parsed))
                continue
            used |= touched
            refused = _refusal(matches)
            if refused is not None:
                _conclude(message, refused, by=by, batch=batch)
            else:
                to_file.append((message, matches))
        outcomes = _file_all(to_file, by=by, senders=senders, batch=batch)
        for (message, _), outcome in zip(to_file, outcomes, strict=True):
            _conclude(message, outcome, by=by, batch=batch)
        batch.flush()
        pending = later
    batch.flush()


def _refusal(matches: Sequence[Match]) -> Outcome | None:
    """Why a matched message can't be filed: a group with no order (unmatched), or a patient who disagrees (held)."""
    missing = [m for m in matches if m.send_out is None]
    if missing:
        first = matches[0].group
        return Outcome(
            IO.UNMATCHED, "No order found: " + "; ".join(m.why for m in missing), None, first.placer, first.accession
        )
    return _check_identities(matches)


_ACTIONS: dict[str, str] = {IO.UNMATCHED: Event.Action.UNMATCHED, IO.IDENTITY_HOLD: Event.Action.IDENTITY_HOLD}


def _conclude(message: InboundMessage, outcome: Outcome, *, by: User, batch: Batch, action: str = "") -> None:
    message.detail = outcome.detail[:_DETAIL]
    message.send_out = outcome.send_out
    message.placer, message.accession = outcome.placer[:60], outcome.accession[:60]
    message.observations_filed = min(outcome.count, 32767)
    message.critical = outcome.critical
    message.processed_at = timezone.now()
    fields = ["detail", "send_out", "placer", "accession", "observations_filed", "critical", "processed_at"]
    fields += ["patient_text", "tests_text"]
    action = action or _ACTIONS.get(outcome.outcome, Event.Action.FILED)
    batch.move(message, table=INBOUND, to=outcome.outcome, by=by, action=action, note=message.detail, fields=fields)


# --- The desk's queues -----------------------------------------------------------------------------------


def check_work_queue(message: InboundMessage, by: User) -> None:
    """Who may attach or resolve a queued message: the send-out desk, while it waits in a queue."""
    require(by, DESK_PERM, "work the send-out desk's queues")
    require(by, QUEUE_PERM, "work the send-out desk's queues")
    if not message.is_open:
        if message.resolved_at is not None:
            when = timezone.localtime(message.resolved_at)
            raise TransitionNotAllowed(f"This message was resolved {when:%m/%d %H:%M} by {message.resolved_by}.")
        raise TransitionNotAllowed(
            f"This message is {INBOUND.name(message.outcome)}; only an unmatched or held one is worked here."
        )


def find_send_out(scanned: str) -> list[SendOut]:
    """Send-outs a typed or scanned placer number or accession names (exactly, as text)."""
    value = scanned.strip()
    if not value:
        return []
    query = Q(placer_number=value) | Q(order__specimen__accession=value) | Q(order__specimen__accession=value.upper())
    return list(_related(SendOut.objects.filter(query)))


def _match_typed(group: OrderGroup, typed: str) -> Match:
    """The send-out a person named for this group: by placer number if it is one, else by accession."""
    found = find_send_out(typed)
    if any(f.placer_number == typed for f in found):
        return _choose(group, None, found, placer=typed, accession="")
    return _choose(group, None, found, placer="", accession=typed if typed in _accessions(found) else typed.upper())


def _accessions(send_outs: Sequence[SendOut]) -> set[str]:
    return {s.order.specimen.accession for s in send_outs if s.order.specimen is not None}


class AttachRefused(TransitionNotAllowed):
    """Attaching was refused (recorded on the message): the message says why."""


def inbound_attach(*, message: InboundMessage, targets: Mapping[int, str], by: User, note: str = "") -> InboundMessage:
    """File a queued message to the orders a person names: ``targets`` maps each order group's
    index to a placer number or accession typed or scanned. The identity check still applies; a
    refusal is recorded on the message, and nothing is filed."""
    note = " ".join(note.split())[:200]
    require(by, DESK_PERM, "work the send-out desk's queues")
    refused = ""
    with transaction.atomic():
        lock(message, related=("reference_lab__profile", "resolved_by"))
        check_work_queue(message, by)
        senders = Senders()
        parsed = _parse(message, senders)
        matches: list[Match] = []
        for index, group in enumerate(parsed.orders):
            typed = (targets.get(index) or "").strip()
            if not typed:
                raise TransitionNotAllowed(f"Scan or type the placer number or accession for order {index + 1}.")
            match = _match_typed(group, typed)
            if match.send_out is None:
                raise TransitionNotAllowed(f"{typed}: {match.why}.")
            if message.reference_lab_id and match.send_out.reference_lab_id != message.reference_lab_id:
                raise TransitionNotAllowed(
                    f"Placer {match.send_out.placer_number} was sent to {match.send_out.reference_lab}; this message "
                    f"came from {message.reference_lab}."
                )
            matches.append(match)
        if not matches:
            raise TransitionNotAllowed("The message has no order (OBR) to attach.")
        held = _check_identities(matches)
        batch = Batch()
        if held is not None:
            refused = f"Not attached: {held.detail} Attach it to that patient's order, or resolve it with a reason."
            record(message, by=by, action=Event.Action.ATTACH_REFUSED, note=refused)
        else:
            if message.reference_lab_id is None:
                assert matches[0].send_out is not None
                message.reference_lab = matches[0].send_out.reference_lab
            [outcome] = _file_all([(message, matches)], by=by, senders=senders, batch=batch)
            message.resolved_at, message.resolved_by = timezone.now(), by
            message.resolution = (
                f"Attached to {', '.join(t.strip() for t in targets.values() if t.strip())}"
                + (f": {note}" if note else "")
            )[:300]
            edit(
                message,
                by=by,
                action=Event.Action.ATTACHED,
                note=message.resolution,
                fields=["reference_lab", "resolved_at", "resolved_by", "resolution"],
            )
            _conclude(message, outcome, by=by, batch=batch, action=Event.Action.FILED)
            batch.flush()
    if refused:
        raise AttachRefused(refused)
    return message


def inbound_resolve(*, message: InboundMessage, reason: str, by: User) -> InboundMessage:
    """Close a queued message with a reason (resent by the lab, not ours, a test message): nothing is filed."""
    reason = " ".join(reason.split())
    if not reason:
        raise TransitionNotAllowed("Say why this message needs nothing filed, e.g. “The lab resent it corrected”.")
    require(by, DESK_PERM, "work the send-out desk's queues")
    with transaction.atomic():
        lock(message, related=("resolved_by",))
        check_work_queue(message, by)
        message.resolved_at, message.resolved_by, message.resolution = timezone.now(), by, reason[:300]
        edit(
            message,
            by=by,
            action=Event.Action.RESOLVED,
            note=reason,
            fields=["resolved_at", "resolved_by", "resolution"],
        )
    return message


def message_parsed(message: InboundMessage) -> ParsedMessage | None:
    """The message read for the desk's page (its lab's profile, else every place); None if not HL7."""
    try:
        return _parse(message, Senders())
    except HL7ParseError:
        return None


__all__ = [
    "FILED_OUTCOMES",
    "AttachRefused",
    "Received",
    "Senders",
    "ack",
    "find_send_out",
    "inbound_attach",
    "inbound_resolve",
    "match_group",
    "message_parsed",
    "receive",
]
