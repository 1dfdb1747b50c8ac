"""Specimen pages: the tracking list, a specimen's page, and each custody step. Thin: check, call, message."""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import log_access, log_refusals, refusals_logged, render_logged
from backoffice.identifiers import read_entry
from backoffice.models import AccessAction, Handoff, User
from backoffice.selectors import handoff_for_user
from backoffice.workflow import TransitionNotAllowed
from specimens import selectors, services
from specimens.forms import (
    ConfirmForm,
    DisposeForm,
    HandOverForm,
    NotCollectedForm,
    ReceiveForm,
    RejectForm,
    ReprintForm,
    ScanForm,
    StoreForm,
)
from specimens.labels import LabelPrinterError
from specimens.models import Specimen
from specimens.printing import Printed, print_labels, station_printer
from specimens.selectors import LISTED_STATUSES
from specimens.workflow import Location, SpecimenStatus


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


def pdf_response(pdf: bytes, *, name: str) -> HttpResponse:
    """A PDF of labels to print; the file name carries an accession, never a patient's name."""
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return response


def printed_response(request: HttpRequest, printed: Printed, *, name: str, back: str) -> HttpResponse:
    if printed.pdf is not None:
        return pdf_response(printed.pdf, name=name)
    messages.success(request, f"Labels sent to {printed.printer}.")
    return redirect(back)


# --- The tracking list ---------------------------------------------------------------------------


@log_refusals("specimen tracking", subject=None)
@require_GET
@permission_required("specimens.view_specimen", raise_exception=True)
def tracking(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    status = request.GET.get("status", "")
    specimens = list(selectors.tracking_list(user=user, status=status))
    log_access(
        request=request, action=AccessAction.LIST, what="specimen tracking", patients=[s.patient_id for s in specimens]
    )
    context = {
        "specimens": specimens,
        # Each row offers a receipt exactly where the service would accept one (no query: rows in hand).
        "rows": [(s, selectors.specimen_actions(s, user)) for s in specimens],
        "status": status if status in LISTED_STATUSES else "",
        "statuses": [(s, SpecimenStatus(s).label) for s in LISTED_STATUSES],
        "scan_form": ScanForm(),
        "receive_form": ReceiveForm(initial={"at": Location.IN_HOUSE_BENCH}),
        "now": timezone.now(),
        "nav": "specimens",
    }
    return render(request, "specimens/tracking.html", context)


@log_refusals("specimen scan", subject=None)
@require_POST
@permission_required("specimens.view_specimen", raise_exception=True)
def scan(request: HttpRequest) -> HttpResponse:
    """A scanned accession opens its specimen (POSTed: it stays out of URLs and logs)."""
    form = ScanForm(request.POST)
    specimen = selectors.specimen_by_accession(user=_user(request), scanned=form.data.get("accession", ""))
    if specimen is None:
        messages.error(request, "No specimen has that accession. Scan the label again or type it.")
        return redirect("specimens:tracking")
    return redirect("specimens:detail", uuid=specimen.uuid)


# --- A specimen's page ---------------------------------------------------------------------------


@log_refusals("specimen", subject="specimen")
@require_GET
@permission_required("specimens.view_specimen", raise_exception=True)
def detail(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    return _render_detail(request, selectors.specimen_for_user(user=user, uuid=uuid), user)


def _render_detail(
    request: HttpRequest, specimen: Specimen, user: User, *, status: int = 200, **forms: Any
) -> HttpResponse:
    context = {
        "specimen": specimen,
        "patient": specimen.patient,
        "handoff": specimen.handoff,
        "events": selectors.specimen_events(specimen),
        "prints": list(specimen.label_prints.select_related("printed_by", "printer")),
        "actions": selectors.specimen_actions(specimen, user),
        "hand_over_form": forms.get("hand_over_form") or HandOverForm(),
        "receive_form": forms.get("receive_form") or ReceiveForm(initial={"at": Location.IN_HOUSE_BENCH}),
        "reject_form": forms.get("reject_form") or RejectForm(),
        "reprint_form": forms.get("reprint_form") or ReprintForm(),
        "store_form": forms.get("store_form") or StoreForm(),
        "dispose_form": forms.get("dispose_form") or DisposeForm(),
        "nav": "specimens",
    }
    return render_logged(
        request,
        "specimens/detail.html",
        context,
        what="specimen",
        patient_id=specimen.patient_id,
        object_ref=str(specimen.uuid),
        status=status,
    )


def _form_refused(request: HttpRequest, uuid: str, **forms: Any) -> HttpResponse:
    """The specimen's page again with the form that failed and its errors; nothing was written."""
    user = _user(request)
    return _render_detail(request, selectors.specimen_for_user(user=user, uuid=uuid), user, status=422, **forms)


def _run(request: HttpRequest, uuid: str, action: Callable[[Specimen, User], object], success: str) -> HttpResponse:
    """Run one service for the specimen in the URL; a refusal becomes a message, never a 500."""
    user = _user(request)
    specimen = selectors.specimen_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="specimen", ref=str(uuid)):
            action(specimen, user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, success.format(accession=specimen.accession))
    # Back where the step was taken: the tracking list, the handoff page's panel, or the specimen's page.
    if request.POST.get("next") == "tracking":
        return redirect("specimens:tracking")
    if request.POST.get("next") == "handoff":
        return redirect("handoff_detail", uuid=specimen.handoff.uuid)
    return redirect("specimens:detail", uuid=specimen.uuid)


@log_refusals("specimen hand-over", subject="specimen")
@require_POST
@permission_required("specimens.collect_specimen", raise_exception=True)
def hand_over(request: HttpRequest, uuid: str) -> HttpResponse:
    form = HandOverForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, hand_over_form=form)
    to = form.cleaned_data["to"]
    return _run(
        request,
        uuid,
        lambda s, u: services.specimen_hand_over(specimen=s, to=to, by=u),
        f"{{accession}} is on its way to the {Location(to).label.lower()}.",
    )


@log_refusals("specimen receipt", subject="specimen")
@require_POST
@permission_required("specimens.receive_specimen", raise_exception=True)
def receive(request: HttpRequest, uuid: str) -> HttpResponse:
    form = ReceiveForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, receive_form=form)
    data = form.cleaned_data
    return _run(
        request,
        uuid,
        lambda s, u: services.specimen_receive(
            specimen=s, at=data["at"], by=u, acceptable=data["acceptable"], reason=data["reason"], note=data["note"]
        ),
        "{accession} received."
        if data["acceptable"]
        else "{accession} received and rejected; its tests will be collected again.",
    )


@log_refusals("specimen rejection", subject="specimen")
@require_POST
@permission_required("specimens.reject_specimen", raise_exception=True)
def reject(request: HttpRequest, uuid: str) -> HttpResponse:
    form = RejectForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, reject_form=form)
    data = form.cleaned_data
    return _run(
        request,
        uuid,
        lambda s, u: services.specimen_reject(specimen=s, reason=data["reason"], note=data["note"], by=u),
        "{accession} rejected; its tests are waiting to be collected again.",
    )


@log_refusals("specimen testing", subject="specimen")
@require_POST
@permission_required("specimens.receive_specimen", raise_exception=True)
def start_testing(request: HttpRequest, uuid: str) -> HttpResponse:
    return _run(
        request,
        uuid,
        lambda s, u: services.specimen_start_testing(specimen=s, by=u),
        "Testing started on {accession}.",
    )


@log_refusals("specimen testing done", subject="specimen")
@require_POST
@permission_required("specimens.receive_specimen", raise_exception=True)
def testing_done(request: HttpRequest, uuid: str) -> HttpResponse:
    return _run(
        request,
        uuid,
        lambda s, u: services.specimen_testing_done(specimen=s, by=u),
        "Testing done on {accession}: store it or dispose of it.",
    )


@log_refusals("specimen storage", subject="specimen")
@require_POST
@permission_required("specimens.store_specimen", raise_exception=True)
def store(request: HttpRequest, uuid: str) -> HttpResponse:
    form = StoreForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, store_form=form)
    place = form.cleaned_data["place"]
    return _run(
        request,
        uuid,
        lambda s, u: services.specimen_store(specimen=s, place=place, by=u),
        f"{{accession}} stored: {place}.",
    )


@log_refusals("specimen disposal", subject="specimen")
@require_POST
@permission_required("specimens.store_specimen", raise_exception=True)
def dispose(request: HttpRequest, uuid: str) -> HttpResponse:
    form = DisposeForm(request.POST)
    if not form.is_valid():
        return _form_refused(request, uuid, dispose_form=form)
    note = form.cleaned_data["note"]
    return _run(
        request,
        uuid,
        lambda s, u: services.specimen_dispose(specimen=s, note=note, by=u),
        "{accession} disposed of; its record stays.",
    )


@log_refusals("specimen label", subject="specimen")
@require_POST
@permission_required("specimens.view_specimen", raise_exception=True)
def reprint(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    specimen = selectors.specimen_for_user(user=user, uuid=uuid)
    form = ReprintForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, specimen, user, status=422, reprint_form=form)
    try:
        with refusals_logged(request, subject="specimen", ref=str(uuid)):
            printed = print_labels(
                specimens=[specimen],
                by=user,
                printer=station_printer(specimen.handoff.station),
                reason=form.cleaned_data["reason"],
            )
    except (TransitionNotAllowed, LabelPrinterError) as exc:
        form.add_error(None, str(exc))
        return _render_detail(request, specimen, user, status=422, reprint_form=form)
    log_access(
        request=request,
        action=AccessAction.PRINT,
        what="specimen label reprint",
        patients=[specimen.patient_id],
        object_ref=str(specimen.uuid),
    )
    back = reverse("specimens:detail", args=[specimen.uuid])
    return printed_response(request, printed, name=f"label-{specimen.accession}", back=back)


# --- At the bedside (from the handoff page) ------------------------------------------------------


def _handoff_page(handoff: Handoff) -> HttpResponse:
    return redirect("handoff_detail", uuid=handoff.uuid)


@log_refusals("specimen bedside check", subject="handoff")
@require_POST
@permission_required("specimens.collect_specimen", raise_exception=True)
def confirm(request: HttpRequest, uuid: str) -> HttpResponse:
    """The tube's label and the patient's wristband, scanned together at the bedside."""
    user = _user(request)
    handoff = handoff_for_user(user=user, uuid=uuid)
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, f"Scan the tube's label and the patient's wristband. {problems}".strip())
        return _handoff_page(handoff)
    data = form.cleaned_data
    try:
        with refusals_logged(request, subject="handoff", ref=str(uuid)):
            specimen = services.specimen_confirm(
                handoff=handoff,
                scanned_label=data["label"],
                scanned_wristband=data["wristband"],
                # Scanned only when the wristband came with the scanner's marks (and nobody said it was typed).
                method="scanned" if read_entry(data["wristband"]).scanned and not data["typed"] else "typed",
                collected_at=data["collected_at"],
                volume_ml=data["volume_ml"],
                body_site=data["body_site"],
                by=user,
            )
    except (services.LabelOfAnotherPatient, services.WristbandMismatch) as exc:
        messages.error(request, str(exc), extra_tags="alert-stop")  # a wrong-patient tube: impossible to miss
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"{specimen.accession} ({specimen.container}) matches {specimen.patient.full_name}: collected."
        )
    return _handoff_page(handoff)


@log_refusals("specimen not collected", subject="specimen")
@require_POST
@permission_required("specimens.collect_specimen", raise_exception=True)
def not_collected(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    specimen = selectors.specimen_for_user(user=user, uuid=uuid)
    form = NotCollectedForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose why the specimen couldn't be collected.")
        return _handoff_page(specimen.handoff)
    data = form.cleaned_data
    try:
        with refusals_logged(request, subject="specimen", ref=str(uuid)):
            services.specimen_not_collected(specimen=specimen, by=user, reason=data["reason"], note=data["note"])
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"{specimen.accession} recorded as not collected; its tests are still to be collected.")
    return _handoff_page(specimen.handoff)
