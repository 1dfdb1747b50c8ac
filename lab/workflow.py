"""Allowed status moves for lab test orders, as data.

Readable and testable without a database; lab.services moves a status only through
backoffice.transitions.move with the TEST_ORDER table, and nothing else assigns one.

    ordered ──► collected ──► in progress ──► resulted
       │  ▲         │              │
       │  └─────────┴──────────────┘ (its specimen was rejected: collect again)
       │            └──► sent out ──► resulted
       └──► cancelled
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
    S.SENT_OUT: frozenset({S.RESULTED}),
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


class CallStatus(models.TextChoices):
    OPEN = "open", "To call"
    DONE = "done", "Called"


# A rejected specimen of a patient who has left: the ordering clinician calls them back.
CALL = Table(
    label="call-back",
    states=CallStatus,
    moves={CallStatus.OPEN: frozenset({CallStatus.DONE}), CallStatus.DONE: frozenset()},
)
