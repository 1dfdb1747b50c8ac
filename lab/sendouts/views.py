"""The send-out desk's pages: the desk, a shipment, a send-out; packing, printing, dispatch, cancel, retry.

Thin: check access, validate a form, call one service, add a message, redirect. What a page offers
is asked of the guards the services run (lab.sendouts.selectors.SendOutActions, ShipmentActions).
Every page and print writes the access log naming the patients it shows; every refusal is logged
naming the object's patient (lab registers "sendout" and "shipment" subjects).
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from backoffice import icd10
from backoffice.audit.log import log_access, log_refusals, refusals_logged, render_logged
from backoffice.models import AccessAction, User
from backoffice.workflow import TransitionNotAllowed
from lab.models import OutboundMessage, SendOut, Shipment
from lab.sendouts import prints, selectors, services, shipments
from lab.sendouts.forms import AnswersForm, CancelForm, CancelShipmentForm, PackForm, ShipmentForm, TubeForm
from lab.sendouts.inbound import selectors as inbound_selectors
from lab.workflow import ShipmentStatus
from specimens.accession import normalise
from specimens.models import Specimen

PERM = services.DESK_PERM


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


def pdf_response(printed: prints.Printed) -> HttpResponse:
    response = HttpResponse(printed.pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{printed.name}.pdf"'
    return response


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Back where the form was: the desk, or the page it was posted from (a path of the desk's own)."""
    if request.POST.get("next") == "desk":
        return redirect("lab:sendouts:desk")
    return redirect(default)


# --- The desk -------------------------------------------------------------------------------------


def _render_desk(request: HttpRequest, *, form: ShipmentForm | None = None, status: int = 200) -> HttpResponse:
    user = _user(request)
    now = timezone.now()
    desk = selectors.desk(user=user, now=now)
    log_access(request=request, action=AccessAction.LIST, what="send-out desk", patients=desk.patient_ids)
    labs = selectors.reference_labs()
    if form is None:
        # The next quarter hour after an hour from now: a pickup time to correct, not to type.
        soon = timezone.localtime(now + timedelta(hours=1)).replace(second=0, microsecond=0)
        soon += timedelta(minutes=(15 - soon.minute % 15) % 15)
        initial: dict[str, Any] = {"pickup_at": soon}
        lab_id, handling = request.GET.get("lab", ""), request.GET.get("handling", "")
        group = next((g for g in desk.groups if str(g.reference_lab.pk) == lab_id and g.handling == handling), None)
        if group is not None:
            initial |= {"reference_lab": group.reference_lab, "handling": group.handling}
            initial["courier"] = group.reference_lab.courier
        form = ShipmentForm(labs=labs, initial=initial)
    # Each waiting tube with a small form per send-out the lab asks questions for (fasting status...).
    groups = [
        (
            group,
            [
                (tube, [AnswersForm(send_out=s) for s in tube.send_outs if selectors.questions(s)])
                for tube in group.tubes
            ],
        )
        for group in desk.groups
    ]
    context = {
        "desk": desk,
        "groups": groups,
        "shipment_form": form,
        "opened_form": bool(request.GET.get("lab")) or form.is_bound,
        "inbound": inbound_selectors.queue_counts(user=user),
        "now": now,
        "nav": "sendouts",
    }
    return render(request, "lab/sendouts/desk.html", context, status=status)


@log_refusals("send-out desk", subject=None)
@require_GET
@permission_required(PERM, raise_exception=True)
def desk(request: HttpRequest) -> HttpResponse:
    return _render_desk(request)


@log_refusals("new shipment", subject=None)
@require_POST
@permission_required(PERM, raise_exception=True)
def shipment_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ShipmentForm(request.POST, labs=selectors.reference_labs())
    if not form.is_valid():
        return _render_desk(request, form=form, status=422)
    data = form.cleaned_data
    try:
        shipment = shipments.shipment_create(
            reference_lab=data["reference_lab"],
            handling=data["handling"],
            courier=data["courier"],
            pickup_at=data["pickup_at"],
            by=user,
        )
    except TransitionNotAllowed as exc:
        form.add_error(None, str(exc))
        return _render_desk(request, form=form, status=422)
    messages.success(
        request,
        f"Shipment {prints.reference(shipment)} opened for {shipment.reference_lab}: scan or pick the tubes to pack.",
    )
    return redirect("lab:sendouts:shipment", uuid=shipment.uuid)


# --- A shipment -------------------------------------------------------------------------------------


@log_refusals("send-out shipment", subject="shipment")
@require_GET
@permission_required(PERM, raise_exception=True)
def shipment(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    box = selectors.shipment_for_user(user=user, uuid=uuid)
    now = timezone.now()
    tubes = selectors.shipment_tubes(box, now)
    packable = selectors.packable_tubes(box, now)
    log_access(
        request=request,
        action=AccessAction.LIST,
        what="send-out shipment",
        patients=[t.patient.pk for t in [*tubes, *packable]],
        object_ref=str(box.uuid),
    )
    send_outs = [s for t in tubes for s in t.send_outs]
    context = {
        "shipment": box,
        "reference": prints.reference(box),
        "tubes": tubes,
        "packable": packable,
        "order_count": len(send_outs),
        "actions": selectors.shipment_actions(box, user, send_outs),
        # Every reason it can't leave yet, each saying what to do (the dispatch guard's own list).
        "problems": shipments.readiness(box, send_outs).problems if box.status == ShipmentStatus.OPEN else [],
        "pack_form": PackForm(),
        "cancel_form": CancelShipmentForm(),
        "events": selectors.shipment_events(box),
        "now": now,
        "nav": "sendouts",
    }
    return render(request, "lab/sendouts/shipment.html", context)


def _on_shipment(
    request: HttpRequest, uuid: str, action: Callable[[Shipment, User], str], *, back: str = ""
) -> HttpResponse:
    """Run one service on the shipment in the URL; a refusal becomes a message, never a 500."""
    user = _user(request)
    box = selectors.shipment_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="shipment", ref=str(uuid)):
            said = action(box, user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, said)
    return _back(request, back or reverse("lab:sendouts:shipment", args=[box.uuid]))


def _tube(request: HttpRequest) -> Specimen | None:
    """The tube a form names: scanned (its accession) or picked from a list (its opaque id)."""
    if "accession" in request.POST:
        form: PackForm | TubeForm = PackForm(request.POST)
        if form.is_valid():
            return (
                Specimen.objects.select_related("container")
                .filter(accession=normalise(form.cleaned_data["accession"]))
                .first()
            )
        return None
    form = TubeForm(request.POST)
    if form.is_valid():
        return Specimen.objects.select_related("container").filter(uuid=form.cleaned_data["specimen"]).first()
    return None


@log_refusals("send-out packing", subject="shipment")
@require_POST
@permission_required(PERM, raise_exception=True)
def pack(request: HttpRequest, uuid: str) -> HttpResponse:
    def run(box: Shipment, user: User) -> str:
        tube = _tube(request)
        if tube is None:
            raise TransitionNotAllowed("No specimen has that accession. Scan the label again or type it.")
        packed = shipments.shipment_pack(shipment=box, specimen=tube, by=user)
        tests = ", ".join(s.order.test.short_name for s in packed)
        return f"{tube.accession} ({tests}) packed for {box.reference_lab}."

    return _on_shipment(request, uuid, run)


@log_refusals("send-out packing", subject="shipment")
@require_POST
@permission_required(PERM, raise_exception=True)
def unpack(request: HttpRequest, uuid: str) -> HttpResponse:
    def run(box: Shipment, user: User) -> str:
        tube = _tube(request)
        if tube is None:
            raise TransitionNotAllowed("That specimen isn't in this shipment.")
        shipments.shipment_unpack(shipment=box, specimen=tube, by=user)
        return f"{tube.accession} taken out: it waits at the desk again."

    return _on_shipment(request, uuid, run)


@log_refusals("send-out dispatch", subject="shipment")
@require_POST
@permission_required(PERM, raise_exception=True)
def dispatch(request: HttpRequest, uuid: str) -> HttpResponse:
    def run(box: Shipment, user: User) -> str:
        shipments.shipment_dispatch(shipment=box, by=user)
        count = SendOut.objects.filter(shipment=box).count()
        return (
            f"Shipment {prints.reference(box)} handed to {box.courier}: {count} order{'s' if count != 1 else ''} "
            f"sent to {box.reference_lab}. The desk shows when the lab acknowledges each."
        )

    return _on_shipment(request, uuid, run)


@log_refusals("send-out shipment cancelled", subject="shipment")
@require_POST
@permission_required(PERM, raise_exception=True)
def shipment_cancel(request: HttpRequest, uuid: str) -> HttpResponse:
    form = CancelShipmentForm(request.POST)

    def run(box: Shipment, user: User) -> str:
        if not form.is_valid():
            raise TransitionNotAllowed('Say why the pickup is called off, e.g. "Courier didn\'t come".')
        shipments.shipment_cancel(shipment=box, by=user, reason=form.cleaned_data["reason"])
        return f"Shipment {prints.reference(box)} called off: its tubes wait at the desk again."

    return _on_shipment(request, uuid, run, back=reverse("lab:sendouts:desk"))


@log_refusals("send-out manifest", subject="shipment")
@require_POST
@permission_required(PERM, raise_exception=True)
def manifest(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    box = selectors.shipment_for_user(user=user, uuid=uuid)
    tubes = selectors.shipment_tubes(box)
    try:
        with refusals_logged(request, subject="shipment", ref=str(uuid)):
            printed = prints.print_manifest(shipment=box, tubes=tubes, by=user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("lab:sendouts:shipment", uuid=box.uuid)
    log_access(
        request=request,
        action=AccessAction.PRINT,
        what="send-out manifest",
        patients=printed.patient_ids,
        object_ref=str(uuid),
    )
    return pdf_response(printed)


@log_refusals("send-out requisitions", subject="shipment")
@require_POST
@permission_required(PERM, raise_exception=True)
def requisitions(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    box = selectors.shipment_for_user(user=user, uuid=uuid)
    send_outs = [s for t in selectors.shipment_tubes(box) for s in t.send_outs]
    try:
        with refusals_logged(request, subject="shipment", ref=str(uuid)):
            printed = prints.print_requisitions(
                send_outs=send_outs, by=user, name=f"requisitions-{prints.reference(box)}"
            )
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("lab:sendouts:shipment", uuid=box.uuid)
    log_access(
        request=request,
        action=AccessAction.PRINT,
        what="send-out requisitions",
        patients=printed.patient_ids,
        object_ref=str(uuid),
    )
    return pdf_response(printed)


# --- A send-out -------------------------------------------------------------------------------------


@log_refusals("send-out", subject="sendout")
@require_GET
@permission_required(PERM, raise_exception=True)
def send_out(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    item = selectors.send_out_for_user(user=user, uuid=uuid)
    order = item.order
    actions = selectors.send_out_actions(item, user)
    outbound = selectors.send_out_messages(item)
    context = {
        "send_out": item,
        "order": order,
        "specimen": order.specimen,
        "patient": order.handoff.patient,
        "handoff": order.handoff,
        "questions": selectors.questions(item),
        "diagnoses": [(code, icd10.describe(code)) for code in order.handoff.diagnosis_codes],
        "answers_form": AnswersForm(send_out=item) if actions.answer else None,
        "cancel_form": CancelForm(),
        "actions": actions,
        "outbound": [(m, actions.retry(m)) for m in outbound],
        "events": selectors.send_out_events(item),
        "now": timezone.now(),
        "nav": "sendouts",
    }
    return render_logged(
        request,
        "lab/sendouts/send_out.html",
        context,
        what="send-out",
        patient_id=order.handoff.patient_id,
        object_ref=str(item.uuid),
    )


def _on_send_out(request: HttpRequest, uuid: str, action: Callable[[SendOut, User], str]) -> HttpResponse:
    user = _user(request)
    item = selectors.send_out_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="sendout", ref=str(uuid)):
            said = action(item, user)
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, said)
    if request.POST.get("next") == "shipment" and item.shipment_id is not None:
        return redirect("lab:sendouts:shipment", uuid=Shipment.objects.get(pk=item.shipment_id).uuid)
    return _back(request, reverse("lab:sendouts:send_out", args=[item.uuid]))


def _label(item: SendOut) -> str:
    specimen = item.order.specimen
    return f"{specimen.accession if specimen else item.placer_number} {item.order.test.short_name}"


@log_refusals("send-out answers", subject="sendout")
@require_POST
@permission_required(PERM, raise_exception=True)
def answers(request: HttpRequest, uuid: str) -> HttpResponse:
    def run(item: SendOut, user: User) -> str:
        form = AnswersForm(request.POST, send_out=item)
        if not form.is_valid():
            raise TransitionNotAllowed(" ".join(str(e) for errors in form.errors.values() for e in errors))
        services.send_out_answer(send_out=item, answers=form.answers(), by=user)
        given = [
            q
            for q in selectors.questions(SendOut.objects.prefetch_related("orderable__questions").get(pk=item.pk))
            if q.answer
        ]
        said = "; ".join(f"{q.question.question}: {q.shown}" for q in given) or "answers cleared"
        return f"{_label(item)}: {said}."

    return _on_send_out(request, uuid, run)


@log_refusals("send-out requisition", subject="sendout")
@require_POST
@permission_required(PERM, raise_exception=True)
def requisition(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    item = selectors.send_out_for_user(user=user, uuid=uuid)
    try:
        with refusals_logged(request, subject="sendout", ref=str(uuid)):
            printed = prints.print_requisitions(send_outs=[item], by=user, name=f"requisition-{item.placer_number}")
    except TransitionNotAllowed as exc:
        messages.error(request, str(exc))
        return redirect("lab:sendouts:send_out", uuid=item.uuid)
    log_access(
        request=request,
        action=AccessAction.PRINT,
        what="send-out requisition",
        patients=printed.patient_ids,
        object_ref=str(uuid),
    )
    return pdf_response(printed)


@log_refusals("send-out cancelled", subject="sendout")
@require_POST
@permission_required(PERM, raise_exception=True)
def cancel(request: HttpRequest, uuid: str) -> HttpResponse:
    form = CancelForm(request.POST)

    def run(item: SendOut, user: User) -> str:
        if not form.is_valid():
            raise TransitionNotAllowed("Choose why the send-out is cancelled.")
        data = form.cleaned_data
        services.send_out_cancel(send_out=item, reason=data["reason"], note=data["note"], by=user)
        told = item.messages.filter(kind=OutboundMessage.Kind.CANCEL).exists()
        return f"{_label(item)} cancelled" + (
            "; the lab is sent a cancel (ORC-1 CA)." if told else "; nothing had reached the lab."
        )

    return _on_send_out(request, uuid, run)


@log_refusals("send-out message retried", subject="sendout")
@require_POST
@permission_required(PERM, raise_exception=True)
def retry(request: HttpRequest, uuid: str) -> HttpResponse:
    def run(item: SendOut, user: User) -> str:
        message = item.messages.filter(control_id=request.POST.get("message", "")).first()
        if message is None:
            raise TransitionNotAllowed("That order message isn't this send-out's.")
        services.message_retry(message=message, by=user)
        return f"ORM {message.kind} {message.control_id} for {_label(item)} is being sent again now."

    return _on_send_out(request, uuid, run)


__all__ = [
    "answers",
    "cancel",
    "desk",
    "dispatch",
    "manifest",
    "pack",
    "requisition",
    "requisitions",
    "retry",
    "send_out",
    "shipment",
    "shipment_cancel",
    "shipment_new",
    "unpack",
]
