"""Break-glass: emergency access to one patient's record, with a reason, for a limited time, flagged.

``grant`` opens a grant (append-only, ends BREAK_GLASS_MINUTES later); ``open_grant`` finds the
caller's own grant while it lasts; ``log_under`` writes the access row of a page shown under it and
flags the row (a ``BreakGlassAccess``) in the same transaction. ``report`` is the supervisors' and
auditors' list: every grant with who, patient, reason, when, until and what was viewed.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest
from django.utils import timezone

from backoffice.audit.log import log_access
from backoffice.audit.subjects import register_subject
from backoffice.models import AccessAction, AccessLog, BreakGlass, BreakGlassAccess, Patient, User

MIN_REASON_LENGTH = 15


def _patient_of_grant(ref: str) -> int | None:
    return BreakGlass.objects.filter(uuid=ref).values_list("patient_id", flat=True).first()


# A refused or ended grant's URL names its patient in the access log, as every object URL does.
register_subject("breakglass", _patient_of_grant)


def minutes() -> int:
    return int(settings.BREAK_GLASS_MINUTES)


def grant(*, user: User, patient: Patient, reason: str) -> BreakGlass:
    """A new grant on ``patient`` for ``user``, from now for BREAK_GLASS_MINUTES."""
    if not user.has_perm("backoffice.break_glass"):
        raise PermissionDenied
    reason = reason.strip()
    if len(reason) < MIN_REASON_LENGTH:
        raise ValueError(f"Say why, in at least {MIN_REASON_LENGTH} characters.")
    now = timezone.now()
    return BreakGlass.objects.create(
        user=user,
        username=user.get_username(),
        patient=patient,
        reason=reason,
        at=now,
        until=now + timedelta(minutes=minutes()),
    )


def open_grant(*, user: User, uuid: str) -> BreakGlass:
    """The caller's own grant, while it lasts: someone else's is not found, an ended one refused."""
    found = BreakGlass.objects.select_related("patient").filter(uuid=uuid, user=user).first()
    if found is None:
        raise Http404
    if not found.is_open():
        raise PermissionDenied("This emergency access has ended; ask for it again if you still need the record.")
    return found


def log_under(request: HttpRequest, break_glass: BreakGlass, *, what: str) -> AccessLog:
    """The access row of a page shown under the grant, flagged as break-glass, in one transaction."""
    with transaction.atomic():
        entry = log_access(
            request=request,
            action=AccessAction.VIEW,
            what=what,
            patients=[break_glass.patient_id],
            object_ref=str(break_glass.uuid),
        )
        BreakGlassAccess.objects.create(grant=break_glass, log=entry, at=entry.at)
    return entry


def report(*, user: User) -> QuerySet[BreakGlass]:
    """Every grant, newest first, with its user, patient and the access rows written under it."""
    if not user.has_perm("backoffice.view_breakglass"):
        raise PermissionDenied
    accesses = BreakGlassAccess.objects.select_related("log").order_by("at", "id")
    return (
        BreakGlass.objects.select_related("user", "patient")
        .prefetch_related(Prefetch("accesses", queryset=accesses))
        .order_by("-at", "-id")
    )
