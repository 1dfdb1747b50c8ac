"""Second factor (TOTP) pages, the account page with the user's own sessions, sign-out, and the
session endpoints the timeout warning uses."""

import base64
import logging
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth.views import LogoutView
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import DEVICE_ID_SESSION_KEY, verify_token
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice.accounts import auth, changes, sessions
from backoffice.audit.log import log_refusals
from backoffice.models import AccountChange

logger = logging.getLogger("backoffice.security")


def _next_url(request: HttpRequest) -> str:
    """Where to go after the second factor: a same-site `next`, else the home page."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _with_next(url: str, request: HttpRequest) -> str:
    next_url = request.GET.get("next")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _confirmed_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def _throttle_message(device: TOTPDevice) -> str | None:
    allowed, data = device.verify_is_allowed()
    if allowed:
        return None
    locked_until = (data or {}).get("locked_until")
    if locked_until is None:
        return "Too many wrong codes. Wait a moment and try again."
    wait = max(1, int((locked_until - timezone.now()).total_seconds()) + 1)
    return f"Too many wrong codes. Wait {auth.describe_duration(wait)} and try again."


def _check_code(user: Any, device: TOTPDevice, code: str) -> bool:
    """Verify one code against one device, row-locked so a code can't be used twice at once."""
    return verify_token(user, device.persistent_id, code) is not None


def _signed_in_with(request: HttpRequest, device: TOTPDevice) -> None:
    otp_login(request, device)
    # New session id now that the session is trusted with more (as Django's login() does).
    request.session.cycle_key()
    auth.remember_second_factor_policy(request, True)


def _wrong_code(request: HttpRequest, user: Any, step: str) -> None:
    """Every wrong code: a security log line and a row in the account log auditors read."""
    logger.warning(
        "second_factor_failed step=%s user_id=%s user=%s ip=%s",
        step,
        user.pk,
        auth.username_ref(user.get_username()),
        auth.client_ip(request),
    )
    changes.record([(AccountChange.Kind.SECOND_FACTOR_WRONG_CODE, STEP_LABELS[step])], subject=user, actor_id=user.pk)


STEP_LABELS = {
    "sign_in": "at sign-in",
    "enroll": "setting up an authenticator app",
    "replace": "replacing the authenticator app",
    "remove": "turning two-step sign-in off",
}


def _throttled(request: HttpRequest, user: Any, device: TOTPDevice, step: str) -> str | None:
    """django-otp's growing wait after wrong codes (1, 2, 4, 8… s): the refusal to show, if still waiting."""
    refusal = _throttle_message(device)
    if refusal is not None:
        logger.warning("second_factor_throttled step=%s user_id=%s ip=%s", step, user.pk, auth.client_ip(request))
    return refusal


def _password_refusal(request: HttpRequest, password: str) -> str | None:
    """Check the account's password again, through every backend (so django-axes counts a wrong one)."""
    user: Any = request.user
    confirmed = authenticate(request, username=user.get_username(), password=password)
    if confirmed is not None and confirmed.pk == user.pk:
        return None
    if getattr(request, "axes_locked_out", False):
        return "Too many wrong passwords. Wait a while and try again, or ask the administrator."
    return "That isn't your password."


def _checked(request: HttpRequest, form: auth.OTPCodeForm, device: TOTPDevice, step: str) -> bool:
    """The form's password (when it asks for one) and code, each refusal on its field; True when both pass."""
    user: Any = request.user
    if "password" in form.fields:
        refusal = _password_refusal(request, form.cleaned_data["password"])
        if refusal is not None:
            form.add_error("password", refusal)
            return False
    refusal = _throttled(request, user, device, step)
    if refusal is not None:
        form.add_error("code", refusal)
        return False
    if _check_code(user, device, form.cleaned_data["code"]):
        return True
    _wrong_code(request, user, step)
    if step in ("sign_in", "remove"):
        form.add_error("code", "That code isn't right. Enter the code your app shows now.")
    else:
        form.add_error("code", "That code isn't right. Check the app shows “Clinic back office” and try the new code.")
    return False


@sensitive_post_parameters("code")  # a second-factor code is a secret, like a password
@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Ask for the current code from the user's authenticator app."""
    user: Any = request.user
    if user.is_verified():
        return redirect(_next_url(request))
    device = _confirmed_device(user)
    if device is None:
        # Their app was removed (lost phone): a required role sets up a new one, anyone else goes on.
        required = auth.role_requires_second_factor(user)
        auth.remember_second_factor_policy(request, required)
        if not required:
            return redirect(_next_url(request))
        return redirect(_with_next(resolve_url("otp_setup"), request))
    form = auth.OTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _checked(request, form, device, "sign_in"):
        _signed_in_with(request, device)
        logger.info("second_factor_passed user_id=%s ip=%s", user.pk, auth.client_ip(request))
        return redirect(_next_url(request))
    status = 422 if request.method == "POST" else 200
    return render(
        request, "backoffice/accounts/otp_verify.html", {"form": form, "next": _next_url(request)}, status=status
    )


@sensitive_post_parameters("code", "password")  # secrets both
@require_http_methods(["GET", "POST"])
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app, or replace the one in use: its secret (QR code and text), then the
    account's password and one code from the new app, in one form."""
    user: Any = request.user
    current = _confirmed_device(user)
    if current is not None and not user.is_verified():
        # Adding a second app must not be a way around the first one.
        return redirect("otp_verify")
    step = "enroll" if current is None else "replace"
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    form = auth.ReauthCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid() and _checked(request, form, device, step):
        with transaction.atomic():
            # The old app stops working the moment the new one is confirmed.
            TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
            device.refresh_from_db()
            device.confirmed = True
            device.save(update_fields=["confirmed"])
        _signed_in_with(request, device)
        if step == "enroll":
            logger.info("second_factor_enrolled user_id=%s ip=%s", user.pk, auth.client_ip(request))
            messages.success(
                request, "Two-step sign-in is on. You'll enter a code from your app each time you sign in."
            )
            return redirect(_next_url(request))
        logger.info("second_factor_replaced user_id=%s ip=%s", user.pk, auth.client_ip(request))
        messages.success(request, "Your new authenticator app is set up; the old one no longer works.")
        return redirect("account_security")
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "next": _next_url(request),
        "replacing": step == "replace",
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "otpauth_uri": device.config_url,
        "qr_data_uri": segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2),
        "required": auth.role_requires_second_factor(user),
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "backoffice/accounts/otp_setup.html", context, status=status)


def _account_page(request: HttpRequest, *, form: auth.OTPCodeForm | None = None, status: int = 200) -> HttpResponse:
    user: Any = request.user
    if form is None:
        form = auth.ReauthCodeForm()
        # Opening the page is no reason to put the cursor in the form that turns the app off.
        form.fields["password"].widget.attrs.pop("autofocus", None)
    context = {
        "device": _confirmed_device(user),
        "required": auth.role_requires_second_factor(user),
        "form": form,
        "sessions": sessions.own_sessions(request),
        "idle_text": auth.describe_duration(auth.idle_timeout_seconds()),
        "warning_text": auth.describe_duration(auth.warning_seconds()),
        "nav": "account",
    }
    return render(request, "backoffice/accounts/account_security.html", context, status=status)


@require_GET
def account_security(request: HttpRequest) -> HttpResponse:
    """Two-step sign-in (on, off, replace) and the user's own sessions, each with a way to end it."""
    return _account_page(request)


@sensitive_post_parameters("code", "password")  # secrets both
@require_POST
def otp_disable(request: HttpRequest) -> HttpResponse:
    """Turn off an optional second factor: the password again, and a current code from the app."""
    user: Any = request.user
    device = _confirmed_device(user)
    if device is None:
        return redirect("account_security")
    if auth.role_requires_second_factor(user):
        messages.error(request, "Your role requires two-step sign-in; it can't be turned off.")
        return redirect("account_security")
    form = auth.ReauthCodeForm(request.POST)
    if form.is_valid() and _checked(request, form, device, "remove"):
        TOTPDevice.objects.filter(user=user).delete()
        request.session.pop(DEVICE_ID_SESSION_KEY, None)
        auth.remember_second_factor_policy(request, False)
        logger.info("second_factor_removed user_id=%s ip=%s", user.pk, auth.client_ip(request))
        messages.success(request, "Two-step sign-in is off.")
        return redirect("account_security")
    return _account_page(request, form=form, status=422)


@log_refusals("session end", subject=None)
@require_POST
def session_end(request: HttpRequest, ref: str) -> HttpResponse:
    """End one of the user's other sessions (another workstation, a browser left open).

    Only ever the signed-in user's own: the ref is looked up among their sessions, so another
    person's ref, a made-up one and one already ended all get the same 404, logged.
    """
    if request.session.session_key and sessions.ref(request.session.session_key) == ref:
        messages.info(request, "That is the session you are using now: log out to end it.")
        return redirect("account_security")
    ended = sessions.end_session(request, ref)
    if ended is None:
        # Not one of theirs (another person's, made up, or already over): the same answer for each.
        logger.warning("session_end_refused user_id=%s ip=%s", request.user.pk, auth.client_ip(request))
        raise Http404("No such session of yours.")
    messages.success(request, f"Ended the session in {ended.browser}{f' at {ended.ip}' if ended.ip else ''}.")
    return redirect("account_security")


@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    """End every session of the user but this one."""
    count = sessions.end_other_sessions(request)
    if count:
        messages.success(request, f"Ended {count} other session{'' if count == 1 else 's'}.")
    else:
        messages.info(request, "You had no other sessions.")
    return redirect("account_security")


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Django's sign-out; with ``everywhere``, every other session of the user ends first."""
    user: Any = request.user
    # Someone who has only the password (the code step still ahead) can't end the owner's sessions.
    trusted = user.is_authenticated and (user.is_verified() or not auth.second_factor_required(request))
    if trusted and request.POST.get("everywhere"):
        sessions.end_other_sessions(request, detail="signed out everywhere")
    response: HttpResponse = LogoutView.as_view()(request)
    return response


def _deadline_json(request: HttpRequest) -> JsonResponse:
    remaining, limit = auth.session_deadline(request) or (0, "idle")
    return JsonResponse({"remaining": remaining, "limit": limit})


@require_POST
def session_keepalive(request: HttpRequest) -> JsonResponse:
    """'Stay signed in' (and throttled page activity): counts as activity, returns time left."""
    auth.record_activity(request, force=True)
    return _deadline_json(request)


@require_GET
@auth.session_passive
def session_status(request: HttpRequest) -> JsonResponse:
    """Time left before the server ends this session; asking does not count as activity."""
    return _deadline_json(request)
