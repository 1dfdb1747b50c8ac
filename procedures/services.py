"""State changes of procedure orders."""

from collections.abc import Sequence

from django.db import transaction

from backoffice.models import Handoff, User
from backoffice.workflow import OPEN_STATUSES, TransitionNotAllowed
from procedures.models import ProcedureOrder, ProcedureType


def procedure_orders_add(
    *, handoff: Handoff, procedure_types: Sequence[ProcedureType], by: User
) -> list[ProcedureOrder]:
    """Order catalog procedures on an open handoff."""
    if handoff.status not in OPEN_STATUSES:
        raise TransitionNotAllowed("Procedures can only be ordered on an open handoff.")
    inactive = [p.name for p in procedure_types if not p.is_active]
    if inactive:
        raise TransitionNotAllowed(f"No longer offered: {', '.join(inactive)}.")
    with transaction.atomic():
        return ProcedureOrder.objects.bulk_create(
            [ProcedureOrder(handoff=handoff, procedure_type=p, created_by=by) for p in procedure_types]
        )
