"""Security headers, CSP nonces on every script, and `check --deploy` with production settings."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from backoffice.models import Handoff, User
from tests.security.conftest import enroll, sign_in_verified

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.IGNORECASE)


def _pages(client: Client, supervisor: User, admin_user: User, handoff: Handoff) -> dict[str, str]:
    """A signed-out page, the second-factor pages and the main signed-in pages, as HTML."""
    pages = {"login": client.get(reverse("login"))}
    enroll(admin_user)
    admin_client = Client()
    admin_client.post(reverse("login"), {"username": "admin", "password": "correct-horse-battery-staple"})
    pages["otp_verify"] = admin_client.get(reverse("otp_verify"))
    sign_in_verified(client, supervisor)
    pages["queue"] = client.get(reverse("queue"))
    pages["board"] = client.get(reverse("board"))
    pages["handoff_detail"] = client.get(reverse("handoff_detail", kwargs={"uuid": handoff.uuid}))
    pages["handoff_new"] = client.get(reverse("handoff_new"))
    pages["account_security"] = client.get(reverse("account_security"))
    pages["otp_setup"] = client.get(reverse("otp_setup"))
    for name, response in pages.items():
        assert response.status_code == 200, name
    return pages  # type: ignore[return-value]


def test_every_page_has_a_csp_with_a_nonce_that_every_script_carries(
    client: Client, supervisor: User, admin_user: User, handoff: Handoff
) -> None:
    for name, response in _pages(client, supervisor, admin_user, handoff).items():
        policy = response["Content-Security-Policy"]  # type: ignore[index]
        nonce = re.search(r"script-src 'self' 'nonce-([^']+)'", policy)
        assert nonce, (name, policy)
        assert "'unsafe-inline'" not in policy
        assert "frame-ancestors 'none'" in policy
        tags = SCRIPT_TAG.findall(response.content.decode())  # type: ignore[attr-defined]
        assert tags, name
        for tag in tags:
            assert f'nonce="{nonce.group(1)}"' in tag, (name, tag)


def test_pages_carry_the_usual_security_headers(client: Client, medical_assistant: User) -> None:
    client.force_login(medical_assistant)
    response = client.get(reverse("queue"), secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_session_and_csrf_cookies_are_httponly(client: Client, medical_assistant: User, settings) -> None:  # type: ignore[no-untyped-def]
    response = client.post(reverse("login"), {"username": "ma", "password": "correct-horse-battery-staple"})
    assert response.cookies[settings.SESSION_COOKIE_NAME]["httponly"]
    assert response.cookies[settings.SESSION_COOKIE_NAME]["samesite"] == "Lax"
    assert settings.CSRF_COOKIE_HTTPONLY is True


def _production_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # Only what the process needs to run; no setting leaks in from the test environment.
        if key in {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="backoffice.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS="backoffice.example",
        DATABASE_URL=os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres",
    )
    env.update(extra)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_passes_with_production_settings() -> None:
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=_production_env())
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_defaults_to_https_only() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=ROOT, env=_production_env(), capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True", "True", "31536000"]


def test_the_dev_server_settings_still_work_over_plain_http() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    )
    env = _production_env(DEBUG="true")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert result.stdout.split() == ["False", "False", "0"]


def test_a_misspelt_role_in_otp_required_roles_stops_start_up() -> None:
    result = _manage("check", env=_production_env(OTP_REQUIRED_ROLES="Admin,admins"))
    assert result.returncode != 0
    assert "OTP_REQUIRED_ROLES names unknown roles ['admins']" in result.stderr
