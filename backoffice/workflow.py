"""Allowed status moves for handoffs and stations, as data.

Readable and testable without a database; services consult `check_move` before
writing a status, and nothing else assigns one.
"""

from django.db import models


class TransitionNotAllowed(Exception):
    """A status move that the workflow table does not allow, or that this actor may not make."""


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


def can_move(table: dict[str, frozenset[str]], current: str, target: str) -> bool:
    return target in table.get(current, frozenset())


def check_move(table: dict[str, frozenset[str]], current: str, target: str, *, label: str) -> None:
    if not can_move(table, current, target):
        raise TransitionNotAllowed(f"This {label} is {_label(current)}; it can't become {_label(target)}.")


def _label(value: str) -> str:
    return value.replace("_", " ")
