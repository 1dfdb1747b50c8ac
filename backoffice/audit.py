"""The access log: one append-only row per view, list, search, print or export of patient data.

Pages call `log_access` once they know which patients they show, before they render them. The row
and its patient rows are two INSERTs whatever the number of patients; if either fails the request
fails, so nothing is shown that was not logged.

What is never stored: search terms (they may be a patient's name) and query strings. `what` is a
short fixed label chosen by the code, `object_ref` the opaque id from the URL.
"""

import ipaddress
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone

from backoffice.models import AccessAction, AccessLog, AccessLogPatient, AccessOutcome, Handoff, Patient, User

ViewFunc = Callable[..., HttpResponse]

# A spreadsheet treats a cell starting with one of these as a formula (or strips the whitespace and
# then does): "=HYPERLINK(...)" in a username or a note would run when an auditor opens the export.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a quote before it."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or the header the trusted reverse proxy sets.

    With X-Forwarded-For the last address is the one our proxy appended; earlier ones are whatever
    the client sent. Anything that is not an IP address is recorded as unknown rather than stored.
    """
    header = getattr(settings, "TRUSTED_PROXY_IP_HEADER", "")
    raw = request.META.get(header, "") if header else ""
    candidate = raw.split(",")[-1].strip() if raw else request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


def _patient_ids(patients: Iterable[Patient | int]) -> list[int]:
    """Distinct ids in first-seen order, from patients or their ids."""
    seen: dict[int, None] = {}
    for patient in patients:
        pk = patient if isinstance(patient, int) else patient.pk
        if pk is not None:
            seen.setdefault(pk, None)
    return list(seen)


def log_access(
    *,
    request: HttpRequest,
    action: str,
    what: str,
    patients: Iterable[Patient | int],
    object_ref: str = "",
    outcome: str = AccessOutcome.OK,
) -> AccessLog:
    """Record that the request's user was shown (or refused) these patients' data.

    Two queries: the log row, then one bulk INSERT of its patients (none when there are none).
    """
    user = getattr(request, "user", None)
    staff = user if isinstance(user, User) else None
    ids = _patient_ids(patients)
    entry = AccessLog(
        at=timezone.now(),
        user=staff,
        username=staff.get_username() if staff else "",
        action=action,
        what=what[:60],
        object_ref=str(object_ref)[:64],
        ip=client_ip(request),
        outcome=outcome,
    )
    # savepoint=False: inside a caller's transaction this adds no SAVEPOINT round trips; alone, it is
    # its own transaction, so the row never exists without its patients.
    with transaction.atomic(savepoint=False):
        entry.save(force_insert=True)
        if ids:
            AccessLogPatient.objects.bulk_create(
                [AccessLogPatient(log=entry, patient_id=pk, at=entry.at) for pk in ids]
            )
    return entry


def log_refusals(what: str) -> Callable[[ViewFunc], ViewFunc]:
    """Log a 404 or 403 on a URL that names a handoff, then let it propagate unchanged.

    Wraps the permission decorators too, so a role without access is logged as well as an unknown
    or malformed id. The handoff's patient is recorded when the id names a real handoff, so a search
    by patient shows attempts on that patient's records.
    """

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except (Http404, PermissionDenied) as exc:
                ref = str(kwargs.get("uuid", ""))
                outcome = AccessOutcome.NOT_FOUND if isinstance(exc, Http404) else AccessOutcome.DENIED
                # The URL converter hands over a valid UUID; pages without one name no record.
                patient_ids = (
                    list(Handoff.objects.filter(uuid=ref).values_list("patient_id", flat=True)[:1]) if ref else []
                )
                log_access(
                    request=request,
                    action=AccessAction.DENIED,
                    what=what,
                    patients=patient_ids,
                    object_ref=ref,
                    outcome=outcome,
                )
                raise

        return wrapped

    return decorator
