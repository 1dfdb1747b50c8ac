"""Security alerts for supervisors: a pause on someone's sign-in or supervisor confirmation.

Each is a row (backoffice.audit.models.SecurityAlert, append-only) that the supervisor board lists
for SECURITY_ALERT_HOURS, and a line in the security log. Only pauses on real accounts are rows: a
pause on a made-up username locks nobody out, and is in the log.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from backoffice.audit.models import SecurityAlert
from backoffice.models import User

logger = logging.getLogger("backoffice.security")

ALERTS_SHOWN = 10


def alert_pause(
    kind: str, *, account: User, ip_address: str | None, failures: int, pause: timedelta, by: User | None = None
) -> SecurityAlert:
    alert = SecurityAlert.objects.create(
        kind=kind,
        account=account,
        by=by,
        ip_address=ip_address or None,
        failures=failures,
        pause_seconds=int(pause.total_seconds()),
    )
    logger.warning(
        "security_alert kind=%s user_id=%s by_user_id=%s ip=%s failures=%s pause=%ss",
        kind,
        account.pk,
        by.pk if by else "-",
        ip_address or "-",
        failures,
        alert.pause_seconds,
    )
    return alert


def recent_alerts() -> QuerySet[SecurityAlert]:
    """The alerts of the last SECURITY_ALERT_HOURS, newest first, with the accounts they name (one query)."""
    since = timezone.now() - timedelta(hours=int(settings.SECURITY_ALERT_HOURS))
    return (
        SecurityAlert.objects.filter(at__gte=since)
        .select_related("account", "by")
        .order_by("-at", "-id")[:ALERTS_SHOWN]
    )
