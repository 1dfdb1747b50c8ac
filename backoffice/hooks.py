"""Questions the core asks the domain apps without importing them.

Each domain app (procedures, lab, ...) registers, in its AppConfig.ready(), a function
that counts a handoff's items it still has open. The core completes a handoff only when
every registered app answers zero. An app whose labels carry their own ids (specimens'
accessions) registers how to read one, so any field that takes an MRN also takes that label.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backoffice.models import Handoff

OpenItemCounter = Callable[["Handoff"], int]

_open_item_counters: dict[str, OpenItemCounter] = {}


def register_open_item_counter(app_label: str, counter: OpenItemCounter) -> None:
    _open_item_counters[app_label] = counter


def open_item_count(handoff: "Handoff") -> int:
    return sum(counter(handoff) for counter in _open_item_counters.values())


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
