"""Stations and their equipment: the patient goes only to a station that has what their procedures need.

The core asks the procedures app what the handoff's procedures still to be done need
(hooks.equipment_needed); the assignment refuses a station without it, naming what it lacks, and the
handoff page lists first the ready stations that have it all, the others disabled with what they lack.
"""

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import hooks, selectors
from backoffice.models import Equipment, Handoff, HandoffEvent, Station, StationEvent, User
from backoffice.services import (
    handoff_assign_station,
    handoff_claim,
    handoff_verify_identity,
)
from backoffice.workflow import HandoffStatus, StationState, TransitionNotAllowed
from procedures import services
from procedures.models import ProcedureOrder
from tests.factories import HandoffFactory, StationFactory
from tests.procedures.helpers import new_ma, procedure_type, signed_off

pytestmark = pytest.mark.django_db


def with_equipment(station: Station, *codes: str) -> Station:
    station.equipment.set(Equipment.objects.filter(code__in=codes))
    return station


@pytest.fixture
def ma() -> User:
    return signed_off(new_ma(username="senior", first_name="Maria", last_name="Alvarez"))


def ordered(*codes: str) -> tuple[Handoff, list[ProcedureOrder]]:
    handoff = HandoffFactory()
    orders = services.procedure_orders_add(
        handoff=handoff, procedure_types=[procedure_type(c) for c in codes], by=handoff.ordering_clinician
    )
    return handoff, orders


def fresh(obj):  # type: ignore[no-untyped-def]
    return type(obj).objects.get(pk=obj.pk)


# --- What the procedures need ------------------------------------------------------------------------


def test_the_procedures_app_names_the_equipment_each_open_procedure_needs_in_one_query(
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    handoff, _ = ordered("12001", "96372")  # laceration repair (suture tray, exam table); an injection (none)
    with django_assert_num_queries(1):
        needs = hooks.equipment_needed(handoff)
    names = {name for _, _, name in needs}
    assert names == {"Suture and laceration tray", "Exam table"}
    assert {item for item, _, _ in needs} == {"Simple laceration repair (sutures), up to 2.5 cm"}


def test_a_procedure_recorded_as_not_done_no_longer_needs_its_equipment(ma: User) -> None:
    handoff, [order] = ordered("69209")
    handoff_claim(handoff=handoff, by=ma)
    services.procedure_not_done(order=order, by=ma, reason="equipment_unavailable")
    assert hooks.equipment_needed(handoff) == []


# --- Assignment ----------------------------------------------------------------------------------------


def test_a_station_lacking_equipment_is_refused_at_assignment_naming_what_it_lacks(ma: User) -> None:
    handoff, _ = ordered("12001")
    bare = with_equipment(StationFactory(code="bay-2", name="Bay 2"), "exam-table")
    handoff_claim(handoff=handoff, by=ma)

    with pytest.raises(TransitionNotAllowed) as refused:
        handoff_assign_station(handoff=handoff, station=bare, by=ma)

    assert str(refused.value) == (
        "Bay 2 has no suture and laceration tray (for Simple laceration repair (sutures), up to 2.5 cm); "
        "choose a station that has it."
    )
    assert fresh(handoff).station_id is None
    assert fresh(bare).state == StationState.READY
    assert not StationEvent.objects.filter(station=bare).exists()
    assert not HandoffEvent.objects.filter(handoff=handoff, action=HandoffEvent.Action.STATION_ASSIGNED).exists()


def test_a_refusal_names_every_piece_missing(ma: User) -> None:
    handoff, _ = ordered("12001", "69209")
    handoff_claim(handoff=handoff, by=ma)
    with pytest.raises(TransitionNotAllowed) as refused:
        handoff_assign_station(handoff=handoff, station=StationFactory(name="Chair 9"), by=ma)
    assert str(refused.value) == (
        "Chair 9 has no ear irrigation kit, exam table or suture and laceration tray (for Cerumen removal by "
        "irrigation; Simple laceration repair (sutures), up to 2.5 cm); choose a station that has them."
    )


def test_a_station_with_everything_is_assigned(ma: User) -> None:
    handoff, _ = ordered("12001")
    room = with_equipment(StationFactory(), "exam-table", "suture-kit")
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=room, by=ma)
    assert fresh(handoff).station == room
    assert fresh(room).state == StationState.OCCUPIED


def test_a_handoff_without_procedures_goes_to_any_ready_station(ma: User) -> None:
    handoff = HandoffFactory()
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=StationFactory(), by=ma)
    assert fresh(handoff).station_id is not None


# --- Moving after identity is verified --------------------------------------------------------------------


def verified_at(station: Station, ma: User, *codes: str) -> Handoff:
    handoff, _ = ordered(*codes)
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=station, by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=handoff.patient.mrn)
    return handoff


def test_moving_after_identity_is_verified_keeps_it_verified_and_is_an_event(ma: User) -> None:
    first = with_equipment(StationFactory(name="Room 1"), "exam-table")
    second = with_equipment(StationFactory(name="Room 2"), "exam-table")
    handoff = verified_at(first, ma, "99211")

    handoff_assign_station(handoff=handoff, station=second, by=ma)

    handoff = fresh(handoff)
    assert handoff.station == second
    assert handoff.status == HandoffStatus.IDENTITY_VERIFIED
    assert handoff.identity_verified_by == ma
    last = HandoffEvent.objects.filter(handoff=handoff).order_by("-at", "-id").first()
    assert last is not None
    assert (last.action, last.from_status, last.to_status, last.note) == (
        HandoffEvent.Action.STATION_ASSIGNED,
        HandoffStatus.IDENTITY_VERIFIED,
        HandoffStatus.IDENTITY_VERIFIED,
        "Room 2",
    )
    assert fresh(first).state == StationState.NEEDS_TURNOVER
    assert fresh(second).state == StationState.OCCUPIED


def test_moving_to_a_station_lacking_equipment_leaves_the_patient_where_they_are(ma: User) -> None:
    first = with_equipment(StationFactory(name="Room 1"), "exam-table")
    handoff = verified_at(first, ma, "99211")
    with pytest.raises(TransitionNotAllowed, match="Room 2 has no exam table"):
        handoff_assign_station(handoff=handoff, station=StationFactory(name="Room 2"), by=ma)
    assert fresh(handoff).station == first
    assert fresh(first).state == StationState.OCCUPIED


# --- The picker -------------------------------------------------------------------------------------------


def test_the_picker_lists_first_the_ready_stations_that_have_everything_in_two_queries(
    django_assert_num_queries,  # type: ignore[no-untyped-def]
) -> None:
    handoff, _ = ordered("12001")
    with_equipment(StationFactory(code="a", name="A bare"))
    with_equipment(StationFactory(code="b", name="B table only"), "exam-table")
    with_equipment(StationFactory(code="c", name="C full"), "exam-table", "suture-kit")
    busy = with_equipment(StationFactory(code="d", name="D full but occupied"), "exam-table", "suture-kit")
    Station.objects.filter(pk=busy.pk).update(state=StationState.OCCUPIED)

    # 1 what the procedures need, 2 the ready stations with their equipment's ids.
    with django_assert_num_queries(2):
        picker = selectors.station_picker(handoff)

    assert [c.station.name for c in picker.fitting] == ["C full"]
    assert [(c.station.name, [n.name for n in c.lacks]) for c in picker.lacking] == [
        ("A bare", ["Exam table", "Suture and laceration tray"]),
        ("B table only", ["Suture and laceration tray"]),
    ]


class TestTheHandoffPage:
    def _page(self, client: Client, ma: User, handoff: Handoff) -> str:
        client.force_login(ma)
        return client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()

    def test_it_offers_first_the_stations_that_have_everything_and_says_what_the_others_lack(
        self, client: Client, ma: User
    ) -> None:
        handoff, _ = ordered("12001")
        with_equipment(StationFactory(code="b", name="Bay 2"), "exam-table")
        with_equipment(StationFactory(code="r", name="Room 3"), "exam-table", "suture-kit")
        handoff_claim(handoff=handoff, by=ma)

        content = self._page(client, ma, handoff)

        assert '<optgroup label="Has what&#x27;s needed">' in content
        assert content.index('value="r"') < content.index('value="b"')
        assert '<option value="b" disabled>Bay 2 (no suture and laceration tray)</option>' in content
        assert (
            "Simple laceration repair (sutures), up to 2.5 cm needs <strong>exam table</strong> and "
            "<strong>suture and laceration tray</strong>." in content
        )
        assert "Stations without it can't be chosen; each says what it lacks." in content

    def test_it_says_when_no_ready_station_has_what_is_needed(self, client: Client, ma: User) -> None:
        handoff, _ = ordered("69209")
        StationFactory(name="Bay 2")
        handoff_claim(handoff=handoff, by=ma)
        assert "No ready station has it" in self._page(client, ma, handoff)

    def test_the_move_picker_after_verification_disables_a_station_without_the_equipment(
        self, client: Client, ma: User
    ) -> None:
        handoff = verified_at(with_equipment(StationFactory(code="r1", name="Room 1"), "exam-table"), ma, "99211")
        StationFactory(code="b2", name="Bay 2")
        with_equipment(StationFactory(code="r3", name="Room 3"), "exam-table")
        content = self._page(client, ma, handoff)
        assert "Move the patient to another station" in content
        assert '<option value="b2" disabled>Bay 2 (no exam table)</option>' in content
        assert '<option value="r3">Room 3</option>' in content

    def test_posting_a_station_without_the_equipment_is_refused_with_the_services_words(
        self, client: Client, ma: User
    ) -> None:
        handoff, _ = ordered("69209")
        StationFactory(code="b2", name="Bay 2")
        handoff_claim(handoff=handoff, by=ma)
        client.force_login(ma)
        response = client.post(reverse("handoff_station", args=[handoff.uuid]), {"station": "b2"}, follow=True)
        assert "Bay 2 has no ear irrigation kit (for Cerumen removal by irrigation)" in response.content.decode()
        assert fresh(handoff).station_id is None
