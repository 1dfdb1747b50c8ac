"""A person's own sessions: the session store that names its user, and listing and ending them.

``SESSION_ENGINE`` is this module: Django's database sessions, stored in ``UserSession``, whose
row also carries its user, the client address and browser noted at sign-in, and the sign-in and
last-activity clocks the idle timeout reads (all copied from the session's data each time it is
saved). So "my sessions" is one indexed query, and ending one deletes its row: the browser that
held it is signed out on its next request, like after an idle timeout.

A session is named on pages by ``ref``, a keyed hash of its key (HMAC with SECRET_KEY): the key
itself would let whoever reads the page take that session over.

A new password or a deactivation deletes every row of the account at once (Django's session auth
hash would end them only on their next request, and until then they would still be listed), and
``manage.py clearsessions`` deletes rows past the idle timeout or the lifetime as well as those past
their cookie's expiry.
"""

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, cast

import ua_parser
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DBStore
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY

from backoffice.accounts import auth, changes
from backoffice.models import AccountChange, User, UserSession

logger = logging.getLogger("backoffice.security")

CLIENT_IP_KEY = "_security_client_ip"
USER_AGENT_KEY = "_security_user_agent"


def _moment(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=UTC) if value is not None else None
    except (TypeError, ValueError, OverflowError):
        return None


def _over() -> Q:
    """Rows no request can use any more: past the cookie's expiry, the idle timeout or the lifetime."""
    now = timezone.now()
    return (
        Q(expire_date__lt=now)
        | Q(last_seen__lt=now - timedelta(seconds=auth.idle_timeout_seconds()))
        | Q(started__lt=now - timedelta(seconds=auth.absolute_lifetime_seconds()))
    )


class SessionStore(DBStore):
    """Django's database session store, on ``UserSession``."""

    @classmethod
    def get_model_class(cls) -> type[UserSession]:
        return UserSession

    @classmethod
    def clear_expired(cls) -> None:
        """``manage.py clearsessions``: every row that is over, by any of the three limits."""
        UserSession.objects.filter(_over()).delete()

    @classmethod
    async def aclear_expired(cls) -> None:
        await UserSession.objects.filter(_over()).adelete()

    def create_model_instance(self, data: dict[str, Any]) -> UserSession:
        obj = cast(UserSession, super().create_model_instance(data))
        user_id = data.get(SESSION_KEY)
        obj.user_id = int(user_id) if isinstance(user_id, str | int) and str(user_id).isdigit() else None
        obj.ip = data.get(CLIENT_IP_KEY) or None
        obj.user_agent = str(data.get(USER_AGENT_KEY) or "")[:300]
        obj.started = _moment(data.get(auth.LOGIN_AT_KEY))
        obj.last_seen = _moment(data.get(auth.LAST_ACTIVITY_KEY))
        return obj


def note_client(request: HttpRequest) -> None:
    """At sign-in: the workstation's address and browser, for the session's owner to recognise it."""
    from backoffice.audit.log import client_ip

    request.session[CLIENT_IP_KEY] = client_ip(request) or None
    # Printable characters only: no terminal escapes or bidi controls in a name shown on the page.
    agent = "".join(ch for ch in str(request.headers.get("User-Agent", "")) if ch.isprintable())
    request.session[USER_AGENT_KEY] = agent[:300]


def ref(session_key: str) -> str:
    """How a page names a session: a keyed hash of its key, never the key."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"session:{session_key}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


@lru_cache(maxsize=256)
def browser_summary(user_agent: str) -> str:
    """'Firefox 128 on Windows', 'Chrome 140 on Linux'; 'Unknown browser' when it can't tell."""
    parsed = ua_parser.parse(user_agent) if user_agent else None
    agent = parsed.user_agent if parsed else None
    os = parsed.os if parsed else None
    name = f"{agent.family} {agent.major}".strip() if agent and agent.major else (agent.family if agent else "")
    if not name or name == "Other":
        name = "Unknown browser"
    if os and os.family and os.family != "Other":
        return f"{name} on {os.family}"
    return name


@dataclass(frozen=True)
class OwnSession:
    ref: str
    started: datetime | None
    last_seen: datetime | None
    ip: str
    browser: str
    current: bool
    # Signed in with the password, the authenticator's code not entered (yet): someone may have the password.
    awaiting_code: bool = False

    @property
    def just_now(self) -> bool:
        """Last active within the minute ("just now" rather than "0 minutes ago")."""
        return self.last_seen is not None and (timezone.now() - self.last_seen).total_seconds() < 60


def _active(user: Any) -> QuerySet[UserSession]:
    """The user's sessions still alive: not past the cookie's expiry, the idle timeout or the lifetime."""
    now = timezone.now()
    return UserSession.objects.filter(
        user=user,
        expire_date__gt=now,
        last_seen__gt=now - timedelta(seconds=auth.idle_timeout_seconds()),
        started__gt=now - timedelta(seconds=auth.absolute_lifetime_seconds()),
    )


def own_sessions(request: HttpRequest) -> list[OwnSession]:
    """The signed-in user's active sessions, the one in use first, then the most recently used."""
    current = request.session.session_key
    owes_code = auth.user_needs_second_factor(request.user)
    decoder = SessionStore()
    rows = (
        _active(request.user)
        .order_by("-last_seen")
        .only("session_key", "session_data", "started", "last_seen", "ip", "user_agent")
    )
    found = [
        OwnSession(
            ref=ref(row.session_key),
            started=row.started,
            last_seen=row.last_seen,
            ip=row.ip or "",
            browser=browser_summary(row.user_agent),
            current=row.session_key == current,
            awaiting_code=owes_code and DEVICE_ID_SESSION_KEY not in decoder.decode(row.session_data),
        )
        for row in rows
    ]
    return sorted(found, key=lambda s: not s.current)


def _log(request: HttpRequest, detail: str, count: int) -> None:
    user: Any = request.user
    changes.record([(AccountChange.Kind.SESSION_ENDED, detail)], subject=user, actor_id=user.pk)
    logger.info(
        "session_ended reason=ended_by_owner sessions=%s user_id=%s ip=%s", count, user.pk, auth.client_ip(request)
    )


def end_session(request: HttpRequest, session_ref: str) -> OwnSession | None:
    """End one of the user's other sessions, named by its ref; None when it is not theirs (or gone)."""
    current = request.session.session_key
    for row in _active(request.user).only("session_key", "ip", "user_agent", "started", "last_seen"):
        if row.session_key != current and hmac.compare_digest(ref(row.session_key), session_ref):
            ended = OwnSession(
                ref=session_ref,
                started=row.started,
                last_seen=row.last_seen,
                ip=row.ip or "",
                browser=browser_summary(row.user_agent),
                current=False,
            )
            with transaction.atomic():
                deleted, _ = UserSession.objects.filter(session_key=row.session_key, user=request.user).delete()  # type: ignore[misc]
                if deleted:
                    _log(request, f"one other session: {ended.browser}, {ended.ip or 'address unknown'}", 1)
            return ended if deleted else None
    return None


def end_other_sessions(request: HttpRequest, *, detail: str = "every other session") -> int:
    """End every session of the user but this one (expired ones too); how many were still active."""
    user: Any = request.user
    with transaction.atomic():
        active = _active(user).exclude(session_key=request.session.session_key).count()
        UserSession.objects.filter(user=user).exclude(session_key=request.session.session_key).delete()
        if active:
            _log(request, f"{detail}: {active}", active)
    return active


@receiver(post_save, sender=User, dispatch_uid="backoffice.accounts.sessions.end_sessions_of_changed_account")
def end_sessions_of_changed_account(
    sender: Any, instance: User, created: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    """A new password or a deactivation ends every session of the account now, not at its next request.

    The owner changing their own password on a page keeps that session: Django's
    update_session_auth_hash gives it a new key (a new row) after this. A sign-in that only upgraded
    the stored hash is not a new password (set_password's raw password is already cleared then).
    """
    if created:
        return
    new_password = getattr(instance, "_password", None) is not None
    watched = update_fields is None or bool({"password", "is_active"} & set(update_fields))
    if not watched or not (new_password or not instance.is_active):
        return
    ended, _ = UserSession.objects.filter(user=instance).delete()
    if ended:
        reason = "new_password" if new_password else "account_inactive"
        logger.info("session_ended reason=%s sessions=%s user_id=%s", reason, ended, instance.pk)
