"""Security tests run with the production sign-in policy that test_settings relaxes for the rest."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice.accounts import auth
from backoffice.models import User

# backoffice.settings' default: the roles that read every patient's name in the access log, and admins.
PRODUCTION_OTP_ROLES = ["Admin", "Supervisor", "Auditor"]


@pytest.fixture(autouse=True)
def production_sign_in_policy(settings: Any) -> Iterator[None]:
    settings.OTP_REQUIRED_ROLES = PRODUCTION_OTP_ROLES
    settings.OTP_REQUIRED_FOR_SUPERUSERS = True
    settings.AUTHENTICATION_BACKENDS = [
        "axes.backends.AxesStandaloneBackend",
        "backoffice.accounts.backends.RolePermissionBackend",
    ]
    yield


def age_session(client: Client, *, idle: float = 0, since_login: float | None = None) -> None:
    """Move the session's clocks into the past, as if `idle` seconds passed without activity."""
    session = client.session
    now = time.time()
    session[auth.LAST_ACTIVITY_KEY] = now - idle
    session[auth.LOGIN_AT_KEY] = now - (since_login if since_login is not None else idle)
    session.save()


def current_code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    """The code an authenticator app would show now (offset_steps=+/-1 for the next/previous one)."""
    return str(totp(device.bin_key, step=device.step, t0=device.t0 - offset_steps * device.step, digits=6)).zfill(6)


def enroll(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def sign_in_verified(client: Client, user: User) -> Client:
    """``force_login``; for a user who owes the second factor, the session as after a right code.

    For tests about something else (a page, a log); the code step itself is tests/security/test_otp.py's.
    """
    client.force_login(user)
    if auth.user_needs_second_factor(user):
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or enroll(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client
