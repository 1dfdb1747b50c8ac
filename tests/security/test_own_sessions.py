"""A person's own sessions (Sign-in & security): listed by ref, never by key; ended one by one, all
but this one, or everywhere at sign-out; nobody else's, and not by someone who has only the password.
"""

import importlib
import logging
import time
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice.accounts import auth, sessions
from backoffice.models import AccessAction, AccessLog, AccessOutcome, AccountChange, User, UserSession
from tests.conftest import PASSWORD
from tests.security.conftest import age_session, current_code, enroll

pytestmark = pytest.mark.django_db

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36"
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15"
)


def signed_in(username: str, *, agent: str = FIREFOX_WINDOWS, ip: str = "10.1.0.1") -> Client:
    """A browser at a workstation, signed in through the login page."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    response = client.post(reverse("login"), {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:300]
    return client


def key(client: Client) -> str:
    session_key = client.session.session_key
    assert session_key
    return session_key


def is_signed_in(client: Client) -> bool:
    return client.get(reverse("account_security")).status_code == 200


def listed(client: Client) -> list[sessions.OwnSession]:
    response = client.get(reverse("account_security"))
    assert response.status_code == 200
    return list(response.context["sessions"])


# --- The list ------------------------------------------------------------------------------------------


def test_the_page_lists_the_users_own_active_sessions_by_ref_never_by_key(
    medical_assistant: User, other_ma: User
) -> None:
    here = signed_in("ma", agent=FIREFOX_WINDOWS, ip="10.1.0.1")
    there = signed_in("ma", agent=CHROME_LINUX, ip="10.1.0.2")
    someone_else = signed_in("ma2", agent=SAFARI_MAC, ip="10.1.0.99")
    assert is_signed_in(there)  # the other workstation was used a moment ago

    response = here.get(reverse("account_security"))
    page = response.content.decode()
    rows = response.context["sessions"]
    assert [(s.browser, s.ip, s.current) for s in rows] == [
        ("Firefox 128 on Windows", "10.1.0.1", True),  # the one in use first
        ("Chrome 140 on Linux", "10.1.0.2", False),
    ]
    assert all(s.started and s.last_seen for s in rows)
    assert "This session" in page
    assert "10.1.0.99" not in page and "Safari" not in page  # not another person's
    # The keys are credentials: the page carries a keyed hash of each, and the one to end is posted by it.
    for client in (here, there, someone_else):
        assert key(client) not in page
    assert rows[1].ref == sessions.ref(key(there)) != key(there)
    assert reverse("session_end", args=[rows[1].ref]) in page
    assert reverse("session_end", args=[rows[0].ref]) not in page  # this one ends by logging out


def test_sessions_past_a_limit_are_not_listed(medical_assistant: User) -> None:
    here = signed_in("ma")
    idle = signed_in("ma", ip="10.1.0.2")
    old = signed_in("ma", ip="10.1.0.3")
    signed_out = signed_in("ma", ip="10.1.0.4")
    age_session(idle, idle=auth.idle_timeout_seconds() + 5)
    age_session(old, idle=10, since_login=auth.absolute_lifetime_seconds() + 5)
    signed_out.post(reverse("logout"))
    assert [s.ip for s in listed(here)] == ["10.1.0.1"]


def test_a_session_signed_in_with_the_password_but_not_the_code_is_flagged(supervisor: User) -> None:
    device = enroll(supervisor)
    owner = signed_in("sup", ip="10.1.0.1")
    assert owner.post(reverse("otp_verify"), {"code": current_code(device)}).status_code == 302
    intruder = signed_in("sup", agent=CHROME_LINUX, ip="10.9.9.9")  # has the password, not the phone

    rows = {s.ip: s for s in listed(owner)}
    assert rows["10.9.9.9"].awaiting_code
    assert not rows["10.1.0.1"].awaiting_code
    assert "Code not entered yet" in owner.get(reverse("account_security")).content.decode()
    assert intruder.get(reverse("account_security"))["Location"].startswith(reverse("otp_verify"))


def test_the_session_row_names_its_user_address_browser_and_clocks(medical_assistant: User) -> None:
    client = signed_in("ma", agent=CHROME_LINUX, ip="10.1.0.7")
    row = UserSession.objects.get(session_key=key(client))
    assert (row.user_id, row.ip, row.user_agent) == (medical_assistant.pk, "10.1.0.7", CHROME_LINUX)
    assert row.started is not None and row.last_seen is not None
    assert abs((timezone.now() - row.last_seen).total_seconds()) < 60
    # Signed out: the row is gone, and the new anonymous session names nobody.
    client.post(reverse("logout"))
    assert not UserSession.objects.filter(user=medical_assistant).exists()


# --- Ending one ----------------------------------------------------------------------------------------


def test_ending_a_session_signs_that_browser_out(medical_assistant: User, caplog: pytest.LogCaptureFixture) -> None:
    here = signed_in("ma")
    there = signed_in("ma", agent=CHROME_LINUX, ip="10.1.0.2")
    ref = sessions.ref(key(there))

    with caplog.at_level(logging.INFO, logger="backoffice.security"):
        response = here.post(reverse("session_end", args=[ref]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("account_security")
    assert "Ended the session in Chrome 140 on Linux at 10.1.0.2." in response.content.decode()
    assert [s.current for s in response.context["sessions"]] == [True]

    # That browser's next request finds no session: the login page, its cookie useless.
    after = there.get(reverse("queue"))
    assert after.status_code == 302
    assert after["Location"].startswith(reverse("login"))
    assert SESSION_KEY not in there.session
    assert is_signed_in(here)

    change = AccountChange.objects.get(kind=AccountChange.Kind.SESSION_ENDED)
    assert (change.subject_id, change.actor_id) == (medical_assistant.pk, medical_assistant.pk)
    assert change.detail == "one other session: Chrome 140 on Linux, 10.1.0.2"
    assert any(r.getMessage().startswith("session_ended reason=ended_by_owner sessions=1") for r in caplog.records)


def test_another_persons_session_cannot_be_ended_by_its_ref_and_the_try_is_logged(
    medical_assistant: User, other_ma: User, caplog: pytest.LogCaptureFixture
) -> None:
    mine = signed_in("ma")
    theirs = signed_in("ma2", ip="10.1.0.50")
    their_ref = sessions.ref(key(theirs))

    with caplog.at_level(logging.INFO, logger="backoffice.security"):
        assert mine.post(reverse("session_end", args=[their_ref])).status_code == 404
        assert mine.post(reverse("session_end", args=["0" * 32])).status_code == 404  # made up
        assert mine.post(reverse("session_end", args=[key(theirs)])).status_code == 404  # the key itself
    assert is_signed_in(theirs)
    assert UserSession.objects.filter(session_key=key(theirs)).exists()
    assert not AccountChange.objects.filter(kind=AccountChange.Kind.SESSION_ENDED).exists()

    refused = [r.getMessage() for r in caplog.records if r.getMessage().startswith("session_end_refused")]
    assert len(refused) == 3
    assert all(f"user_id={medical_assistant.pk}" in line for line in refused)
    assert not any(key(theirs)[:8] in line for line in refused)  # what was posted is not logged
    denied = AccessLog.objects.filter(user=medical_assistant, action=AccessAction.DENIED, what="session end")
    assert denied.count() == 3
    assert set(denied.values_list("outcome", flat=True)) == {AccessOutcome.NOT_FOUND}


def test_a_session_already_ended_is_not_found(medical_assistant: User) -> None:
    here = signed_in("ma")
    there = signed_in("ma", ip="10.1.0.2")
    ref = sessions.ref(key(there))
    assert here.post(reverse("session_end", args=[ref])).status_code == 302
    assert here.post(reverse("session_end", args=[ref])).status_code == 404


def test_the_session_in_use_is_ended_by_logging_out_not_by_its_ref(medical_assistant: User) -> None:
    here = signed_in("ma")
    response = here.post(reverse("session_end", args=[sessions.ref(key(here))]), follow=True)
    assert "That is the session you are using now: log out to end it." in response.content.decode()
    assert is_signed_in(here)


def test_ending_sessions_needs_a_post_with_the_csrf_token(medical_assistant: User) -> None:
    here = signed_in("ma")
    there = signed_in("ma", ip="10.1.0.2")
    ref = sessions.ref(key(there))
    assert here.get(reverse("session_end", args=[ref])).status_code == 405
    assert here.get(reverse("sessions_end_others")).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = here.cookies
    assert strict.post(reverse("session_end", args=[ref])).status_code == 403
    assert strict.post(reverse("sessions_end_others")).status_code == 403
    assert strict.post(reverse("logout"), {"everywhere": "1"}).status_code == 403
    assert is_signed_in(there)
    # Signed out, the endpoints are behind the login page like every other.
    anonymous = Client()
    assert anonymous.post(reverse("sessions_end_others"))["Location"].startswith(reverse("login"))


# --- All but this one, and everywhere -------------------------------------------------------------------


def test_ending_every_other_session_keeps_this_one(medical_assistant: User, other_ma: User) -> None:
    here = signed_in("ma")
    others = [signed_in("ma", ip=f"10.1.0.{n}") for n in (2, 3)]
    stale = signed_in("ma", ip="10.1.0.4")
    age_session(stale, idle=auth.idle_timeout_seconds() + 5)  # over already: gone too, not counted
    colleague = signed_in("ma2")

    response = here.post(reverse("sessions_end_others"), follow=True)
    assert "Ended 2 other sessions." in response.content.decode()
    assert is_signed_in(here)
    assert not any(is_signed_in(c) for c in [*others, stale])
    assert is_signed_in(colleague)
    assert list(UserSession.objects.filter(user=medical_assistant).values_list("session_key", flat=True)) == [key(here)]
    assert AccountChange.objects.get(kind=AccountChange.Kind.SESSION_ENDED).detail == "every other session: 2"

    again = here.post(reverse("sessions_end_others"), follow=True)
    assert "You had no other sessions." in again.content.decode()
    assert AccountChange.objects.filter(kind=AccountChange.Kind.SESSION_ENDED).count() == 1


def test_signing_out_everywhere_ends_every_session_of_the_user(medical_assistant: User, other_ma: User) -> None:
    here = signed_in("ma")
    there = signed_in("ma", ip="10.1.0.2")
    colleague = signed_in("ma2")

    response = here.post(reverse("logout"), {"everywhere": "1"})
    assert response.status_code == 302
    assert response["Clear-Site-Data"] == '"cache", "cookies", "storage"'
    assert not is_signed_in(here)
    assert not is_signed_in(there)
    assert not UserSession.objects.filter(user=medical_assistant).exists()
    assert is_signed_in(colleague)
    change = AccountChange.objects.get(kind=AccountChange.Kind.SESSION_ENDED)
    assert change.detail == "signed out everywhere: 1"


def test_a_plain_log_out_ends_only_this_session(medical_assistant: User) -> None:
    here = signed_in("ma")
    there = signed_in("ma", ip="10.1.0.2")
    assert here.post(reverse("logout")).status_code == 302
    assert not is_signed_in(here)
    assert is_signed_in(there)


def test_the_account_page_offers_both(medical_assistant: User) -> None:
    here = signed_in("ma")
    page = here.get(reverse("account_security")).content.decode()
    assert "End all other sessions" not in page  # only one session: nothing else to end
    assert 'name="everywhere"' in page and "Sign out everywhere" in page
    signed_in("ma", ip="10.1.0.2")
    assert "End all other sessions" in here.get(reverse("account_security")).content.decode()


def test_someone_with_only_the_password_cannot_end_the_owners_sessions(supervisor: User) -> None:
    device = enroll(supervisor)
    owner = signed_in("sup")
    assert owner.post(reverse("otp_verify"), {"code": current_code(device)}).status_code == 302
    intruder = signed_in("sup", agent=CHROME_LINUX, ip="10.9.9.9")

    # Before the code step: the pages that end sessions send them to it, and end nothing.
    for url in (reverse("sessions_end_others"), reverse("session_end", args=[sessions.ref(key(owner))])):
        response = intruder.post(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("otp_verify"))
    # Signing out still works, but "everywhere" ends only their own session.
    assert intruder.post(reverse("logout"), {"everywhere": "1"}).status_code == 302
    assert SESSION_KEY not in intruder.session
    assert is_signed_in(owner)
    assert not AccountChange.objects.filter(kind=AccountChange.Kind.SESSION_ENDED).exists()


# --- The store: the deploy, clearsessions --------------------------------------------------------------


def test_sessions_open_at_the_deploy_move_to_the_new_table_with_their_user(medical_assistant: User) -> None:
    """Migration 0015: a session of Django's own table keeps working, and is listed and ended like any."""
    old = DjangoSessionStore()
    now = time.time()
    old.update(
        {
            SESSION_KEY: str(medical_assistant.pk),
            "_auth_user_backend": "backoffice.accounts.backends.RolePermissionBackend",
            "_auth_user_hash": medical_assistant.get_session_auth_hash(),
            auth.LOGIN_AT_KEY: now - 600,
            auth.LAST_ACTIVITY_KEY: now - 60,
        }
    )
    old.create()
    expired = DjangoSessionStore()
    expired.update({SESSION_KEY: str(medical_assistant.pk)})
    expired.set_expiry(1)
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(expire_date=timezone.now() - timedelta(hours=1))
    UserSession.objects.all().delete()

    migration = importlib.import_module("backoffice.migrations.0015_user_sessions")
    migration.move_open_sessions(apps, None)

    assert not Session.objects.exists()  # nothing left in the old table: a key is a credential
    row = UserSession.objects.get()
    assert (row.session_key, row.user_id) == (old.session_key, medical_assistant.pk)
    assert row.started is not None and abs(row.started.timestamp() - (now - 600)) < 1
    assert row.last_seen is not None and abs(row.last_seen.timestamp() - (now - 60)) < 1

    browser = Client()
    browser.cookies["sessionid"] = old.session_key
    assert is_signed_in(browser)
    assert [(s.browser, s.ip, s.current) for s in listed(browser)] == [("Unknown browser", "", True)]


def test_clearsessions_works_with_the_new_store(medical_assistant: User) -> None:
    from django.core.management import call_command

    live = signed_in("ma")
    idle = signed_in("ma", ip="10.1.0.2")
    age_session(idle, idle=auth.idle_timeout_seconds() + 5)
    call_command("clearsessions")
    assert list(UserSession.objects.filter(user=medical_assistant).values_list("session_key", flat=True)) == [key(live)]
    assert is_signed_in(live)


def test_browser_names_read_from_the_user_agent() -> None:
    assert sessions.browser_summary(FIREFOX_WINDOWS) == "Firefox 128 on Windows"
    assert sessions.browser_summary(CHROME_LINUX) == "Chrome 140 on Linux"
    assert sessions.browser_summary(SAFARI_MAC) == "Safari 18 on Mac OS X"
    assert sessions.browser_summary("") == "Unknown browser"
    assert sessions.browser_summary("x") == "Unknown browser"


def test_a_user_agent_with_control_characters_is_stored_without_them(medical_assistant: User) -> None:
    client = signed_in("ma", agent="Mozilla/5.0 \x1b[31mFirefox/128.0\u202e\x7f")  # gunicorn refuses a NUL
    row = UserSession.objects.get(session_key=key(client))
    assert row.user_agent == "Mozilla/5.0 [31mFirefox/128.0"
    assert is_signed_in(client)
