"""The patient's allergies, reached from a handoff: recorded, taken off with a reason, or "none known" confirmed.

Whoever is with the patient (MAs, supervisors, clinicians) answers "allergies not recorded: ask" on the
spot here. backoffice.allergies makes every change and keeps the banner's summary; the history of each
record is kept (pghistory) and shown below the list.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_POST

from backoffice import allergies, selectors
from backoffice.audit.log import log_refusals, refusals_logged, render_logged
from backoffice.models import Allergy, DrugClass, Handoff, Ingredient, User
from backoffice.workflow import TransitionNotAllowed


class AllergyForm(forms.Form):
    kind = forms.ChoiceField(label="Allergic to", choices=Allergy.Kind.choices, initial=Allergy.Kind.INGREDIENT)
    ingredient = forms.ModelChoiceField(
        label="Drug", queryset=Ingredient.objects.order_by("name"), required=False, empty_label="Choose the drug…"
    )
    drug_class = forms.ModelChoiceField(
        label="Drug class", queryset=DrugClass.objects.order_by("name"), required=False, empty_label="Choose the class…"
    )
    allergen = forms.CharField(
        label="Food or other", max_length=120, required=False, help_text="E.g. peanuts, shellfish, adhesive tape."
    )
    reaction = forms.CharField(max_length=120, required=False, help_text="E.g. hives, rash, anaphylaxis.")
    severity = forms.ChoiceField(choices=Allergy.Severity.choices, initial=Allergy.Severity.UNKNOWN)


class RemoveForm(forms.Form):
    reason = forms.CharField(max_length=200, error_messages={"required": "Say why this allergy comes off the list."})


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _render(
    request: HttpRequest, handoff: Handoff, *, form: AllergyForm | None = None, status: int = 200
) -> HttpResponse:
    patient = handoff.patient
    records = list(
        Allergy.objects.filter(patient=patient)
        .select_related("recorded_by", "removed_by")
        .order_by("removed_at", "recorded_at", "id")
    )
    context: dict[str, Any] = {
        "handoff": handoff,
        "patient": patient,
        "active": [a for a in records if a.removed_at is None],
        "removed": [a for a in records if a.removed_at is not None],
        "text_only": _text_only(patient.allergy_list, records),
        "form": form or AllergyForm(),
        "reviewed_by": patient.allergies_reviewed_by,
        "nav": "queue",
    }
    return render_logged(
        request,
        "backoffice/pages/allergies.html",
        context,
        what="patient allergies",
        patient_id=patient.pk,
        object_ref=str(handoff.uuid),
        status=status,
    )


def _text_only(lines: list[str], records: list[Allergy]) -> list[str]:
    recorded = {a.summary_line for a in records if a.removed_at is None}
    return [line for line in lines if line not in recorded]


def _handoff(request: HttpRequest, uuid: str) -> Handoff:
    handoff = selectors.handoff_detail_for_user(user=_user(request), uuid=uuid)
    if handoff.patient.allergies_reviewed_by_id:
        selectors.load_staff_names([handoff.patient], "allergies_reviewed_by")
    return handoff


@log_refusals("patient allergies", subject="handoff")
@require_GET
@permission_required("backoffice.view_allergy", raise_exception=True)
def allergy_list(request: HttpRequest, uuid: str) -> HttpResponse:
    return _render(request, _handoff(request, uuid))


@log_refusals("patient allergy record", subject="handoff")
@require_POST
@permission_required("backoffice.add_allergy", raise_exception=True)
def allergy_add(request: HttpRequest, uuid: str) -> HttpResponse:
    handoff = _handoff(request, uuid)
    form = AllergyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            with refusals_logged(request, subject="handoff", ref=uuid):
                allergy = allergies.allergy_record(
                    patient=handoff.patient,
                    by=_user(request),
                    kind=data["kind"],
                    ingredient=data["ingredient"],
                    drug_class=data["drug_class"],
                    allergen=data["allergen"],
                    reaction=data["reaction"],
                    severity=data["severity"],
                )
        except TransitionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Recorded for {handoff.patient.full_name}: {allergy.summary_line}.")
            return redirect("allergies", uuid=handoff.uuid)
    return _render(request, _handoff(request, uuid), form=form, status=422)


@log_refusals("patient allergy removal", subject="handoff")
@require_POST
@permission_required("backoffice.change_allergy", raise_exception=True)
def allergy_remove(request: HttpRequest, uuid: str, pk: int) -> HttpResponse:
    handoff = _handoff(request, uuid)
    allergy = get_object_or_404(Allergy, pk=pk, patient=handoff.patient)
    form = RemoveForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"{allergy.allergen} stays on the list: {form.errors['reason'][0]}")
        return redirect("allergies", uuid=handoff.uuid)
    try:
        with refusals_logged(request, subject="handoff", ref=uuid):
            allergies.allergy_remove(allergy=allergy, by=_user(request), reason=form.cleaned_data["reason"])
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Taken off {handoff.patient.full_name}'s allergies: {allergy.allergen}.")
    return redirect("allergies", uuid=handoff.uuid)


@log_refusals("patient allergies none known", subject="handoff")
@require_POST
@permission_required("backoffice.change_allergy", raise_exception=True)
def allergy_none_known(request: HttpRequest, uuid: str) -> HttpResponse:
    handoff = _handoff(request, uuid)
    try:
        with refusals_logged(request, subject="handoff", ref=uuid):
            allergies.allergies_none_known(patient=handoff.patient, by=_user(request))
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{handoff.patient.full_name}: no known allergies, asked and recorded.")
    return redirect("allergies", uuid=handoff.uuid)
