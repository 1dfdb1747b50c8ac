"""Bench pages: the bench list, a specimen's result entry panel by panel, verification, release, amendment.

Thin: check access, validate a form, call one service, add a message, redirect. What a page offers is
asked of the guards the services run (lab.results.selectors.ResultActions, enter_offer).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import log_access, log_refusals, refusals_logged, render_logged
from backoffice.models import AccessAction, User
from backoffice.transitions import Offer
from backoffice.workflow import TransitionNotAllowed
from lab.models import Analyte, Result, ResultEvent, TestOrder
from lab.results import selectors, services
from lab.results.flags import Interpreted
from lab.results.forms import AmendForm, CloseReviewForm, CorrectForm, PanelForm, SendBackForm
from lab.workflow import ResultStatus
from specimens.forms import ScanForm
from specimens.models import Specimen


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


# --- The bench and the verification list -----------------------------------------------------------


@log_refusals("lab bench", subject=None)
@require_GET
@permission_required("lab.enter_result", raise_exception=True)
def bench(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = selectors.bench_list(user=_user(request), now=now)
    log_access(
        request=request, action=AccessAction.LIST, what="lab bench", patients=[r.specimen.patient_id for r in rows]
    )
    context = {"rows": rows, "scan_form": ScanForm(), "now": now, "nav": "bench"}
    return render(request, "lab/results/bench.html", context)


@log_refusals("lab bench scan", subject=None)
@require_POST
@permission_required("lab.enter_result", raise_exception=True)
def scan(request: HttpRequest) -> HttpResponse:
    """A scanned accession opens its specimen's results (POSTed: it stays out of URLs and logs)."""
    specimen = selectors.bench_specimen_by_accession(user=_user(request), scanned=request.POST.get("accession", ""))
    if specimen is None:
        messages.error(request, "No specimen has that accession. Scan the label again or type it.")
        return redirect("lab:results:bench")
    return redirect("lab:results:specimen", uuid=specimen.uuid)


@log_refusals("results to verify", subject=None)
@require_GET
@permission_required("lab.verify_result", raise_exception=True)
def verification(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    results = selectors.verification_list(user=user)
    under_review = selectors.review_list(user=user)
    log_access(
        request=request,
        action=AccessAction.LIST,
        what="results to verify",
        patients=[r.patient_id for r in [*results, *under_review]],
    )
    context = {"results": results, "under_review": under_review, "nav": "bench"}
    return render(request, "lab/results/verification.html", context)


# --- A specimen's results, panel by panel ------------------------------------------------------------


@dataclass
class Panel:
    """One ordered test on the page: its entry form where one is offered, or its results and their actions."""

    order: TestOrder
    enter: Offer
    lots: list[selectors.LotChoice]
    form: PanelForm | None
    rows: list[tuple[Result, selectors.ResultActions]] = field(default_factory=list)
    criticals: list[tuple[str, Interpreted]] = field(default_factory=list)
    first_pending: tuple[Result, selectors.ResultActions] | None = None

    @property
    def usable_lots(self) -> list[selectors.LotChoice]:
        return [c for c in self.lots if c.blocked is None]

    @property
    def locked_lots(self) -> list[selectors.LotChoice]:
        return [c for c in self.lots if c.blocked is not None]


def _panels(specimen: Specimen, user: User, *, bound: dict[int, Panel] | None = None) -> list[Panel]:
    panels = []
    for order in selectors.orders_of_specimen(specimen):
        if bound and order.pk in bound:
            panels.append(bound[order.pk])
            continue
        panels.append(_panel(order, user))
    return panels


def _panel(order: TestOrder, user: User, data: Any = None) -> Panel:
    enter = selectors.enter_offer(order, user)
    lots = selectors.lot_choices(order.test) if enter else []
    usable = [c.lot for c in lots if c.blocked is None]
    form = PanelForm(data, order=order, lots=usable) if enter and usable else None
    rows = [(r, selectors.result_actions(r, user)) for r in order.results.all()]
    pending = [(r, a) for r, a in rows if r.status == ResultStatus.ENTERED]
    return Panel(order, enter, lots, form, rows, first_pending=pending[0] if pending else None)


def _render_specimen(
    request: HttpRequest, specimen: Specimen, user: User, *, status: int = 200, bound: dict[int, Panel] | None = None
) -> HttpResponse:
    panels = _panels(specimen, user, bound=bound)
    results = [r for p in panels for r, _ in p.rows]
    first = next((p for p in panels if p.form is not None), None)
    if first is not None and first.form is not None and first.form.analytes and not first.criticals:
        # Keyboard-first: the cursor waits in the first value of the first panel to enter.
        first.form.fields[f"a{first.form.analytes[0].pk}"].widget.attrs["autofocus"] = True
    events = selectors.result_events(results)
    _mark_sent_back(results, events)
    context = {
        "specimen": specimen,
        "patient": specimen.patient,
        "handoff": specimen.handoff,
        "panels": panels,
        "events": events,
        "can_enter": user.has_perm("lab.enter_result"),
        "nav": "bench",
    }
    return render_logged(
        request,
        "lab/results/specimen.html",
        context,
        what="specimen results",
        patient_id=specimen.patient_id,
        object_ref=str(specimen.uuid),
        status=status,
    )


def _mark_sent_back(results: list[Result], events: list[ResultEvent]) -> None:
    """A result whose latest entry event is the verifier's "sent back" shows why, for its performer."""
    latest: dict[int, ResultEvent] = {}
    for event in events:  # newest first
        if event.action in (ResultEvent.Action.ENTERED, ResultEvent.Action.CORRECTED, ResultEvent.Action.SENT_BACK):
            latest.setdefault(event.result_id, event)
    for r in results:
        last = latest.get(r.pk)
        sent_back = last is not None and last.action == ResultEvent.Action.SENT_BACK and r.status in services.UNRELEASED
        r.sent_back = last.note if sent_back and last is not None else ""  # type: ignore[attr-defined]


@log_refusals("specimen results", subject="specimen")
@require_GET
@permission_required("lab.view_result", raise_exception=True)
def specimen(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    return _render_specimen(request, selectors.specimen_for_results(user=user, uuid=uuid), user)


def _shown(analyte: Analyte, value: Interpreted) -> str:
    """The value as the saved result will show it: "Hgb 6.8 g/dL"."""
    unsaved = Result(
        analyte=analyte,
        value_numeric=value.value_numeric,
        comparator=value.comparator,
        value_text=value.value_text,
        unit=analyte.unit,
    )
    return f"{analyte.short_name} {unsaved.display_value}"


@log_refusals("result entry", subject="specimen")
@require_POST
@permission_required("lab.enter_result", raise_exception=True)
def enter(request: HttpRequest, uuid: str) -> HttpResponse:
    """Save one panel; a critical value first re-renders the panel with a STOP warning to confirm."""
    user = _user(request)
    specimen = selectors.specimen_for_results(user=user, uuid=uuid)
    order = next((o for o in selectors.orders_of_specimen(specimen) if str(o.uuid) == request.POST.get("order")), None)
    if order is None:
        raise Http404
    panel = _panel(order, user, request.POST)
    form = panel.form
    if form is None:  # not enterable, or no usable lot: the page says why
        messages.error(request, panel.enter.why or "No kit lot for this test passes QC now; see the panel.")
        return redirect("lab:results:specimen", uuid=specimen.uuid)
    if not form.is_valid():
        return _render_specimen(request, specimen, user, status=422, bound={order.pk: panel})
    try:
        read = services.results_preview(order=order, values=form.values())
    except services.InvalidValues as exc:
        for analyte_id, message in exc.errors.items():
            form.add_error(f"a{analyte_id}", message)
        return _render_specimen(request, specimen, user, status=422, bound={order.pk: panel})
    analytes = {a.pk: a for a in form.analytes}
    panel.criticals = [(_shown(analytes[pk], value), value) for pk, value in read.items() if value.is_critical]
    if panel.criticals and not form.cleaned_data["confirm_critical"]:
        return _render_specimen(request, specimen, user, bound={order.pk: panel})
    try:
        with refusals_logged(request, subject="specimen", ref=str(uuid)):
            results = services.results_enter(
                order=order,
                values=form.values(),
                kit_lot=form.cleaned_data["kit_lot"],
                by=user,
                comment=form.cleaned_data["comment"],
            )
    except TransitionNotAllowed as exc:
        form.add_error(None, str(exc))
        return _render_specimen(request, specimen, user, status=422, bound={order.pk: panel})
    shown = ", ".join(f"{r.analyte.short_name} {r.display_value}{f' {r.flag}' if r.flag else ''}" for r in results)
    next_step = (
        "ask a second person to verify it." if order.test.requires_verification else "release it when you're ready."
    )
    if any(r.is_critical for r in results):
        messages.warning(
            request,
            f"CRITICAL saved: {shown}. "
            + ("Ask a second person to verify it now" if order.test.requires_verification else "Release it now")
            + ": the ordering clinician is called on release.",
        )
    else:
        messages.success(request, f"{order.test.short_name} entered: {shown}; {next_step}")
    return redirect("lab:results:specimen", uuid=specimen.uuid)


# --- One result: its history and its actions --------------------------------------------------------


@log_refusals("result", subject="result")
@require_GET
@permission_required("lab.view_result", raise_exception=True)
def result(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    current = selectors.result_for_user(user=user, uuid=uuid)
    chain = list(
        Result.objects.filter(order=current.order_id, analyte=current.analyte_id)
        .select_related("analyte", "entered_by", "verified_by", "released_by", "kit_lot__kit", "amends")
        .order_by("id")
    )
    context = {
        "result": current,
        "chain": chain,
        "events": selectors.result_events(chain),
        "patient": current.patient,
        "handoff": current.order.handoff,
        "specimen": current.specimen,
        "nav": "bench",
    }
    return render_logged(
        request, "lab/results/result.html", context, what="result", patient_id=current.patient_id, object_ref=str(uuid)
    )


def _run(request: HttpRequest, uuid: str, action: Callable[[Result, User], object], success: str) -> HttpResponse:
    """Run one service for the result in the URL; a refusal becomes a message, never a 500."""
    user = _user(request)
    result = selectors.result_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="result", ref=str(uuid)):
            action(result, user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success.format(name=result.order.test.short_name, analyte=result.analyte.short_name))
    if request.POST.get("next") == "verification":
        return redirect("lab:results:verification")
    return redirect("lab:results:specimen", uuid=result.specimen.uuid)


def _form_refused(request: HttpRequest, uuid: str, form: Any) -> HttpResponse:
    """A form without what it needs: say so on the specimen's page (nothing was changed)."""
    user = _user(request)
    result = selectors.result_for_user(user=user, uuid=uuid)
    problems = " ".join(str(e) for errors in form.errors.values() for e in errors)
    messages.error(request, f"{result.analyte.short_name}: {problems}")
    return redirect("lab:results:specimen", uuid=result.specimen.uuid)


@log_refusals("result verification", subject="result")
@require_POST
@permission_required("lab.verify_result", raise_exception=True)
def verify(request: HttpRequest, uuid: str) -> HttpResponse:
    def run(r: Result, u: User) -> None:
        _call_now(request, services.result_verify(result=r, by=u))

    return _run(request, uuid, run, "{name} verified and released; the clinician sees it now.")


def _call_now(request: HttpRequest, released: list[Result]) -> None:
    """A released critical: its call-back is open, and the bench is told to make the call now."""
    for r in released:
        if r.is_critical:
            messages.warning(
                request,
                f"CRITICAL {r.analyte.short_name} {r.display_value} ({r.flag}) released: call the ordering "
                "clinician now and document the read-back.",
                extra_tags="alert-stop",
            )


@log_refusals("result release", subject="result")
@require_POST
@permission_required("lab.enter_result", raise_exception=True)
def release(request: HttpRequest, uuid: str) -> HttpResponse:
    def run(r: Result, u: User) -> None:
        _call_now(request, services.result_release(result=r, by=u))

    return _run(request, uuid, run, "{name} released; the clinician sees it now.")


@log_refusals("result sent back", subject="result")
@require_POST
@permission_required("lab.verify_result", raise_exception=True)
def send_back(request: HttpRequest, uuid: str) -> HttpResponse:
    form = SendBackForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, form)
    reason = form.cleaned_data["reason"]
    return _run(
        request,
        uuid,
        lambda r, u: services.result_send_back(result=r, by=u, reason=reason),
        "{analyte} sent back to its performer for a correction.",
    )


@log_refusals("result correction", subject="result")
@require_POST
@permission_required("lab.enter_result", raise_exception=True)
def correct(request: HttpRequest, uuid: str) -> HttpResponse:
    form = CorrectForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, form)
    data = form.cleaned_data
    return _run(
        request,
        uuid,
        lambda r, u: services.result_correct(result=r, value=data["value"], by=u, comment=data["comment"] or None),
        "{analyte} corrected; it waits for verification again.",
    )


@log_refusals("result review closed", subject="result")
@require_POST
@permission_required("lab.verify_result", raise_exception=True)
def close_review(request: HttpRequest, uuid: str) -> HttpResponse:
    form = CloseReviewForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, form)
    note = form.cleaned_data["note"]
    return _run(
        request,
        uuid,
        lambda r, u: services.result_close_review(result=r, by=u, note=note),
        "Review of {analyte} closed: the result stands as released.",
    )


@log_refusals("result amendment", subject="result")
@require_POST
@permission_required("lab.enter_result", raise_exception=True)
def amend(request: HttpRequest, uuid: str) -> HttpResponse:
    form = AmendForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, form)
    data = form.cleaned_data
    return _run(
        request,
        uuid,
        lambda r, u: services.result_amend(result=r, value=data["value"], reason=data["reason"], by=u),
        "Correction of {analyte} entered; once verified and released it supersedes the original.",
    )
