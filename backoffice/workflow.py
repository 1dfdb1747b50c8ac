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
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class Priority(models.IntegerChoices):
    # The number orders the queue: STAT first.
    STAT = 1, "STAT"
    ROUTINE = 2, "Routine"


class StationState(models.TextChoices):
    READY = "ready", "Ready"
    OCCUPIED = "occupied", "Occupied"
    NEEDS_TURNOVER = "needs_turnover", "Needs turnover"


HANDOFF_MOVES: dict[str, frozenset[str]] = {
    HandoffStatus.WAITING: frozenset({HandoffStatus.CLAIMED, HandoffStatus.CANCELLED}),
    HandoffStatus.CLAIMED: frozenset({HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.WAITING, HandoffStatus.CANCELLED}),
    HandoffStatus.IDENTITY_VERIFIED: frozenset({HandoffStatus.IN_PROGRESS, HandoffStatus.CANCELLED}),
    HandoffStatus.IN_PROGRESS: frozenset({HandoffStatus.COMPLETED, HandoffStatus.CANCELLED}),
    HandoffStatus.COMPLETED: frozenset(),
    HandoffStatus.CANCELLED: frozenset(),
}

# Statuses in which a handoff is still open work for the back office.
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
