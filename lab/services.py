"""State changes of lab test orders."""

from collections.abc import Sequence

from django.db import transaction

from backoffice.models import Handoff, User
from backoffice.services import handoff_lock_for_items
from backoffice.workflow import TransitionNotAllowed
from lab.models import TestDefinition, TestOrder


def test_orders_add(*, handoff: Handoff, tests: Sequence[TestDefinition], by: User) -> list[TestOrder]:
    """Order catalog tests on an open handoff; the handoff is locked and records what was ordered."""
    if not tests:
        return []
    inactive = [t.name for t in tests if not t.is_active]
    if inactive:
        raise TransitionNotAllowed(f"No longer offered: {', '.join(inactive)}.")
    with transaction.atomic():
        handoff_lock_for_items(handoff=handoff, by=by, items="Lab tests: " + ", ".join(t.short_name for t in tests))
        return TestOrder.objects.bulk_create([TestOrder(handoff=handoff, test=t, created_by=by) for t in tests])
