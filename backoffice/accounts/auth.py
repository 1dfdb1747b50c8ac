"""Sign-in policy shared by the middleware, the second-factor views and the templates.

Session clocks live in the session itself (seconds since the epoch, JSON-safe): when the user
signed in, and when they last did something. The middleware compares them with the limits in
settings on every request, so ending an idle session needs no client-side cooperation.

Security events go to the ``backoffice.security`` logger. They name a user by a keyed hash of the
username (people sometimes type their password into the username box) or by staff id, and never
carry patient data.
"""

import hashlib
import hmac
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from axes.helpers import get_cool_off
from axes.signals import user_locked_out
from django import forms
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_otp import user_has_device

logger = logging.getLogger("backoffice.security")

LOGIN_AT_KEY = "_security_login_at"
LAST_ACTIVITY_KEY = "_security_last_activity"
OTP_REQUIRED_KEY = "_security_otp_required"
OTP_CHECKED_AT_KEY = "_security_otp_checked_at"

# A role change or a new device reaches an open session within this long.
OTP_POLICY_RECHECK_SECONDS = 60

# --- Limits, read at request time so tests can override them ------------------------------------


def idle_timeout_seconds() -> int:
    return int(settings.SESSION_IDLE_TIMEOUT_SECONDS)


def absolute_lifetime_seconds() -> int:
    return int(settings.SESSION_ABSOLUTE_LIFETIME_SECONDS)


def warning_seconds() -> int:
    """Seconds of warning before an idle sign-out; never more than half the idle timeout."""
    return max(1, min(int(settings.SESSION_IDLE_WARNING_SECONDS), idle_timeout_seconds() // 2))


def activity_resolution_seconds() -> int:
    """How stale the recorded activity may get before a request writes the session again.

    Writing on every request would add a query to every page; a recorded time up to this many
    seconds old ends a session at most this much early, and the warning shows the true deadline.
    """
    return max(1, min(30, idle_timeout_seconds() // 10))


def describe_duration(seconds: int) -> str:
    """'15 minutes', '1 minute', '12 hours', '8 seconds'."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


# --- Session clocks -------------------------------------------------------------------------------


def start_session_clocks(request: HttpRequest, *, now: float | None = None) -> None:
    now = time.time() if now is None else now
    request.session[LOGIN_AT_KEY] = now
    request.session[LAST_ACTIVITY_KEY] = now


def record_activity(request: HttpRequest, *, force: bool = False) -> None:
    """Note that the user did something now (throttled; see activity_resolution_seconds)."""
    now = time.time()
    last = request.session.get(LAST_ACTIVITY_KEY)
    if force or last is None or now - float(last) >= activity_resolution_seconds():
        request.session[LAST_ACTIVITY_KEY] = now


def expired_reason(request: HttpRequest, *, now: float) -> str | None:
    """'absolute' or 'idle' when the signed-in session is past a limit, else None."""
    login_at = request.session.get(LOGIN_AT_KEY)
    last = request.session.get(LAST_ACTIVITY_KEY)
    if login_at is None or last is None:
        return None
    if now - float(login_at) >= absolute_lifetime_seconds():
        return "absolute"
    if now - float(last) >= idle_timeout_seconds():
        return "idle"
    return None


def session_deadline(request: HttpRequest, *, now: float | None = None) -> tuple[int, str] | None:
    """Seconds until the server ends this session, and which limit ends it ('idle' or 'absolute')."""
    session = getattr(request, "session", None)
    if session is None:
        return None
    login_at = session.get(LOGIN_AT_KEY)
    last = session.get(LAST_ACTIVITY_KEY)
    if login_at is None or last is None:
        return None
    now = time.time() if now is None else now
    idle_left = idle_timeout_seconds() - (now - float(last))
    absolute_left = absolute_lifetime_seconds() - (now - float(login_at))
    limit = "absolute" if absolute_left <= idle_left else "idle"
    # Rounded up: 0 only once the server would end the session.
    return max(0, math.ceil(min(idle_left, absolute_left))), limit


def seconds_remaining(request: HttpRequest, *, now: float | None = None) -> int | None:
    deadline = session_deadline(request, now=now)
    return None if deadline is None else deadline[0]


def signed_out_message(reason: str) -> str:
    if reason == "absolute":
        return (
            f"You were signed out because sessions end {describe_duration(absolute_lifetime_seconds())} "
            "after sign-in. Sign in again to continue."
        )
    return f"You were signed out after {describe_duration(idle_timeout_seconds())} without activity."


def session_passive[ViewFunc: Callable[..., Any]](view: ViewFunc) -> ViewFunc:
    """Mark a view whose requests never count as user activity (the session status check)."""
    view.session_passive = True  # type: ignore[attr-defined]
    return view


def counts_as_activity(request: HttpRequest) -> bool:
    """Whether a request shows a person at the keyboard.

    htmx's background refresh (``hx-trigger="every 15s"``) is a GET with ``HX-Request: true``;
    it must not keep an unattended screen signed in. static/js/session-timeout.js adds
    ``X-User-Activity: 1`` to htmx requests that a real click or keystroke triggered.
    """
    if request.method not in ("GET", "HEAD"):
        return True
    if request.headers.get("X-User-Activity"):
        return True
    return request.headers.get("HX-Request") != "true"


def session_timeout(request: HttpRequest) -> dict[str, Any]:
    """Context processor: the numbers static/js/session-timeout.js needs, for signed-in pages only."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    deadline = session_deadline(request)
    if deadline is None:
        return {}
    return {
        "session_timeout": {
            "idle_seconds": idle_timeout_seconds(),
            "warning_seconds": warning_seconds(),
            "remaining_seconds": deadline[0],
            "limit": deadline[1],
            "idle_text": describe_duration(idle_timeout_seconds()),
            "absolute_text": describe_duration(absolute_lifetime_seconds()),
        }
    }


# --- Second factor policy -------------------------------------------------------------------------


def role_requires_second_factor(user: Any) -> bool:
    """Whether the user's role (not their own choice) makes the second factor compulsory."""
    if user.is_superuser and settings.OTP_REQUIRED_FOR_SUPERUSERS:
        return True
    # Roles named in the environment, or marked in admin (Role security policies).
    required = Q(policy__require_second_factor=True)
    if settings.OTP_REQUIRED_ROLES:
        required |= Q(name__in=list(settings.OTP_REQUIRED_ROLES))
    return bool(user.groups.filter(required).exists())


def user_needs_second_factor(user: Any) -> bool:
    """Members of OTP_REQUIRED_ROLES, superusers (by default) and anyone who enrolled a device."""
    return role_requires_second_factor(user) or bool(user_has_device(user, confirmed=True))


def remember_second_factor_policy(request: HttpRequest, required: bool) -> None:
    request.session[OTP_REQUIRED_KEY] = required
    request.session[OTP_CHECKED_AT_KEY] = time.time()


def second_factor_required(request: HttpRequest) -> bool:
    """The policy for request.user, cached in the session so most requests cost no query."""
    checked_at = request.session.get(OTP_CHECKED_AT_KEY)
    if checked_at is None or time.time() - float(checked_at) >= OTP_POLICY_RECHECK_SECONDS:
        remember_second_factor_policy(request, user_needs_second_factor(request.user))
    return bool(request.session[OTP_REQUIRED_KEY])


class OTPCodeForm(forms.Form):
    code = forms.CharField(
        label="6-digit code",
        min_length=6,
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "pattern": "[0-9 ]*"}
        ),
        help_text="From the authenticator app on your phone. A new code appears every 30 seconds.",
    )

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"].replace(" ", "")
        if not code.isdigit():
            raise forms.ValidationError("Enter the digits only.")
        return code


class ReauthCodeForm(OTPCodeForm):
    """Adding, replacing or removing an authenticator: the account's password again, and a code.

    Someone who finds a session left open must not be able to put their own phone on the account
    (or take the owner's off); the password, checked through django-axes like the sign-in, stops
    that, and guessing it here counts towards the same lockout.
    """

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="The one you sign in with, to confirm it is you.",
    )
    field_order = ["password", "code"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The password comes first on the page, so the cursor starts there.
        self.fields["code"].widget.attrs.pop("autofocus", None)
        self.fields["password"].widget.attrs["autofocus"] = True


# --- Client identity for lockouts and logs --------------------------------------------------------


def client_ip(request: HttpRequest) -> str:
    """The client's address for lockouts: the same one the access log records.

    Behind a proxy every request comes from the proxy's address; counting failures per
    REMOTE_ADDR would lock everybody out together. backoffice.audit.log.client_ip reads the header
    our proxy writes when TRUSTED_PROXY_IP_HEADER names it (the default behind BEHIND_TLS_PROXY).
    """
    from backoffice.audit.log import client_ip as access_log_client_ip

    return access_log_client_ip(request) or str(request.META.get("REMOTE_ADDR", ""))


def username_ref(username: str | None) -> str:
    """A stable, non-reversible label for a username in logs (HMAC with SECRET_KEY)."""
    if not username:
        return "-"
    digest = hmac.new(settings.SECRET_KEY.encode(), username.strip().lower().encode(), hashlib.sha256)
    return digest.hexdigest()[:12]


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """The page django-axes shows to a locked-out client (AXES_LOCKOUT_CALLABLE).

    It names neither the account nor which limit (account or address) was reached, so it reads
    the same for a real username and a made-up one.
    """
    cooloff = get_cool_off(request)
    context = {"cooloff": describe_duration(int(cooloff.total_seconds())) if cooloff else None}
    return render(request, "backoffice/accounts/lockout.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)


def client_str(username: str | None, ip_address: str | None, user_agent: str, path_info: str, request: Any) -> str:
    """How django-axes names a client in its own log lines (AXES_CLIENT_STR_CALLABLE).

    Axes passes the username it stores, already the keyed hash (AXES_USERNAME_CALLABLE).
    """
    return f"user={username or '-'} ip={ip_address or '-'} path={path_info}"


# --- Security log -----------------------------------------------------------------------------------


def _ip(request: HttpRequest | None) -> str:
    return (client_ip(request) if request is not None else "") or "-"


@receiver(user_logged_in, dispatch_uid="backoffice.accounts.auth.on_logged_in")
def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None:
        return
    from backoffice.accounts.sessions import note_client

    start_session_clocks(request)
    note_client(request)
    remember_second_factor_policy(request, user_needs_second_factor(user))
    logger.info("sign_in user_id=%s user=%s ip=%s", user.pk, username_ref(user.get_username()), _ip(request))


@receiver(user_login_failed, dispatch_uid="backoffice.accounts.auth.on_login_failed")
def on_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    logger.warning("sign_in_failed user=%s ip=%s", username_ref(credentials.get("username")), _ip(request))


@receiver(user_logged_out, dispatch_uid="backoffice.accounts.auth.on_logged_out")
def on_logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:
        logger.info("sign_out user_id=%s ip=%s", user.pk, _ip(request))


@receiver(user_locked_out, dispatch_uid="backoffice.accounts.auth.on_locked_out")
def on_locked_out(sender: Any, request: HttpRequest, username: str | None, ip_address: str, **kwargs: Any) -> None:
    """A pause starts (axes also sends this for each try during one: those are only logged).

    ``username`` is already the keyed hash (AXES_USERNAME_CALLABLE); supervisors get an alert naming
    the account when the typed username is a real one.
    """
    from backoffice.accounts.alerts import alert_pause
    from backoffice.accounts.throttle import cool_off, typed_username
    from backoffice.audit.models import SecurityAlert
    from backoffice.models import User

    failures = getattr(request, "axes_failures_since_start", None)
    if failures is None:  # a try during a pause: refused, not counted
        logger.warning("sign_in_paused_try user=%s ip=%s", username or "-", ip_address or "-")
        return
    pause = cool_off(request)
    logger.warning(
        "sign_in_locked_out user=%s ip=%s failures=%s pause=%ss",
        username or "-",
        ip_address or "-",
        failures,
        int(pause.total_seconds()),
    )
    typed = typed_username(request)
    account = User.objects.filter(username=typed).first() if typed else None
    if account is not None:
        alert_pause(
            SecurityAlert.Kind.SIGN_IN_PAUSED, account=account, ip_address=ip_address, failures=failures, pause=pause
        )


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="backoffice.accounts.auth.on_password_set")
def on_password_set(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """A new password (a reset by an admin or superuser, or the owner's change) clears the account's
    sign-in failures from every address and its wrong supervisor confirmations."""
    if created or getattr(instance, "_password", None) is None:
        return  # set_password keeps the raw password until the save; a sign-in's hash upgrade doesn't
    from backoffice.accounts.reauth import forget_account
    from backoffice.accounts.throttle import reset_account

    attempts, confirmations = reset_account(instance.get_username()), forget_account(instance)
    if attempts or confirmations:
        logger.info("sign_in_counters_cleared user_id=%s reason=new_password", instance.pk)
