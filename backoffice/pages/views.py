"""Back-office pages. Thin: check access, validate a form, call a service, message, redirect.

The queue, the detail page, new handoff and the board compose apps (procedures, lab),
so they sit on the top floor and read each app's selectors.
"""

from collections.abc import Callable
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required, permission_required
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, F, Q, QuerySet, Window
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backoffice import selectors, services
from backoffice.audit.log import log_access, log_refusals, refusals_logged, render_logged
from backoffice.identifiers import without_scanner_marks
from backoffice.models import AccessAction, AccessOutcome, Handoff, HandoffEvent, Station, User
from backoffice.pages import fragments
from backoffice.pages.filters import QueueFilter
from backoffice.pages.forms import (
    CancelForm,
    HandBackForm,
    HandoffForm,
    PatientSearchForm,
    StationForm,
    VerifyIdentityForm,
)
from backoffice.pages.ordering import handoff_order
from backoffice.paging import page_number
from backoffice.roles import ROLE_CLINICIAN
from backoffice.workflow import (
    OPEN_STATUSES,
    HandBack,
    HandBackReason,
    HandoffStatus,
    StationState,
    TransitionNotAllowed,
    naming_patient,
)
from lab.selectors import test_orders_by_handoff
from procedures.selectors import procedure_orders_by_handoff
from procedures.services import AllergyStop
from specimens import selectors as specimen_selectors
from specimens.accession import is_valid as is_accession
from specimens.accession import normalise
from specimens.models import Specimen


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness for load balancers: one trivial query proves the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if user.has_perm("backoffice.view_board"):
        return redirect("board")
    if user.has_perm("backoffice.claim_handoff") or user.has_perm("backoffice.view_handoff"):
        if user.groups.filter(name=ROLE_CLINICIAN).exists():
            return redirect("handoff_new")
        return redirect("queue")
    if user.has_perm("backoffice.view_accesslog"):
        return redirect("audit")
    if user.is_staff:
        return redirect("admin:index")
    return render(request, "no_role.html", status=403)


def _is_htmx(request: HttpRequest) -> bool:
    """django-htmx's middleware sets request.htmx; its truth means an htmx request."""
    return bool(getattr(request, "htmx", False))


def _attach_items(handoffs: list[Handoff]) -> None:
    """Give each handoff its ordered procedures and tests: two queries whatever the count."""
    ids = [h.pk for h in handoffs]
    procedures = procedure_orders_by_handoff(ids)
    tests = test_orders_by_handoff(ids)
    for handoff in handoffs:
        handoff.procedure_items = procedures.get(handoff.pk, [])  # type: ignore[attr-defined]
        handoff.test_items = tests.get(handoff.pk, [])  # type: ignore[attr-defined]


@log_refusals("queue", subject=None)
@require_GET
@permission_required("backoffice.view_handoff", raise_exception=True)
def queue(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    queue_filter = QueueFilter(request.GET, queryset=selectors.queue_handoffs(user=user), user=user)
    # A page of the queue, not all of it: MAs work from the top, and a large clinic can have
    # hundreds open. One indexed query reads the page's row keys with the queue's totals.
    size = settings.QUEUE_PAGE_SIZE
    page = page_number(request.GET.get("page"))  # past the end: see below
    keys = _queue_keys(queue_filter.qs, page, size)
    if keys:
        total, waiting = keys[0].extra
    else:  # an empty queue, or a page past its end: count, and show the last page instead
        counts = selectors.open_counts(queue_filter.qs)
        total, waiting = sum(counts.values()), counts[HandoffStatus.WAITING]
        if total and page > 1:
            page = -(-total // size)
            keys = _queue_keys(queue_filter.qs, page, size)
    pages = max(1, -(-total // size))
    # Every refresh is logged too: each one shows the patients again, perhaps to someone else.
    log_access(request=request, action=AccessAction.LIST, what="queue", patients=[k.patient_id for k in keys])
    may_claim = user.has_perm("backoffice.claim_handoff")
    rows = fragments.rendered_rows(
        keys,
        template_name="backoffice/pages/partials/queue_row.html",
        load=_load_for_rows,
        variant="claim" if may_claim else "view",
        context={"may_claim": may_claim},
    )
    context = {
        "filter": queue_filter,
        "station_choices": [] if _is_htmx(request) else selectors.station_choices(),
        "rows": rows,
        "now": timezone.now(),
        "waiting_count": waiting,
        "open_count": total,
        "page": page,
        "pages": pages,
        "first_row": (page - 1) * size + 1,
        "last_row": (page - 1) * size + len(rows),
        "filter_query": _without_page(request),
        "nav": "queue",
    }
    template = "backoffice/pages/queue.html#queue-table" if _is_htmx(request) else "backoffice/pages/queue.html"
    return render(request, template, context)


def _load_for_rows(ids: list[int]) -> list[Handoff]:
    """The handoffs a queue row or board card prints, with their items: three queries whatever the count."""
    handoffs = list(Handoff.objects.for_lists().filter(pk__in=ids))
    _attach_items(handoffs)
    return handoffs


def _queue_keys(handoffs: QuerySet[Handoff], page: int, size: int) -> list[fragments.RowKey]:
    """One page's row keys, each carrying the open and waiting totals of the whole filtered queue."""
    return fragments.row_keys(
        handoffs[(page - 1) * size : page * size],
        open_total=Window(Count("pk")),
        waiting_total=Window(Count("pk", filter=Q(status=HandoffStatus.WAITING))),
    )


def _without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@log_refusals("board", subject=None)
@require_GET
@permission_required("backoffice.view_board", raise_exception=True)
def board(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    # Each card's key carries its status's total, counted before the per-column cap.
    status_total = Window(Count("pk"), partition_by=[F("status")])
    keys = fragments.row_keys(
        selectors.board_handoffs(user=user, per_status=settings.BOARD_COLUMN_SIZE), status_total=status_total
    )
    counts = dict.fromkeys(OPEN_STATUSES, 0) | {k.status: k.extra[0] for k in keys}
    stations = selectors.stations_with_occupant()
    shown = [k.patient_id for k in keys] + [s.occupant.patient_id for s in stations if s.occupant]  # type: ignore[attr-defined]
    log_access(request=request, action=AccessAction.LIST, what="board", patients=shown)
    cards = fragments.rendered_rows(
        keys, template_name="backoffice/pages/partials/board_card.html", load=_load_for_rows
    )
    columns = [
        (status, [card for card in cards if card.status == status], counts[status])
        for status in (
            HandoffStatus.WAITING,
            HandoffStatus.CLAIMED,
            HandoffStatus.IDENTITY_VERIFIED,
            HandoffStatus.IN_PROGRESS,
        )
    ]
    context = {
        "columns": columns,
        "stations": stations,
        "now": timezone.now(),
        "nav": "board",
    }
    template = "backoffice/pages/board.html#board-body" if _is_htmx(request) else "backoffice/pages/board.html"
    return render(request, template, context)


@log_refusals("handoff detail", subject="handoff")
@require_GET
@permission_required("backoffice.view_handoff", raise_exception=True)
def handoff_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    handoff = selectors.handoff_detail_for_user(user=user, uuid=uuid)
    return _render_detail(request, handoff, user)


def _render_detail(
    request: HttpRequest, handoff: Handoff, user: User, *, status: int = 200, **forms: Any
) -> HttpResponse:
    """The detail page, also after a refused form: each showing is logged as a view of the patient."""
    return render_logged(
        request,
        "backoffice/pages/handoff_detail.html",
        _detail_context(handoff, user, **forms),
        what="handoff detail",
        patient_id=handoff.patient_id,
        object_ref=str(handoff.uuid),
        status=status,
    )


def _detail_context(handoff: Handoff, user: User, **forms: Any) -> dict[str, Any]:
    """What the page shows, each read once. The procedures panel reads its own orders (procedure_tags)."""
    events = selectors.handoff_events(handoff)
    # Read only if the page shows a station picker (its two queries), once for the select and its note.
    picker = cast(selectors.StationPicker, SimpleLazyObject(lambda: selectors.station_picker(handoff)))
    return {
        "handoff": handoff,
        "patient": handoff.patient,
        "events": events,
        # Who handed the patient back, and when: the latest hand-back while it stands.
        "handed_back": next((e for e in events if e.action == HandoffEvent.Action.HANDED_BACK), None)
        if handoff.status == HandoffStatus.RETURNED
        else None,
        # What the page offers is what the services would accept: the same guards answer.
        "actions": selectors.handoff_actions(handoff, user),
        "hand_back_cancels": settings.MA_HAND_BACK == HandBack.CANCEL,
        "verify_form": forms.get("verify_form") or VerifyIdentityForm(),
        "station_form": (forms.get("station_form") or StationForm()).offer(picker),
        "station_picker": picker,
        "cancel_form": forms.get("cancel_form") or CancelForm(),
        "hand_back_form": forms.get("hand_back_form") or HandBackForm(),
        "now": timezone.now(),
        "nav": "queue",
    }


def _handoff(request: HttpRequest, uuid: str) -> Handoff:
    return selectors.handoff_for_user(user=_user(request), uuid=uuid)


def _transition(
    request: HttpRequest,
    handoff: Handoff,
    action: Callable[[Handoff, User], Handoff],
    success: str,
    *,
    back: str = "detail",
) -> HttpResponse:
    """Run one service for the handoff the view loaded; a refusal becomes a message, never a 500.

    ``back="queue"`` is where a success goes; a refusal stays on the patient's page, naming them, so
    whoever has fifteen patients waiting reads whose it was and what is still open there.
    """
    user = _user(request)
    try:
        # Acting on a handoff that isn't yours (a swapped id) is refused, changes nothing and is logged.
        with refusals_logged(request, subject="handoff", ref=str(handoff.uuid)):
            action(handoff, user)
    except TransitionNotAllowed as exc:
        messages.error(request, naming_patient(handoff.patient.full_name, str(exc)))
        return redirect("handoff_detail", uuid=handoff.uuid)
    messages.success(request, success.format(patient=handoff.patient.full_name))
    if back == "queue":
        return redirect("queue")
    return redirect("handoff_detail", uuid=handoff.uuid)


@log_refusals("handoff claim", subject="handoff")
@require_POST
@permission_required("backoffice.claim_handoff", raise_exception=True)
def handoff_claim(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    handoff = selectors.handoff_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="handoff", ref=str(uuid)):
            services.handoff_claim(handoff=handoff, by=user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("queue")
    messages.success(request, f"You claimed {handoff.patient.full_name}. Bring them to a station and verify identity.")
    return redirect("handoff_detail", uuid=handoff.uuid)


@log_refusals("handoff release", subject="handoff")
@require_POST
@permission_required("backoffice.claim_handoff", raise_exception=True)
def handoff_release(request: HttpRequest, uuid: str) -> HttpResponse:
    return _transition(
        request,
        _handoff(request, uuid),
        lambda h, u: services.handoff_release(handoff=h, by=u),
        "{patient} is back on the queue.",
        back="queue",
    )


@log_refusals("handoff station", subject="handoff")
@require_POST
@permission_required("backoffice.claim_handoff", raise_exception=True)
def handoff_station(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    handoff = selectors.handoff_for_user(user=user, uuid=uuid)
    form = StationForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, handoff, user, status=422, station_form=form)
    station: Station = form.cleaned_data["station"]
    return _transition(
        request,
        handoff,
        lambda h, u: services.handoff_assign_station(handoff=h, station=station, by=u),
        f"{{patient}} is at {station.name}.",
    )


@log_refusals("handoff identity check", subject="handoff")
@require_POST
@permission_required("backoffice.claim_handoff", raise_exception=True)
def handoff_verify(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    handoff = selectors.handoff_for_user(user=user, uuid=uuid)
    form = VerifyIdentityForm(request.POST)
    if form.is_valid() and _is_specimen_label(form.entry.text):
        # The wristband field got a tube's label: never read a specimen label as the patient's identity.
        form.add_error("scanned_mrn", "That is a specimen label, not a wristband. Scan the patient's wristband.")
    if form.is_valid():
        # Scanned or typed is the server's reading of the scanner's marks (WRISTBAND_SCAN_PREFIX/SUFFIX).
        entry = form.entry
        try:
            with refusals_logged(request, subject="handoff", ref=str(uuid)):
                services.handoff_verify_identity(
                    handoff=handoff,
                    by=user,
                    full_name=form.cleaned_data["full_name"],
                    date_of_birth=form.cleaned_data["date_of_birth"],
                    scanned_mrn=entry.text if entry.scanned else "",
                    typed_mrn="" if entry.scanned else entry.text,
                )
        except TransitionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Identity verified for {handoff.patient.full_name}. You can start.")
            return redirect("handoff_detail", uuid=handoff.uuid)
    handoff = selectors.handoff_detail_for_user(user=user, uuid=uuid)  # as the failed check left it
    return _render_detail(request, handoff, user, status=422, verify_form=form)


def _is_specimen_label(scanned: str) -> bool:
    """A real specimen's accession (not just its shape: an MRN may look like one)."""
    return bool(scanned) and is_accession(scanned) and Specimen.objects.filter(accession=normalise(scanned)).exists()


@log_refusals("handoff start", subject="handoff")
@require_POST
@permission_required("backoffice.claim_handoff", raise_exception=True)
def handoff_start(request: HttpRequest, uuid: str) -> HttpResponse:
    return _transition(
        request,
        _handoff(request, uuid),
        lambda h, u: services.handoff_start(handoff=h, by=u),
        "Work started for {patient}.",
    )


@log_refusals("handoff complete", subject="handoff")
@require_POST
@permission_required("backoffice.claim_handoff", raise_exception=True)
def handoff_complete(request: HttpRequest, uuid: str) -> HttpResponse:
    return _transition(
        request,
        _handoff(request, uuid),
        lambda h, u: services.handoff_complete(handoff=h, by=u),
        "{patient}'s handoff is complete; the station needs turnover.",
        back="queue",
    )


@log_refusals("handoff cancel", subject="handoff")
@require_POST
@permission_required("backoffice.cancel_handoff", raise_exception=True)
def handoff_cancel(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    handoff = selectors.handoff_for_user(user=user, uuid=uuid)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, handoff, user, status=422, cancel_form=form)
    reason = form.cleaned_data["reason"]
    return _transition(
        request,
        handoff,
        lambda h, u: services.handoff_cancel(handoff=h, by=u, reason=reason),
        "Handoff for {patient} cancelled.",
    )


@log_refusals("handoff hand back", subject="handoff")
@require_POST
@permission_required("backoffice.claim_handoff", raise_exception=True)
def handoff_hand_back(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    handoff = selectors.handoff_for_user(user=user, uuid=uuid)
    form = HandBackForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, handoff, user, status=422, hand_back_form=form)
    reason = form.cleaned_data["reason"]
    label = HandBackReason(reason).label
    if settings.MA_HAND_BACK == HandBack.CANCEL:
        success = f"Handoff for {{patient}} cancelled: {label}."
    else:
        success = f"{{patient}} is handed back to {handoff.ordering_clinician}: {label}."
    return _transition(
        request,
        handoff,
        lambda h, u: services.handoff_hand_back(handoff=h, by=u, reason=reason),
        success,
        back="queue",
    )


@log_refusals("handoff resend", subject="handoff")
@require_POST
@permission_required("backoffice.cancel_handoff", raise_exception=True)
def handoff_resend(request: HttpRequest, uuid: str) -> HttpResponse:
    return _transition(
        request,
        _handoff(request, uuid),
        lambda h, u: services.handoff_resend(handoff=h, by=u),
        "{patient} is back on the back-office queue.",
    )


@log_refusals("new handoff", subject=None)
@require_http_methods(["GET", "POST"])
@permission_required("backoffice.add_handoff", raise_exception=True)
def handoff_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = HandoffForm(request.POST or None, user=user)
    selected = open_handoff = None
    allergy_stop = False
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            needs = services.Needs(
                interpreter_needed=data["interpreter_needed"],
                interpreter_language=data["interpreter_language"],
                companion=data["companion"],
                aide_needed=data["aide_needed"],
                mobility=data["mobility"],
                isolation=data["isolation"],
            )
            try:
                handoff = handoff_order(
                    patient=data["patient"],
                    ordering_clinician=data["ordering_clinician"],
                    exam_room=data["exam_room"],
                    priority=data["priority"],
                    clinical_note=data["clinical_note"],
                    diagnosis_codes=data["diagnoses"],
                    needs=needs,
                    procedure_types=list(data["procedures"]),
                    tests=list(data["tests"]),
                    medications=list(data["medications"]),
                    allergy_override_reason=data["allergy_override_reason"],
                    again=data["again"],
                    by=user,
                )
            except AllergyStop as exc:
                form.add_error(None, str(exc))
                allergy_stop = True
            except TransitionNotAllowed as exc:
                form.add_error(None, str(exc))
            else:
                log_access(
                    request=request,
                    action=AccessAction.VIEW,
                    what="new handoff",
                    patients=[handoff.patient_id],
                    object_ref=str(handoff.uuid),
                )
                messages.success(request, f"{handoff.patient.full_name} is on the back-office queue.")
                return redirect("handoff_detail", uuid=handoff.uuid)
        selected = form.cleaned_data.get("patient") if hasattr(form, "cleaned_data") else None
        if selected is not None:
            # The refused form shows the chosen patient again, and asks to confirm if they are on the queue.
            log_access(request=request, action=AccessAction.VIEW, what="new handoff", patients=[selected])
            open_handoff = services.open_handoff_of(selected)
    status = 422 if request.method == "POST" else 200
    # A clinician's patients handed back by the back office, waiting for them to re-queue or cancel.
    handed_back = selectors.handed_back_to(user=user)
    if handed_back:
        log_access(
            request=request, action=AccessAction.LIST, what="handed back", patients=[h.patient_id for h in handed_back]
        )
    context = {
        "form": form,
        "selected_list": [selected] if selected else [],
        "open_handoff": open_handoff,
        "handed_back": handed_back,
        "nav": "new",
        "allergy_stop": allergy_stop,
        "may_override_allergy": user.has_perm("procedures.override_allergy"),
    }
    return render(request, "backoffice/pages/handoff_new.html", context, status=status)


@log_refusals("new handoff needs", subject=None)
@require_POST
@permission_required("backoffice.add_handoff", raise_exception=True)
def handoff_needs(request: HttpRequest) -> HttpResponse:
    """The new handoff's needs, pre-filled for the patient just picked (htmx, on picking one)."""
    user = _user(request)
    form = HandoffForm(user=user)
    try:
        patient = HandoffForm.base_fields["patient"].clean(request.POST.get("patient"))
    except ValidationError:
        patient = None  # none picked, or a tampered id: the needs as a new form has them
    carried = None
    if patient is not None:
        carried = selectors.carried_needs(patient=patient, user=user)
        form = HandoffForm(
            user=user,
            initial={
                "interpreter_needed": carried.interpreter_needed,
                "interpreter_language": carried.interpreter_language,
                "isolation": carried.isolation,
            },
        )
        log_access(request=request, action=AccessAction.VIEW, what="new handoff needs", patients=[patient.pk])
    context = {"form": form, "carried": carried, "open_handoff": carried.open_handoff if carried else None}
    return render(request, "backoffice/pages/handoff_new.html#needs", context)


@log_refusals("patient search", subject=None)
@require_POST
@permission_required("backoffice.view_patient", raise_exception=True)
def patient_search(request: HttpRequest) -> HttpResponse:
    """Find a patient for a new handoff. POST keeps names out of URLs and access logs."""
    form = PatientSearchForm(request.POST)
    # A scanned wristband or label comes with the scanner's marks: the search is for what it read.
    query = without_scanner_marks(form.cleaned_data["q"]) if form.is_valid() else ""
    user = _user(request)
    search = selectors.search_patients(query, user=user)
    patients = search.patients
    if search.withheld:
        # Matched, but outside the lab's work: not shown, and the refusal names them (never the query).
        log_access(
            request=request,
            action=AccessAction.DENIED,
            what="patient search outside lab work",
            patients=search.withheld,
            outcome=AccessOutcome.DENIED,
        )
    # A scanned specimen label in the search box opens that specimen instead (for those who may see it).
    specimen = (
        specimen_selectors.specimen_by_accession(user=user, scanned=query)
        if not patients and is_accession(query) and user.has_perm("specimens.view_specimen")
        else None
    )
    if query:
        # The patients found, never the query: it may be a name.
        shown = [specimen.patient_id] if specimen else patients
        log_access(request=request, action=AccessAction.SEARCH, what="patient search", patients=shown)
    context = {
        "patients": patients,
        "query": query,
        "specimen": specimen,
        "lab_scope": search.scoped,
        "recent_days": settings.LAB_SEARCH_RECENT_DAYS,
    }
    return render(request, "backoffice/pages/partials/patient_results.html", context)


@log_refusals("stations", subject=None)
@require_GET
# Both: the page names the patients at the stations, which the Admin role (who may keep stations) never sees.
@permission_required(("backoffice.manage_station", "backoffice.view_handoff"), raise_exception=True)
def stations(request: HttpRequest) -> HttpResponse:
    """Every station's state, who is at it and what it has; those needing turnover are turned over here."""
    stations = selectors.stations_with_occupant()
    occupants = [s.occupant for s in stations if s.occupant]  # type: ignore[attr-defined]
    log_access(request=request, action=AccessAction.LIST, what="stations", patients=[h.patient_id for h in occupants])
    counts = dict.fromkeys(StationState, 0)
    for station in stations:
        counts[StationState(station.state)] += 1
    context = {
        "stations": stations,
        "counts": counts,
        "to_turn_over": [s for s in stations if s.state == StationState.NEEDS_TURNOVER],
        "nav": "stations",
    }
    return render(request, "backoffice/pages/stations.html", context)


@require_POST
@permission_required("backoffice.manage_station", raise_exception=True)
def station_turnover(request: HttpRequest, code: str) -> HttpResponse:
    station = get_object_or_404(Station, code=code, is_active=True)
    try:
        services.station_turnover(station=station, by=_user(request))
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{station.name} is clean, restocked and ready.")
    if request.POST.get("back") == "stations":
        return redirect("stations")
    next_page = "board" if _user(request).has_perm("backoffice.view_board") else "queue"
    return redirect(next_page)
