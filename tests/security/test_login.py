"""Sign-in: brute-force lockout (django-axes), no user enumeration, attempts logged, session ids."""

import datetime as dt
import logging
import re

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from backoffice.accounts import auth
from backoffice.models import User, UserSession
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(client: Client, username: str, password: str = PASSWORD, ip: str = "10.0.0.1") -> HttpResponse:
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _normalized(response: HttpResponse) -> str:
    """The page without what differs on every request (CSRF token, CSP nonce)."""
    html = response.content.decode()
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    html = re.sub(r'"X-CSRFToken": "[^"]+"', "", html)
    return re.sub(r'nonce="[^"]+"', "", html)


def test_the_throttle_defaults_are_five_failures_then_pauses_from_one_minute_to_an_hour() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.LOGIN_LOCKOUT_MINUTES == 1
    assert settings.LOGIN_LOCKOUT_MAX_MINUTES == 60
    assert settings.LOGIN_FAILURE_MEMORY_HOURS == 24
    # One counter per username and address together (tests/security/test_throttle.py).
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert settings.AXES_RESET_ON_SUCCESS is True
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_it_pauses_a_username_at_an_address_after_five_failures(client: Client, medical_assistant: User) -> None:
    for _ in range(4):
        assert sign_in(client, "ma", "wrong-password-123", ip="10.0.1.1").status_code == 200
    response = sign_in(client, "ma", "wrong-password-123", ip="10.0.1.1")
    assert response.status_code == 429
    assert "Sign-in paused" in response.content.decode()

    # Even the right password waits at that address.
    response = sign_in(client, "ma", PASSWORD, ip="10.0.1.1")
    assert response.status_code == 429
    assert SESSION_KEY not in client.session


def test_the_pause_ends_after_its_minute(client: Client, medical_assistant: User) -> None:
    for _ in range(5):
        sign_in(client, "ma", "wrong-password-123")
    assert sign_in(client, "ma", PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(minutes=1, seconds=1))
    assert sign_in(client, "ma", PASSWORD).status_code == 302


def test_a_successful_sign_in_resets_the_failure_count(client: Client, medical_assistant: User) -> None:
    for _ in range(4):
        sign_in(client, "ma", "wrong-password-123")
    assert sign_in(client, "ma", PASSWORD).status_code == 302
    client.post(reverse("logout"))

    for _ in range(4):
        assert sign_in(client, "ma", "wrong-password-123").status_code == 200
    assert sign_in(client, "ma", PASSWORD).status_code == 302


def test_the_lockout_page_is_the_same_for_unknown_and_real_accounts(client: Client, medical_assistant: User) -> None:
    for _ in range(5):
        real = sign_in(client, "ma", "wrong-password-123", ip="10.0.3.1")
        unknown = sign_in(client, "no-such-user", "wrong-password-123", ip="10.0.3.2")
    assert real.status_code == unknown.status_code == 429
    assert _normalized(real) == _normalized(unknown)
    assert "no-such-user" not in unknown.content.decode()
    assert "1 minute" in real.content.decode()


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client: Client, medical_assistant: User) -> None:
    wrong_password = sign_in(client, "ma", "wrong-password-123", ip="10.0.4.1")
    unknown_user = sign_in(client, "nobody-here", "wrong-password-123", ip="10.0.4.2")
    assert wrong_password.status_code == unknown_user.status_code == 200
    assert wrong_password.context["form"].errors == unknown_user.context["form"].errors
    assert "Please enter a correct username and password" in wrong_password.content.decode()


def test_an_inactive_account_gets_the_same_answer_as_a_wrong_password(client: Client, medical_assistant: User) -> None:
    medical_assistant.is_active = False
    medical_assistant.save(update_fields=["is_active"])
    inactive = sign_in(client, "ma", PASSWORD, ip="10.0.4.3")
    wrong = sign_in(client, "ma", "wrong-password-123", ip="10.0.4.4")
    assert inactive.context["form"].errors == wrong.context["form"].errors


def test_every_attempt_is_recorded(client: Client, medical_assistant: User) -> None:
    sign_in(client, "ma", "wrong-password-123", ip="10.0.5.1")
    sign_in(client, "nobody-here", "wrong-password-123", ip="10.0.5.1")
    sign_in(client, "ma", PASSWORD, ip="10.0.5.1")

    # By the keyed hash the security log uses, never the typed username (tests/security/test_signin_records.py).
    failures = AccessFailureLog.objects.order_by("attempt_time")
    assert [(f.username, f.ip_address) for f in failures] == [
        (auth.username_ref("ma"), "10.0.5.1"),
        (auth.username_ref("nobody-here"), "10.0.5.1"),
    ]
    assert AccessLog.objects.filter(username=auth.username_ref("ma"), ip_address="10.0.5.1").count() == 1
    # Axes keeps what was posted, with the password masked.
    assert all("wrong-password-123" not in a.post_data for a in AccessAttempt.objects.all())


def test_the_security_log_names_users_by_a_hash_never_the_username_or_password(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.factories import UserFactory

    UserFactory(username="rosalind.q")
    with caplog.at_level(logging.INFO):
        sign_in(client, "rosalind.q", "Sekret-Passw0rd-typed", ip="10.0.6.1")
        sign_in(client, "rosalind.q", PASSWORD, ip="10.0.6.1")
        client.post(reverse("logout"))
    security = [r.getMessage() for r in caplog.records if r.name == "backoffice.security"]
    ref = auth.username_ref("rosalind.q")
    assert any(m.startswith("sign_in_failed") and f"user={ref}" in m for m in security)
    assert any(m.startswith("sign_in ") and f"user={ref}" in m for m in security)
    assert any(m.startswith("sign_out") for m in security)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "rosalind.q" not in everything
    assert "Sekret-Passw0rd-typed" not in everything


def test_a_lockout_is_logged(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            sign_in(client, "ma", "wrong-password-123", ip="10.0.7.1")
    assert any(
        r.getMessage().startswith("sign_in_locked_out") for r in caplog.records if r.name == "backoffice.security"
    )


@pytest.mark.parametrize(
    ("header", "forwarded_for", "expected"),
    [
        ("", "203.0.113.9", "192.0.2.1"),  # not behind a proxy: the header is the client's to forge
        ("HTTP_X_FORWARDED_FOR", "203.0.113.9", "203.0.113.9"),
        ("HTTP_X_FORWARDED_FOR", "198.51.100.7, 203.0.113.9", "203.0.113.9"),  # the left one is the client's
        ("HTTP_X_FORWARDED_FOR", "", "192.0.2.1"),
        ("HTTP_X_FORWARDED_FOR", "not-an-address", "192.0.2.1"),
    ],
)
def test_lockouts_count_the_client_address_the_access_log_records(
    settings, header: str, forwarded_for: str, expected: str
) -> None:  # type: ignore[no-untyped-def]
    settings.TRUSTED_PROXY_IP_HEADER = header
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR=forwarded_for)
    assert auth.client_ip(request) == expected


def test_behind_the_tls_proxy_addresses_come_from_the_header_it_appends() -> None:
    import subprocess
    import sys

    code = "import django; django.setup(); from django.conf import settings as s; print(s.TRUSTED_PROXY_IP_HEADER)"
    env = {
        "DJANGO_SETTINGS_MODULE": "backoffice.settings",
        "SECRET_KEY": "x" * 60,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/none",
        "BEHIND_TLS_PROXY": "true",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert result.stdout.strip() == "HTTP_X_FORWARDED_FOR"


def test_signing_in_gives_a_new_session_id(client: Client, medical_assistant: User) -> None:
    session = client.session
    session["before_sign_in"] = True
    session.save()
    old_key = session.session_key
    client.cookies[settings.SESSION_COOKIE_NAME] = old_key

    assert sign_in(client, "ma").status_code == 302
    new_key = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new_key != old_key
    assert not UserSession.objects.filter(session_key=old_key).exists()
    assert client.session[SESSION_KEY] == str(medical_assistant.pk)


def test_logging_out_ends_the_session(client: Client, medical_assistant: User) -> None:
    sign_in(client, "ma")
    key = client.session.session_key
    assert client.get(reverse("queue")).status_code == 200

    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert not UserSession.objects.filter(session_key=key).exists()
    assert SESSION_KEY not in client.session
    response = client.get(reverse("queue"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
