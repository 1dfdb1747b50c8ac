"""Reads of procedure orders for the pages that compose apps."""

from collections import defaultdict
from collections.abc import Iterable

from backoffice.models import Handoff
from procedures.models import ProcedureOrder, ProcedureType


def open_procedure_count(handoff: Handoff) -> int:
    return (
        ProcedureOrder.objects.filter(handoff=handoff)
        .exclude(status__in=[ProcedureOrder.Status.COMPLETED, ProcedureOrder.Status.NOT_DONE])
        .count()
    )


def procedure_orders_by_handoff(handoff_ids: Iterable[int]) -> dict[int, list[ProcedureOrder]]:
    """One query for the procedures of many handoffs, for list pages."""
    grouped: dict[int, list[ProcedureOrder]] = defaultdict(list)
    for order in ProcedureOrder.objects.filter(handoff_id__in=list(handoff_ids)).select_related("procedure_type"):
        grouped[order.handoff_id].append(order)
    return grouped


def active_procedure_types() -> list[ProcedureType]:
    return list(ProcedureType.objects.filter(is_active=True).order_by("category", "name"))
