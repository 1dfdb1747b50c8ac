"""QC pages: the board (each lot locked or not, and the controls to run on it) and a control's chart.

Thin: check the permission, validate the form, call the service, say what happened, redirect.
"""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import log_refusals
from backoffice.models import User
from backoffice.workflow import TransitionNotAllowed
from lab.models import Result
from lab.qc import selectors, services, westgard
from lab.qc.forms import QCRunForm
from lab.qc.lockout import qc_block
from lab.workflow import ResultStatus


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


@log_refusals("QC board", subject=None)
@require_GET
@permission_required("lab.run_qc", raise_exception=True)
def board(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    tests = selectors.qc_board(user=_user(request), at=now)
    # The keyboard starts on the first control due that may be run (on the lot just worked on, if
    # one is due there): Enter records it. Autofocus also scrolls it into view.
    worked_on = request.GET.get("lot", "")
    due = [
        (str(lot.kit_lot.pk), f"{lot.kit_lot.pk}-{control.control_lot.pk}")
        for entry in tests
        for lot in entry.lots
        for control in lot.controls
        if control.due and control.offer
    ]
    focus = next((ident for pk, ident in due if pk == worked_on), due[0][1] if due else "")
    locked = sum(1 for entry in tests for lot in entry.lots if lot.locked)
    lots = sum(len(entry.lots) for entry in tests)
    context = {"tests": tests, "focus": focus, "locked": locked, "lots": lots, "now": now, "nav": "qc"}
    return render(request, "lab/qc/board.html", context)


@log_refusals("QC run", subject=None)
@require_POST
@permission_required("lab.run_qc", raise_exception=True)
def run(request: HttpRequest, pk: int) -> HttpResponse:
    kit_lot = selectors.kit_lot_for_qc(pk)
    form = QCRunForm(request.POST)
    # Back to the board, on this lot's next control due (no fragment: it would cancel autofocus).
    back = reverse("lab:qc:board") + f"?lot={kit_lot.pk}"
    if not form.is_valid():
        errors = [str(e) for field in ("value", "control_lot") for e in form.errors.get(field, [])]
        messages.error(request, " ".join(errors) or "Enter the control's value.")
        return redirect(back)
    control_lot = selectors.control_lot_for_qc(form.cleaned_data["control_lot"])
    try:
        qc_run = services.qc_run_record(
            kit_lot=kit_lot,
            control_lot=control_lot,
            value=form.cleaned_data["value"],
            by=_user(request),
            note=form.cleaned_data["note"],
        )
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect(back)
    shown = selectors.shown_value(qc_run, control_lot)
    rules = f" ({', '.join(westgard.from_field(qc_run.westgard))})" if qc_run.westgard else ""
    lot = f"lot {kit_lot.lot_number}"
    if qc_run.passed:
        block = qc_block(control_lot.test, kit_lot)
        after = "Patient testing is unlocked." if block is None else f"Still locked: {block}"
        messages.success(request, f"{control_lot} read {shown} on {lot}: passed{rules}. {after}")
    else:
        marked = Result.objects.filter(kit_lot=kit_lot, review_reason=services.review_reason(qc_run))
        released = marked.filter(status=ResultStatus.RELEASED).count()
        held = marked.exclude(status=ResultStatus.RELEASED).count()
        review = f" {released} released result{'s' if released != 1 else ''} marked for review." if released else ""
        if held:
            review += f" {held} unreleased result{'s' if held != 1 else ''} held until repeated."
        messages.error(
            request,
            f"{control_lot} read {shown} on {lot}: FAILED{rules}. Patient testing on this lot is locked "
            f"until it passes.{review}",
        )
    return redirect(back)


@log_refusals("QC chart", subject=None)
@require_GET
@permission_required("lab.run_qc", raise_exception=True)
def chart(request: HttpRequest, pk: int) -> HttpResponse:
    control_lot = selectors.control_lot_for_qc(pk)
    if not control_lot.is_quantitative:
        raise Http404("A qualitative control has no Levey-Jennings chart.")
    context = {
        "chart": selectors.levey_jennings(control_lot),
        "control_lot": control_lot,
        "nav": "qc",
    }
    return render(request, "lab/qc/chart.html", context)
