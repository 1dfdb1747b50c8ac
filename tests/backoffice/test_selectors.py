"""Reads shared by pages: staff names filled in from one query, station choices."""

import pytest

from backoffice import selectors, services
from backoffice.models import Handoff, User
from backoffice.selectors import load_staff_names
from procedures.models import ProcedureOrder, ProcedureType
from procedures.services import procedure_orders_add
from tests.factories import StationFactory

pytestmark = pytest.mark.django_db


def test_staff_names_come_from_one_query_and_are_read_from_the_cache_after(
    handoff: Handoff,
    medical_assistant: User,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    services.handoff_claim(handoff=handoff, by=medical_assistant)
    fresh = Handoff.objects.get(pk=handoff.pk)
    with django_assert_num_queries(1):
        load_staff_names([fresh], "ordering_clinician", "claimed_by", "identity_verified_by")
    with django_assert_num_queries(0):
        assert str(fresh.claimed_by) == "Maria Alvarez"
        assert str(fresh.ordering_clinician) == "Priya Shah"
        assert fresh.identity_verified_by is None
    assert fresh.claimed_by_id == medical_assistant.pk


def test_no_query_when_nobody_is_named(
    handoff: Handoff,
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    procedure_orders_add(
        handoff=handoff, procedure_types=[ProcedureType.objects.first()], by=handoff.ordering_clinician
    )
    orders = list(ProcedureOrder.objects.filter(handoff=handoff))
    with django_assert_num_queries(0):
        load_staff_names(orders, "performer", "supervisor", "cosigned_by")
        load_staff_names([], "performer")
        assert orders[0].performer is None


def test_only_relations_to_staff(handoff: Handoff) -> None:
    with pytest.raises(TypeError):
        load_staff_names([handoff], "patient")


def test_station_choices_list_active_stations_by_name_and_are_read_once_a_minute(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    StationFactory(code="room-b", name="Room B")
    StationFactory(code="room-a", name="Room A")
    StationFactory(code="old", name="Old room", is_active=False)
    with django_assert_num_queries(1):
        assert selectors.station_choices() == [("room-a", "Room A"), ("room-b", "Room B")]
    with django_assert_num_queries(0):
        selectors.station_choices()
