"""State changes of lab test orders."""

from collections.abc import Sequence

from django.db import transaction

from backoffice.models import Handoff, User
from backoffice.workflow import OPEN_STATUSES, TransitionNotAllowed
from lab.models import TestDefinition, TestOrder


def test_orders_add(*, handoff: Handoff, tests: Sequence[TestDefinition], by: User) -> list[TestOrder]:
    """Order catalog tests on an open handoff."""
    if handoff.status not in OPEN_STATUSES:
        raise TransitionNotAllowed("Tests can only be ordered on an open handoff.")
    inactive = [t.name for t in tests if not t.is_active]
    if inactive:
        raise TransitionNotAllowed(f"No longer offered: {', '.join(inactive)}.")
    with transaction.atomic():
        return TestOrder.objects.bulk_create([TestOrder(handoff=handoff, test=t, created_by=by) for t in tests])


test_orders_add.__test__ = False  # type: ignore[attr-defined]
