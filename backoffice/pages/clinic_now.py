"""In the clinic now: one row per patient still in the back office or waiting for a result before leaving.

Beside the supervisor board (which is the back office's work by status), this is the patient's view:
every ordered item's state at a glance (procedures, specimens to collect, point-of-care tests running,
send-outs), the minutes since the handoff, whether every result the clinician waits for is back, and
the next step. STAT first, then oldest; filtered by station and ordering clinician; refreshed every 15
seconds and morphed in place (idiomorph), so focus and scroll stay. "Patient left" records that the
patient has gone (backoffice.services.handoff_patient_left); each row offers it only where that
service would accept it, asked of the same guard with the facts the page has already read.

The reads are a constant number of queries whatever the number of rows, done on every refresh: a row
shows its tests', specimens' and send-outs' states, which the queue's row version (handoff, patient,
released results) does not follow. Rendering a hundred rows of templates cost more than the reads,
so each row's HTML is kept in the worker's "fragments" cache (backoffice.pages.fragments) under a
signature of everything it shows, read afresh: that row version, each item's name, state and
released results, the counts, the next step, the "Patient left" offer, the minutes and today's date.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

import django_filters
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.cache import cache, caches
from django.db.models import Count, Exists, Prefetch, Q, QuerySet, Window
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import get_template
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET, require_POST

from backoffice import selectors, services
from backoffice.audit.log import log_access, log_refusals, refusals_logged
from backoffice.models import AccessAction, Handoff, HandoffEvent, Station, User, minutes_label, whole_minutes
from backoffice.pages import fragments
from backoffice.roles import ROLE_CLINICIAN
from backoffice.transitions import Offer
from backoffice.workflow import OPEN_STATUSES, HandoffStatus, TransitionNotAllowed, naming_patient
from lab.inbox.selectors import released_results
from lab.models import TestDefinition, TestOrder
from lab.selectors import NOTHING_LEFT_BEHIND, awaited_for_handoff, left_behind_by_handoff
from lab.workflow import SendOutStatus, TestOrderStatus
from procedures.models import ProcedureOrder
from procedures.selectors import procedure_orders_by_handoff
from procedures.workflow import AT_PATIENT_STATUSES, ProcedureStatus

# More than a clinic has in at once; the count above the table says when some are left out.
ROWS = 100
# What a row prints of the handoff's relations (HandoffQuerySet.for_lists; the filter's queryset is a plain one).
FOR_LISTS = ("patient", "ordering_clinician", "claimed_by", "station", "exam_room")
CLINICIAN_CHOICES_KEY = "clinic_now:clinician_choices"

T = TestOrderStatus
P = ProcedureStatus
IN_HOUSE = TestDefinition.Performed.IN_HOUSE


class ClinicNowFilter(django_filters.FilterSet):
    station = django_filters.ModelChoiceFilter(
        queryset=Station.objects.filter(is_active=True), to_field_name="code", empty_label="Any station"
    )
    clinician = django_filters.ModelChoiceFilter(
        field_name="ordering_clinician",
        queryset=User.objects.filter(groups__name=ROLE_CLINICIAN),
        to_field_name="uuid",
        empty_label="Any clinician",
    )

    class Meta:
        model = Handoff
        fields = ["station", "clinician"]


def clinician_choices() -> list[tuple[str, str]]:
    """(uuid, name) of the clinicians, for the filter; cached for a minute per process, as the stations are."""
    choices: list[tuple[str, str]] | None = cache.get(CLINICIAN_CHOICES_KEY)
    if choices is None:
        clinicians = User.objects.filter(groups__name=ROLE_CLINICIAN, is_active=True).order_by(
            "last_name", "first_name"
        )
        choices = [(str(u.uuid), str(u)) for u in clinicians]
        cache.set(CLINICIAN_CHOICES_KEY, choices, 60)
    return choices


def clinic_now_handoffs(*, user: User) -> QuerySet[Handoff]:
    """Patients still here: every open handoff, and today's completed or returned ones whose patient still
    waits for a point-of-care result or a new draw; none recorded as gone. STAT first, then oldest."""
    if not user.has_perm("backoffice.view_clinic_now"):
        raise Http404
    today = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    waiting_for_lab = Q(status__in=(HandoffStatus.COMPLETED, HandoffStatus.RETURNED), created_at__gte=today) & Q(
        Exists(awaited_for_handoff())
    )
    return (
        Handoff.objects.filter(patient_left_at__isnull=True)
        .filter(Q(status__in=OPEN_STATUSES) | waiting_for_lab)
        .order_by("priority", "created_at", "pk")
    )


@dataclass(frozen=True)
class Item:
    """One ordered item as a cell shows it: its name, its state in words, and a tone for the eye."""

    name: str
    state: str
    tone: str  # todo, active, done, alert, muted
    results: Sequence[Any] = ()  # released results, as badges


@dataclass
class Row:
    handoff: Handoff
    minutes: int
    procedures: list[Item] = field(default_factory=list)
    to_collect: list[Item] = field(default_factory=list)
    poc: list[Item] = field(default_factory=list)
    send_outs: list[Item] = field(default_factory=list)
    awaited: int = 0  # in-house results the clinician waits for
    back: int = 0  # of those, released
    next_step: str = ""
    handed_over: list[str] = field(default_factory=list)  # what "Patient left" would hand the clinician
    left: Offer = field(default_factory=lambda: Offer(False))
    left_to: str | None = None  # the status "Patient left" moves the handoff to (None: it stays)
    html: SafeString = field(default_factory=lambda: mark_safe(""))  # its <tr>, from rendered_rows

    def signature(self) -> str:
        """Everything the row prints, as a digest: the same signature is the same HTML (but for names
        of staff, rooms, stations and catalog items, which the cache's timeout bounds)."""
        handoff = self.handoff
        items = [
            [(i.name, i.state, i.tone, tuple((r.pk, r.version) for r in i.results)) for i in kind]
            for kind in (self.procedures, self.to_collect, self.poc, self.send_outs)
        ]
        shown = (
            getattr(handoff, "row_version", handoff.version),
            handoff.is_overdue,
            self.minutes,
            items,
            self.awaited,
            self.back,
            self.next_step,
            self.handed_over,
            self.left.ok,
            self.left_to,
            timezone.localdate().isoformat(),
        )
        return hashlib.blake2b(repr(shown).encode(), digest_size=16).hexdigest()

    @property
    def results_back(self) -> bool | None:
        """Whether every result the clinician waits for is back; None when none is awaited."""
        return None if not self.awaited else self.back == self.awaited

    @property
    def minutes_label(self) -> str:
        return minutes_label(self.minutes)


_PROCEDURE_STATES = {
    P.ORDERED: ("to do", "todo"),
    P.IN_PROGRESS: ("being performed", "active"),
    P.PERFORMED: ("performed, to finish", "active"),
    P.AWAITING_COSIGN: ("awaiting co-sign", "active"),
    P.RETURNED: ("returned for correction", "alert"),
    P.COMPLETED: ("done", "done"),
    P.NOT_DONE: ("not done", "muted"),
}
_SEND_OUT_STATES = {
    SendOutStatus.WAITING: ("at the send-out desk", "active"),
    SendOutStatus.PACKED: ("packaged", "active"),
    SendOutStatus.SENT: ("sent, results in days", "done"),
    SendOutStatus.PRELIMINARY: ("preliminary results", "done"),
    SendOutStatus.FINAL: ("final results", "done"),
    SendOutStatus.CANCELLED: ("cancelled", "muted"),
}


def _procedure(order: ProcedureOrder) -> Item:
    state, tone = _PROCEDURE_STATES.get(P(order.status), (order.get_status_display().lower(), "todo"))
    return Item(order.procedure_type.name, state, tone)


def _to_collect(order: TestOrder) -> Item:
    if order.needs_recollection:
        return Item(order.test.short_name, "recollect", "alert")
    if order.specimen_id is not None:
        return Item(order.test.short_name, "labelled, scan at the bedside", "active")
    return Item(order.test.short_name, "to collect", "todo")


def _poc(order: TestOrder) -> Item:
    released = getattr(order, "released_results", [])
    if order.status == T.COLLECTED:
        return Item(order.test.short_name, "collected, to the bench", "active")
    if order.status == T.IN_PROGRESS:
        return Item(order.test.short_name, "running", "active")
    if order.status == T.RESULTED:
        return Item(order.test.short_name, "result back", "done", released)
    return Item(order.test.short_name, "cancelled", "muted")


def _send_out(order: TestOrder) -> Item:
    released = getattr(order, "released_results", [])
    if order.status == T.CANCELLED:
        return Item(order.test.short_name, "cancelled", "muted")
    if order.status == T.RESULTED:
        return Item(order.test.short_name, "results back", "done", released)
    send_out = getattr(order, "send_out", None)
    if send_out is None:
        return Item(order.test.short_name, "collected", "active")
    state, tone = _SEND_OUT_STATES[SendOutStatus(send_out.status)]
    return Item(order.test.short_name, state, tone, released)


def _names(items: Sequence[Item]) -> str:
    return ", ".join(i.name for i in items)


def next_step(handoff: Handoff, procedures: Sequence[ProcedureOrder], tests: Sequence[TestOrder]) -> str:
    """What happens next for the patient, in a few words: the first thing open, in the order it is done."""
    clinician = handoff.ordering_clinician
    running = [
        o.test.short_name for o in tests if o.test.performed == IN_HOUSE and o.status in (T.COLLECTED, T.IN_PROGRESS)
    ]
    waiting_for = f"wait for {', '.join(running)}" if running else ""
    if handoff.status == HandoffStatus.RETURNED:
        return f"With {clinician}: send back to the queue or cancel" + (f"; {waiting_for}" if running else "")
    if handoff.status == HandoffStatus.COMPLETED:
        if running:
            return f"Back office done: {waiting_for} (bench), then to {clinician}"
        return f"Results back: to {clinician}"
    if handoff.status == HandoffStatus.WAITING:
        return "Claim, bring to a station"
    if handoff.station_id is None:
        return "Assign a station"
    if handoff.status == HandoffStatus.CLAIMED:
        return "Verify identity (two identifiers)"
    if handoff.status == HandoffStatus.IDENTITY_VERIFIED:
        return "Start work"
    under_way = [p.procedure_type.name for p in procedures if p.status in (P.IN_PROGRESS, P.PERFORMED)]
    if under_way:
        return f"Finish {', '.join(under_way)}"
    again = [o.test.short_name for o in tests if o.status == T.ORDERED and o.needs_recollection]
    if again:
        return f"Recollect {', '.join(again)}"
    to_do = [p.procedure_type.name for p in procedures if p.status == P.ORDERED]
    if to_do:
        return f"Perform {', '.join(to_do)}"
    labelled = [o.test.short_name for o in tests if o.status == T.ORDERED and o.specimen_id is not None]
    if labelled:
        return f"Scan {', '.join(labelled)} at the bedside"
    to_collect = [o.test.short_name for o in tests if o.status == T.ORDERED]
    if to_collect:
        return f"Collect {', '.join(to_collect)}"
    return "Complete the handoff" + (f"; the patient may {waiting_for}" if running else "")


def _tests_by_handoff(ids: list[int]) -> dict[int, list[TestOrder]]:
    """The handoffs' tests with their send-outs and released results: two queries."""
    grouped: dict[int, list[TestOrder]] = {}
    orders = (
        TestOrder.objects.filter(handoff_id__in=ids)
        .select_related("test", "send_out")
        .prefetch_related(Prefetch("results", queryset=released_results(), to_attr="released_results"))
        .order_by("id")
    )
    for order in orders:
        grouped.setdefault(order.handoff_id, []).append(order)
    return grouped


def clinic_rows(handoffs: "QuerySet[Handoff]", *, user: User) -> tuple[list[Row], int]:
    """The first ROWS handoffs as rows, and how many there are in all. Constant queries whatever the rows:
    the handoffs with their total (1), procedures (1), tests and their released results (2), what each
    patient would leave behind (3, or 1 when no test of theirs is running or to draw again)."""
    now = timezone.now()
    found = list(
        handoffs.select_related(*FOR_LISTS).annotate(total=Window(Count("pk")), row_version=fragments.ROW_VERSION)[
            :ROWS
        ]
    )
    if not found:
        return [], 0
    ids = [h.pk for h in found]
    procedures = procedure_orders_by_handoff(ids)
    tests = _tests_by_handoff(ids)
    behind = left_behind_by_handoff(ids)
    rows = []
    for handoff in found:
        procs = sorted(procedures.get(handoff.pk, []), key=lambda p: p.pk)
        orders = tests.get(handoff.pk, [])
        row = Row(handoff=handoff, minutes=whole_minutes(handoff.created_at, now))
        row.procedures = [_procedure(p) for p in procs]
        for order in orders:
            if order.status == T.ORDERED:
                row.to_collect.append(_to_collect(order))
            elif order.test.performed == IN_HOUSE:
                row.poc.append(_poc(order))
            else:
                row.send_outs.append(_send_out(order))
            if order.test.performed == IN_HOUSE and order.status != T.CANCELLED:
                row.awaited += 1
                row.back += order.status == T.RESULTED
        row.next_step = next_step(handoff, procs, orders)
        row.handed_over = behind.get(handoff.pk, NOTHING_LEFT_BEHIND).phrases()
        facts = services.LeftFacts(
            under_way=[p.procedure_type.name for p in procs if p.status == P.IN_PROGRESS],
            open_items=[p.procedure_type.name for p in procs if p.status in AT_PATIENT_STATUSES]
            + [o.test.short_name for o in orders if o.status == T.ORDERED],
            pending=row.handed_over,
        )
        try:
            row.left_to = services.check_patient_left(handoff, user, facts=facts)
        except TransitionNotAllowed as exc:
            row.left = Offer(False, str(exc))
        else:
            row.left = Offer(True)
        rows.append(row)
    return rows, found[0].total


ROW_TEMPLATE = "backoffice/pages/partials/clinic_now_row.html"


def rendered_rows(rows: Sequence[Row]) -> None:
    """Each row's HTML (``row.html``) from the fragments cache by its signature, rendering only the others."""
    store = caches[fragments.CACHE_ALIAS]
    keys = {id(row): f"{ROW_TEMPLATE}:{row.handoff.pk}:{row.signature()}" for row in rows}
    found: dict[str, str] = store.get_many(list(keys.values())) if keys else {}
    fresh: dict[str, str] = {}
    template = get_template(ROW_TEMPLATE)
    for row in rows:
        key = keys[id(row)]
        html = found.get(key)
        if html is None:
            html = fresh[key] = template.render({"row": row, "handoff": row.handoff})
        row.html = mark_safe(html)  # noqa: S308 - rendered by our template, autoescaped
    if fresh:
        store.set_many(fresh)


def _filter_query(data: Any) -> str:
    """The board's own filters from a request's data, and nothing else, as a query string."""
    return urlencode({k: data[k] for k in ("station", "clinician") if data.get(k)})


@log_refusals("clinic now", subject=None)
@require_GET
@permission_required("backoffice.view_clinic_now", raise_exception=True)
def clinic_now(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    board_filter = ClinicNowFilter(request.GET, queryset=clinic_now_handoffs(user=user))
    rows, total = clinic_rows(board_filter.qs, user=user)
    # Every refresh is logged: each shows the patients again, perhaps to someone else at the screen.
    log_access(
        request=request, action=AccessAction.LIST, what="clinic now", patients=[r.handoff.patient_id for r in rows]
    )
    htmx = bool(getattr(request, "htmx", False))
    query = _filter_query(request.GET)
    rendered_rows(rows)
    context = {
        "rows": rows,
        "total": total,
        "stat_count": sum(r.handoff.is_stat for r in rows),
        "results_back_count": sum(r.results_back is True for r in rows),
        "filter": board_filter,
        "station_choices": [] if htmx else selectors.station_choices(),
        "clinician_choices": [] if htmx else clinician_choices(),
        "selected_station": request.GET.get("station", ""),
        "selected_clinician": request.GET.get("clinician", ""),
        "filter_query": query,
        "now": timezone.now(),
        "nav": "clinic_now",
    }
    template = "backoffice/pages/clinic_now.html#clinic-now-body" if htmx else "backoffice/pages/clinic_now.html"
    return render(request, template, context)


@log_refusals("patient left", subject="handoff")
@require_POST
@permission_required("backoffice.record_patient_left", raise_exception=True)
def handoff_patient_left(request: HttpRequest, uuid: str) -> HttpResponse:
    """Record that the patient has gone; back to the board, with its filters, saying what went to whom."""
    user = request.user
    assert isinstance(user, User)
    handoff = selectors.handoff_for_user(user=user, uuid=uuid)
    name = handoff.patient.full_name
    try:
        with refusals_logged(request, subject="handoff", ref=str(uuid)):
            services.handoff_patient_left(handoff=handoff, by=user)
    except TransitionNotAllowed as exc:
        messages.error(request, naming_patient(name, str(exc)))
    else:
        event = handoff.events.filter(action=HandoffEvent.Action.PATIENT_LEFT).latest("at", "id")
        # The event's note names what went to whom ("Patient left; to Dr Shah: Rapid strep: call …").
        said = f"{name} has left{event.note.removeprefix('Patient left')}."
        if event.from_status != handoff.status:
            said += {
                HandoffStatus.COMPLETED: " Nothing else needed them: the handoff is completed.",
                HandoffStatus.RETURNED: f" Handed back to {handoff.ordering_clinician}.",
            }.get(HandoffStatus(handoff.status), "")
        messages.success(request, said)
    query = _filter_query(request.POST)
    return redirect(reverse("clinic_now") + (f"?{query}" if query else ""))
