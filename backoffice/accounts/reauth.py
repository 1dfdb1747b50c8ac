"""Confirming another person at this workstation: a supervisor who is with a trainee.

The supervisor types their password, or the current code of their authenticator app, into the
signed-in trainee's page. This is not a sign-in: it goes past django-axes, so mistakes here never
count toward the supervisor's own sign-in pauses. It has its own limiter instead, per confirming
user and account (backoffice.audit.models.ConfirmationThrottle): after
SUPERVISOR_CONFIRM_FAILURE_LIMIT wrong tries that pair is paused LOGIN_LOCKOUT_MINUTES, doubling with
every further wrong try up to LOGIN_LOCKOUT_MAX_MINUTES; supervisors are alerted when it pauses. A
right answer, or a new password for the account, clears the count.
"""

import logging
import math

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import match_token, user_has_device

from backoffice.accounts.alerts import alert_pause
from backoffice.accounts.auth import client_ip, describe_duration
from backoffice.accounts.throttle import forget_before, pause_after
from backoffice.audit.models import ConfirmationThrottle, SecurityAlert
from backoffice.models import User

logger = logging.getLogger("backoffice.security")


class ConfirmationRefused(Exception):
    """Not confirmed: a wrong password or code, or a pause; the message says which, to the people present."""


def _limit() -> int:
    return int(settings.SUPERVISOR_CONFIRM_FAILURE_LIMIT)


def _is_code(secret: str) -> bool:
    # Passwords are at least 12 characters and never all digits (AUTH_PASSWORD_VALIDATORS).
    return secret.isdigit() and 6 <= len(secret) <= 8


def secret_matches(account: User, secret: str) -> bool:
    """The account's password, or (when it has an authenticator app) the app's current code."""
    if not account.is_active:
        return False
    if _is_code(secret):
        return user_has_device(account, confirmed=True) and match_token(account, secret) is not None
    return account.check_password(secret)


def paused_for(*, by: User, account: User) -> int:
    """Seconds left in this pair's pause (0 when not paused)."""
    row = ConfirmationThrottle.objects.filter(by=by, account=account, last_failure_at__gt=forget_before()).first()
    if row is None or row.failures < _limit():
        return 0
    left = (row.last_failure_at + pause_after(row.failures, limit=_limit()) - timezone.now()).total_seconds()
    return math.ceil(left) if left > 0 else 0


def confirm(*, account: User, secret: str, by: User, request: HttpRequest | None = None) -> None:
    """Check that ``account``'s owner typed ``secret`` at ``by``'s workstation; raise ConfirmationRefused if not."""
    ip = (client_ip(request) if request is not None else "") or None
    waiting = paused_for(by=by, account=account)
    if waiting:
        logger.warning("confirm_refused_paused by_user_id=%s user_id=%s ip=%s", by.pk, account.pk, ip or "-")
        raise ConfirmationRefused(
            f"Too many wrong tries to confirm {account} here: try again in {describe_duration(max(waiting, 1))}. "
            f"{account}'s own sign-in is not affected."
        )
    if secret_matches(account, secret):
        ConfirmationThrottle.objects.filter(by=by, account=account).delete()
        logger.info("confirm_ok by_user_id=%s user_id=%s ip=%s", by.pk, account.pk, ip or "-")
        return
    now = timezone.now()
    with transaction.atomic():
        row, _ = ConfirmationThrottle.objects.select_for_update().get_or_create(
            by=by, account=account, defaults={"last_failure_at": now}
        )
        row.failures = 1 if row.last_failure_at <= forget_before() else row.failures + 1
        row.last_failure_at = now
        row.save(update_fields=["failures", "last_failure_at"])
    logger.warning(
        "confirm_failed by_user_id=%s user_id=%s ip=%s failures=%s", by.pk, account.pk, ip or "-", row.failures
    )
    if row.failures >= _limit():
        pause = pause_after(row.failures, limit=_limit())
        alert_pause(
            SecurityAlert.Kind.CONFIRMATION_PAUSED,
            account=account,
            by=by,
            ip_address=ip,
            failures=row.failures,
            pause=pause,
        )
        raise ConfirmationRefused(
            f"That is not {account}'s password or current code, and that was too many wrong tries: "
            f"confirming {account} here is paused for {describe_duration(int(pause.total_seconds()))}. "
            f"{account}'s own sign-in is not affected."
        )
    raise ConfirmationRefused(f"That is not {account}'s password or current code. Ask them to type it again.")


def forget_account(account: User) -> int:
    """A new password: forget every wrong confirmation of this account."""
    count, _ = ConfirmationThrottle.objects.filter(account=account).delete()
    return count
