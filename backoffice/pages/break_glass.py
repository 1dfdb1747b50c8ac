"""Break-glass pages: ask for emergency access to one patient's record, then read it while it lasts.

The record page shows what an emergency needs from every app (the patient, allergies, handoffs with
their procedures and tests, reported results), read-only; every showing is an access row flagged
as break-glass (backoffice.audit.break_glass). Supervisors and auditors see each grant on
/audit/break-glass/.
"""

from django import forms
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from backoffice.audit import break_glass
from backoffice.audit.log import log_refusals
from backoffice.models import Handoff, Patient, User
from backoffice.pages.views import _attach_items
from lab.inbox.selectors import patient_results

# The record shows this many of the patient's latest handoffs.
RECORD_HANDOFFS = 20


class BreakGlassForm(forms.Form):
    mrn = forms.CharField(
        label="Patient MRN",
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "font-monospace"}),
    )
    reason = forms.CharField(
        label="Why you need this record now",
        min_length=break_glass.MIN_REASON_LENGTH,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="Required. Supervisors and auditors read it beside every page you open under this access.",
        error_messages={
            "required": "Say why you need this record now.",
            "min_length": f"Say why in at least {break_glass.MIN_REASON_LENGTH} characters.",
        },
    )

    def clean_mrn(self) -> Patient:
        mrn = self.cleaned_data["mrn"].strip().upper()
        patient = Patient.objects.filter(mrn=mrn).first()
        if patient is None:
            raise forms.ValidationError("No patient has this MRN.")
        return patient


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@log_refusals("break-glass request", subject=None)
@require_http_methods(["GET", "POST"])
@permission_required("backoffice.break_glass", raise_exception=True)
def request_access(request: HttpRequest) -> HttpResponse:
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        grant = break_glass.grant(
            user=_user(request), patient=form.cleaned_data["mrn"], reason=form.cleaned_data["reason"]
        )
        return redirect("break_glass_record", uuid=grant.uuid)
    status = 422 if form.is_bound and not form.is_valid() else 200
    context = {"form": form, "minutes": break_glass.minutes(), "nav": "break_glass"}
    return render(request, "backoffice/pages/break_glass_request.html", context, status=status)


@log_refusals("break-glass record", subject="breakglass")
@require_GET
@permission_required("backoffice.break_glass", raise_exception=True)
def record(request: HttpRequest, uuid: str) -> HttpResponse:
    grant = break_glass.open_grant(user=_user(request), uuid=str(uuid))
    patient = grant.patient
    handoffs = list(
        Handoff.objects.filter(patient=patient)
        .select_related("ordering_clinician", "station", "exam_room")
        .order_by("-created_at")[:RECORD_HANDOFFS]
    )
    _attach_items(handoffs)
    context = {
        "grant": grant,
        "patient": patient,
        "handoffs": handoffs,
        "results": patient_results(patient=patient),
        "nav": "break_glass",
    }
    break_glass.log_under(request, grant, what="break-glass record")
    return render(request, "backoffice/pages/break_glass_record.html", context)
