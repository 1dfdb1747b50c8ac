"""What specimens tell the apps above them, without importing them.

An app whose orders a specimen serves (lab) registers a listener in its AppConfig.ready(). The
specimen services call it inside their own transaction, after the specimen has moved, so the orders
move with it or not at all.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backoffice.models import User
    from specimens.models import Specimen

SpecimenHook = Callable[["Specimen", "User"], None]
PendingReader = Callable[["Specimen"], str | None]


@dataclass(frozen=True)
class SpecimenListener:
    collected: SpecimenHook  # label and wristband matched: the specimen is drawn
    not_collected: SpecimenHook  # the draw failed: what it was for still needs collecting
    rejected: SpecimenHook  # it can't be tested: what it was for needs a recollection
    testing_started: SpecimenHook  # the in-house bench started on it: what it is for is in progress
    # What it is still to be tested for, said for a person ("Hemoglobin has no result yet"), or None.
    testing_pending: PendingReader


_listeners: dict[str, SpecimenListener] = {}


def register_specimen_listener(app_label: str, listener: SpecimenListener) -> None:
    _listeners[app_label] = listener


def specimen_collected(specimen: "Specimen", by: "User") -> None:
    for listener in _listeners.values():
        listener.collected(specimen, by)


def specimen_not_collected(specimen: "Specimen", by: "User") -> None:
    for listener in _listeners.values():
        listener.not_collected(specimen, by)


def specimen_rejected(specimen: "Specimen", by: "User") -> None:
    for listener in _listeners.values():
        listener.rejected(specimen, by)


def specimen_testing_started(specimen: "Specimen", by: "User") -> None:
    for listener in _listeners.values():
        listener.testing_started(specimen, by)


def specimen_testing_pending(specimen: "Specimen") -> str | None:
    """Why testing on the specimen isn't done yet, by the first app that says so; None when nothing waits."""
    for listener in _listeners.values():
        why = listener.testing_pending(specimen)
        if why:
            return why
    return None
