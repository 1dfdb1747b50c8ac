"""The stations page: MAs see every station's state, who is at it and its equipment, and turn one over."""

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import services
from backoffice.models import AccessAction, AccessLog, Equipment, Handoff, Station, StationEvent, User
from backoffice.workflow import StationState
from tests.factories import HandoffFactory, StationFactory

pytestmark = pytest.mark.django_db


def _as(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def at_station(handoff: Handoff, station: Station, ma: User) -> Handoff:
    services.handoff_claim(handoff=handoff, by=ma)
    return services.handoff_assign_station(handoff=handoff, station=station, by=ma)


def test_an_ma_sees_each_station_its_state_who_is_at_it_and_its_equipment(
    client: Client, medical_assistant: User, handoff: Handoff
) -> None:
    room = StationFactory(name="Room 1")
    room.equipment.set(Equipment.objects.filter(code__in=["exam-table", "suture-kit"]))
    at_station(handoff, room, medical_assistant)
    StationFactory(name="Chair 2", kind=Station.Kind.PHLEBOTOMY)

    content = _as(client, medical_assistant).get(reverse("stations")).content.decode()

    assert "1 ready · 1 occupied · <strong>0 need turnover</strong>" in content
    patient = handoff.patient
    assert f"{patient.family_name.upper()}, {patient.given_name}</a>" in content
    assert reverse("handoff_detail", args=[handoff.uuid]) in content
    assert "Exam table, Suture and laceration tray" in content
    assert 'aria-current="page" href="/stations/">Stations</a>' in content


def test_the_page_logs_the_patients_it_shows(client: Client, medical_assistant: User, handoff: Handoff) -> None:
    at_station(handoff, StationFactory(), medical_assistant)
    _as(client, medical_assistant).get(reverse("stations"))
    entry = AccessLog.objects.get(what="stations")
    assert entry.action == AccessAction.LIST
    assert list(entry.patients.values_list("pk", flat=True)) == [handoff.patient_id]


def test_an_ma_marks_turnover_done_from_the_page_and_comes_back_to_it(
    client: Client, medical_assistant: User, handoff: Handoff
) -> None:
    room = StationFactory(name="Room 1")
    at_station(handoff, room, medical_assistant)
    services.handoff_release(handoff=handoff, by=medical_assistant)
    c = _as(client, medical_assistant)
    content = c.get(reverse("stations")).content.decode()
    assert "To turn over: <strong>Room 1</strong>" in content
    assert f'action="{reverse("station_turnover", args=[room.code])}"' in content

    response = c.post(reverse("station_turnover", args=[room.code]), {"back": "stations"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("stations")
    assert "Room 1 is clean, restocked and ready." in response.content.decode()
    assert Station.objects.get(pk=room.pk).state == StationState.READY
    assert StationEvent.objects.filter(station=room).latest("id").actor == medical_assistant


def test_a_ready_or_occupied_station_offers_no_turnover(
    client: Client, medical_assistant: User, handoff: Handoff
) -> None:
    at_station(handoff, StationFactory(), medical_assistant)
    StationFactory()
    content = _as(client, medical_assistant).get(reverse("stations")).content.decode()
    assert "Cleaned &amp; restocked" not in content


@pytest.mark.parametrize("rows", [2, 12])
def test_query_count_does_not_grow_with_stations(
    client: Client,
    medical_assistant: User,
    django_assert_num_queries,
    rows: int,  # type: ignore[no-untyped-def]
) -> None:
    for _ in range(rows):
        station = StationFactory()
        station.equipment.set(Equipment.objects.all()[:3])
        at_station(HandoffFactory(), station, medical_assistant)
    c = _as(client, medical_assistant)
    # 1 session, 2 user, 3 permissions and roles, 4 stations with their equipment's names, 5 the open
    # handoffs at a station with patient and claimer, 6 access row with its patients.
    with django_assert_num_queries(6):
        response = c.get(reverse("stations"))
    assert len(response.context["stations"]) == rows
