"""Shared workstations: idle and absolute session limits enforced by the server, no-store pages."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice.accounts import auth
from backoffice.models import Handoff, User, UserSession
from tests.security.conftest import age_session, sign_in_verified

pytestmark = pytest.mark.django_db

POLL = {"HX-Request": "true"}


def _signed_in(client: Client, user: User) -> Client:
    return sign_in_verified(client, user)  # a supervisor owes the second factor


def test_the_session_defaults_suit_a_shared_workstation(settings) -> None:  # type: ignore[no-untyped-def]
    assert settings.SESSION_IDLE_TIMEOUT_SECONDS == 15 * 60
    assert settings.SESSION_ABSOLUTE_LIFETIME_SECONDS == 12 * 3600
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert settings.SESSION_COOKIE_HTTPONLY is True


def test_it_signs_out_after_fifteen_idle_minutes(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    key = client.session.session_key
    age_session(client, idle=15 * 60 + 1)

    response = client.get(reverse("queue"), follow=True)
    assert response.redirect_chain[0] == (reverse("login"), 302)
    assert not UserSession.objects.filter(session_key=key).exists()
    assert SESSION_KEY not in client.session
    assert "You were signed out after 15 minutes without activity." in response.content.decode()


def test_it_keeps_a_session_that_was_used_within_the_limit(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=14 * 60)
    assert client.get(reverse("queue")).status_code == 200
    # The visit counted as activity: the clock starts again.
    assert time.time() - client.session[auth.LAST_ACTIVITY_KEY] < 5


def test_the_idle_timeout_comes_from_the_setting(client: Client, medical_assistant: User, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SESSION_IDLE_TIMEOUT_SECONDS = 5 * 60
    _signed_in(client, medical_assistant)
    age_session(client, idle=5 * 60 + 1)
    response = client.get(reverse("queue"), follow=True)
    assert "You were signed out after 5 minutes without activity." in response.content.decode()


def test_background_refreshes_do_not_count_as_activity(
    client: Client, medical_assistant: User, handoff: Handoff
) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=14 * 60)
    assert client.get(reverse("queue"), headers=POLL).status_code == 200
    assert time.time() - client.session[auth.LAST_ACTIVITY_KEY] >= 14 * 60

    # The next refresh after the limit ends the session and sends the whole page to the login page.
    age_session(client, idle=15 * 60 + 1)
    response = client.get(reverse("queue"), headers=POLL)
    assert response["HX-Redirect"] == reverse("login")
    assert SESSION_KEY not in client.session


def test_htmx_requests_a_person_triggered_count_as_activity(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=14 * 60)
    client.get(reverse("queue"), headers={**POLL, "X-User-Activity": "1"})
    assert time.time() - client.session[auth.LAST_ACTIVITY_KEY] < 5


def test_an_htmx_post_counts_as_activity(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=14 * 60)
    client.post(reverse("patient_search"), {"q": "zz"}, headers=POLL)
    assert time.time() - client.session[auth.LAST_ACTIVITY_KEY] < 5


def test_it_signs_out_after_twelve_hours_however_active(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=10, since_login=12 * 3600 + 1)
    response = client.get(reverse("queue"), follow=True)
    assert response.redirect_chain[0] == (reverse("login"), 302)
    assert "You were signed out because sessions end 12 hours after sign-in." in response.content.decode()


def test_keepalive_counts_as_activity_and_reports_the_time_left(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=14 * 60)
    response = client.post(reverse("session_keepalive"))
    assert response.status_code == 200
    assert response.json()["remaining"] >= 15 * 60 - 5


def test_near_the_end_of_its_lifetime_the_session_says_activity_cannot_extend_it(
    client: Client, medical_assistant: User
) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=0, since_login=12 * 3600 - 30)
    response = client.post(reverse("session_keepalive"))
    assert response.json()["limit"] == "absolute"
    assert response.json()["remaining"] <= 30
    assert 'data-session-limit="absolute"' in client.get(reverse("account_security")).content.decode()


def test_keepalive_needs_post_and_a_csrf_token(medical_assistant: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(medical_assistant)
    assert client.get(reverse("session_keepalive")).status_code == 405
    assert client.post(reverse("session_keepalive")).status_code == 403


def test_the_status_check_does_not_count_as_activity(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=14 * 60)
    response = client.get(reverse("session_status"))
    assert 55 <= response.json()["remaining"] <= 60
    assert response.json()["limit"] == "idle"
    assert time.time() - client.session[auth.LAST_ACTIVITY_KEY] >= 14 * 60


def test_signed_in_pages_carry_the_timeout_for_the_warning_script(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    response = client.get(reverse("queue"))
    html = response.content.decode()
    assert 'data-session-idle-seconds="900"' in html
    assert 'data-session-warning-seconds="60"' in html
    assert 'data-session-status-url="/session/status/"' in html
    assert "js/session-timeout.js" in html
    assert 'role="alertdialog"' in html
    assert int(response["X-Session-Remaining"]) > 890


def test_the_login_page_carries_no_timeout_script(client: Client) -> None:
    html = client.get(reverse("login")).content.decode()
    assert "data-session-idle-seconds" not in html
    assert "session-timeout.js" not in html


def test_disabling_a_user_ends_their_session_at_once(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    key = client.session.session_key
    assert client.get(reverse("queue")).status_code == 200

    medical_assistant.is_active = False
    medical_assistant.save(update_fields=["is_active"])
    # The row is gone with the save, not at the next request (nor listed meanwhile).
    assert not UserSession.objects.filter(session_key=key).exists()
    response = client.get(reverse("queue"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert SESSION_KEY not in client.session


def test_changing_a_password_ends_other_sessions(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    key = client.session.session_key
    medical_assistant.set_password("a-brand-new-passphrase-99")
    medical_assistant.save(update_fields=["password"])
    assert not UserSession.objects.filter(session_key=key).exists()
    response = client.get(reverse("queue"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_clearsessions_removes_rows_past_any_limit(medical_assistant: User) -> None:
    from django.core.management import call_command

    clients = {name: Client() for name in ("fresh", "idle", "old", "expired")}
    for c in clients.values():
        c.force_login(medical_assistant)
        assert c.get(reverse("queue")).status_code == 200
    keys = {name: c.session.session_key for name, c in clients.items()}
    age_session(clients["idle"], idle=15 * 60 + 5)
    age_session(clients["old"], idle=60, since_login=12 * 3600 + 5)
    UserSession.objects.filter(session_key=keys["expired"]).update(expire_date=timezone.now() - timedelta(seconds=1))

    call_command("clearsessions")
    assert set(UserSession.objects.values_list("session_key", flat=True)) == {keys["fresh"]}


@pytest.mark.parametrize("page", ["queue", "handoff_detail", "board", "account_security"])
def test_signed_in_pages_are_never_stored_by_the_browser(
    client: Client, supervisor: User, handoff: Handoff, page: str
) -> None:
    _signed_in(client, supervisor)
    url = reverse(page, kwargs={"uuid": handoff.uuid}) if page == "handoff_detail" else reverse(page)
    response = client.get(url)
    assert response.status_code == 200
    cache_control = {part.strip() for part in response["Cache-Control"].split(",")}
    assert {"no-store", "private"} <= cache_control
    assert response["Pragma"] == "no-cache"


def test_the_signed_out_message_reaches_the_login_page_once(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    age_session(client, idle=16 * 60)
    response = client.get(reverse("queue"))
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == ["You were signed out after 15 minutes without activity."]


def test_signing_out_clears_the_browsers_cache_cookies_and_storage(client: Client, medical_assistant: User) -> None:
    _signed_in(client, medical_assistant)
    queue = client.get(reverse("queue"))
    assert "Clear-Site-Data" not in queue  # only the sign-out says it
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Clear-Site-Data"] == '"cache", "cookies", "storage"'
    assert SESSION_KEY not in client.session
    assert "Clear-Site-Data" not in client.get(reverse("logout"))  # a GET signs no one out (405)
