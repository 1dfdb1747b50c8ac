"""Sign-in throttling (backoffice.accounts.throttle) and the supervisor confirmation's own limiter
(backoffice.accounts.reauth): nobody can lock an account for everyone, pauses grow, a new password
clears the counts, supervisors are alerted."""

import datetime as dt
import io
import logging

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice.accounts import reauth
from backoffice.accounts.auth import username_ref
from backoffice.accounts.throttle import pause_after
from backoffice.audit.models import ConfirmationThrottle, SecurityAlert
from backoffice.models import User
from procedures.workflow import ProcedureStatus
from tests.conftest import PASSWORD
from tests.factories import UserFactory
from tests.procedures.helpers import new_ma, new_supervisor, ready_handoff
from tests.security.conftest import current_code, enroll, sign_in_verified

pytestmark = pytest.mark.django_db

WRONG = "wrong-password-123"


def sign_in(client: Client, username: str, password: str = PASSWORD, ip: str = "10.0.0.1") -> HttpResponse:
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def fail(client: Client, username: str, times: int, ip: str = "10.0.0.1") -> HttpResponse:
    response = HttpResponse()
    for _ in range(times):
        response = sign_in(client, username, WRONG, ip=ip)
    return response


def age_failures(seconds: int) -> None:
    """As if the last failure were ``seconds`` ago."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(seconds=seconds))


# --- Per username and address, growing pauses -----------------------------------------------------


def test_one_addresses_failures_never_pause_the_account_from_another(client: Client, medical_assistant: User) -> None:
    assert fail(client, "ma", 5, ip="10.1.0.1").status_code == 429
    assert sign_in(client, "ma", PASSWORD, ip="10.1.0.1").status_code == 429
    # The account itself, at its own workstation, is not locked.
    assert sign_in(client, "ma", PASSWORD, ip="10.1.0.2").status_code == 302
    assert client.session[SESSION_KEY] == str(medical_assistant.pk)


def test_guessing_many_usernames_from_an_address_pauses_none_of_the_real_ones_there(
    client: Client, medical_assistant: User
) -> None:
    for name in ["alice", "bob", "carol", "dave", "erin", "frank"]:
        assert sign_in(client, name, WRONG, ip="10.1.1.1").status_code == 200
    assert sign_in(client, "ma", PASSWORD, ip="10.1.1.1").status_code == 302


def test_pauses_start_at_a_minute_and_double_with_each_failure_after_one(
    client: Client, medical_assistant: User
) -> None:
    first = fail(client, "ma", 5)
    assert first.status_code == 429
    assert "paused for 1 minute." in first.content.decode()

    # Tries during the pause are refused unchecked and don't count: the count stays at five.
    assert sign_in(client, "ma", WRONG).status_code == 429
    assert sign_in(client, "ma", PASSWORD).status_code == 429
    assert AccessAttempt.objects.get().failures_since_start == 5

    age_failures(61)  # the minute is over: one more wrong password pauses for two
    second = sign_in(client, "ma", WRONG)
    assert second.status_code == 429
    assert "paused for 2 minutes." in second.content.decode()
    age_failures(61)
    assert sign_in(client, "ma", PASSWORD).status_code == 429  # still inside the two minutes

    age_failures(121)
    assert "paused for 4 minutes." in sign_in(client, "ma", WRONG).content.decode()
    age_failures(241)
    assert sign_in(client, "ma", PASSWORD).status_code == 302  # after the pause the right password works
    assert not AccessAttempt.objects.exists()  # and the count starts again


def test_the_pause_doubles_up_to_the_longest_one(settings) -> None:  # type: ignore[no-untyped-def]
    minutes = [pause_after(n).total_seconds() / 60 for n in range(1, 14)]
    assert minutes == [1, 1, 1, 1, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    settings.LOGIN_LOCKOUT_MAX_MINUTES = 15
    assert pause_after(50) == dt.timedelta(minutes=15)


def test_failures_are_forgotten_a_day_after_the_last_one(client: Client, medical_assistant: User) -> None:
    fail(client, "ma", 4)
    age_failures(24 * 3600 + 1)
    assert fail(client, "ma", 4).status_code == 200  # the old four are gone: four, not eight
    assert AccessAttempt.objects.get().failures_since_start == 4


# --- A new password clears the counts -------------------------------------------------------------


def test_a_password_reset_in_admin_clears_the_accounts_pauses_everywhere(
    client: Client, medical_assistant: User, supervisor: User, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False
    fail(client, "ma", 5, ip="10.2.0.1")
    fail(client, "ma", 5, ip="10.2.0.2")
    fail(client, "nobody-else", 2, ip="10.2.0.1")
    ConfirmationThrottle.objects.create(
        by=supervisor, account=medical_assistant, failures=3, last_failure_at=timezone.now()
    )

    admin = Client()
    admin.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    new_password = "a-brand-new-passphrase-42"
    response = admin.post(
        reverse("admin:auth_user_password_change", args=[medical_assistant.pk]),
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]

    assert list(AccessAttempt.objects.values_list("username", flat=True)) == [username_ref("nobody-else")]
    assert not ConfirmationThrottle.objects.filter(account=medical_assistant).exists()
    assert sign_in(Client(), "ma", new_password, ip="10.2.0.1").status_code == 302


def test_a_password_set_anywhere_clears_them_but_a_sign_in_hash_upgrade_does_not(
    client: Client, medical_assistant: User
) -> None:
    fail(client, "ma", 3)
    medical_assistant.save()  # no new password: nothing cleared
    assert AccessAttempt.objects.count() == 1
    medical_assistant.set_password("another-good-passphrase-7")
    medical_assistant.save()
    assert not AccessAttempt.objects.exists()


# --- Supervisors are alerted ----------------------------------------------------------------------


def test_a_pause_on_a_real_account_alerts_supervisors_once_and_is_logged(
    client: Client, medical_assistant: User, supervisor: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        fail(client, "ma", 5, ip="10.3.0.1")
        sign_in(client, "ma", WRONG, ip="10.3.0.1")  # a try during the pause: no second alert
        fail(client, "no-such-person", 5, ip="10.3.0.1")  # a made-up username locks nobody out: no alert
    alert = SecurityAlert.objects.get()
    assert (alert.kind, alert.account, alert.ip_address, alert.failures, alert.pause_seconds) == (
        SecurityAlert.Kind.SIGN_IN_PAUSED,
        medical_assistant,
        "10.3.0.1",
        5,
        60,
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "backoffice.security"]
    assert sum(m.startswith("sign_in_locked_out") for m in lines) == 2
    assert any(
        m.startswith("security_alert kind=sign_in_paused") and f"user_id={medical_assistant.pk}" in m for m in lines
    )
    assert not any("no-such-person" in m for m in lines)

    board = Client()
    sign_in_verified(board, supervisor)
    page = board.get(reverse("board")).content.decode()
    assert "Sign-in alerts" in page
    assert "Sign-in of Maria Alvarez</strong> (ma) paused after 5 wrong passwords" in page
    assert "from 10.3.0.1, for 1 minute" in page


def test_alerts_leave_the_board_after_a_day(client: Client, medical_assistant: User, supervisor: User) -> None:
    SecurityAlert.objects.create(
        kind=SecurityAlert.Kind.SIGN_IN_PAUSED,
        account=medical_assistant,
        failures=5,
        pause_seconds=60,
        at=timezone.now() - dt.timedelta(hours=25),
    )
    sign_in_verified(client, supervisor)
    assert "Sign-in alerts" not in client.get(reverse("board")).content.decode()


# --- The supervisor's confirmation: its own limiter ------------------------------------------------


def _start(client: Client, order, supervisor: User, secret: str, ip: str = "10.4.0.1") -> HttpResponse:  # type: ignore[no-untyped-def]
    return client.post(
        reverse("procedures:start", args=[order.uuid]),
        {"supervision": "present", "supervisor": supervisor.pk, "supervisor_password": secret},
        REMOTE_ADDR=ip,
    )


@pytest.fixture
def trainee() -> User:
    return new_ma(username="trainee", first_name="Jordan", last_name="Lee")


@pytest.fixture
def boss() -> User:
    return new_supervisor(username="boss", first_name="Samira", last_name="Okafor")


def test_wrong_confirmations_never_pause_the_supervisors_sign_in(trainee: User, boss: User) -> None:
    _, orders = ready_handoff("36415", ma=trainee)
    at_station = Client()
    at_station.force_login(trainee)
    for _ in range(6):
        assert _start(at_station, orders["36415"], boss, "not-her-password").status_code == 422
    assert not AccessAttempt.objects.exists()  # nothing counted toward sign-in
    # The supervisor signs in at that very workstation.
    assert sign_in(Client(), "boss", PASSWORD, ip="10.4.0.1").status_code == 302


def test_the_confirmation_pauses_per_trainee_and_supervisor_after_three_wrong_tries(trainee: User, boss: User) -> None:
    _, orders = ready_handoff("36415", ma=trainee)
    order = orders["36415"]
    at_station = Client()
    at_station.force_login(trainee)
    first = _start(at_station, order, boss, "not-it").content.decode()
    assert "That is not Samira Okafor&#x27;s password or current code. Ask them to type it again." in first
    _start(at_station, order, boss, "not-it")
    third = _start(at_station, order, boss, "not-it").content.decode()
    assert "confirming Samira Okafor here is paused for 1 minute" in third
    assert "Samira Okafor&#x27;s own sign-in is not affected." in third

    # During the pause even her right password waits, and nothing started.
    paused = _start(at_station, order, boss, PASSWORD).content.decode()
    assert "Too many wrong tries to confirm Samira Okafor here: try again in" in paused
    order.refresh_from_db()
    assert order.status != ProcedureStatus.IN_PROGRESS
    assert ConfirmationThrottle.objects.get(by=trainee, account=boss).failures == 3

    alert = SecurityAlert.objects.get()
    assert (alert.kind, alert.account, alert.by, alert.failures) == (
        SecurityAlert.Kind.CONFIRMATION_PAUSED,
        boss,
        trainee,
        3,
    )

    # Another trainee confirming the same supervisor is not paused.
    other = new_ma(username="trainee2", first_name="Ali", last_name="Khan")
    with pytest.raises(reauth.ConfirmationRefused, match="That is not Samira Okafor's password"):
        reauth.confirm(account=boss, secret="still-not-it", by=other)
    reauth.confirm(account=boss, secret=PASSWORD, by=other)

    # After the minute her password works, and the count is gone.
    ConfirmationThrottle.objects.update(last_failure_at=timezone.now() - dt.timedelta(seconds=61))
    assert _start(at_station, order, boss, PASSWORD).status_code == 302
    order.refresh_from_db()
    assert order.status == ProcedureStatus.IN_PROGRESS
    assert not ConfirmationThrottle.objects.exists()


def test_a_supervisor_with_an_authenticator_confirms_with_its_current_code(trainee: User, boss: User) -> None:
    device = enroll(boss)
    _, orders = ready_handoff("36415", ma=trainee)
    at_station = Client()
    at_station.force_login(trainee)
    code = current_code(device)
    assert _start(at_station, orders["36415"], boss, code).status_code == 302
    orders["36415"].refresh_from_db()
    assert orders["36415"].supervisor == boss
    # A code works once.
    with pytest.raises(reauth.ConfirmationRefused, match="password or current code"):
        reauth.confirm(account=boss, secret=code, by=trainee)


def test_a_code_is_no_confirmation_for_a_supervisor_without_an_authenticator(trainee: User, boss: User) -> None:
    with pytest.raises(reauth.ConfirmationRefused):
        reauth.confirm(account=boss, secret="123456", by=trainee)


def test_the_confirmation_field_invites_no_saved_password(trainee: User, boss: User) -> None:
    _, orders = ready_handoff("36415", ma=trainee)
    at_station = Client()
    at_station.force_login(trainee)
    page = at_station.get(reverse("procedures:detail", args=[orders["36415"].uuid])).content.decode()
    form = page[page.index('action="' + reverse("procedures:start", args=[orders["36415"].uuid])) :]
    form = form[: form.index("</form>")]
    field = form[form.index('name="supervisor_password"') - 200 : form.index('name="supervisor_password"') + 200]
    assert 'autocomplete="one-time-code"' in field
    assert 'type="password"' in field
    # No username box for a browser to pair the password with.
    assert 'name="username"' not in form and 'autocomplete="username"' not in form


def test_unlocking_by_the_typed_username_still_works(client: Client, medical_assistant: User) -> None:
    from django.core.management import call_command

    fail(client, "ma", 5, ip="10.5.0.1")
    fail(client, "doc", 2, ip="10.5.0.1")
    call_command("axes_reset_username", "ma", stdout=io.StringIO())
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == [username_ref("doc")]
    assert sign_in(client, "ma", PASSWORD, ip="10.5.0.1").status_code == 302
