"""Cached queue rows and board cards: reused while nothing they show changed, never stale after it did."""

import datetime as dt
import re

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import services
from backoffice.models import AccessLogPatient, Handoff, Patient, User
from backoffice.pages import fragments
from backoffice.workflow import Priority
from tests.factories import HandoffFactory, PatientFactory, StationFactory

pytestmark = pytest.mark.django_db


def _queue(client: Client, user: User) -> str:
    client.force_login(user)
    response = client.get(reverse("queue"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def _board(client: Client, supervisor: User) -> str:
    client.force_login(supervisor)
    response = client.get(reverse("board"), headers={"HX-Request": "true"})
    assert response.status_code == 200
    return response.content.decode()


def _waited(handoff: Handoff, minutes: int) -> None:
    Handoff.objects.filter(pk=handoff.pk).update(created_at=timezone.now() - dt.timedelta(minutes=minutes, seconds=5))


def test_a_refresh_reuses_rendered_rows_without_reading_the_handoffs_again(
    client: Client, medical_assistant: User, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    HandoffFactory.create_batch(3)
    first = _queue(client, medical_assistant)
    # session, user, permissions, row keys with totals, access log: no handoff, patient or item reads.
    with django_assert_num_queries(5):
        again = client.get(reverse("queue"), headers={"HX-Request": "true"}).content.decode()
    assert again.split("</p>", 1)[1] != "" and _rows(again) == _rows(first)


def _rows(page: str) -> str:
    """The table body, without the CSRF form and the 'updated' time that change on every request."""
    return page.split("<tbody>")[1].split("</tbody>")[0]


def test_a_refresh_served_from_the_cache_still_logs_every_patient_it_lists(
    client: Client, medical_assistant: User
) -> None:
    handoffs = HandoffFactory.create_batch(3)
    _queue(client, medical_assistant)
    before = AccessLogPatient.objects.count()
    _queue(client, medical_assistant)
    logged = AccessLogPatient.objects.order_by("-log_id").values_list("patient_id", flat=True)[:3]
    assert AccessLogPatient.objects.count() == before + 3
    assert set(logged) == {h.patient_id for h in handoffs}


def test_an_allergy_recorded_between_refreshes_shows_on_the_next_one(client: Client, medical_assistant: User) -> None:
    handoff = HandoffFactory(patient__allergies="", patient__no_known_allergies=False)
    assert "Allergies not recorded" in _queue(client, medical_assistant)
    # Saved in the same database transaction as the row was created and first shown (the test's):
    # the row's xmin is the same, its place (ctid) is not.
    patient = handoff.patient
    patient.allergies = "Latex (hives)"
    patient.save()
    page = _queue(client, medical_assistant)
    assert "Latex (hives)" in page
    assert "Allergies not recorded" not in page
    Patient.objects.filter(pk=patient.pk).update(allergies="Latex (hives)\nIodine")
    assert "Latex (hives); Iodine" in _queue(client, medical_assistant)


def test_a_claim_shows_on_the_next_refresh_of_the_queue_and_the_board(
    client: Client, medical_assistant: User, other_ma: User, supervisor: User
) -> None:
    handoff = HandoffFactory()
    assert "Claim<span" in _queue(client, medical_assistant)
    board = Client()
    assert 'Waiting <span class="badge text-bg-secondary">1</span>' in _board(board, supervisor)
    services.handoff_claim(handoff=handoff, by=other_ma)
    services.handoff_assign_station(handoff=handoff, station=StationFactory(name="Chair 7"), by=other_ma)
    page = _queue(client, medical_assistant)
    assert "Claim<span" not in page
    assert f"{other_ma} · Chair 7" in page
    card = _board(board, supervisor).split('id="col-claimed"')[1].split("</section>")[0]
    assert handoff.patient.family_name.upper() in card
    assert "<strong>Chair 7</strong>" in card


def test_the_wait_shown_advances_with_the_clock(client: Client, medical_assistant: User, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _waited(HandoffFactory(), 3)
    assert "3 min" in _queue(client, medical_assistant)
    later = timezone.now() + dt.timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert "5 min" in _queue(client, medical_assistant)


def test_a_cached_row_turns_overdue_when_its_threshold_passes(
    client: Client, medical_assistant: User, settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUE_OVERDUE_MINUTES_ROUTINE = 20
    _waited(HandoffFactory(priority=Priority.ROUTINE), 19)
    assert "row-overdue" not in _queue(client, medical_assistant)
    later = timezone.now() + dt.timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert "row-overdue" in _queue(client, medical_assistant)


def test_a_row_flagged_overdue_by_the_background_job_shows_it_at_once(
    client: Client, medical_assistant: User, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.QUEUE_OVERDUE_MINUTES_ROUTINE = 20
    _waited(HandoffFactory(priority=Priority.ROUTINE), 5)
    assert "row-overdue" not in _queue(client, medical_assistant)
    settings.QUEUE_OVERDUE_MINUTES_ROUTINE = 5  # the threshold lowered; the job flags it
    assert services.handoffs_flag_overdue() == 1
    assert "row-overdue" in _queue(client, medical_assistant)


def test_a_row_cached_for_someone_who_may_claim_is_not_shown_to_someone_who_may_not(
    client: Client, medical_assistant: User, clinician: User
) -> None:
    handoff = HandoffFactory()
    assert 'form="claim-form"' in _queue(client, medical_assistant)
    page = _queue(Client(), clinician)
    assert 'form="claim-form"' not in page
    assert f'Open<span class="visually-hidden"> {handoff.patient.family_name}' in page


def test_the_claim_button_submits_the_one_csrf_form_each_refresh_brings(medical_assistant: User) -> None:
    handoff = HandoffFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(medical_assistant)
    page = _queue(client, medical_assistant)
    claim = reverse("handoff_claim", args=[handoff.uuid])
    assert f'form="claim-form" formaction="{claim}"' in page
    form = re.search(r'<form [^>]*id="claim-form" method="post"[^>]*>(.*?)</form>', page, re.S)
    assert form is not None
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(1))
    assert token is not None
    assert client.post(claim, {"csrfmiddlewaretoken": token.group(1)}).status_code == 302
    handoff.refresh_from_db()
    assert handoff.claimed_by == medical_assistant


def test_a_page_far_past_the_end_shows_the_last_page(client: Client, medical_assistant: User) -> None:
    HandoffFactory()
    client.force_login(medical_assistant)
    response = client.get(reverse("queue"), {"page": "99999999999999999999"})
    assert response.status_code == 200
    assert response.context["page"] == 1
    assert len(response.context["rows"]) == 1


def test_rows_follow_the_queues_order_and_leave_out_what_closed_meanwhile() -> None:
    handoffs = sorted(HandoffFactory.create_batch(3), key=lambda h: -h.pk)
    keys = fragments.row_keys(Handoff.objects.filter(pk__in=[h.pk for h in handoffs]).order_by("-pk"))
    assert [k.pk for k in keys] == [h.pk for h in handoffs]
    loaded = fragments.rendered_rows(
        keys,
        template_name="backoffice/pages/partials/board_card.html",
        load=lambda ids: list(Handoff.objects.for_lists().filter(pk__in=ids[1:])),  # the first closed meanwhile
    )
    assert [(row.pk, row.patient_id) for row in loaded] == [(h.pk, h.patient_id) for h in handoffs[1:]]


def test_a_row_whose_patient_is_not_the_one_logged_is_left_out() -> None:
    handoff = HandoffFactory()
    keys = fragments.row_keys(Handoff.objects.filter(pk=handoff.pk))
    Handoff.objects.filter(pk=handoff.pk).update(patient=PatientFactory())
    rows = fragments.rendered_rows(
        keys,
        template_name="backoffice/pages/partials/board_card.html",
        load=lambda ids: list(Handoff.objects.for_lists().filter(pk__in=ids)),
    )
    assert rows == []


def test_a_row_rendered_across_a_minute_boundary_is_shown_but_not_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    handoff = HandoffFactory()
    start = handoff.created_at + dt.timedelta(minutes=4, seconds=59, microseconds=999_000)
    clock = iter([start] + [start + dt.timedelta(seconds=2)] * 50)
    monkeypatch.setattr(timezone, "now", lambda: next(clock))
    keys = fragments.row_keys(Handoff.objects.filter(pk=handoff.pk))
    [row] = fragments.rendered_rows(
        keys,
        template_name="backoffice/pages/partials/board_card.html",
        load=lambda ids: list(Handoff.objects.for_lists().filter(pk__in=ids)),
    )
    assert "5 min" in row.html
    key = fragments._key("backoffice/pages/partials/board_card.html", keys[0], 4, timezone.localdate(start), "")
    assert caches[fragments.CACHE_ALIAS].get(key) is None
