"""Reads of lab test orders for the pages that compose apps."""

from collections import defaultdict
from collections.abc import Iterable

from backoffice.models import Handoff
from lab.models import TestDefinition, TestOrder


def open_test_count(handoff: Handoff) -> int:
    """Tests still needing the back office: a collected or sent-out specimen no longer holds the patient."""
    return TestOrder.objects.filter(handoff=handoff, status=TestOrder.Status.ORDERED).count()


def test_orders_by_handoff(handoff_ids: Iterable[int]) -> dict[int, list[TestOrder]]:
    grouped: dict[int, list[TestOrder]] = defaultdict(list)
    for order in TestOrder.objects.filter(handoff_id__in=list(handoff_ids)).select_related("test"):
        grouped[order.handoff_id].append(order)
    return grouped


def test_orders_for_handoff(handoff: Handoff) -> list[TestOrder]:
    """One handoff's tests for its page, in order: one query, without the join to the handoff that
    the model's default ordering (by handoff, for lists) would add."""
    return list(TestOrder.objects.filter(handoff=handoff).select_related("test").order_by("id"))


def active_tests() -> list[TestDefinition]:
    return list(TestDefinition.objects.filter(is_active=True).order_by("performed", "name"))
