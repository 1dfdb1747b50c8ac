"""Allowed status moves, as data: the shape every app's table takes, and the core's tables.

Readable and testable without a database. Services move a status only through
backoffice.transitions.move, which checks the object's Table; nothing else assigns one.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import models


class TransitionNotAllowed(Exception):
    """A status move that the workflow table does not allow, or that this actor may not make."""


class PermissionRefused(TransitionNotAllowed):
    """The actor's role, or their relation to the record, does not allow this action."""


def naming_patient(patient_name: str, refusal: str) -> str:
    """A refusal as a page shows it: the service's words, after the patient's name where they don't say it."""
    return refusal if patient_name in refusal else f"{patient_name}: {refusal}"


@dataclass(frozen=True)
class Table:
    """One workflow: what an object is called in messages, its statuses and the moves allowed."""

    label: str
    states: type[models.TextChoices]
    moves: Mapping[str, frozenset[str]]

    def allows(self, current: str, target: str) -> bool:
        return target in self.moves.get(current, frozenset())

    def check(self, current: str, target: str) -> None:
        """Raise TransitionNotAllowed, worded the same for every app, unless current → target is a move."""
        if not self.allows(current, target):
            raise TransitionNotAllowed(
                f"This {self.label} is {self.name(current)}; it can't become {self.name(target)}."
            )

    def name(self, status: str) -> str:
        """A status as a sentence says it: "identity verified", "awaiting co-sign"."""
        return self.states(status).label.lower() if status in self.states.values else status.replace("_", " ")


class IdentityMethod(models.TextChoices):
    """How the patient's identity was confirmed (Handoff.identity_method): a scanned wristband is one
    entry; an MRN typed or pasted (not scanned) counts only with the full name and date of birth too."""

    SCANNED = "wristband", "wristband scanned"
    TYPED_MRN = "typed", "MRN typed, with full name and date of birth"
    NAME_DOB = "name+dob", "full name and date of birth"


class HandoffStatus(models.TextChoices):
    WAITING = "waiting", "Waiting"
    CLAIMED = "claimed", "Claimed"
    IDENTITY_VERIFIED = "identity_verified", "Identity verified"
    IN_PROGRESS = "in_progress", "In progress"
    # Handed back by the back office to the ordering clinician, who sends it back to the queue or cancels it.
    RETURNED = "returned", "Returned to clinician"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class HandBackReason(models.TextChoices):
    """Why the back office hands a patient back (Handoff.hand_back_reason): a fixed list, so it can be counted."""

    PATIENT_LEFT = "patient_left", "Patient left"
    PATIENT_REFUSED = "patient_refused", "Patient refused"
    ORDER_CHANGED = "order_changed", "Clinician changed the order"


class HandBack(models.TextChoices):
    """What a hand-back does, per clinic (settings.MA_HAND_BACK)."""

    RETURN = "return", "Return to the clinician"
    CANCEL = "cancel", "Cancel the handoff"


class Priority(models.IntegerChoices):
    # The number orders the queue: STAT first.
    STAT = 1, "STAT"
    ROUTINE = 2, "Routine"


class StationState(models.TextChoices):
    READY = "ready", "Ready"
    OCCUPIED = "occupied", "Occupied"
    NEEDS_TURNOVER = "needs_turnover", "Needs turnover"


H = HandoffStatus
HANDOFF_MOVES: dict[str, frozenset[str]] = {
    H.WAITING: frozenset({H.CLAIMED, H.CANCELLED}),
    H.CLAIMED: frozenset({H.IDENTITY_VERIFIED, H.WAITING, H.RETURNED, H.CANCELLED}),
    H.IDENTITY_VERIFIED: frozenset({H.IN_PROGRESS, H.RETURNED, H.CANCELLED}),
    H.IN_PROGRESS: frozenset({H.COMPLETED, H.RETURNED, H.CANCELLED}),
    # The ordering clinician decides: back on the queue (claimed and identified afresh), or cancelled.
    H.RETURNED: frozenset({H.WAITING, H.CANCELLED}),
    H.COMPLETED: frozenset(),
    H.CANCELLED: frozenset(),
}

# Statuses in which a handoff is still open work for the back office (not RETURNED: that is the clinician's).
OPEN_STATUSES: tuple[str, ...] = (
    HandoffStatus.WAITING,
    HandoffStatus.CLAIMED,
    HandoffStatus.IDENTITY_VERIFIED,
    HandoffStatus.IN_PROGRESS,
)
# Statuses in which the patient's identity has been confirmed: work may be done.
IDENTIFIED_STATUSES: tuple[str, ...] = (HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS)

STATION_MOVES: dict[str, frozenset[str]] = {
    StationState.READY: frozenset({StationState.OCCUPIED}),
    StationState.OCCUPIED: frozenset({StationState.NEEDS_TURNOVER}),
    StationState.NEEDS_TURNOVER: frozenset({StationState.READY}),
}

HANDOFF = Table(label="handoff", states=HandoffStatus, moves=HANDOFF_MOVES)
STATION = Table(label="station", states=StationState, moves=STATION_MOVES)
