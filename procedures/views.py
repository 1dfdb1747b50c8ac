"""Procedure pages. Thin: check access, validate a form, call a service, message, redirect."""

import csv
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import csv_safe, log_access, log_refusals, refusals_logged, render_logged
from backoffice.models import AccessAction, Handoff, User
from backoffice.paging import page_number
from backoffice.workflow import HandoffStatus, StationState, TransitionNotAllowed, naming_patient
from procedures import drugs, selectors, services
from procedures.filters import ProcedureQueueFilter
from procedures.forms import (
    AddendumForm,
    AllergyOverrideForm,
    ChargeDayForm,
    CosignForm,
    DocumentationForm,
    MedicationErrorForm,
    MedicationForm,
    NotDoneForm,
    ResubmitForm,
    ReturnForm,
    SignOffForm,
    StartForm,
)
from procedures.models import AllergyOverride, MedicationAdministration, ProcedureDocumentation, ProcedureOrder
from procedures.workflow import ProcedureStatus

# Work waiting this long in one status is highlighted on the procedure queue.
QUEUE_WAIT_WARNING_MINUTES = 30


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


# --- The procedure page ------------------------------------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if user.has_perm("procedures.perform_procedure"):
        return redirect("procedures:queue")
    if user.has_perm("procedures.sign_off_competency"):
        return redirect("procedures:competency")
    if user.has_perm("procedures.view_charges"):
        return redirect("procedures:charges")
    return render(request, "no_role.html", status=403)


@log_refusals("procedure", subject="procedure")
@require_GET
@permission_required("procedures.view_procedureorder", raise_exception=True)
def procedure_detail(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    return _render_detail(request, order, user)


def _render_detail(
    request: HttpRequest, order: ProcedureOrder, user: User, *, status: int = 200, **kwargs: Any
) -> HttpResponse:
    """The procedure page, also after a refused form: each showing is logged as a view of the patient."""
    return render_logged(
        request,
        "procedures/procedure_detail.html",
        _detail_context(order, user, **kwargs),
        what="procedure",
        patient_id=order.handoff.patient_id,
        object_ref=str(order.uuid),
        status=status,
    )


def _detail_context(order: ProcedureOrder, user: User, *, doc_error: str = "", **forms_: Any) -> dict[str, Any]:
    record = selectors.procedure_record(order)
    doc = record.documentation
    handoff = order.handoff
    ptype = order.procedure_type
    # What the page offers is what the services would accept: the same guards answer.
    actions = selectors.procedure_actions(order, user)
    start_blocked = (
        order.status == ProcedureStatus.ORDERED and user.has_perm("procedures.perform_procedure") and not actions.start
    )
    context: dict[str, Any] = {
        "order": order,
        "handoff": handoff,
        "patient": handoff.patient,
        "ptype": ptype,
        "record": record,
        "doc": doc,
        "addenda": selectors.addenda(order),
        "actions": actions,
        "is_performer": order.performer_id == user.pk,
        "start_blocked": start_blocked,
        "start_blocked_by_credential": start_blocked and bool(actions.facts.credential_problem),
        "doc_error": doc_error,
        "gaps": services.documentation_gaps(order, doc) if actions.document and doc else [],
        "now": timezone.now(),
        "nav": "procedures",
    }
    if actions.start:
        context["start_form"] = forms_.get("start_form") or StartForm(
            order=order, performer=user, needs_supervision=actions.needs_supervision
        )
    if actions.document and doc is not None:
        # What the performer typed and didn't save (a medication recorded, a reload, a sign-out) comes back.
        draft = selectors.documentation_draft(doc, user)
        doc_form = forms_.get("doc_form") or DocumentationForm(
            order=order, documentation=doc, initial=draft.values if draft else None
        )
        context["draft"], context["doc_form"] = draft, doc_form
        ticks = {step.pk: done.done_at for step, done in record.steps if done}
        if draft:
            ticks.update(draft.ticked_at())
        context["checklist"] = _checklist(doc_form, ticks)
        if actions.add_medication:
            context["med_form"] = forms_.get("med_form") or MedicationForm(
                order=order, initial={"version": doc.version}
            )
            context["scan_error"] = forms_.get("scan_error", "")
            context["scanned"] = forms_.get("scanned")
    if ptype.documents_medication and doc is not None:
        context["allergy_stops"] = selectors.allergy_stops(order)
        context["may_override_allergy"] = user.has_perm("procedures.override_allergy") and order.is_open
        context["may_mark_error"] = actions.add_medication
    context["not_done_form"] = forms_.get("not_done_form") or NotDoneForm()
    context["return_form"] = forms_.get("return_form") or ReturnForm()
    context["cosign_form"] = CosignForm()
    context["resubmit_form"] = forms_.get("resubmit_form") or ResubmitForm()
    context["addendum_form"] = forms_.get("addendum_form") or AddendumForm()
    return context


def _checklist(form: DocumentationForm, ticks: dict[int, datetime]) -> list[tuple[Any, datetime | None]]:
    """Each checklist box with when its step was ticked, if it is ticked now."""
    if "steps" not in form.fields:
        return []
    ticked = {str(v) for v in form["steps"].value() or ()}
    return [
        (option, ticks.get(int(option.data["value"])) if str(option.data["value"]) in ticked else None)
        for option in form["steps"]
    ]


def _again(request: HttpRequest, order: ProcedureOrder, *, doc_error: str = "", **forms_: Any) -> HttpResponse:
    """Show the page again with the form that failed, its errors and nothing written."""
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=str(order.uuid))
    return _render_detail(request, order, user, status=422, doc_error=doc_error, **forms_)


def _after(request: HttpRequest, order: ProcedureOrder, success: str, *, back: str = "") -> HttpResponse:
    """Message the outcome; when the change closed the handoff, say so and where the patient was."""
    handoff = Handoff.objects.select_related("station", "patient").get(pk=order.handoff_id)
    messages.success(request, success)
    if handoff.status == HandoffStatus.COMPLETED:
        station = handoff.station
        turnover = (
            f" {station.name} needs turnover." if station and station.state == StationState.NEEDS_TURNOVER else ""
        )
        messages.info(
            request, f"Every ordered item is done: {handoff.patient.full_name}'s handoff is complete.{turnover}"
        )
        if back != "queue":
            return redirect("handoff_detail", uuid=handoff.uuid)
    if back == "queue":
        return redirect("procedures:queue")
    return redirect("procedures:detail", uuid=order.uuid)


def _run(
    request: HttpRequest,
    uuid: str,
    action: Callable[[ProcedureOrder, User], object],
    success: str,
    *,
    back: str = "",
) -> HttpResponse:
    """Run one service for the procedure in the URL; a refusal becomes a message naming the patient, never a 500."""
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="procedure", ref=uuid):
            action(order, user)
    except TransitionNotAllowed as exc:
        # On the procedure's page, whichever page asked (the queue's inline co-sign): its state is there.
        messages.error(request, naming_patient(order.handoff.patient.full_name, str(exc)))
        return redirect("procedures:detail", uuid=order.uuid)
    text = success.format(procedure=order.procedure_type.name, patient=order.handoff.patient.full_name)
    return _after(request, order, text, back=back)


@sensitive_post_parameters("supervisor_password")
@log_refusals("procedure start", subject="procedure")
@require_POST
@permission_required("procedures.perform_procedure", raise_exception=True)
def procedure_start(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    ptype = order.procedure_type
    needs = services.needs_supervision(order, user)
    form = StartForm(request.POST, order=order, performer=user, needs_supervision=needs)
    if form.is_valid():
        try:
            with refusals_logged(request, subject="procedure", ref=uuid):
                services.procedure_start(
                    order=order,
                    by=user,
                    supervision=form.cleaned_data.get("supervision") or "none",
                    supervisor=form.cleaned_data.get("supervisor"),
                    supervisor_password=form.cleaned_data.get("supervisor_password", ""),
                    request=request,
                )
        except TransitionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{ptype.name} started. Work through the checklist and document as you go.")
            return redirect("procedures:detail", uuid=order.uuid)
    return _again(request, order, start_form=form)


def _documentation(order: ProcedureOrder) -> ProcedureDocumentation:
    return ProcedureDocumentation.objects.get(order=order)


@log_refusals("procedure documentation", subject="procedure")
@require_POST
@permission_required("procedures.perform_procedure", raise_exception=True)
def procedure_document(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    actions = selectors.procedure_actions(order, user)
    if not actions.document:
        messages.error(request, actions.document.why)
        return redirect("procedures:detail", uuid=order.uuid)
    form = DocumentationForm(request.POST, order=order, documentation=_documentation(order))
    finishing = "finish" in request.POST and bool(actions.finish)
    if form.is_valid():
        try:
            with refusals_logged(request, subject="procedure", ref=uuid):
                doc = services.procedure_document(
                    order=order, by=user, version=form.cleaned_data["version"], data=form.to_documentation()
                )
                if finishing:
                    services.procedure_finish(order=order, by=user, version=doc.version)
        except services.StaleDocumentation as exc:
            # Show what is stored now, not the stale copy, with the reason above it.
            fresh = DocumentationForm(order=order, documentation=_documentation(order))
            return _again(request, order, doc_form=fresh, doc_error=str(exc))
        except TransitionNotAllowed as exc:
            if finishing:
                # The documentation was saved; only finishing was refused (the message says what is missing).
                messages.warning(request, f"Saved. {exc}")
                return redirect("procedures:detail", uuid=order.uuid)
            form.add_error(None, str(exc))
        else:
            if finishing:
                order.refresh_from_db()
                if order.status == ProcedureStatus.AWAITING_COSIGN:
                    return _after(
                        request, order, f"{order.procedure_type.name} is done and waits for a supervisor's co-sign."
                    )
                return _after(request, order, f"{order.procedure_type.name} is complete.")
            messages.success(request, "Documentation saved.")
            return redirect("procedures:detail", uuid=order.uuid)
    return _again(request, order, doc_form=form)


@log_refusals("procedure draft", subject="procedure")
@require_POST
@permission_required("procedures.perform_procedure", raise_exception=True)
def procedure_draft(request: HttpRequest, uuid: str) -> HttpResponse:
    """Keep the documentation form as typed so far (the page posts it as the performer types: htmx).

    Answers with the draft's status line and each ticked step's time (out of band); a refusal says
    why in the status line (409), so the performer knows their typing is not being kept.
    """
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    form = DocumentationForm(order=order, documentation=_documentation(order))
    values = form.draft_values(request.POST)
    context: dict[str, Any] = {"order": order}
    try:
        version = int(request.POST.get("version", ""))
        with refusals_logged(request, subject="procedure", ref=uuid):
            draft = services.documentation_draft_save(
                order=order, by=user, version=version, values=values, steps=map(int, values.get("steps", []))
            )
    except ValueError:
        context["error"] = "The page is out of date: reload it to go on documenting."
    except TransitionNotAllowed as exc:
        context["error"] = str(exc)
    else:
        ticked = draft.ticked_at()
        context["draft"] = draft
        steps = order.procedure_type.steps.values_list("pk", flat=True)
        context["ticks"] = [(pk, ticked.get(pk)) for pk in steps]
        return render(request, "procedures/partials/draft_status.html", context)
    return render(request, "procedures/partials/draft_status.html", context, status=409)


@log_refusals("procedure medication", subject="procedure")
@require_POST
@permission_required("procedures.perform_procedure", raise_exception=True)
def procedure_medication(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    if "read_scan" in request.POST:
        return _read_scan(request, order, user)
    form = MedicationForm(request.POST, order=order)
    if form.is_valid():
        try:
            with refusals_logged(request, subject="procedure", ref=uuid):
                given = services.procedure_add_medication(
                    order=order, by=user, version=form.cleaned_data["version"], medication=form.to_medication()
                )
        except services.ExpiredLot as exc:
            form.add_error("expiry_date", str(exc))
        except TransitionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Recorded: {given}.")
            return redirect("procedures:detail", uuid=order.uuid)
    return _again(request, order, med_form=form)


def _read_scan(request: HttpRequest, order: ProcedureOrder, user: User) -> HttpResponse:
    """Fill the medication form from the scanned package, and say at once if it must not be given."""
    raw = request.POST.get("med-scan", "")
    initial: dict[str, Any] = {"version": request.POST.get("med-version"), "scan": raw}
    for name in ("dose", "unit", "route", "site"):
        if request.POST.get(f"med-{name}"):
            initial[name] = request.POST[f"med-{name}"]
    try:
        scan = drugs.read_package_barcode(raw)
        initial.update(product=scan.medication.pk, lot_number=scan.lot_number, expiry_date=scan.expiry_date)
        if "route" not in initial and scan.medication.routes:
            initial["route"] = scan.medication.routes[0]
        with refusals_logged(request, subject="procedure", ref=str(order.uuid)):
            services.check_drug(
                order, scan.medication, lot_number=scan.lot_number, expiry_date=scan.expiry_date, scanned=True
            )
    except TransitionNotAllowed as exc:
        initial.pop("product", None)
        initial.pop("lot_number", None)
        initial.pop("expiry_date", None)
        form = MedicationForm(order=order, initial={**initial, "scan": ""})
        return _again(request, order, med_form=form, scan_error=str(exc))
    form = MedicationForm(order=order, initial=initial)
    return _render_detail(request, order, user, scanned=scan, med_form=form)


@log_refusals("procedure medication error", subject="procedure")
@require_POST
@permission_required("procedures.perform_procedure", raise_exception=True)
def procedure_medication_error(request: HttpRequest, uuid: str, pk: int) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    administration = get_object_or_404(MedicationAdministration, pk=pk, documentation__order=order)
    form = MedicationErrorForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not marked: {form.errors['reason'][0]}")
        return redirect("procedures:detail", uuid=order.uuid)
    return _run(
        request,
        uuid,
        lambda o, u: services.medication_mark_error(
            administration=administration, by=u, reason=form.cleaned_data["reason"]
        ),
        f"Marked entered in error: {administration}.",
    )


@log_refusals("procedure allergy override", subject="procedure")
@require_POST
@permission_required("procedures.override_allergy", raise_exception=True)
def procedure_allergy_override(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    form = AllergyOverrideForm(request.POST)
    if not form.is_valid():
        first = next(iter(form.errors.values()))[0]
        messages.error(request, f"Not overridden: {first}")
        return redirect("procedures:detail", uuid=order.uuid)
    data = form.cleaned_data
    return _run(
        request,
        uuid,
        lambda o, u: services.allergy_override(
            order=o,
            medication=data["medication"],
            by=u,
            reason=data["reason"],
            stage=AllergyOverride.Stage.ADMINISTRATION,
        ),
        f"Allergy stop overridden for {data['medication']}: recorded with your reason.",
    )


@log_refusals("procedure not done", subject="procedure")
@require_POST
@permission_required("procedures.perform_procedure", raise_exception=True)
def procedure_not_done(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    form = NotDoneForm(request.POST)
    if not form.is_valid():
        return _again(request, order, not_done_form=form)
    data = form.cleaned_data
    return _run(
        request,
        uuid,
        lambda o, u: services.procedure_not_done(order=o, by=u, reason=data["reason"], note=data["note"]),
        "{procedure} recorded as not done.",
    )


@log_refusals("procedure co-sign", subject="procedure")
@require_POST
@permission_required("procedures.supervise_procedure", raise_exception=True)
def procedure_cosign(request: HttpRequest, uuid: str) -> HttpResponse:
    form = CosignForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    return _run(
        request,
        uuid,
        lambda o, u: services.procedure_cosign(order=o, by=u, note=note),
        "Co-signed: {procedure} for {patient}.",
        back=request.POST.get("back", ""),
    )


@log_refusals("procedure return", subject="procedure")
@require_POST
@permission_required("procedures.supervise_procedure", raise_exception=True)
def procedure_return(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    back = request.POST.get("back", "")
    form = ReturnForm(request.POST)
    if not form.is_valid():
        if back == "queue":
            messages.error(request, "Say what needs correcting before you return it.")
            return redirect("procedures:queue")
        return _again(request, order, return_form=form)
    comment = form.cleaned_data["comment"]
    return _run(
        request,
        uuid,
        lambda o, u: services.procedure_return(order=o, by=u, comment=comment),
        "Returned to the performer: {procedure} for {patient}.",
        back=back,
    )


@log_refusals("procedure resubmit", subject="procedure")
@require_POST
@permission_required("procedures.perform_procedure", raise_exception=True)
def procedure_resubmit(request: HttpRequest, uuid: str) -> HttpResponse:
    form = ResubmitForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    return _run(
        request,
        uuid,
        lambda o, u: services.procedure_resubmit(order=o, by=u, note=note),
        "{procedure} is back in the co-sign queue.",
    )


@log_refusals("procedure addendum", subject="procedure")
@require_POST
@permission_required("procedures.view_procedureorder", raise_exception=True)
def procedure_addendum(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    order = selectors.procedure_for_user(user=user, uuid=uuid)
    form = AddendumForm(request.POST)
    if form.is_valid():
        try:
            with refusals_logged(request, subject="procedure", ref=uuid):
                services.procedure_add_addendum(
                    order=order, by=user, reason=form.cleaned_data["reason"], text=form.cleaned_data["text"]
                )
        except TransitionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Addendum added; the original documentation is unchanged.")
            return redirect("procedures:detail", uuid=order.uuid)
    return _again(request, order, addendum_form=form)


# --- Supervisor pages --------------------------------------------------------------------------


@log_refusals("procedure queue", subject=None)
@require_GET
@permission_required("procedures.perform_procedure", raise_exception=True)
def queue(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    queue_filter = ProcedureQueueFilter(request.GET, queryset=selectors.procedure_queue(user=user), user=user)
    # A page of the queue, not all of it (a large clinic has hundreds open): the counts by status and the
    # longest wait are the whole filtered queue's.
    summary = selectors.procedure_queue_summary(queue_filter.qs)
    size = settings.QUEUE_PAGE_SIZE
    pages = max(1, -(-summary.total // size))
    page = min(page_number(request.GET.get("page")), pages)
    orders = list(queue_filter.qs[(page - 1) * size : page * size])
    without_page = request.GET.copy()
    without_page.pop("page", None)
    now = timezone.now()
    # What supervisors did with this user's work today: co-signed (done) or returned (to correct).
    start_of_day = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    reviews = selectors.reviews_of_my_work(user=user, since=start_of_day)
    log_access(
        request=request,
        action=AccessAction.LIST,
        what="procedure queue",
        patients=[o.handoff.patient_id for o in orders] + [e.order.handoff.patient_id for e in reviews],
    )
    # Each row offers what its services accept; the user's credentials and sign-offs are read once.
    facts = services.StaffFacts(user)
    context = {
        "filter": queue_filter,
        "orders": orders,
        "rows": [(order, selectors.procedure_actions(order, user, facts=facts)) for order in orders],
        "reviews": reviews,
        # STAT rows come first, so the longest wait is not necessarily the first row (nor on this page).
        "oldest": summary.oldest,
        "counts": [(s, summary.counts[s]) for s in ProcedureStatus if s in summary.counts],
        "page": page,
        "pages": pages,
        "first_row": (page - 1) * size + 1,
        "last_row": (page - 1) * size + len(orders),
        "filter_query": without_page.urlencode(),
        "warning_minutes": QUEUE_WAIT_WARNING_MINUTES,
        "supervises": user.has_perm("procedures.supervise_procedure"),
        "now": now,
        "nav": "procedures",
        "tab": "queue",
    }
    return render(request, "procedures/queue.html", context)


@log_refusals("competency", subject=None)
@require_GET
@permission_required("procedures.sign_off_competency", raise_exception=True)
def competency(request: HttpRequest) -> HttpResponse:
    return _competency_page(request, SignOffForm())


def _competency_page(request: HttpRequest, form: SignOffForm, *, status: int = 200) -> HttpResponse:
    types, rows = selectors.competency_matrix(user=_user(request))
    context = {
        "types": types,
        "rows": rows,
        "form": form,
        "warning_days": selectors.CREDENTIAL_WARNING_DAYS,
        "today": timezone.localdate(),
        "horizon": timezone.localdate() + timedelta(days=selectors.CREDENTIAL_WARNING_DAYS),
        "nav": "procedures",
        "tab": "competency",
    }
    return render(request, "procedures/competency.html", context, status=status)


@log_refusals("competency sign-off", subject=None)
@require_POST
@permission_required("procedures.sign_off_competency", raise_exception=True)
def competency_sign_off(request: HttpRequest) -> HttpResponse:
    form = SignOffForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.competency_sign_off(
                user=data["user"],
                procedure_type=data["procedure_type"],
                by=_user(request),
                expires_on=data["expires_on"],
            )
        except TransitionNotAllowed as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"{data['user']} is signed off for {data['procedure_type'].name}.")
            return redirect("procedures:competency")
    return _competency_page(request, form, status=422)


@log_refusals("charge list", subject=None)
@require_GET
@permission_required("procedures.view_charges", raise_exception=True)
def charges(request: HttpRequest) -> HttpResponse:
    form = ChargeDayForm(request.GET or None)
    day = form.day()
    lines = selectors.charges_for_day(user=_user(request), day=day)
    log_access(request=request, action=AccessAction.LIST, what="charge list", patients=[c.patient_id for c in lines])
    totals = Counter(line.code for line in lines)
    for line in lines:
        for drug in line.drug_lines.all():
            totals[drug.code] += drug.units
    context = {
        "form": form if form.is_bound else ChargeDayForm(initial={"date": day}),
        "day": day,
        "lines": lines,
        "totals": sorted(totals.items()),
        "nav": "procedures",
        "tab": "charges",
    }
    return render(request, "procedures/charges.html", context)


@log_refusals("charge list CSV", subject=None)
@require_GET
@permission_required("procedures.view_charges", raise_exception=True)
def charges_csv(request: HttpRequest) -> HttpResponse:
    day = ChargeDayForm(request.GET or None).day()
    lines = selectors.charges_for_day(user=_user(request), day=day)
    log_access(
        request=request,
        action=AccessAction.EXPORT,
        what="charge list CSV",
        patients=[c.patient_id for c in lines],
        object_ref=f"{day:%Y-%m-%d}",
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="charges-{day:%Y-%m-%d}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "Service date",
            "MRN",
            "Patient",
            "Date of birth",
            "CPT/HCPCS",
            "Modifiers",
            "Units",
            "Description",
            "Performed by",
            "Supervised by",
            "Ordering clinician",
            "Procedure ID",
            "NDC",
        ]
    )
    for line in lines:
        writer.writerow(
            [
                csv_safe(value)
                for value in (
                    f"{line.service_date:%Y-%m-%d}",
                    line.patient.mrn,
                    f"{line.patient.family_name}, {line.patient.given_name}",
                    f"{line.patient.date_of_birth:%Y-%m-%d}",
                    line.code,
                    line.modifiers,
                    line.units,
                    line.description,
                    line.performer,
                    line.supervisor or "",
                    line.ordering_clinician,
                    line.order.uuid,
                    "",
                )
            ]
        )
        # Each drug billed beside the administration code: its HCPCS code, units from the dose, its NDC.
        for drug in line.drug_lines.all():
            writer.writerow(
                [
                    csv_safe(value)
                    for value in (
                        f"{line.service_date:%Y-%m-%d}",
                        line.patient.mrn,
                        f"{line.patient.family_name}, {line.patient.given_name}",
                        f"{line.patient.date_of_birth:%Y-%m-%d}",
                        drug.code,
                        "",
                        drug.units,
                        drug.description,
                        line.performer,
                        line.supervisor or "",
                        line.ordering_clinician,
                        line.order.uuid,
                        drug.ndc,
                    )
                ]
            )
    return response
