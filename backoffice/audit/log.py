"""The access log: one append-only row per view, list, search, print or export of patient data.

Pages call `log_access` once they know which patients they show, before they render them. The row
and its patient rows are one INSERT statement whatever the number of patients; if it fails the
request fails, so nothing is shown that was not logged.

What is never stored: search terms (they may be a patient's name) and query strings. `what` is a
short fixed label chosen by the code, `object_ref` the opaque id from the URL.
"""

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from backoffice.audit.subjects import patient_of
from backoffice.models import AccessAction, AccessLog, AccessLogPatient, AccessOutcome, Patient, User
from backoffice.workflow import PermissionRefused

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
    user: User | None = None,
) -> AccessLog:
    """Record that the request's user was shown (or refused) these patients' data.

    ``user`` stands in for the request's when someone else is answerable: an API client's owner
    (backoffice.fhir), whose requests carry a token and no session. One statement whatever the number
    of patients (see _INSERT_SQL).
    """
    if user is None:
        user = getattr(request, "user", None)
    staff = user if isinstance(user, User) else None
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
    fields = [entry.at, entry.user_id, entry.username, entry.action, entry.what, entry.object_ref, entry.ip]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, [*fields, entry.outcome, _patient_ids(patients)])
        row = cursor.fetchone()
    assert row is not None  # INSERT ... RETURNING always answers one row
    entry.pk = row[0]
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


# Every page that shows patients runs this, so it is one statement and one round trip: the log row
# and its patient rows are written together (a statement is atomic on its own, so the row never
# exists without its patients) instead of BEGIN, two INSERTs and COMMIT.
_LOG = AccessLog._meta.db_table
_LOG_PATIENT = AccessLogPatient._meta.db_table
_INSERT_SQL = f"""
WITH entry AS (
    INSERT INTO {_LOG} (at, user_id, username, action, what, object_ref, ip, outcome)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
    RETURNING id, at
), listed AS (
    INSERT INTO {_LOG_PATIENT} (log_id, patient_id, at)
    SELECT entry.id, listed.patient_id, entry.at
    FROM entry CROSS JOIN unnest(%s::bigint[]) WITH ORDINALITY AS listed(patient_id, n)
    ORDER BY listed.n
)
SELECT id FROM entry
"""  # noqa: S608 - table names come from the models, values are parameters


def log_refusal(
    request: HttpRequest, *, subject: str, ref: str, what: str = "", outcome: str = AccessOutcome.DENIED
) -> AccessLog:
    """Record a refused attempt on one object: the one way every app logs a refusal.

    ``subject`` is the kind of object ``ref`` (its opaque id in the URL) names; the patient is
    found through the registry each app fills (backoffice.audit.subjects), so a search by patient
    shows attempts on that patient's records, whichever app refused them.
    """
    if not what:
        url_name = request.resolver_match.url_name if request.resolver_match else ""
        what = f"{subject} action {url_name}"
    patient = patient_of(subject, ref)
    return log_access(
        request=request,
        action=AccessAction.DENIED,
        what=what,
        patients=[patient] if patient is not None else [],
        object_ref=ref,
        outcome=outcome,
    )


def log_refusals(what: str, *, subject: str | None) -> Callable[[ViewFunc], ViewFunc]:
    """Log a 404 or 403 from this view, then let it propagate unchanged.

    Wraps the permission decorators too, so a role without access is logged as well as an unknown
    or malformed id. ``subject`` is the kind of object the URL's ``uuid`` names (None for pages
    that name none); the refusal names its patient when the id is real.
    """

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except (Http404, PermissionDenied) as exc:
                outcome = AccessOutcome.NOT_FOUND if isinstance(exc, Http404) else AccessOutcome.DENIED
                ref = str(kwargs.get("uuid", ""))
                if subject is None or not ref:
                    log_access(request=request, action=AccessAction.DENIED, what=what, patients=[], outcome=outcome)
                else:
                    log_refusal(request, subject=subject, ref=ref, what=what, outcome=outcome)
                raise

        # Which kind of object its URL names, read by the access-log crawl (tests/security/test_access_log_crawl.py)
        # to open every such page on a patient's record; functools.wraps carries it to outer decorators.
        wrapped.audit_subject = subject  # type: ignore[attr-defined]
        return wrapped

    return decorator


@contextmanager
def refusals_logged(request: HttpRequest, *, subject: str, ref: str) -> Iterator[None]:
    """Around a service call: a PermissionRefused is logged as a refusal on ``ref``, then re-raised.

    The page turns it into a message as it does any other refusal; the access log has the attempt.
    """
    try:
        yield
    except PermissionRefused:
        log_refusal(request, subject=subject, ref=ref)
        raise


def render_logged(
    request: HttpRequest,
    template_name: str,
    context: dict[str, Any],
    *,
    what: str,
    patient_id: int,
    object_ref: str,
    status: int = 200,
) -> HttpResponse:
    """Render one patient's page, logging the view first: also after a refused form, each showing counts."""
    log_access(request=request, action=AccessAction.VIEW, what=what, patients=[patient_id], object_ref=object_ref)
    return render(request, template_name, context, status=status)
