"""Sign-in throttling and the sign-in records, on django-axes (docs/security.md, "Signing in").

**Per username and address together** (``AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]``):
failures of one username from one client address count together, so someone at one workstation
can pause only that username at that address, never the account everywhere.

**Growing pauses, not a lock**: after ``LOGIN_FAILURE_LIMIT`` failures the pair is paused
``LOGIN_LOCKOUT_MINUTES``; every failure after a pause doubles the next one (1, 2, 4 … minutes) up to
``LOGIN_LOCKOUT_MAX_MINUTES``. Tries during a pause are refused without a password check and don't
count (``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False``), so the person who mistyped is
never kept out longer by trying. Failures are forgotten ``LOGIN_FAILURE_MEMORY_HOURS`` after the last
one; a successful sign-in, or a new password, forgets them at once.

**No typed username is stored**: axes' tables hold ``username_ref`` (the keyed hash the security log
uses) wherever axes would store the username (``AXES_USERNAME_CALLABLE``, and ``SignInRecordHandler``
for the sign-in log); the same hash is what the counters are looked up by, so the lockout works
unchanged. The typed username is also masked in the posted data axes keeps.

**Append-only logs**: the failure log and the sign-in log (backoffice.audit.models.SignInFailure,
SignIn) refuse UPDATE and DELETE, so this handler never deletes or updates them: no per-user cap on
failure rows and no logout time (sign-outs are in the security log). ``prune_signin_records`` deletes
rows older than ``SIGNIN_RECORD_RETENTION_DAYS`` as the owner role.
"""

from datetime import timedelta
from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_session_hash, get_credentials
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.db.models import Q, Sum
from django.http import HttpRequest
from django.utils import timezone

from backoffice.accounts.auth import client_ip, username_ref


def pause_after(failures: int, *, limit: int | None = None) -> timedelta:
    """How long a pause lasts once ``failures`` reached ``limit``: the first pause, doubled per failure after."""
    limit = settings.AXES_FAILURE_LIMIT if limit is None else limit
    first, longest = int(settings.LOGIN_LOCKOUT_MINUTES), int(settings.LOGIN_LOCKOUT_MAX_MINUTES)
    doublings = min(max(0, failures - limit), 20)
    return timedelta(minutes=min(longest, first * 2**doublings))


def _username_field() -> str:
    return str(getattr(settings, "AXES_USERNAME_FORM_FIELD", "username"))


def username_key(request: HttpRequest | None, credentials: dict[str, Any] | None = None) -> str | None:
    """What axes stores and looks up instead of the typed username (AXES_USERNAME_CALLABLE)."""
    field = _username_field()
    if credentials:
        typed = credentials.get(field)
    else:
        typed = getattr(request, "POST", {}).get(field) if request is not None else None
    return username_ref(typed) if typed else None


def _address(request: HttpRequest) -> str | None:
    return getattr(request, "axes_ip_address", None) or client_ip(request) or None


def pair_failures(request: HttpRequest | None) -> int:
    """This request's username and address's failures, whatever the browser (user agent) sent."""
    if request is None:
        return 0
    key = username_key(request, getattr(request, "axes_credentials", None))
    if key is None:
        return 0
    total = AccessAttempt.objects.filter(username=key, ip_address=_address(request)).aggregate(
        n=Sum("failures_since_start")
    )["n"]
    return int(total or 0)


def cool_off(request: HttpRequest | None) -> timedelta:
    """AXES_COOLOFF_TIME: the pause for this username and address, grown by its failures so far.

    Axes counts a pair as paused while its last failure is more recent than this.
    """
    return pause_after(pair_failures(request))


def forget_before() -> Any:
    return timezone.now() - timedelta(hours=int(settings.LOGIN_FAILURE_MEMORY_HOURS))


class SignInRecordHandler(AxesDatabaseHandler):
    """Axes' database handler, with hashed usernames in its logs, which it only ever appends to."""

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        username = user.get_username()
        credentials = get_credentials(username)
        self.clean_expired_user_attempts(request, credentials)
        if not getattr(settings, "AXES_DISABLE_ACCESS_LOG", False):
            AccessLog.objects.create(
                username=username_ref(username),
                ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
                user_agent=request.axes_user_agent,  # type: ignore[attr-defined]
                http_accept=request.axes_http_accept,  # type: ignore[attr-defined]
                path_info=request.axes_path_info,  # type: ignore[attr-defined]
                attempt_time=request.axes_attempt_time,  # type: ignore[attr-defined]
                session_hash=get_client_session_hash(request),
            )
        if settings.AXES_RESET_ON_SUCCESS:
            # By the hashed username (get_client_username) and this address.
            self.reset_user_attempts(request, credentials)

    def user_logged_out(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        # Axes would write the logout time into the sign-in's row; that row is append-only. The
        # security log has the sign-out (backoffice.accounts.auth.on_logged_out).
        self.clean_expired_user_attempts(request)

    def remove_out_of_limit_failure_logs(self, *, username: str, limit: int | None = None) -> int:
        # Axes keeps at most AXES_ACCESS_FAILURE_LOG_PER_USER_LIMIT rows a user by deleting the oldest;
        # the failure log is append-only and kept for SIGNIN_RECORD_RETENTION_DAYS instead.
        return 0

    def clean_expired_user_attempts(
        self, request: HttpRequest | None = None, credentials: dict[str, Any] | None = None
    ) -> int:
        """Forget counters whose last failure is older than LOGIN_FAILURE_MEMORY_HOURS.

        Axes would delete every counter older than the current request's pause; with pauses that
        grow per username and address, that would forget the failures the next pause grows from.
        """
        count, _ = AccessAttempt.objects.filter(attempt_time__lte=forget_before()).delete()
        return count

    def reset_attempts(
        self, *, ip_address: str | None = None, username: str | None = None, ip_or_username: bool = False
    ) -> int:
        """Axes' reset (axes_reset_username, axes.utils.reset), by the typed username or its hash."""
        attempts = AccessAttempt.objects.all()
        by_name = Q(username__in=[username, username_ref(username)]) if username else Q()
        by_ip = Q(ip_address=ip_address) if ip_address else Q()
        attempts = attempts.filter(by_name | by_ip) if ip_or_username else attempts.filter(by_name, by_ip)
        count, _ = attempts.delete()
        return count


def reset_account(username: str) -> int:
    """Forget every sign-in failure of this account, from every address (a new password)."""
    count, _ = AccessAttempt.objects.filter(username=username_ref(username)).delete()
    return count


def typed_username(request: HttpRequest) -> str | None:
    """The username as typed on this request (for finding the account a pause concerns; never stored)."""
    credentials = getattr(request, "axes_credentials", None) or {}
    field = _username_field()
    typed = credentials.get(field) or request.POST.get(field)
    return str(typed) if typed else None
