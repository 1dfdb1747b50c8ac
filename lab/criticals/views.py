"""Critical-call pages: the open calls, one call with its attempt form, the time-to-notification report,
and the panel the supervisor board and the bench load.

Thin: check access, validate a form, call a service, message, redirect. Every page that shows
patients writes its access row before it renders; refusals are logged (subject "criticalcall").
"""

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import log_access, log_refusals, refusals_logged, render_logged
from backoffice.models import AccessAction, User
from backoffice.transitions import offer
from backoffice.workflow import TransitionNotAllowed
from lab.criticals import selectors
from lab.criticals.forms import AttemptForm, ReportFilterForm
from lab.criticals.services import (
    check_acknowledge,
    critical_call_acknowledge,
    critical_call_attempt,
    notification_limit_minutes,
)
from lab.models import CriticalCall, EscalationStep
from lab.workflow import CallOutcome, EscalationTarget

SUBJECT = "criticalcall"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


@log_refusals("critical calls", subject=None)
@require_GET
@permission_required("lab.view_criticalcall", raise_exception=True)
def open_calls(request: HttpRequest) -> HttpResponse:
    """The open critical-value calls, the most overdue first: whom to call now, and by when."""
    user = _user(request)
    steps = selectors.ladder()
    calls = list(selectors.open_critical_calls(user=user))
    log_access(request=request, action=AccessAction.LIST, what="critical calls", patients=[c.patient_id for c in calls])
    context = {"rows": selectors.call_rows(calls, user=user, steps=steps), "nav": "criticals"}
    return render(request, "lab/criticals/open.html", context)


@log_refusals("critical calls panel", subject=None)
@require_GET
@permission_required("lab.view_criticalcall", raise_exception=True)
def panel(request: HttpRequest) -> HttpResponse:
    """The open calls as a panel, fetched by the board and the bench ({% critical_calls_panel %})."""
    user = _user(request)
    steps = selectors.ladder()
    calls = list(selectors.open_critical_calls(user=user))
    log_access(
        request=request, action=AccessAction.LIST, what="critical calls panel", patients=[c.patient_id for c in calls]
    )
    rows = selectors.call_rows(calls, user=user, steps=steps)
    context = {"rows": rows, "overdue": sum(r.overdue for r in rows)}
    return render(request, "lab/criticals/partials/panel.html", context)


@log_refusals("critical call", subject=SUBJECT)
@require_GET
@permission_required("lab.view_criticalcall", raise_exception=True)
def detail(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    return _render_detail(request, selectors.critical_call_for_user(user=user, uuid=uuid), user)


def _contact_role(call: CriticalCall, steps: list[EscalationStep]) -> str:
    """The role of whom the call is with now, as the attempt form starts it: "Covering clinician"."""
    step = next((s for s in steps if s.position == call.step), None)
    return step.get_target_display() if step else EscalationTarget.ORDERING.label


def _render_detail(
    request: HttpRequest, call: CriticalCall, user: User, *, status: int = 200, form: AttemptForm | None = None
) -> HttpResponse:
    """The call's page, also after a refused form: each showing is logged as a view of the patient."""
    steps = selectors.ladder()
    initial = {"contact_name": str(call.clinician), "contact_role": _contact_role(call, steps)}
    [row] = selectors.call_rows([call], user=user, steps=steps)
    attempts = selectors.call_attempts(call)
    context = {
        "call": call,
        "row": row,
        "result": call.result,
        "patient": call.patient,
        "steps": steps,
        "attempts": attempts,
        "told": next((a for a in attempts if a.outcome == CallOutcome.READ_BACK), None),
        "events": list(call.events.select_related("actor").order_by("-at", "-id")),
        "form": form or AttemptForm(initial=initial),
        "read_back": CallOutcome.READ_BACK,
        "acknowledge": offer(partial(check_acknowledge, call, user)),
        "nav": "criticals",
    }
    return render_logged(
        request,
        "lab/criticals/detail.html",
        context,
        what="critical call",
        patient_id=call.patient_id,
        object_ref=str(call.uuid),
        status=status,
    )


@log_refusals("critical call attempt", subject=SUBJECT)
@require_POST
@permission_required("lab.record_critical_call", raise_exception=True)
def attempt(request: HttpRequest, uuid: str) -> HttpResponse:
    """Record one call; a read-back closes it and returns to the open calls, anything else stays here."""
    user = _user(request)
    call = selectors.critical_call_for_user(user=user, uuid=uuid)
    form = AttemptForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, call, user, status=422, form=form)
    try:
        with refusals_logged(request, subject=SUBJECT, ref=str(uuid)):
            recorded = critical_call_attempt(call=call, by=user, **form.cleaned_data)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("lab:criticals:detail", uuid=call.uuid)
    name = call.patient.full_name
    if recorded.outcome == CallOutcome.READ_BACK:
        messages.success(
            request,
            f"Closed: {recorded.contact_name} read back {call.result.analyte.short_name} "
            f"{call.result.display_value} for {name} at {timezone.localtime(recorded.at):%H:%M}.",
        )
        return redirect("lab:criticals:open")
    due = timezone.localtime(call.due_at)
    messages.warning(
        request,
        f"Recorded: {recorded.contact_name}, {recorded.get_outcome_display().lower()}. "
        f"The call for {name} stays open; due by {due:%H:%M}.",
    )
    return redirect("lab:criticals:detail", uuid=call.uuid)


@log_refusals("critical call acknowledgement", subject=SUBJECT)
@require_POST
@permission_required("lab.acknowledge_result", raise_exception=True)
def acknowledge(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    call = selectors.critical_call_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject=SUBJECT, ref=str(uuid)):
            critical_call_acknowledge(call=call, by=user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Acknowledged: {call.result.analyte.short_name} {call.result.display_value} for {call.patient.full_name}.",
        )
    return redirect("lab:criticals:detail", uuid=call.uuid)


@log_refusals("critical call times", subject=None)
@require_GET
@permission_required("lab.record_critical_call", raise_exception=True)
def report(request: HttpRequest) -> HttpResponse:
    """Time to notification per critical result, released → told, with every one over the limit."""
    user = _user(request)
    form = ReportFilterForm(request.GET or None)
    since, until = form.dates()
    figures = selectors.notification_report(
        user=user, since=since, until=until, limit_minutes=notification_limit_minutes()
    )
    log_access(
        request=request,
        action=AccessAction.LIST,
        what="critical call times",
        patients=[r.call.patient_id for r in figures.rows],
    )
    if not form.is_bound:
        form = ReportFilterForm(initial={"since": since, "until": until})
    return render(request, "lab/criticals/report.html", {"form": form, "report": figures, "nav": "criticals"})
