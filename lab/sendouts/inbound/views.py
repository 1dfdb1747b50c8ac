"""The desk's inbound pages: results from labs (upload, latest), the unmatched queue, identity holds, one message.

Thin: check access, validate a form, call one service (lab.sendouts.intake), add a message, redirect.

Access log: every page names the patients it shows. A message filed to an order, or held against
one, shows that order's patient, who is logged. An unmatched message names no patient of ours (it
was never linked to a chart, and no patient is looked up from it, not even by MRN): its views are
logged without a patient, with the message's own id as the object, so an auditor can open exactly
what was shown; a refusal is logged the same way (the "inboundmessage" subject).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from backoffice.audit.log import log_access, log_refusals, refusals_logged
from backoffice.models import AccessAction, User
from backoffice.workflow import TransitionNotAllowed
from lab.hl7.read import ParsedMessage
from lab.models import InboundMessage
from lab.sendouts import intake
from lab.sendouts.filing import identity_disagreements, mrn_differs
from lab.sendouts.inbound import selectors
from lab.sendouts.inbound.forms import AttachForm, ResolveForm, UploadForm
from lab.workflow import IntakeChannel, IntakeOutcome

IO = IntakeOutcome
SUBJECT = "inboundmessage"


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware guarantees a real user here
    return user


def _patients(rows: list[InboundMessage]) -> list[int]:
    return [m.send_out.order.handoff.patient_id for m in rows if m.send_out is not None]


# --- Results from labs: upload, and the latest received ----------------------------------------------


def _render_home(request: HttpRequest, *, form: UploadForm | None = None, status: int = 200) -> HttpResponse:
    user = _user(request)
    recent = selectors.recent_messages(user=user)
    counts = selectors.queue_counts(user=user)
    log_access(request=request, action=AccessAction.LIST, what="results from labs", patients=_patients(recent))
    context = {"recent": recent, "counts": counts, "form": form or UploadForm(), "nav": "sendouts"}
    return render(request, "lab/sendouts/inbound/home.html", context, status=status)


@log_refusals("results from labs", subject=None)
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return _render_home(request)


@log_refusals("results upload", subject=None)
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    """A result file uploaded at the desk: the same intake as the listener and the file import."""
    user = _user(request)
    selectors.queue_counts(user=user)  # the access check (404 for anyone not at the desk)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _render_home(request, form=form, status=422)
    upload = form.cleaned_data["file"]
    data = b"".join(upload.chunks())
    received = intake.receive(data, channel=IntakeChannel.UPLOAD, source=upload.name or "upload", by=user)
    outcomes = {r.message.outcome for r in received}
    said = f"{upload.name}: {intake.summary(received)}."
    if IO.REJECTED in outcomes:
        messages.error(request, f"{said} What is not HL7 was kept and refused: see the latest messages below.")
    elif outcomes & {IO.UNMATCHED, IO.IDENTITY_HOLD}:
        messages.warning(request, f"{said} Nothing of those in a queue was filed: work the queues.")
    else:
        messages.success(request, said)
    return redirect("lab:inbound:home")


# --- The two queues ----------------------------------------------------------------------------------------


@log_refusals("unmatched results", subject=None)
@require_GET
def unmatched(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    rows = selectors.queue(user=user, outcome=IO.UNMATCHED)
    not_filed = selectors.not_filed(user=user)
    # No patient of ours: the list shows what each message says, linked to none (see the module doc).
    log_access(request=request, action=AccessAction.LIST, what="unmatched results", patients=[])
    context = {"rows": rows, "total": selectors.queue_total(rows), "not_filed": not_filed, "nav": "sendouts"}
    return render(request, "lab/sendouts/inbound/unmatched.html", context)


@log_refusals("identity holds", subject=None)
@require_GET
def holds(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    rows = selectors.queue(user=user, outcome=IO.IDENTITY_HOLD)
    log_access(request=request, action=AccessAction.LIST, what="identity holds", patients=_patients(rows))
    context = {"rows": rows, "total": selectors.queue_total(rows), "nav": "sendouts"}
    return render(request, "lab/sendouts/inbound/holds.html", context)


# --- One message ---------------------------------------------------------------------------------------------


def _side_by_side(parsed: ParsedMessage | None, message: InboundMessage) -> list[tuple[str, str, str, bool]]:
    """(what, the message says, the order says, disagree?) for the identity check's fields."""
    if parsed is None or message.send_out is None:
        return []
    patient = message.send_out.order.handoff.patient
    identity = parsed.orders[0].identity if parsed.orders else parsed.identity
    wrong = " ".join(identity_disagreements(identity, patient))
    rows = [
        ("Family name", identity.family, patient.family_name, "family" in wrong),
        (
            "Given and middle names",
            " ".join(p for p in (identity.given, identity.middle) if p),
            patient.given_name,
            "given" in wrong or "middle" in wrong,
        ),
        (
            "Date of birth",
            identity.dob.strftime("%m/%d/%Y") if identity.dob else identity.dob_text or "—",
            patient.date_of_birth.strftime("%m/%d/%Y"),
            "birth" in wrong,
        ),
        ("MRN", identity.our_mrn or "—", patient.mrn, mrn_differs(identity, patient)),
        ("Sex", identity.sex or "—", patient.sex, False),
    ]
    return rows


def _render_message(
    request: HttpRequest,
    message: InboundMessage,
    *,
    attach_form: AttachForm | None = None,
    resolve_form: ResolveForm | None = None,
    status: int = 200,
) -> HttpResponse:
    parsed = intake.message_parsed(message) if message.outcome != IO.REJECTED else None
    groups = parsed.orders if parsed else []
    labels = [g.service_text or g.service_loinc_text or g.service_code for g in groups]
    if message.is_open and groups:
        attach_form = attach_form or AttachForm(groups=len(groups), labels=labels)
        resolve_form = resolve_form or ResolveForm()
    patient = message.send_out.order.handoff.patient if message.send_out is not None else None
    log_access(
        request=request,
        action=AccessAction.VIEW,
        what="inbound message" if patient else "inbound message (no patient)",
        patients=[patient.pk] if patient else [],
        object_ref=str(message.uuid),
    )
    context: dict[str, Any] = {
        "message": message,
        "parsed": parsed,
        "groups": groups,
        "side_by_side": _side_by_side(parsed, message),
        "order_patient": patient,
        "attach_form": attach_form if message.is_open else None,
        "resolve_form": resolve_form if message.is_open else None,
        "raw_lines": message.raw.replace("\r\n", "\r").replace("\n", "\r").split("\r"),
        "events": selectors.message_events(message),
        "nav": "sendouts",
    }
    return render(request, "lab/sendouts/inbound/message.html", context, status=status)


@log_refusals("inbound message", subject=SUBJECT)
@require_GET
def message(request: HttpRequest, uuid: str) -> HttpResponse:
    return _render_message(request, selectors.message_for_user(user=_user(request), uuid=uuid))


@log_refusals("inbound message attach", subject=SUBJECT)
@require_POST
def attach(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    found = selectors.message_for_user(user=user, uuid=uuid)
    parsed = intake.message_parsed(found)
    groups = parsed.orders if parsed else []
    form = AttachForm(request.POST, groups=len(groups), labels=["" for _ in groups])
    if not groups or not form.is_valid():
        return _render_message(request, found, attach_form=form, status=422)
    try:
        with refusals_logged(request, subject=SUBJECT, ref=str(uuid)):
            done = intake.inbound_attach(message=found, targets=form.targets(), by=user, note=form.cleaned_data["note"])
    except TransitionNotAllowed as exc:
        form.add_error(None, str(exc))
        return _render_message(request, selectors.message_for_user(user=user, uuid=uuid), attach_form=form, status=422)
    messages.success(request, f"Attached and filed: {done.detail}")
    return redirect("lab:inbound:message", uuid=done.uuid)


@log_refusals("inbound message resolve", subject=SUBJECT)
@require_POST
def resolve(request: HttpRequest, uuid: str) -> HttpResponse:
    user = _user(request)
    found = selectors.message_for_user(user=user, uuid=uuid)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return _render_message(request, found, resolve_form=form, status=422)
    queue = "lab:inbound:holds" if found.outcome == IO.IDENTITY_HOLD else "lab:inbound:unmatched"
    try:
        with refusals_logged(request, subject=SUBJECT, ref=str(uuid)):
            intake.inbound_resolve(message=found, reason=form.cleaned_data["reason"], by=user)
    except TransitionNotAllowed as exc:
        form.add_error(None, str(exc))
        return _render_message(request, selectors.message_for_user(user=user, uuid=uuid), resolve_form=form, status=422)
    messages.success(request, f"Resolved: {found.control_id or 'the message'} stays stored; nothing was filed.")
    return redirect(queue)
