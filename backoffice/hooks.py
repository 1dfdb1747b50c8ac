"""Questions the core asks the domain apps without importing them.

Each domain app (procedures, lab, ...) registers, in its AppConfig.ready(), a function
that names a handoff's items it still has open, those that still need the patient. The core
completes a handoff only when no registered app names one, and a refusal lists them. An app whose labels carry their own ids (specimens'
accessions) registers how to read one, so any field that takes an MRN also takes that label.
When a handoff is cancelled, each app closes that handoff's open items through its own service, in
the cancel's transaction (a handler that refuses rolls the whole cancel back); an app whose handler
can refuse also answers, without locking or writing, why it would (the same rule), so the handoff page
says so instead of offering a cancel the service refuses. Apps whose work a
person without the whole clinic's patients (a lab technician) searches register which patients
are in that work. Apps whose items need equipment at the station say which, so the core offers and
assigns only a station that has it. When the patient leaves the clinic, each app hands what it still
had pending for them to the clinician's follow-ups, and says beforehand what that would be.
"""

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from backoffice.models import Handoff, User

# The handoff's items of one app that still need the patient, each as a page names it:
# "Venipuncture (in progress)". One query.
OpenItems = Callable[["Handoff"], list[str]]

_open_items: dict[str, OpenItems] = {}


def register_open_items(app_label: str, lister: OpenItems) -> None:
    _open_items[app_label] = lister


def open_items(handoff: "Handoff") -> list[str]:
    """What still holds the patient, every app's, in the apps' order (empty: the handoff can close)."""
    return [item for lister in _open_items.values() for item in lister(handoff)]


def open_item_count(handoff: "Handoff") -> int:
    return len(open_items(handoff))


# The handoff's items of one app being done to the patient right now ("Venipuncture"): the patient can't
# be handed back to the clinician until each is finished or recorded as not done. One query.
UnderWay = Callable[["Handoff"], list[str]]

_under_way: dict[str, UnderWay] = {}


def register_under_way(app_label: str, lister: UnderWay) -> None:
    _under_way[app_label] = lister


def under_way(handoff: "Handoff") -> list[str]:
    return [item for lister in _under_way.values() for item in lister(handoff)]


ScannedIdReader = Callable[[str], int | None]

_scanned_id_readers: dict[str, ScannedIdReader] = {}


def register_scanned_id_reader(app_label: str, reader: ScannedIdReader) -> None:
    _scanned_id_readers[app_label] = reader


def patient_for_scanned_id(scanned: str) -> int | None:
    """The patient (id) a scanned label other than a wristband names, e.g. a specimen's, or None."""
    for reader in _scanned_id_readers.values():
        patient_id = reader(scanned)
        if patient_id is not None:
            return patient_id
    return None


# Closes the handoff's open items of one app, as `by` cancels it with `reason`; raises
# TransitionNotAllowed (with a sentence for a person) when an item can't be closed that way.
HandoffCancelHandler = Callable[["Handoff", "User", str], None]

# Why that app's handler would refuse to close the handoff's items now (one sentence per refusal, the
# handler's own words), read without locks or writes; empty when it would close them.
HandoffCancelBlockers = Callable[["Handoff"], list[str]]

_cancel_handlers: dict[str, HandoffCancelHandler] = {}
_cancel_blockers: dict[str, HandoffCancelBlockers] = {}


def register_handoff_cancel_handler(
    app_label: str, handler: HandoffCancelHandler, *, blockers: HandoffCancelBlockers | None = None
) -> None:
    """`blockers` is required of a handler that can refuse, and must apply the rule it applies."""
    _cancel_handlers[app_label] = handler
    if blockers is not None:
        _cancel_blockers[app_label] = blockers


def handoff_cancelled(handoff: "Handoff", by: "User", reason: str) -> None:
    """Every app closes the handoff's open items, in the order the apps start: floor by floor, so the
    specimens app releases a labelled tube before lab cancels the test it was for."""
    for handler in _cancel_handlers.values():
        handler(handoff, by, reason)


def handoff_cancel_blockers(handoff: "Handoff") -> list[str]:
    """Why the apps would refuse to cancel this handoff now (empty: none would), in the apps' order."""
    return [reason for blockers in _cancel_blockers.values() for reason in blockers(handoff)]


# One app's work for the patient of the outer query (its rows filtered by ``patient=OuterRef("pk")``)
# that is open or changed since `since`: the search asks EXISTS of it, per patient it matched.
PatientWork = Callable[[datetime], "QuerySet[Any]"]

_patient_work: dict[str, PatientWork] = {}


def register_patient_work(app_label: str, reader: PatientWork) -> None:
    _patient_work[app_label] = reader


def patient_work(since: datetime) -> "list[QuerySet[Any]]":
    """Each registered app's work for the outer query's patient, open or changed since `since`."""
    return [reader(since) for reader in _patient_work.values()]


# The equipment one app's items of the handoff still to be done need, a row per (item, equipment): the
# item as a page names it ("Laceration repair"), the equipment's id and name. One query.
EquipmentNeeded = Callable[["Handoff"], list[tuple[str, int, str]]]

_equipment_needed: dict[str, EquipmentNeeded] = {}


def register_equipment_needed(app_label: str, reader: EquipmentNeeded) -> None:
    _equipment_needed[app_label] = reader


def equipment_needed(handoff: "Handoff") -> list[tuple[str, int, str]]:
    """What the station must have for every item still to be done, every app's (empty: any station)."""
    return [need for reader in _equipment_needed.values() for need in reader(handoff)]


# The patient has left the clinic (backoffice.services.handoff_patient_left): each app hands what of the
# handoff's it still had pending for them to whoever follows it up (lab: a result still running becomes a
# "call the patient" for the ordering clinician, a recollection a call-back), in the event's transaction.
PatientLeftHandler = Callable[["Handoff", "User"], None]

# What that app's handler would hand over now, one phrase each ("Rapid strep result: call the patient"),
# read without locks or writes; empty when it would hand over nothing. One query.
PatientLeftPending = Callable[["Handoff"], list[str]]

_patient_left_handlers: dict[str, PatientLeftHandler] = {}
_patient_left_pending: dict[str, PatientLeftPending] = {}


def register_patient_left(app_label: str, handler: PatientLeftHandler, *, pending: PatientLeftPending) -> None:
    """`pending` must name exactly what `handler` hands over."""
    _patient_left_handlers[app_label] = handler
    _patient_left_pending[app_label] = pending


def patient_left(handoff: "Handoff", by: "User") -> None:
    for handler in _patient_left_handlers.values():
        handler(handoff, by)


def patient_left_pending(handoff: "Handoff") -> list[str]:
    """What the apps would hand over if the patient left now (empty: nothing of theirs is pending)."""
    return [item for pending in _patient_left_pending.values() for item in pending(handoff)]
