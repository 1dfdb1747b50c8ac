"""Lab pages composed with specimens: starting collection for a handoff's tests and its first labels."""

from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import log_access, log_refusals, refusals_logged
from backoffice.models import AccessAction, User
from backoffice.selectors import handoff_for_user
from backoffice.transitions import offer
from backoffice.workflow import TransitionNotAllowed
from lab.forms import CallDoneForm, CancelForm
from lab.selectors import call_for_user, open_calls, test_order_for_user, unseen_cancellations
from lab.services import (
    check_acknowledge,
    check_close_call,
    recollection_call_close,
    test_order_acknowledge,
    test_order_cancel,
    tests_start_collection,
)
from specimens.labels import LabelPrinterError
from specimens.models import Specimen
from specimens.printing import print_labels, station_printer
from specimens.views import printed_response
from specimens.workflow import SpecimenStatus


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


@log_refusals("specimen collection", subject="handoff")
@require_POST
@permission_required("specimens.collect_specimen", raise_exception=True)
def collect(request: HttpRequest, uuid: str) -> HttpResponse:
    """Label one container per kind the handoff's tests need; the labels are printed next, at the bedside."""
    user = _user(request)
    handoff = handoff_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="handoff", ref=str(uuid)):
            specimens = tests_start_collection(handoff=handoff, by=user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        names = ", ".join(f"{s.container} ({s.accession})" for s in specimens)
        messages.success(request, f"Labelled {names}. Print the labels, stick them on at the bedside, then scan each.")
    return redirect("handoff_detail", uuid=handoff.uuid)


@log_refusals("specimen labels", subject="handoff")
@require_POST
@permission_required("specimens.collect_specimen", raise_exception=True)
def labels(request: HttpRequest, uuid: str) -> HttpResponse:
    """Print the labels of this patient's specimens labelled now and not yet printed: a Zebra's, or a PDF."""
    user = _user(request)
    handoff = handoff_for_user(user=user, uuid=uuid)
    fresh = list(
        Specimen.objects.filter(handoff=handoff, status=SpecimenStatus.LABELLED, label_prints__isnull=True)
        .select_related("patient", "specimen_type", "container", "labelled_by")
        .order_by("container__draw_order", "id")
    )
    if not fresh:
        messages.info(request, "Every label for this patient has been printed; reprint one from its specimen page.")
        return redirect("handoff_detail", uuid=handoff.uuid)
    try:
        with refusals_logged(request, subject="handoff", ref=str(uuid)):
            printed = print_labels(specimens=fresh, by=user, printer=station_printer(handoff.station))
    except (TransitionNotAllowed, LabelPrinterError) as exc:
        messages.error(request, str(exc))
        return redirect("handoff_detail", uuid=handoff.uuid)
    log_access(
        request=request,
        action=AccessAction.PRINT,
        what="specimen labels",
        patients=[handoff.patient_id],
        object_ref=str(handoff.uuid),
    )
    back = reverse("handoff_detail", args=[handoff.uuid])
    return printed_response(request, printed, name=f"labels-{fresh[0].accession}", back=back)


@log_refusals("lab follow-ups", subject=None)
@require_GET
@permission_required("lab.view_recollectioncall", raise_exception=True)
def calls(request: HttpRequest) -> HttpResponse:
    """The ordering clinician's lab follow-ups: patients to call back, and tests cancelled after ordering."""
    user = _user(request)
    rows = list(open_calls(user=user))
    cancelled = list(unseen_cancellations(user=user)) if user.has_perm("lab.cancel_testorder") else []
    log_access(
        request=request,
        action=AccessAction.LIST,
        what="lab follow-ups",
        patients=[c.patient_id for c in rows] + [o.handoff.patient_id for o in cancelled],
    )
    context = {
        "rows": [(call, offer(partial(check_close_call, call, user))) for call in rows],
        "cancelled": [(order, offer(partial(check_acknowledge, order, user))) for order in cancelled],
        "form": CallDoneForm(),
        "nav": "calls",
    }
    return render(request, "lab/calls.html", context)


@log_refusals("call-back done", subject="call")
@require_POST
@permission_required("lab.close_recollectioncall", raise_exception=True)
def call_done(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    call = call_for_user(user=user, uuid=uuid)
    form = CallDoneForm(request.POST)
    outcome = form.cleaned_data["outcome"] if form.is_valid() else ""
    try:
        with refusals_logged(request, subject="call", ref=str(uuid)):
            recollection_call_close(call=call, by=user, outcome=outcome)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Recorded: {call.patient.full_name} was called back.")
    return redirect("lab:calls")


@log_refusals("lab test cancellation", subject="testorder")
@require_POST
@permission_required("lab.cancel_testorder", raise_exception=True)
def cancel(request: HttpRequest, uuid: str) -> HttpResponse:
    """Cancel a test that won't be collected; its ordering clinician is told."""
    user = _user(request)
    order = test_order_for_user(user=user, uuid=uuid)
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose why the test is cancelled.")
        return redirect("handoff_detail", uuid=order.handoff.uuid)
    try:
        with refusals_logged(request, subject="testorder", ref=str(uuid)):
            test_order_cancel(order=order, reason=form.cleaned_data["reason"], note=form.cleaned_data["note"], by=user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        told = "" if order.handoff.ordering_clinician_id == user.pk else f"; {order.handoff.ordering_clinician} is told"
        messages.success(request, f"{order.test.name} cancelled{told}.")
    return redirect("handoff_detail", uuid=order.handoff.uuid)


@log_refusals("lab test cancellation seen", subject="testorder")
@require_POST
@permission_required("lab.cancel_testorder", raise_exception=True)
def acknowledge(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = test_order_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="testorder", ref=str(uuid)):
            test_order_acknowledge(order=order, by=user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Noted: {order.test.short_name} for {order.handoff.patient.full_name} won't be done."
        )
    return redirect("lab:calls")
