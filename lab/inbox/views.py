"""The clinician's results: the inbox and its acknowledgement, and one patient's results over time."""

import datetime as dt
from functools import partial

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import log_access, log_refusal, log_refusals, render_logged
from backoffice.models import AccessAction, User
from backoffice.transitions import offer
from backoffice.workflow import TransitionNotAllowed
from lab.inbox.forms import AcknowledgeForm, ActingForForm
from lab.inbox.selectors import (
    acting_for_choices,
    inbox_results,
    inbox_total,
    patient_for_results,
    patient_results,
    stale_minutes,
)
from lab.inbox.services import SUPERVISOR_PERM, ResultRefused, check_acknowledge, results_acknowledge
from lab.models import Result


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


def _inbox_url(clinician: User | None, user: User) -> str:
    url = reverse("lab:inbox:inbox")
    return url if clinician is None or clinician.pk == user.pk else f"{url}?clinician={clinician.pk}"


@log_refusals("results inbox", subject=None)
@require_GET
@permission_required("lab.acknowledge_result", raise_exception=True)
def inbox(request: HttpRequest) -> HttpResponse:
    """New results of the user's orders (or, for a supervisor, of a clinician who is away)."""
    user = _user(request)
    clinician, acting_form = user, None
    if user.has_perm(SUPERVISOR_PERM):
        acting_form = ActingForForm(request.GET or None, clinicians=acting_for_choices(user=user))
        if acting_form.is_valid() and acting_form.cleaned_data["clinician"]:
            clinician = acting_form.cleaned_data["clinician"]
    results = inbox_results(user=user, clinician=clinician)
    log_access(
        request=request, action=AccessAction.LIST, what="results inbox", patients=[r.patient_id for r in results]
    )
    context = {
        "results": results,
        "total": inbox_total(results),
        "clinician": clinician,
        "acting_form": acting_form,
        # The button is what the service would accept for these very rows.
        "may_sign": offer(partial(_check_all, results, user)) if results else None,
        "stale_before": timezone.now() - dt.timedelta(minutes=stale_minutes()),
        "nav": "inbox",
    }
    return render(request, "lab/inbox/inbox.html", context)


def _check_all(results: list[Result], user: User) -> None:
    for result in results:
        check_acknowledge(result, user)


@log_refusals("results acknowledgement", subject=None)
@require_POST
@permission_required("lab.acknowledge_result", raise_exception=True)
def acknowledge(request: HttpRequest) -> HttpResponse:
    """Sign exactly the results the inbox showed, at the versions it showed."""
    user = _user(request)
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(_inbox_url(None, user))
    clinician = form.cleaned_data["clinician"]
    try:
        signed = results_acknowledge(shown=form.cleaned_data["shown"], by=user)
    except ResultRefused as exc:
        log_refusal(request, subject="result", ref=exc.ref)  # a swapped id: refused, and the patient named
        messages.error(request, str(exc))
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        count = len(signed)
        messages.success(request, f"Acknowledged {count} result{'s' if count != 1 else ''}.")
    return redirect(_inbox_url(clinician, user))


@log_refusals("patient results", subject="patient")
@require_GET
@permission_required("lab.view_result", raise_exception=True)
def patient(request: HttpRequest, uuid: str) -> HttpResponse:
    """Every reported result of one patient, by test over time, with its range and trend."""
    patient = patient_for_results(user=_user(request), uuid=uuid)
    context = {"patient": patient, "histories": patient_results(patient=patient), "nav": "inbox"}
    return render_logged(
        request,
        "lab/inbox/patient.html",
        context,
        what="patient results",
        patient_id=patient.pk,
        object_ref=str(patient.uuid),
    )
