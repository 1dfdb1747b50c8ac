"""Ordering lab tests on a handoff, and the count the core asks for before completing."""

import re

import pytest

from backoffice import hooks
from backoffice.models import Handoff, Station, User
from backoffice.services import (
    handoff_assign_station,
    handoff_cancel,
    handoff_claim,
    handoff_complete,
    handoff_start,
    handoff_verify_identity,
)
from backoffice.workflow import HandoffStatus, TransitionNotAllowed
from lab import selectors
from lab.models import TestDefinition, TestOrder
from lab.selectors import active_tests, open_test_count
from lab.services import test_order_cancel, test_orders_add
from lab.workflow import CancelReason
from tests.factories import HandoffFactory

pytestmark = pytest.mark.django_db

SEEDED_LOINC = {"41653-7", "4548-4", "2106-3", "58410-2", "24323-8", "3016-3"}


def lab_tests(*loinc_codes: str) -> list[TestDefinition]:
    by_code = TestDefinition.objects.in_bulk(list(loinc_codes), field_name="loinc_code")
    return [by_code[code] for code in loinc_codes]


def set_status(order: TestOrder, status: str) -> None:
    # No service collects or results a test yet; write the row's later state directly.
    TestOrder.objects.filter(pk=order.pk).update(status=status)


def test_the_migration_seeds_the_test_catalog() -> None:
    codes = set(TestDefinition.objects.values_list("loinc_code", flat=True))
    assert len(codes) >= 12
    assert codes >= SEEDED_LOINC


def test_the_seed_has_both_in_house_and_send_out_tests() -> None:
    performed = dict(TestDefinition.objects.filter(loinc_code__in=SEEDED_LOINC).values_list("loinc_code", "performed"))
    assert performed["41653-7"] == TestDefinition.Performed.IN_HOUSE
    assert performed["58410-2"] == TestDefinition.Performed.SEND_OUT
    assert {t.loinc_code for t in active_tests()} >= SEEDED_LOINC


def test_a_clinician_orders_tests_on_an_open_handoff(handoff: Handoff, clinician: User) -> None:
    orders = test_orders_add(handoff=handoff, tests=lab_tests("41653-7", "3016-3"), by=clinician)

    stored = TestOrder.objects.filter(handoff=handoff).order_by("id")
    assert [o.pk for o in orders] == [o.pk for o in stored]
    assert [o.test.loinc_code for o in stored] == ["41653-7", "3016-3"]
    assert all(o.status == TestOrder.Status.ORDERED and o.created_by == clinician for o in stored)


def test_it_refuses_to_order_tests_on_a_cancelled_handoff(handoff: Handoff, clinician: User) -> None:
    handoff_cancel(handoff=handoff, by=clinician, reason="Patient left")

    with pytest.raises(TransitionNotAllowed, match="open handoff"):
        test_orders_add(handoff=handoff, tests=lab_tests("41653-7"), by=clinician)

    assert not TestOrder.objects.filter(handoff=handoff).exists()


def test_it_refuses_a_test_no_longer_offered(handoff: Handoff, clinician: User) -> None:
    TestDefinition.objects.filter(loinc_code="3016-3").update(is_active=False)

    with pytest.raises(TransitionNotAllowed, match=r"No longer offered: Thyroid stimulating hormone \(TSH\)"):
        test_orders_add(handoff=handoff, tests=lab_tests("41653-7", "3016-3"), by=clinician)

    assert not TestOrder.objects.filter(handoff=handoff).exists()


def test_the_open_count_counts_only_tests_still_waiting_for_the_patient(handoff: Handoff, clinician: User) -> None:
    assert open_test_count(handoff) == 0
    _still_ordered, collected, sent_out, resulted, cancelled = test_orders_add(
        handoff=handoff, tests=lab_tests("41653-7", "4548-4", "58410-2", "2106-3", "3016-3"), by=clinician
    )
    assert open_test_count(handoff) == 5

    set_status(collected, TestOrder.Status.COLLECTED)
    set_status(sent_out, TestOrder.Status.SENT_OUT)
    set_status(resulted, TestOrder.Status.RESULTED)
    test_order_cancel(order=cancelled, reason=CancelReason.NOT_NEEDED, by=clinician)

    # Once the specimen is taken the patient may leave; only the ordered one holds the handoff.
    assert open_test_count(handoff) == 1


def test_the_open_count_only_counts_this_handoffs_tests(handoff: Handoff, clinician: User) -> None:
    other = HandoffFactory()
    test_orders_add(handoff=handoff, tests=lab_tests("41653-7"), by=clinician)
    test_orders_add(handoff=other, tests=lab_tests("41653-7", "24323-8"), by=clinician)

    assert open_test_count(handoff) == 1
    assert open_test_count(other) == 2


def test_the_core_hears_about_open_tests_through_the_hook(handoff: Handoff, clinician: User) -> None:
    assert hooks.open_item_count(handoff) == 0
    test_orders_add(handoff=handoff, tests=lab_tests("2106-3"), by=clinician)
    assert hooks.open_item_count(handoff) == 1


def test_an_open_test_keeps_the_handoff_from_completing(
    handoff: Handoff, clinician: User, medical_assistant: User, station: Station
) -> None:
    [order] = test_orders_add(handoff=handoff, tests=lab_tests("41653-7"), by=clinician)
    handoff_claim(handoff=handoff, by=medical_assistant)
    handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)
    handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn=handoff.patient.mrn)
    handoff_start(handoff=handoff, by=medical_assistant)

    with pytest.raises(
        TransitionNotAllowed, match=re.escape(f"still has 1 open item: {order.test.short_name} (to collect).")
    ):
        handoff_complete(handoff=handoff, by=medical_assistant)

    set_status(order, TestOrder.Status.COLLECTED)
    handoff_complete(handoff=handoff, by=medical_assistant)
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.COMPLETED


def test_orders_are_grouped_by_handoff_in_two_queries(
    handoff: Handoff, clinician: User, django_assert_num_queries
) -> None:
    other = HandoffFactory()
    test_orders_add(handoff=handoff, tests=lab_tests("41653-7"), by=clinician)
    test_orders_add(handoff=other, tests=lab_tests("4548-4", "2106-3"), by=clinician)

    # Called through the module: imported by name, pytest would collect it as a test.
    # 1 test orders joined to their test definitions, 2 their released results with analytes (none yet).
    with django_assert_num_queries(2):
        grouped = selectors.test_orders_by_handoff([handoff.pk, other.pk])
        codes = {pk: [o.test.loinc_code for o in orders] for pk, orders in grouped.items()}
        assert all(o.released_results == [] for orders in grouped.values() for o in orders)

    assert codes == {handoff.pk: ["41653-7"], other.pk: ["4548-4", "2106-3"]}
