"""Cached queue rows and board cards: reused while nothing they show changed, never stale after it did."""

import datetime as dt

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import fragments, services
from backoffice.models import Handoff, Patient, User
from tests.factories import HandoffFactory

pytestmark = pytest.mark.django_db


def _queue(client: Client, user: User) -> str:
    client.force_login(user)
    return client.get(reverse("queue"), headers={"HX-Request": "true"}).content.decode()


def _edit(patient: Patient, **fields: object) -> None:
    """Save as a request would, in its own (sub)transaction, so the row gets a new version."""
    with transaction.atomic():
        for name, value in fields.items():
            setattr(patient, name, value)
        patient.save()


def test_a_refresh_reuses_rendered_rows_without_reading_the_handoffs_again(
    client: Client, medical_assistant: User, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    HandoffFactory.create_batch(3)
    first = _queue(client, medical_assistant)
    # session, user, permissions, row keys with totals, access log: no handoff, patient or item reads.
    with django_assert_num_queries(5):
        again = client.get(reverse("queue"), headers={"HX-Request": "true"}).content.decode()
    assert again.split("updated")[1][20:] == first.split("updated")[1][20:]


def test_an_allergy_recorded_between_refreshes_shows_on_the_next_one(client: Client, medical_assistant: User) -> None:
    handoff = HandoffFactory(patient__allergies="", patient__no_known_allergies=False)
    assert "Allergies not recorded" in _queue(client, medical_assistant)
    _edit(handoff.patient, allergies="Latex (hives)")
    page = _queue(client, medical_assistant)
    assert "Latex (hives)" in page
    assert "Allergies not recorded" not in page


def test_a_claim_shows_on_the_next_refresh(client: Client, medical_assistant: User, other_ma: User) -> None:
    handoff = HandoffFactory()
    assert "Claim<span" in _queue(client, medical_assistant)
    services.handoff_claim(handoff=handoff, by=other_ma)
    page = _queue(client, medical_assistant)
    assert "Claim<span" not in page
    assert str(other_ma) in page


def test_the_wait_shown_advances_with_the_clock(client: Client, medical_assistant: User, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    handoff = HandoffFactory()
    Handoff.objects.filter(pk=handoff.pk).update(created_at=timezone.now() - dt.timedelta(minutes=3, seconds=5))
    assert "3 min" in _queue(client, medical_assistant)
    later = timezone.now() + dt.timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert "5 min" in _queue(client, medical_assistant)


def test_a_row_cached_for_someone_who_may_claim_is_not_shown_to_someone_who_may_not(
    client: Client, medical_assistant: User, clinician: User
) -> None:
    HandoffFactory()
    assert 'form="claim-form"' in _queue(client, medical_assistant)
    assert 'form="claim-form"' not in _queue(Client(), clinician)


def test_the_claim_button_submits_the_pages_one_csrf_form(client: Client, medical_assistant: User) -> None:
    handoff = HandoffFactory()
    client.force_login(medical_assistant)
    page = client.get(reverse("queue")).content.decode()
    assert '<form id="claim-form" method="post"' in page
    assert page.count("csrfmiddlewaretoken") >= 1
    claim = reverse("handoff_claim", args=[handoff.uuid])
    assert f'formaction="{claim}"' in page
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(medical_assistant)
    token = csrf_client.get(reverse("queue")).context["csrf_token"]
    assert csrf_client.post(claim, {"csrfmiddlewaretoken": token}).status_code == 302
    handoff.refresh_from_db()
    assert handoff.claimed_by == medical_assistant


def test_rows_follow_the_queues_order_and_leave_out_what_closed_meanwhile(medical_assistant: User) -> None:
    handoffs = HandoffFactory.create_batch(3)
    keys = fragments.row_keys(Handoff.objects.filter(pk__in=[h.pk for h in handoffs]).order_by("-pk"))
    assert [k.pk for k in keys] == sorted((h.pk for h in handoffs), reverse=True)
    loaded = fragments.rendered_rows(
        keys,
        template_name="partials/board_card.html",
        load=lambda ids: list(Handoff.objects.for_lists().filter(pk__in=ids[1:])),  # the first closed meanwhile
    )
    assert [row.pk for row in loaded] == [k.pk for k in keys][1:]
    assert all(
        row.patient_id == h.patient_id for row, h in zip(loaded, sorted(handoffs, key=lambda h: -h.pk)[1:], strict=True)
    )
