"""Ordering procedures on a handoff, and the count the core asks for before completing."""

import pytest

from backoffice import hooks
from backoffice.models import Handoff, User
from backoffice.services import handoff_cancel, handoff_claim
from backoffice.workflow import TransitionNotAllowed
from procedures.models import ProcedureOrder, ProcedureType
from procedures.selectors import active_procedure_types, open_procedure_count, procedure_orders_by_handoff
from procedures.services import procedure_orders_add
from tests.factories import HandoffFactory

pytestmark = pytest.mark.django_db

SEEDED_CODES = {"69209", "36415", "96372", "90471", "93000", "94010"}


def procedures(*codes: str) -> list[ProcedureType]:
    by_code = ProcedureType.objects.in_bulk(list(codes), field_name="code")
    return [by_code[code] for code in codes]


def set_status(order: ProcedureOrder, status: str) -> None:
    # No service finishes a procedure yet; write the row's end state directly.
    ProcedureOrder.objects.filter(pk=order.pk).update(status=status)


def test_the_migration_seeds_the_procedure_catalog() -> None:
    codes = set(ProcedureType.objects.values_list("code", flat=True))
    assert len(codes) >= 12
    assert codes >= SEEDED_CODES


def test_the_seeded_procedures_are_active_and_named() -> None:
    catalog = ProcedureType.objects.filter(code__in=SEEDED_CODES)
    assert all(p.is_active and p.name for p in catalog)
    assert {p.code for p in active_procedure_types()} >= SEEDED_CODES


def test_a_clinician_orders_procedures_on_an_open_handoff(handoff: Handoff, clinician: User) -> None:
    orders = procedure_orders_add(handoff=handoff, procedure_types=procedures("69209", "96372"), by=clinician)

    stored = ProcedureOrder.objects.filter(handoff=handoff).order_by("id")
    assert [o.pk for o in orders] == [o.pk for o in stored]
    assert [o.procedure_type.code for o in stored] == ["69209", "96372"]
    assert all(o.status == ProcedureOrder.Status.ORDERED and o.created_by == clinician for o in stored)


def test_procedures_may_be_added_once_the_handoff_is_claimed(
    handoff: Handoff, clinician: User, medical_assistant: User
) -> None:
    handoff_claim(handoff=handoff, by=medical_assistant)
    procedure_orders_add(handoff=handoff, procedure_types=procedures("36415"), by=medical_assistant)
    assert open_procedure_count(handoff) == 1


def test_it_refuses_to_order_on_a_cancelled_handoff(handoff: Handoff, clinician: User) -> None:
    handoff_cancel(handoff=handoff, by=clinician, reason="Patient left")

    with pytest.raises(TransitionNotAllowed, match="open handoff"):
        procedure_orders_add(handoff=handoff, procedure_types=procedures("69209"), by=clinician)

    assert not ProcedureOrder.objects.filter(handoff=handoff).exists()


def test_it_refuses_a_procedure_no_longer_offered(handoff: Handoff, clinician: User) -> None:
    ProcedureType.objects.filter(code="93000").update(is_active=False)

    with pytest.raises(TransitionNotAllowed, match="No longer offered: Electrocardiogram"):
        procedure_orders_add(handoff=handoff, procedure_types=procedures("69209", "93000"), by=clinician)

    # Nothing half-written: the active one was not ordered either.
    assert not ProcedureOrder.objects.filter(handoff=handoff).exists()


def test_an_inactive_procedure_leaves_the_active_catalog() -> None:
    ProcedureType.objects.filter(code="93000").update(is_active=False)
    assert "93000" not in {p.code for p in active_procedure_types()}


def test_the_open_count_ignores_finished_procedures(handoff: Handoff, clinician: User) -> None:
    assert open_procedure_count(handoff) == 0
    _still_ordered, performed, completed, not_done = procedure_orders_add(
        handoff=handoff, procedure_types=procedures("69209", "36415", "96372", "93000"), by=clinician
    )
    assert open_procedure_count(handoff) == 4

    set_status(performed, ProcedureOrder.Status.PERFORMED)
    set_status(completed, ProcedureOrder.Status.COMPLETED)
    set_status(not_done, ProcedureOrder.Status.NOT_DONE)

    # Ordered and performed (awaiting completion) are still open; completed and not done are not.
    assert open_procedure_count(handoff) == 2


def test_awaiting_cosign_still_counts_as_open(handoff: Handoff, clinician: User) -> None:
    [order] = procedure_orders_add(handoff=handoff, procedure_types=procedures("12001"), by=clinician)
    set_status(order, ProcedureOrder.Status.AWAITING_COSIGN)
    assert open_procedure_count(handoff) == 1


def test_the_open_count_only_counts_this_handoffs_procedures(handoff: Handoff, clinician: User) -> None:
    other = HandoffFactory()
    procedure_orders_add(handoff=handoff, procedure_types=procedures("69209"), by=clinician)
    procedure_orders_add(handoff=other, procedure_types=procedures("69209", "36415"), by=clinician)

    assert open_procedure_count(handoff) == 1
    assert open_procedure_count(other) == 2


def test_the_core_hears_about_open_procedures_through_the_hook(handoff: Handoff, clinician: User) -> None:
    assert hooks.open_item_count(handoff) == 0
    procedure_orders_add(handoff=handoff, procedure_types=procedures("69209", "36415"), by=clinician)
    assert hooks.open_item_count(handoff) == 2


def test_orders_are_grouped_by_handoff_in_one_query(
    handoff: Handoff, clinician: User, django_assert_num_queries
) -> None:
    other = HandoffFactory()
    procedure_orders_add(handoff=handoff, procedure_types=procedures("69209"), by=clinician)
    procedure_orders_add(handoff=other, procedure_types=procedures("36415", "96372"), by=clinician)

    with django_assert_num_queries(1):  # procedure orders joined to their procedure types
        grouped = procedure_orders_by_handoff([handoff.pk, other.pk])
        codes = {pk: [o.procedure_type.code for o in orders] for pk, orders in grouped.items()}

    assert codes == {handoff.pk: ["69209"], other.pk: ["36415", "96372"]}
