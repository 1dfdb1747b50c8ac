"""Test-only authentication backend (see AUTHENTICATION_BACKENDS in backoffice/test_settings.py)."""

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class RequestOptionalAxesBackend(AxesStandaloneBackend):
    """Axes' lockout check, skipped for Django's test Client.login(), which passes no request.

    Production uses AxesStandaloneBackend itself, which refuses a request-less authenticate()
    so that no code path can check a password outside the lockout.
    """

    def authenticate(  # type: ignore[override]
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
