"""Taking results back: every ORU^R01 a reference lab sends, from any of the three ways in.

One code path for the MLLP listener (``manage.py hl7_listen``), the file import (``manage.py
hl7_import``) and the desk's upload page: ``receive(data, channel=..., source=..., by=...)``.

1. **Store.** ``split_messages`` cuts the input into messages in file order (batches, MLLP bytes,
   CR/LF/CRLF). Each one's raw text is written with its import record (InboundMessage) first, in its
   own transaction, and committed before anything is acknowledged: the ACK is built from the stored
   row, so an ACK never precedes it. Input that isn't HL7 is stored too, as ``rejected`` (AR); a
   message whose sender and MSH-10 were already received is stored as a ``duplicate`` of it and
   files nothing new (AA: the lab may stop resending).
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

A message is filed all or nothing: every order group must match and pass the identity check. Filing
runs in a savepoint inside the storing transaction, so an unexpected error rolls back what was being
filed and leaves the message stored and ``received``, with the error in its detail, for the desk.

Both queues are worked from the send-out desk (lab.sendouts.inbound): ``inbound_attach`` files a
queued message to the order a person names (recorded; the identity check still applies) and
``inbound_resolve`` closes it with a reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from backoffice.models import User
from backoffice.services import system_user
from backoffice.transitions import edit, lock, move, record, require
from backoffice.workflow import TransitionNotAllowed
from lab.hl7.build import Endpoint, HierarchicDesignator, build_ack, read_header
from lab.hl7.profiles import DialectProfile, MrnPlace
from lab.hl7.read import HL7ParseError, OrderGroup, ParsedMessage, message_header, parse_oru, split_messages
from lab.models import InboundMessage, ReferenceLab, Result, SendOut, SendOutEvent, TestOrder, TestOrderEvent
from lab.models import InboundMessageEvent as Event
from lab.sendouts.filing import (
    Analytes,
    Filed,
    current_results,
    file_order_group,
    identity_disagreements,
    identity_text,
    mrn_differs,
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
    return [receive_one(text, channel=channel, source=source, by=actor, senders=senders) for text in texts]


def receive_one(text: str, *, channel: str, source: str, by: User, senders: Senders) -> Received:
    """One message: stored and committed, then matched and filed in a savepoint of the same transaction."""
    with transaction.atomic():
        message = _store(text, channel=channel, source=source, by=by, senders=senders)
        if message.outcome == IO.RECEIVED:
            try:
                with transaction.atomic():
                    _process(message, by=by, senders=senders)
            except Exception as exc:  # whatever went wrong, the stored message is kept
                logger.exception("HL7 intake: message %s stored but not filed", message.pk)
                senders.forget()
                message.refresh_from_db()
                why = f"Stored, not filed: {type(exc).__name__}: {exc}"[:_DETAIL]
                InboundMessage.objects.filter(pk=message.pk).update(detail=why)
                message.detail = why
    return Received(message, "AR" if message.outcome == IO.REJECTED else "AA")


def store_rejected(raw: str, *, reason: str, channel: str, source: str = "", by: User | None = None) -> Received:
    """Keep what a transport refused before the intake could read it (the MLLP listener's AR)."""
    with transaction.atomic():
        base: dict[str, object] = {"channel": channel, "source": source[:300], "raw": raw}
        message = _create(base, by=by or system_user(), outcome=IO.REJECTED, detail=f"Refused: {reason}")
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


def _store(text: str, *, channel: str, source: str, by: User, senders: Senders) -> InboundMessage:
    """Write the raw message with its header, as received, rejected (not HL7) or a duplicate."""
    base: dict[str, object] = {"channel": channel, "source": source[:300], "raw": text}
    try:
        header = message_header(text)
    except HL7ParseError as exc:
        return _create(base, by=by, outcome=IO.REJECTED, detail=f"Not HL7: {exc}")
    fields: dict[str, object] = {
        "control_id": header.control_id[:60],
        "sending_application": header.sending_application[:60],
        "sending_facility": header.sending_facility[:60],
        "message_type": header.message_type[:20],
        "hl7_version": header.version[:10],
        "reference_lab": senders.lab(header.sending_application, header.sending_facility),
    }
    original = _original_of(fields)
    if original is not None:
        return _duplicate(base | fields, original, by=by)
    try:
        with transaction.atomic():
            return _create(base | fields, by=by, outcome=IO.RECEIVED, detail="")
    except IntegrityError:
        # The same message arriving twice at once: the other copy won the unique constraint.
        original = _original_of(fields)
        if original is None:
            raise
        return _duplicate(base | fields, original, by=by)


def _original_of(fields: Mapping[str, object]) -> InboundMessage | None:
    if not fields["control_id"]:
        return None
    return (
        InboundMessage.objects.filter(
            sending_application=fields["sending_application"],
            sending_facility=fields["sending_facility"],
            control_id=fields["control_id"],
        )
        .exclude(outcome=IO.DUPLICATE)
        .first()
    )


def _duplicate(fields: Mapping[str, object], original: InboundMessage, *, by: User) -> InboundMessage:
    when = timezone.localtime(original.received_at)
    detail = f"Already received {when:%m/%d/%Y %H:%M} ({original.get_outcome_display().lower()}): nothing new filed"
    return _create(fields, by=by, outcome=IO.DUPLICATE, detail=detail, duplicate_of=original)


def _create(fields: Mapping[str, object], *, by: User, outcome: str, detail: str, **extra: object) -> InboundMessage:
    now = timezone.now()
    done = outcome != IO.RECEIVED
    message = InboundMessage.objects.create(
        **fields,
        **extra,
        received_at=now,
        outcome=outcome,
        detail=detail[:_DETAIL],
        processed_at=now if done else None,
    )
    actions: dict[str, str] = {IO.RECEIVED: Event.Action.RECEIVED, IO.REJECTED: Event.Action.REJECTED}
    action = actions.get(outcome, Event.Action.DUPLICATE)
    record(message, by=by, action=action, created=True, note=detail, at=now)
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


def match_group(group: OrderGroup, lab: ReferenceLab) -> Match:
    """The send-out this order group reports on, by exact placer number and accession, or why none."""
    placer, accession = group.placer, group.accession
    if not placer and not accession:
        return Match(group, None, "no placer number or accession where the lab's profile looks")
    return _choose(group, lab, _candidates(placer, accession), placer=placer, accession=accession)


# What matching reads of a candidate: its keys and the order's patient (the identity check). The
# rest (its lab, test and orderable) is read when a refusal names them; filing locks and re-reads it.
_MATCH_RELATED = ("order__specimen", "order__handoff__patient")


def _candidates(placer: str, accession: str) -> list[SendOut]:
    """The send-outs with this placer number or this accession, in one query: a UNION of the two
    lookups, so each uses its index (placer_number; the specimen's accession, then the order's
    specimen and the send-out's order). One WHERE with an OR across the join scans every test order.
    Few joins: planning the query is most of its time, every message."""
    lookups = ([Q(placer_number=placer)] if placer else []) + (
        [Q(order__specimen__accession=accession)] if accession else []
    )
    if not lookups:
        return []
    first, *rest = [SendOut.objects.filter(q).select_related(*_MATCH_RELATED) for q in lookups]
    rows = first.union(*rest, all=True) if rest else first
    return list({s.pk: s for s in rows}.values())


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


def _file(message: InboundMessage, matches: Sequence[Match], *, by: User, senders: Senders | None = None) -> Outcome:
    """File every matched group; move each send-out (and its test) along with what the lab reported."""
    senders = senders or Senders()
    filed: list[Filed] = []
    locked: dict[int, tuple[SendOut, TestOrder, dict[tuple[int, str], Result]]] = {}
    for m in matches:
        assert m.send_out is not None
        if m.send_out.pk not in locked:
            send_out = lock(m.send_out, related=("reference_lab", "orderable"))
            order = lock(TestOrder(pk=send_out.order_id), related=("handoff__patient", "test", "specimen"))
            send_out.order = order
            locked[send_out.pk] = (send_out, order, current_results(order))
        send_out, order, current = locked[m.send_out.pk]
        lab = send_out.reference_lab
        one = file_order_group(
            message=message,
            group=m.group,
            send_out=send_out,
            order=order,
            lab=lab,
            current=current,
            by=by,
            analytes=senders.analytes(order),
        )
        _advance(send_out, order, m.group, one, by=by, message=message)
        filed.append(one)
    first = matches[0]
    assert first.send_out is not None
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
    return Outcome(outcome, detail, first.send_out, first.send_out.placer_number, _accession(first.send_out), filed)


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
    send_out: SendOut, order: TestOrder, group: OrderGroup, filed: Filed, *, by: User, message: InboundMessage
) -> None:
    status = _group_status(group)
    A = SendOutEvent.Action
    note = f"{filed.count} filed from message {message.control_id or message.pk}"
    if status == "X":
        _cancelled_by_lab(send_out, order, by=by, note=f"Cancelled by {send_out.reference_lab} (OBR-25 X)")
        return
    target = SO.PRELIMINARY if status == "P" else SO.FINAL
    if SEND_OUT.allows(send_out.status, target):
        fields: tuple[str, ...] = ()
        if target == SO.FINAL:
            send_out.final_at = timezone.now()
            fields = ("final_at",)
        action = A.PRELIMINARY if target == SO.PRELIMINARY else A.FINAL
        move(send_out, table=SEND_OUT, to=target, by=by, action=action, note=note, fields=fields)
    elif send_out.status == SO.FINAL:
        action = A.CORRECTED if filed.amended else A.FINAL if status != "P" else A.PRELIMINARY
        if filed.count or status == "C":
            record(send_out, by=by, action=action, note=note)
    else:
        # Results for an order the desk hasn't marked sent: filed (the keys and the patient agree), said.
        action = A.PRELIMINARY if status == "P" else A.FINAL
        record(send_out, by=by, action=action, note=f"{note}, while the desk shows it {SEND_OUT.name(send_out.status)}")
    if send_out.status == SO.FINAL and order.status == TestOrderStatus.SENT_OUT:
        move(
            order,
            table=TEST_ORDER,
            to=TestOrderStatus.RESULTED,
            by=by,
            action=TestOrderEvent.Action.RESULTED,
            note=f"Placer {send_out.placer_number}: final from {send_out.reference_lab}",
        )


def _cancelled_by_lab(send_out: SendOut, order: TestOrder, *, by: User, note: str) -> None:
    """The lab cancelled the test: the send-out is cancelled and the ordering clinician told (their list)."""
    if SEND_OUT.allows(send_out.status, SO.CANCELLED):
        move(send_out, table=SEND_OUT, to=SO.CANCELLED, by=by, action=SendOutEvent.Action.CANCELLED, note=note)
    else:
        record(send_out, by=by, action=SendOutEvent.Action.CANCELLED, note=note)
    if TEST_ORDER.allows(order.status, TestOrderStatus.CANCELLED):
        order.cancel_reason, order.cancel_note, order.cancelled_by = CancelReason.OTHER, note[:300], by
        move(
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
    return parse_oru(message.raw, senders.profile(lab) if lab else ANY_PLACE)


def _decide(
    message: InboundMessage, parsed: ParsedMessage, matches: list[Match], *, by: User, senders: Senders
) -> Outcome:
    missing = [m for m in matches if m.send_out is None]
    if missing:
        first = matches[0].group
        return Outcome(
            IO.UNMATCHED, "No order found: " + "; ".join(m.why for m in missing), None, first.placer, first.accession
        )
    held = _check_identities(matches)
    if held is not None:
        return held
    return _file(message, matches, by=by, senders=senders)


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


def _process(message: InboundMessage, *, by: User, senders: Senders) -> None:
    """Match and file a message ``receive_one`` has just stored. Its row was written in this very
    transaction: no other one can see it yet, let alone change it, so it is neither locked nor re-read."""
    INBOUND.check(message.outcome, IO.MATCHED)
    try:
        parsed = _parse(message, senders)
    except HL7ParseError as exc:
        _conclude(message, Outcome(IO.REJECTED, f"Not HL7: {exc}"), by=by, action=Event.Action.REJECTED)
        return
    message.patient_text = identity_text(parsed.identity)[:200]
    message.tests_text = ", ".join(
        dict.fromkeys(g.service_text or g.service_loinc_text or g.service_code for g in parsed.orders)
    )[:200]
    why = _not_a_result(message, parsed)
    if why:
        first = parsed.orders[0] if parsed.orders else None
        outcome = Outcome(IO.UNMATCHED, why, None, first.placer if first else "", first.accession if first else "")
    else:
        assert message.reference_lab is not None
        matches = [match_group(group, message.reference_lab) for group in parsed.orders]
        outcome = _decide(message, parsed, matches, by=by, senders=senders)
    _conclude(message, outcome, by=by)


_ACTIONS: dict[str, str] = {IO.UNMATCHED: Event.Action.UNMATCHED, IO.IDENTITY_HOLD: Event.Action.IDENTITY_HOLD}


def _conclude(message: InboundMessage, outcome: Outcome, *, by: User, action: str = "") -> None:
    message.detail = outcome.detail[:_DETAIL]
    message.send_out = outcome.send_out
    message.placer, message.accession = outcome.placer[:60], outcome.accession[:60]
    message.observations_filed = min(outcome.count, 32767)
    message.critical = outcome.critical
    message.processed_at = timezone.now()
    fields = ["detail", "send_out", "placer", "accession", "observations_filed", "critical", "processed_at"]
    fields += ["patient_text", "tests_text"]
    action = action or _ACTIONS.get(outcome.outcome, Event.Action.FILED)
    move(message, table=INBOUND, to=outcome.outcome, by=by, action=action, note=message.detail, fields=fields)


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
        if held is not None:
            refused = f"Not attached: {held.detail} Attach it to that patient's order, or resolve it with a reason."
            record(message, by=by, action=Event.Action.ATTACH_REFUSED, note=refused)
        else:
            if message.reference_lab_id is None:
                assert matches[0].send_out is not None
                message.reference_lab = matches[0].send_out.reference_lab
            outcome = _file(message, matches, by=by, senders=senders)
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
            _conclude(message, outcome, by=by, action=Event.Action.FILED)
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
