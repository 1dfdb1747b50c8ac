"""The append-only tables' checkpoints (tamper evidence), the sign-in records' protection, security alerts."""

from axes.models import AccessFailureLog, AccessLog
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backoffice.transitions import APPEND_ONLY


class Checkpoint(models.Model):
    """A seal over the append-only tables' rows since the previous checkpoint, chained by SHA-256.

    Written by the worker every minute (backoffice.audit.seal); ``payload`` says, per table, which ids
    it covers, a short hash of each row and the SHA-256 of them all; ``hash`` is
    SHA-256(``prev_hash`` + the payload as canonical JSON), so changing, removing or adding a
    checkpoint breaks the chain. ``manage.py audit_verify`` recomputes everything.
    """

    at = models.DateTimeField()
    payload = models.JSONField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"checkpoint {self.pk} at {self.at:%Y-%m-%d %H:%M:%S} {self.hash[:12]}"


# --- Sign-in records (django-axes' tables) ---------------------------------------------------------
# django-axes writes them; these proxies carry the triggers that make its two logs append-only (the
# migration lives here, not in axes). Usernames in them are keyed hashes (backoffice.accounts.throttle).
# AccessAttempt, the live failure counter, can't be: axes updates and deletes its rows as it counts.


class SignInFailure(AccessFailureLog):
    """Every failed sign-in (axes' AccessFailureLog): append-only; pruned by prune_signin_records."""

    class Meta:
        proxy = True
        verbose_name = "failed sign-in"
        triggers = [APPEND_ONLY]


class SignIn(AccessLog):
    """Every sign-in (axes' AccessLog): append-only; pruned by prune_signin_records."""

    class Meta:
        proxy = True
        verbose_name = "sign-in"
        triggers = [APPEND_ONLY]


class SecurityAlert(models.Model):
    """A pause on someone's sign-in or supervisor confirmation, shown to supervisors on their board.

    Written when a pause starts (backoffice.accounts.throttle), never changed: the board lists the
    last SECURITY_ALERT_HOURS of them.
    """

    class Kind(models.TextChoices):
        SIGN_IN_PAUSED = "sign_in_paused", "Sign-in paused"
        CONFIRMATION_PAUSED = "confirmation_paused", "Supervisor confirmation paused"

    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=30, choices=Kind.choices)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who was signed in at the workstation (a supervisor confirmation).",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    failures = models.PositiveIntegerField()
    pause_seconds = models.PositiveIntegerField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["-at"], name="securityalert_at_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["sign_in_paused", "confirmation_paused"]), name="securityalert_kind_valid"
            )
        ]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: user {self.account_id} at {self.at:%Y-%m-%d %H:%M}"

    @property
    def pause_minutes(self) -> int:
        return max(1, round(self.pause_seconds / 60))


class ConfirmationThrottle(models.Model):
    """Wrong confirmations of one account typed at one person's workstation (backoffice.accounts.reauth).

    A counter, like axes' AccessAttempt and apart from it: a trainee mistyping the supervisor's
    password pauses the confirmation for that pair only, never the supervisor's own sign-in.
    """

    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["by", "account"], name="confirmationthrottle_pair")]
        indexes = [models.Index(fields=["account"], name="confirmationthrottle_account")]

    def __str__(self) -> str:
        return f"{self.failures} wrong confirmations of user {self.account_id} by user {self.by_id}"
