"""Allowed status moves for lab test orders, as data.

Readable and testable without a database; lab.services moves a status only through
backoffice.transitions.move with the TEST_ORDER table, and nothing else assigns one.

    ordered ──► collected ──► in progress ──► resulted
       │  ▲         │              │
       │  └─────────┴──────────────┘ (its specimen was rejected: collect again)
       │            └──► sent out ──► resulted
       └──► cancelled ◄─ (collected or sent out: a send-out cancelled at the desk, the lab told)
"""

from django.db import models

from backoffice.workflow import Table


class TestOrderStatus(models.TextChoices):
    ORDERED = "ordered", "Ordered"
    COLLECTED = "collected", "Collected"
    IN_PROGRESS = "in_progress", "In progress"
    SENT_OUT = "sent_out", "Sent out"
    RESULTED = "resulted", "Resulted"
    CANCELLED = "cancelled", "Cancelled"


S = TestOrderStatus

TEST_ORDER_MOVES: dict[str, frozenset[str]] = {
    S.ORDERED: frozenset({S.COLLECTED, S.CANCELLED}),
    S.COLLECTED: frozenset({S.ORDERED, S.IN_PROGRESS, S.SENT_OUT, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.ORDERED, S.RESULTED}),
    S.SENT_OUT: frozenset({S.RESULTED, S.CANCELLED}),
    S.RESULTED: frozenset(),
    S.CANCELLED: frozenset(),
}

TEST_ORDER = Table(label="lab test", states=TestOrderStatus, moves=TEST_ORDER_MOVES)


class CancelReason(models.TextChoices):
    """Why an ordered test won't be done; the ordering clinician is told."""

    PATIENT_REFUSED = "refused", "Patient refused"
    COULD_NOT_COLLECT = "not_collected", "Could not be collected"
    NOT_NEEDED = "not_needed", "No longer needed (clinician's decision)"
    ORDERED_IN_ERROR = "in_error", "Ordered in error"
    OTHER = "other", "Other (see note)"


# Still needing the patient: nothing has been collected for it (or it must be collected again).
TO_COLLECT_STATUSES: tuple[str, ...] = (S.ORDERED,)


class CallKind(models.TextChoices):
    """Why the clinician calls the patient who has left (RecollectionCall.kind)."""

    RECOLLECT = "recollect", "Come back for a new draw"
    RESULT = "result", "Tell them the result"


class CallStatus(models.TextChoices):
    OPEN = "open", "To call"
    DONE = "done", "Called"


# A rejected specimen of a patient who has left: the ordering clinician calls them back.
CALL = Table(
    label="call-back",
    states=CallStatus,
    moves={CallStatus.OPEN: frozenset({CallStatus.DONE}), CallStatus.DONE: frozenset()},
)


# --- Catalog -------------------------------------------------------------------------------------


class CliaComplexity(models.TextChoices):
    WAIVED = "waived", "Waived"
    MODERATE = "moderate", "Moderate complexity"


class ResultType(models.TextChoices):
    NUMERIC = "numeric", "Numeric (UCUM unit)"
    ORDINAL = "ordinal", "Ordinal / coded (e.g. Negative, Trace, 1+)"
    TEXT = "text", "Text"


class Flag(models.TextChoices):
    """Computed from the value and the patient's age and sex at collection; never typed."""

    NORMAL = "N", "Normal"
    LOW = "L", "Low"
    HIGH = "H", "High"
    CRITICAL_LOW = "LL", "Critically low"
    CRITICAL_HIGH = "HH", "Critically high"
    ABNORMAL = "A", "Abnormal"
    NONE = "", "No flag"


CRITICAL_FLAGS: tuple[str, ...] = (Flag.CRITICAL_LOW, Flag.CRITICAL_HIGH)
ABNORMAL_FLAGS: tuple[str, ...] = (Flag.LOW, Flag.HIGH, Flag.ABNORMAL, *CRITICAL_FLAGS)


# --- Results -------------------------------------------------------------------------------------
#
#     entered ──► verified ──► released ──► superseded (by its amended result, once that is released)
#        ▲   │        │
#        │   │        └──► entered (sent back for a correction before release)
#        │   └──► released (a waived test its performer may release, where the test says so)
#        └── an amended result starts here, pointing at the released result it corrects


class ResultStatus(models.TextChoices):
    ENTERED = "entered", "Entered, to verify"
    VERIFIED = "verified", "Verified"
    RELEASED = "released", "Released"
    SUPERSEDED = "superseded", "Superseded by a correction"


R = ResultStatus

RESULT = Table(
    label="result",
    states=ResultStatus,
    moves={
        R.ENTERED: frozenset({R.VERIFIED, R.RELEASED}),
        R.VERIFIED: frozenset({R.RELEASED, R.ENTERED}),
        R.RELEASED: frozenset({R.SUPERSEDED}),
        R.SUPERSEDED: frozenset(),
    },
)
# What the clinician sees: released results (a superseded one only as the original of a correction).
REPORTED_STATUSES: tuple[str, ...] = (R.RELEASED, R.SUPERSEDED)


# --- Quality control -------------------------------------------------------------------------------


class QCFrequency(models.TextChoices):
    """When controls are due, besides each new lot and each new shipment (the package insert says)."""

    DAILY = "daily", "Each day of testing"
    SHIFT = "shift", "Each shift"
    EVERY_N_DAYS = "n_days", "Every N days"
    LOT_ONLY = "lot", "Each new lot and shipment only"


class ControlLevel(models.TextChoices):
    NEGATIVE = "negative", "Negative control"
    POSITIVE = "positive", "Positive control"
    LEVEL_1 = "level_1", "Level 1 (low)"
    LEVEL_2 = "level_2", "Level 2 (high)"


QUALITATIVE_LEVELS: tuple[str, ...] = (ControlLevel.NEGATIVE, ControlLevel.POSITIVE)
QUANTITATIVE_LEVELS: tuple[str, ...] = (ControlLevel.LEVEL_1, ControlLevel.LEVEL_2)


# --- Critical values ---------------------------------------------------------------------------------


class CriticalCallStatus(models.TextChoices):
    OPEN = "open", "To call"
    CLOSED = "closed", "Called, read back"


CRITICAL_CALL = Table(
    label="critical call",
    states=CriticalCallStatus,
    moves={CriticalCallStatus.OPEN: frozenset({CriticalCallStatus.CLOSED}), CriticalCallStatus.CLOSED: frozenset()},
)


class CallOutcome(models.TextChoices):
    READ_BACK = "read_back", "Reached, value read back"
    NO_READ_BACK = "no_read_back", "Reached, no read-back"
    NOT_REACHED = "not_reached", "Not reached"


class EscalationTarget(models.TextChoices):
    ORDERING = "ordering", "Ordering clinician"
    COVERING = "covering", "Covering clinician"
    DIRECTOR = "director", "Medical director"


# --- Send-outs ----------------------------------------------------------------------------------------
#
#     waiting ──► packed ──► sent ──► preliminary ──► final
#       ▲  │         │         │            │
#       │  │         │         └────────────┴──► final (a correction stays final; it amends)
#       └──┼─────────┘ (taken out of a shipment before it leaves)
#          └──► cancelled ◄── (from waiting, packed, sent or preliminary: the order was cancelled,
#                              or the lab cancelled the test, OBR-25 X)


class SendOutStatus(models.TextChoices):
    WAITING = "waiting", "At the send-out desk"
    PACKED = "packed", "Packed in a shipment"
    SENT = "sent", "Sent, awaiting results"
    PRELIMINARY = "preliminary", "Preliminary results"
    FINAL = "final", "Final results"
    CANCELLED = "cancelled", "Cancelled"


SO = SendOutStatus

SEND_OUT = Table(
    label="send-out",
    states=SendOutStatus,
    moves={
        SO.WAITING: frozenset({SO.PACKED, SO.CANCELLED}),
        SO.PACKED: frozenset({SO.WAITING, SO.SENT, SO.CANCELLED}),
        SO.SENT: frozenset({SO.PRELIMINARY, SO.FINAL, SO.CANCELLED}),
        SO.PRELIMINARY: frozenset({SO.FINAL, SO.CANCELLED}),
        SO.FINAL: frozenset(),
        SO.CANCELLED: frozenset(),
    },
)
# Still the desk's to track: results not all final yet.
OPEN_SEND_OUT_STATUSES: tuple[str, ...] = (SO.WAITING, SO.PACKED, SO.SENT, SO.PRELIMINARY)


class ShipmentStatus(models.TextChoices):
    OPEN = "open", "Being packed"
    DISPATCHED = "dispatched", "Handed to the courier"
    CANCELLED = "cancelled", "Cancelled"


SHIPMENT = Table(
    label="shipment",
    states=ShipmentStatus,
    moves={
        ShipmentStatus.OPEN: frozenset({ShipmentStatus.DISPATCHED, ShipmentStatus.CANCELLED}),
        ShipmentStatus.DISPATCHED: frozenset(),
        ShipmentStatus.CANCELLED: frozenset(),
    },
)


class MessageStatus(models.TextChoices):
    """An order message to a reference lab: queued, acknowledged, or not (yet)."""

    PENDING = "pending", "Queued"
    RETRYING = "retrying", "Failed, retrying"
    ACCEPTED = "accepted", "Acknowledged (AA)"
    DELIVERED = "delivered", "Written to the lab's folder"
    REJECTED = "rejected", "Refused by the lab (AE/AR)"
    GAVE_UP = "gave_up", "Failed, no more retries"
    WITHDRAWN = "withdrawn", "Not sent: the order was cancelled first"


# Still to be transmitted by the worker (lab.sendouts.tasks).
UNSENT_MESSAGE_STATUSES: tuple[str, ...] = (MessageStatus.PENDING, MessageStatus.RETRYING)
# The lab has it: acknowledged over MLLP, or written to the folder its interface engine reads.
DELIVERED_MESSAGE_STATUSES: tuple[str, ...] = (MessageStatus.ACCEPTED, MessageStatus.DELIVERED)


class IntakeOutcome(models.TextChoices):
    """What became of one message a reference lab sent us (``manage.py hl7_import --json`` prints these)."""

    RECEIVED = "received", "Stored, not yet filed"
    MATCHED = "matched", "Filed to its order"
    AMENDED = "amended", "Filed as a correction"
    SUPERSEDED = "superseded", "Final filed over preliminary"
    UNMATCHED = "unmatched", "No order found: in the unmatched queue"
    IDENTITY_HOLD = "identity_hold", "Patient disagrees with the order: on hold"
    DUPLICATE = "duplicate", "Already received"
    REJECTED = "rejected", "Not HL7: refused"


class IntakeChannel(models.TextChoices):
    MLLP = "mllp", "MLLP listener"
    FILE = "file", "File import"
    UPLOAD = "upload", "Uploaded at the desk"


IO = IntakeOutcome
# Filed, one way or another (the outcome ``hl7_import --json`` prints for a message whose results went in).
FILED_OUTCOMES: tuple[str, ...] = (IO.MATCHED, IO.AMENDED, IO.SUPERSEDED)
# The desk's two queues: kept whole, nothing filed, until attached to the right order or resolved.
QUEUE_OUTCOMES: tuple[str, ...] = (IO.UNMATCHED, IO.IDENTITY_HOLD)

#     received ──► matched / amended / superseded (filed)
#        │    ──► unmatched ──┐
#        │    ──► identity hold ─┴──► filed, once attached to the right order (the identity check still applies)
#        └──► duplicate / rejected
# Resolving a queued message with a reason keeps its outcome and sets resolved_at.
INBOUND = Table(
    label="inbound message",
    states=IntakeOutcome,
    moves={
        IO.RECEIVED: frozenset({*FILED_OUTCOMES, *QUEUE_OUTCOMES, IO.DUPLICATE, IO.REJECTED}),
        IO.UNMATCHED: frozenset(FILED_OUTCOMES),
        IO.IDENTITY_HOLD: frozenset(FILED_OUTCOMES),
        IO.MATCHED: frozenset(),
        IO.AMENDED: frozenset(),
        IO.SUPERSEDED: frozenset(),
        IO.DUPLICATE: frozenset(),
        IO.REJECTED: frozenset(),
    },
)
