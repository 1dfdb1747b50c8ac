"""Session and sign-in rules that apply to every request (order: see MIDDLEWARE in settings)."""

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequiredMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect, resolve_url
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from backoffice.accounts import auth

logger = logging.getLogger("backoffice.security")

# Views a signed-in user can reach before passing the second factor.
OTP_EXEMPT_VIEWS = frozenset(
    {
        "login",
        "logout",
        "otp_verify",
        "otp_setup",
        "session_keepalive",
        "session_status",
        "healthz",
        "admin:logout",
        # The FHIR API takes a bearer token, never a session: it answers 401 itself.
        "fhir:metadata",
        "fhir:search",
        "fhir:search_post",
        "fhir:read",
    }
)


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _redirect(request: HttpRequest, url: str) -> HttpResponseBase:
    """A redirect the browser follows as a whole page, even for an htmx fragment request."""
    if _is_htmx(request):
        # A plain 302 would have htmx swap the login page into the queue table.
        return HttpResponseClientRedirect(url)
    return redirect(url)


class SessionSecurityMiddleware:
    """End idle, over-age and orphaned sessions; keep signed-in pages out of caches.

    - After SESSION_IDLE_TIMEOUT_SECONDS without activity, or SESSION_ABSOLUTE_LIFETIME_SECONDS
      after sign-in, the session is flushed and the browser sent to the login page with a message.
    - A session whose user can no longer sign in (deactivated, deleted) is flushed on its next
      request: AuthenticationMiddleware already treats it as anonymous, but it kept its data.
    - Signed-in responses get ``Cache-Control: no-store, private`` so Back after sign-out can't
      show patient data from the browser cache, and ``X-Session-Remaining`` for the warning script.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        ended = self._end_expired_session(request)
        if ended is not None:
            return ended
        response = self.get_response(request)
        if request.user.is_authenticated:
            patch_cache_control(response, no_store=True, private=True)
            response.headers["Pragma"] = "no-cache"
            remaining = auth.seconds_remaining(request)
            if remaining is not None:
                response.headers["X-Session-Remaining"] = str(remaining)
        return response

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> None:
        passive = getattr(view_func, "session_passive", False)
        if request.user.is_authenticated and not passive and auth.counts_as_activity(request):
            auth.record_activity(request)

    def _end_expired_session(self, request: HttpRequest) -> HttpResponseBase | None:
        if SESSION_KEY not in request.session:
            return None
        if not request.user.is_authenticated:
            # The session names a user who can't sign in any more: drop what it holds right away.
            logger.warning("session_ended reason=account_inactive user_id=%s", request.session.get(SESSION_KEY))
            request.session.flush()
            return _redirect(request, resolve_url(settings.LOGIN_URL))
        now = time.time()
        if request.session.get(auth.LOGIN_AT_KEY) is None or request.session.get(auth.LAST_ACTIVITY_KEY) is None:
            # Signed in before these limits existed: start the clocks now rather than end the session.
            auth.start_session_clocks(request, now=now)
            return None
        reason = auth.expired_reason(request, now=now)
        if reason is None:
            return None
        logger.info("session_ended reason=%s user_id=%s", reason, request.user.pk)
        logout(request)
        messages.info(request, auth.signed_out_message(reason))
        return _redirect(request, resolve_url(settings.LOGIN_URL))


class LoginRequiredMiddleware(DjangoLoginRequiredMiddleware):
    """Django's, except that an htmx request is told to load the login page as a whole page."""

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        response: HttpResponseBase | None = super().process_view(request, view_func, view_args, view_kwargs)
        if response is not None and _is_htmx(request):
            return HttpResponseClientRedirect(resolve_url(self.get_login_url(view_func)))
        return response


class OTPRequiredMiddleware:
    """Send a signed-in user who owes a second factor to the code page before anything else.

    Who owes one: members of OTP_REQUIRED_ROLES, superusers (OTP_REQUIRED_FOR_SUPERUSERS) and
    anyone who set up an authenticator app. Django admin is covered like every other page.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        user: Any = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        match = request.resolver_match
        if match is not None and match.view_name in OTP_EXEMPT_VIEWS:
            return None
        if not auth.second_factor_required(request):
            return None
        url = resolve_url("otp_verify")
        if request.method == "GET" and not _is_htmx(request):
            url = f"{url}?{urlencode({'next': request.get_full_path()})}"
        return _redirect(request, url)
