"""The access log in the app, for auditors and supervisors: search it, page through it, export it.

Searches are POSTed: an MRN identifies a patient, so it stays out of URLs and server logs. Every
search and export is itself an access row, naming the patients it showed.
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import permission_required
from django.db.models import Case, Count, F, Q, QuerySet, When, Window
from django.db.models.expressions import BaseExpression
from django.db.models.functions import RowNumber
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice import selectors
from backoffice.audit import break_glass
from backoffice.audit.filters import AccessLogFilter
from backoffice.audit.log import csv_safe, log_access
from backoffice.models import (
    AccessAction,
    AccessLog,
    AccessLogPatient,
    AccountChange,
    AccountChangeKind,
    Patient,
    User,
)
from backoffice.paging import page_number

PAGE_SIZE = 50
# Patients listed per row on the page: a queue view names 50, and the page's own access row names
# every patient it showed, so listing them all made each search heavier than the last (an auditor's
# rows naming thousands). The rest are counted; the export, or a search by the patient, lists them.
PATIENTS_PER_ROW = 10
# Rows fetched per round trip while streaming an export (each with one query for their patients).
EXPORT_CHUNK = 2000
# Lists that refresh themselves every 15 or 30 s (htmx): each refresh is an access row, as it should be,
# but an open queue writes 240 an hour, and a search through them finds nothing else. Folded, they are
# one row per person, list and clock hour.
REFRESHED_LISTS = frozenset(
    {"queue", "board", "board: overdue send-outs", "board: unsigned results", "critical calls panel"}
)
# Rows read at most to fold one page; beyond it the page says so (narrow the dates, or the staff member).
FOLD_SCAN_LIMIT = 50_000
CSV_HEADER = (
    "at_utc",
    "username",
    "user_id",
    "action",
    "what",
    "object_ref",
    "ip",
    "outcome",
    "patient_mrns",
    "patient_names",
)


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


def _searched(log_filter: AccessLogFilter) -> list[Patient]:
    return [log_filter.searched_patient] if log_filter.searched_patient is not None else []


@require_http_methods(["GET", "POST"])
@permission_required("backoffice.view_accesslog", raise_exception=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    """The search form; after a search, one page of matching rows, newest first."""
    searched = request.method == "POST"
    log_filter = AccessLogFilter(request.POST if searched else None, queryset=selectors.access_log(user=_user(request)))
    page = page_number(request.POST.get("page")) if searched else 1
    rows: list[AccessLog] = []
    has_next = False
    folded = searched and log_filter.is_valid() and bool(log_filter.form.cleaned_data.get("collapse"))
    fold_stopped = False
    if searched and log_filter.is_valid():
        start = (page - 1) * PAGE_SIZE
        if folded:
            rows, has_next, fold_stopped = _folded_page(log_filter.qs, start)
        else:
            # One row beyond the page says whether there is a next one, without counting the whole log.
            rows = list(log_filter.qs.prefetch_related(None)[start : start + PAGE_SIZE + 1])
            has_next = len(rows) > PAGE_SIZE
            rows = rows[:PAGE_SIZE]
        listed = _listed_patients([row.pk for row in rows], log_filter.searched_patient)
        for row in rows:
            patients, total = listed.get(row.pk, ([], 0))
            row.shown_patients, row.patient_total, row.unlisted = patients, total, total - len(patients)  # type: ignore[attr-defined]
        shown = [patient for row in rows for patient in row.shown_patients]  # type: ignore[attr-defined]
        log_access(request=request, action=AccessAction.LIST, what="access log", patients=shown + _searched(log_filter))
    context = {
        "filter": log_filter,
        "searched": searched,
        "rows": rows,
        "page": page,
        "has_next": has_next,
        "first_row": (page - 1) * PAGE_SIZE + 1,
        "last_row": (page - 1) * PAGE_SIZE + len(rows),
        "searched_mrn": log_filter.searched_patient.mrn if log_filter.searched_patient else "",
        "folded": folded,
        "fold_stopped": fold_stopped,
        "fold_scan_limit": FOLD_SCAN_LIMIT,
        "nav": "audit",
    }
    status = 422 if searched and not log_filter.is_valid() else 200
    return render(request, "backoffice/audit/log.html", context, status=status)


@dataclass
class _Fold:
    """One line of a folded page: a row, or a list's refreshes by one person in one clock hour."""

    newest: int  # the row shown: the latest refresh, whose patients the line lists
    refreshes: int = 1
    oldest_at: datetime | None = None


def _folded_page(entries: QuerySet[AccessLog], start: int) -> tuple[list[AccessLog], bool, bool]:
    """One page of lines, REFRESHED_LISTS' rows folded per person, list and hour; whether there is a next
    page; whether the scan stopped at FOLD_SCAN_LIMIT rows (the last lines' counts may then be short).

    Reads the log newest first, a few columns a row (the at index, as the unfolded page), until the page
    and one line more are found and every hour they fold is complete, then the page's rows in one query.
    A line's place is its newest row's, so page N is the same lines whichever page was read before.
    """
    wanted = start + PAGE_SIZE + 1
    lines: list[_Fold] = []
    hours: dict[tuple[int | None, str, datetime], _Fold] = {}
    complete_below: datetime | None = None  # once the page is found: the hour its folds must be read to
    scanned = 0
    keys = entries.prefetch_related(None).select_related(None).values_list("pk", "at", "user_id", "action", "what")
    for pk, at, user_id, action, what in keys.iterator(chunk_size=EXPORT_CHUNK):
        if complete_below is not None and at < complete_below:
            break
        scanned += 1
        if scanned > FOLD_SCAN_LIMIT:
            return _fold_rows(entries, lines[start : start + PAGE_SIZE]), len(lines) >= wanted, True
        hour = timezone.localtime(at).replace(minute=0, second=0, microsecond=0)
        if action == AccessAction.LIST and what in REFRESHED_LISTS:
            line = hours.get((user_id, what, hour))
            if line is not None:
                line.refreshes += 1
                line.oldest_at = at
                continue
            if complete_below is not None:
                continue  # a line past the page's next one: not needed
            line = hours[(user_id, what, hour)] = _Fold(newest=pk, oldest_at=at)
        elif complete_below is not None:
            continue
        else:
            line = _Fold(newest=pk)
        lines.append(line)
        if len(lines) == wanted:
            # Every fold on the page has its newest row at or after this one: its hour starts no earlier.
            complete_below = hour
    page = lines[start : start + PAGE_SIZE]
    return _fold_rows(entries, page), len(lines) >= wanted, False


def _fold_rows(entries: QuerySet[AccessLog], lines: list[_Fold]) -> list[AccessLog]:
    by_pk = {row.pk: row for row in entries.prefetch_related(None).filter(pk__in=[line.newest for line in lines])}
    rows = []
    for line in lines:
        row = by_pk[line.newest]
        row.refreshes, row.oldest_at = line.refreshes, line.oldest_at  # type: ignore[attr-defined]
        rows.append(row)
    return rows


def _listed_patients(log_ids: list[int], searched: Patient | None) -> dict[int, tuple[list[Patient], int]]:
    """Per access row: its first PATIENTS_PER_ROW patients (the one searched for first, so a long list
    doesn't bury them, then by name) and how many it names, in one query."""
    if not log_ids:
        return {}
    order: list[BaseExpression | F] = [Case(When(patient=searched, then=0), default=1)] if searched else []
    order += [F("patient__family_name"), F("patient__given_name"), F("id")]
    ranked = (
        AccessLogPatient.objects.filter(log_id__in=log_ids)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("log_id")], order_by=order),
            total=Window(Count("id"), partition_by=[F("log_id")]),
        )
        .filter(rank__lte=PATIENTS_PER_ROW)
        .select_related("patient")
        .only("log_id", "patient__id", "patient__mrn", "patient__family_name", "patient__given_name")
        .order_by("log_id", "rank")
    )
    listed: dict[int, tuple[list[Patient], int]] = {}
    for entry in ranked:
        patients, _ = listed.setdefault(entry.log_id, ([], entry.total))
        patients.append(entry.patient)
    return listed


class _Echo:
    """A file-like object whose write hands the line back, for csv.writer in a generator."""

    def write(self, value: str) -> str:
        return value


def csv_row(entry: AccessLog) -> list[str]:
    patients = list(entry.patients.all())
    cells: Iterable[Any] = (
        entry.at.astimezone(UTC).isoformat(timespec="seconds"),
        entry.username,
        entry.user_id or "",
        entry.action,
        entry.what,
        entry.object_ref,
        entry.ip or "",
        entry.outcome,
        "; ".join(p.mrn for p in patients),
        "; ".join(f"{p.family_name}, {p.given_name}" for p in patients),
    )
    return [csv_safe(cell) for cell in cells]


def _csv_lines(entries: Iterator[AccessLog]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for entry in entries:
        yield writer.writerow(csv_row(entry))


@require_POST
@permission_required("backoffice.view_accesslog", raise_exception=True)
def audit_export(request: HttpRequest) -> HttpResponseBase:
    """Every row the search matches, as CSV, streamed; logged before the first byte leaves."""
    log_filter = AccessLogFilter(request.POST, queryset=selectors.access_log(user=_user(request)))
    if not log_filter.is_valid():
        context = {"filter": log_filter, "searched": True, "rows": [], "nav": "audit"}
        return render(request, "backoffice/audit/log.html", context, status=422)
    entries = log_filter.qs
    patient_ids = sorted(
        AccessLogPatient.objects.filter(log__in=entries.values("pk"))
        .order_by()
        .values_list("patient_id", flat=True)
        .distinct()
    )
    log_access(
        request=request,
        action=AccessAction.EXPORT,
        what="access log export",
        patients=[*patient_ids, *(p.pk for p in _searched(log_filter))],
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        _csv_lines(entries.iterator(chunk_size=EXPORT_CHUNK)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="access-log-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response


ACCOUNT_CHANGE_PAGE_SIZE = 50


@require_GET
@permission_required("backoffice.view_accountchange", raise_exception=True)
def account_changes(request: HttpRequest) -> HttpResponse:
    """Who changed roles, permissions, passwords and authenticators, newest first (no patient data).

    Filtered by a username (as the one changed or the one changing) and a kind; GET, since neither
    names a patient. Looking is logged like any audit search.
    """
    kinds = dict(AccountChangeKind.choices)
    username = request.GET.get("username", "").strip()[:150]
    kind = request.GET.get("kind", "")
    kind = kind if kind in kinds else ""
    rows = AccountChange.objects.select_related("actor", "subject").order_by("-at", "-id")
    if username:
        rows = rows.filter(Q(subject_username=username) | Q(actor_username=username))
    if kind:
        rows = rows.filter(kind=kind)
    page = page_number(request.GET.get("page"))
    start = (page - 1) * ACCOUNT_CHANGE_PAGE_SIZE
    shown = list(rows[start : start + ACCOUNT_CHANGE_PAGE_SIZE + 1])
    log_access(request=request, action=AccessAction.LIST, what="account-change log", patients=[])
    context = {
        "rows": shown[:ACCOUNT_CHANGE_PAGE_SIZE],
        "has_next": len(shown) > ACCOUNT_CHANGE_PAGE_SIZE,
        "page": page,
        "username": username,
        "kind": kind,
        "kinds": AccountChangeKind.choices,
        "nav": "audit",
    }
    return render(request, "backoffice/audit/account_changes.html", context)


BREAK_GLASS_PAGE_SIZE = 50


@require_GET
@permission_required("backoffice.view_breakglass", raise_exception=True)
def break_glass_report(request: HttpRequest) -> HttpResponse:
    """Every break-glass grant, newest first: who, patient, reason, when, until, and what they viewed.

    Shows patients, so the page is an access row naming them.
    """
    page = page_number(request.GET.get("page"))
    start = (page - 1) * BREAK_GLASS_PAGE_SIZE
    grants = list(break_glass.report(user=_user(request))[start : start + BREAK_GLASS_PAGE_SIZE + 1])
    has_next = len(grants) > BREAK_GLASS_PAGE_SIZE
    grants = grants[:BREAK_GLASS_PAGE_SIZE]
    log_access(
        request=request, action=AccessAction.LIST, what="break-glass report", patients=[g.patient for g in grants]
    )
    context = {"grants": grants, "page": page, "has_next": has_next, "now": timezone.now(), "nav": "audit"}
    return render(request, "backoffice/audit/break_glass.html", context)
