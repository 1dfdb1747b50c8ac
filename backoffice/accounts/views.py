"""Second factor (TOTP) pages and the session endpoints the timeout warning uses."""

import base64
import logging
from typing import Any

import segno
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import DEVICE_ID_SESSION_KEY, verify_token
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice.accounts import auth

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
    if request.method == "POST" and form.is_valid():
        refusal = _throttle_message(device)
        if refusal is not None:
            form.add_error("code", refusal)
        elif _check_code(user, device, form.cleaned_data["code"]):
            _signed_in_with(request, device)
            logger.info("second_factor_passed user_id=%s ip=%s", user.pk, auth.client_ip(request))
            return redirect(_next_url(request))
        else:
            logger.warning("second_factor_failed user_id=%s ip=%s", user.pk, auth.client_ip(request))
            form.add_error("code", "That code isn't right. Enter the code your app shows now.")
    status = 422 if request.method == "POST" else 200
    return render(
        request, "backoffice/accounts/otp_verify.html", {"form": form, "next": _next_url(request)}, status=status
    )


@sensitive_post_parameters("code")  # a second-factor code is a secret, like a password
@require_http_methods(["GET", "POST"])
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: show its secret (QR code and text), confirm with one code."""
    user: Any = request.user
    if _confirmed_device(user) is not None:
        if user.is_verified():
            messages.info(request, "Two-step sign-in is already on for your account.")
            return redirect("account_security")
        # Adding a second app must not be a way around the first one.
        return redirect("otp_verify")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    form = auth.OTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        refusal = _throttle_message(device)
        if refusal is not None:
            form.add_error("code", refusal)
        elif _check_code(user, device, form.cleaned_data["code"]):
            with transaction.atomic():
                device.refresh_from_db()
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            _signed_in_with(request, device)
            logger.info("second_factor_enrolled user_id=%s ip=%s", user.pk, auth.client_ip(request))
            messages.success(
                request, "Two-step sign-in is on. You'll enter a code from your app each time you sign in."
            )
            return redirect(_next_url(request))
        else:
            form.add_error(
                "code", "That code isn't right. Check the app shows “Clinic back office” and try the new code."
            )
    secret = base64.b32encode(device.bin_key).decode()
    context = {
        "form": form,
        "next": _next_url(request),
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "otpauth_uri": device.config_url,
        "qr_data_uri": segno.make(device.config_url, error="m").svg_data_uri(scale=5, border=2),
        "required": auth.role_requires_second_factor(user),
    }
    status = 422 if request.method == "POST" else 200
    return render(request, "backoffice/accounts/otp_setup.html", context, status=status)


@require_GET
def account_security(request: HttpRequest) -> HttpResponse:
    """Show whether two-step sign-in is on, with a way to turn it on (or off, where allowed)."""
    user: Any = request.user
    context = {
        "device": _confirmed_device(user),
        "required": auth.role_requires_second_factor(user),
        "form": auth.OTPCodeForm(),
        "idle_text": auth.describe_duration(auth.idle_timeout_seconds()),
        "warning_text": auth.describe_duration(auth.warning_seconds()),
        "nav": "account",
    }
    return render(request, "backoffice/accounts/account_security.html", context)


@sensitive_post_parameters("code")  # a second-factor code is a secret, like a password
@require_POST
def otp_disable(request: HttpRequest) -> HttpResponse:
    """Turn off an optional second factor; a current code proves the phone is still at hand."""
    user: Any = request.user
    device = _confirmed_device(user)
    if device is None:
        return redirect("account_security")
    if auth.role_requires_second_factor(user):
        messages.error(request, "Your role requires two-step sign-in; it can't be turned off.")
        return redirect("account_security")
    form = auth.OTPCodeForm(request.POST)
    if form.is_valid():
        refusal = _throttle_message(device)
        if refusal is not None:
            form.add_error("code", refusal)
        elif _check_code(user, device, form.cleaned_data["code"]):
            TOTPDevice.objects.filter(user=user).delete()
            request.session.pop(DEVICE_ID_SESSION_KEY, None)
            auth.remember_second_factor_policy(request, False)
            logger.info("second_factor_removed user_id=%s ip=%s", user.pk, auth.client_ip(request))
            messages.success(request, "Two-step sign-in is off.")
            return redirect("account_security")
        else:
            form.add_error("code", "That code isn't right. Enter the code your app shows now.")
    context = {
        "device": device,
        "required": False,
        "form": form,
        "idle_text": auth.describe_duration(auth.idle_timeout_seconds()),
        "warning_text": auth.describe_duration(auth.warning_seconds()),
        "nav": "account",
    }
    return render(request, "backoffice/accounts/account_security.html", context, status=422)


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
