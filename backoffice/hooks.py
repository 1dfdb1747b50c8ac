"""Questions the core asks the domain apps without importing them.

Each domain app (procedures, lab, ...) registers, in its AppConfig.ready(), a function
that counts a handoff's items it still has open. The core completes a handoff only when
every registered app answers zero.
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
