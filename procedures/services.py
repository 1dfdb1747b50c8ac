"""Every change to an ordered procedure, its documentation and its performer's competency.

Each transition locks the handoff and then the procedure row (in that order, everywhere, so the
last procedure to finish always sees the others' committed states and completes the handoff),
checks the actor's permission and the workflow table, writes with update_fields and appends a
ProcedureEvent, all in one transaction, through backoffice.transitions. Each guard (``check_*``)
is also what procedures.selectors.procedure_actions asks, so a page offers exactly what these
accept. Views, admin, commands and tests call these; nothing else assigns a procedure's status,
its documentation version or a competency.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import dateformat, timezone

from backoffice import hooks
from backoffice.accounts import reauth
from backoffice.allergies import Conflict
from backoffice.models import Credential, Handoff, User
from backoffice.services import (
    handoff_complete,
    handoff_lock_for_items,
    handoff_start,
    require_identity_verified,
    require_works_handoff,
)
from backoffice.transitions import lock, move, record, record_all, require
from backoffice.workflow import HandoffStatus, PermissionRefused, TransitionNotAllowed
from procedures import drugs
from procedures.models import (
    Addendum,
    AllergyOverride,
    ChargeLine,
    Competency,
    DocumentationDraft,
    DrugChargeLine,
    MedicationAdministration,
    MedicationError,
    OrderedMedication,
    ProcedureDocumentation,
    ProcedureEvent,
    ProcedureOrder,
    ProcedureType,
    StepCompletion,
    VitalSigns,
)
from procedures.models import Medication as CatalogMedication
from procedures.workflow import (
    ADDENDUM_STATUSES,
    CHOSEN_NOT_DONE_REASONS,
    DONE_STATUSES,
    EDITABLE_STATUSES,
    PROCEDURE,
    NotDoneReason,
    ProcedureStatus,
    Supervision,
)

Action = ProcedureEvent.Action
S = ProcedureStatus

# A sign-off without an explicit expiry is re-validated after a year, as most clinics' policies ask.
COMPETENCY_VALID_DAYS = 365
LATERALITY_MODIFIERS: dict[str, str] = {
    ProcedureDocumentation.Laterality.LEFT: "LT",
    ProcedureDocumentation.Laterality.RIGHT: "RT",
    ProcedureDocumentation.Laterality.BILATERAL: "50",
}


class CredentialExpired(PermissionRefused):
    """The performer or supervisor holds no current credential."""


class SupervisionRequired(TransitionNotAllowed):
    """A performer not yet competent started without a present supervisor or a co-sign plan."""


class SupervisorRefused(TransitionNotAllowed):
    """The named supervisor can't supervise this procedure, or did not confirm with their password."""


class SelfReview(PermissionRefused):
    """A supervisor tried to co-sign, return or supervise their own work."""


class ExpiredLot(TransitionNotAllowed):
    """A medication lot past its expiry date."""


class AllergyStop(TransitionNotAllowed):
    """The drug runs into one of the patient's allergies and no clinician has overridden it."""


class WrongDrug(TransitionNotAllowed):
    """The drug scanned or chosen is not the one ordered, or can't be given this way."""


class DocumentationIncomplete(TransitionNotAllowed):
    """Finishing was attempted with required documentation missing."""


class StaleDocumentation(TransitionNotAllowed):
    """Someone saved the documentation after this editor loaded it; nothing was written."""


class DocumentationLocked(TransitionNotAllowed):
    """The procedure is past editing: corrections go in an addendum."""


# --- Inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vitals:
    systolic: int | None = None
    diastolic: int | None = None
    pulse: int | None = None
    respiratory_rate: int | None = None
    spo2: int | None = None
    temperature: Decimal | None = None

    FIELDS = ("systolic", "diastolic", "pulse", "respiratory_rate", "spo2", "temperature")

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    def is_empty(self) -> bool:
        return all(value is None for value in self.values().values())


@dataclass(frozen=True)
class Documentation:
    """Everything the documentation form submits; fields the procedure type doesn't use are ignored."""

    site: str = ""
    laterality: str = ""
    findings: str = ""
    complications: str = ""
    tolerance: str = ""
    specimen_note: str = ""
    consent_obtained: bool = False
    consent_from: str = ""
    timeout_done: bool = False
    steps_done: frozenset[int] = frozenset()
    vitals_before: Vitals = field(default_factory=Vitals)
    vitals_after: Vitals = field(default_factory=Vitals)


@dataclass(frozen=True)
class Medication:
    """A medication given: the catalog's drug, and its lot and expiry as scanned from the package or typed."""

    product: CatalogMedication
    dose: Decimal
    unit: str
    route: str
    lot_number: str
    expiry_date: date
    site: str = ""
    entry: str = MedicationAdministration.Entry.TYPED
    gtin: str = ""

    @property
    def drug(self) -> str:
        return str(self.product)


# --- Helpers -----------------------------------------------------------------------------------


def _lock(order: ProcedureOrder) -> ProcedureOrder:
    """Lock the handoff, then the procedure, into the caller's instances; the order keeps its handoff."""
    handoff = lock(order.handoff, related=("patient", "ordering_clinician", "station"))
    lock(order, related=("procedure_type", "performer"))
    order.handoff = handoff
    return order


def _lock_documentation(order: ProcedureOrder, *, version: int | None) -> ProcedureDocumentation:
    doc = ProcedureDocumentation.objects.select_for_update().get(order=order)
    if version is not None and doc.version != version:
        raise StaleDocumentation(
            f"{doc.updated_by} saved this documentation at {timezone.localtime(doc.updated_at):%H:%M} after you "
            "opened it. Nothing of yours was saved: check their changes below, then make yours again."
        )
    return doc


class StaffFacts:
    """What the guards ask about one member of staff, each read once: for a page that asks per row.

    Services build a fresh one for every call, so they always decide on what is stored now; a list
    page shares one across its rows (procedure_actions(..., facts=...)) and asks the same questions.
    """

    def __init__(self, user: User) -> None:
        self.user = user

    @cached_property
    def credential_problem(self) -> str:
        return credential_problem(self.user)

    @cached_property
    def competent_type_ids(self) -> frozenset[int]:
        competencies = Competency.objects.filter(user=self.user, signed_off_at__isnull=False)
        return frozenset(c.procedure_type_id for c in competencies if c.is_current())

    def is_competent(self, procedure_type: ProcedureType) -> bool:
        return procedure_type.pk in self.competent_type_ids


def credential_problem(user: User, *, on: date | None = None) -> str:
    """Why a user may not perform or supervise at all, or "" when their credentials are current."""
    today = on or timezone.localdate()
    credentials = list(Credential.objects.filter(user=user).order_by("expires_on"))
    if not credentials:
        return "no credential is on file"
    # Strict on purpose: a lapsed credential isn't outweighed by another one that is still valid.
    for credential in credentials:
        if not credential.is_current(today):
            expired = dateformat.format(credential.expires_on, "M j, Y")  # "Dec 3, 2026": no day/month doubt
            return f"{credential.short_label} credential {credential.number} expired on {expired}"
    return ""


def is_competent(user: User, procedure_type: ProcedureType) -> bool:
    """Signed off for this procedure, and the sign-off still current."""
    return StaffFacts(user).is_competent(procedure_type)


def _require_current_credential(user: User, *, doing: str, facts: StaffFacts | None = None) -> None:
    problem = (facts or StaffFacts(user)).credential_problem
    if problem:
        raise CredentialExpired(f"You can't {doing}: {problem}. Renew it with the practice administrator.")


def _require_performer(order: ProcedureOrder, by: User, *, doing: str) -> None:
    if order.performer_id != by.pk:
        raise PermissionRefused(f"Only {order.performer}, who performed this procedure, can {doing}.")


def needs_supervision(order: ProcedureOrder, user: User, *, facts: StaffFacts | None = None) -> bool:
    """Whether this user, not yet signed off for the procedure, needs a supervisor to perform it."""
    ptype = order.procedure_type
    return ptype.supervision_required_if_not_competent and not (facts or StaffFacts(user)).is_competent(ptype)


def _require_reviewer(order: ProcedureOrder, by: User, *, doing: str, facts: StaffFacts | None = None) -> None:
    require(by, "procedures.supervise_procedure", doing)
    if order.performer_id == by.pk:
        raise SelfReview("You performed this procedure yourself; another supervisor must review it.")
    facts = facts or StaffFacts(by)
    _require_current_credential(by, doing=doing, facts=facts)
    if not facts.is_competent(order.procedure_type):
        raise SupervisorRefused(
            f"You aren't signed off as competent for {order.procedure_type.name} yourself, so you can't {doing}."
        )


def documentation_gaps(order: ProcedureOrder, doc: ProcedureDocumentation) -> list[str]:
    """What is still missing before the procedure can be finished, in the order the MA works."""
    ptype = order.procedure_type
    gaps: list[str] = []
    if ptype.consent_required and doc.consent_at is None:
        gaps.append("record the patient's consent")
    if ptype.timeout_required and doc.timeout_at is None:
        gaps.append("do the time-out")
    done = set(doc.steps_done.values_list("step_id", flat=True))
    missing = [step.position for step in ptype.steps.all() if step.pk not in done]
    if missing:
        gaps.append(f"tick checklist step{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))}")
    if ptype.documents_site and not (doc.site.strip() and doc.laterality):
        gaps.append("give the body site and laterality")
    if ptype.documents_findings and not doc.findings.strip():
        gaps.append("describe the findings")
    if ptype.documents_medication and not doc.medications.filter(error__isnull=True).exists():
        gaps.append("record the medication given")
    phases = set(doc.vitals.values_list("phase", flat=True))
    if ptype.vitals == ProcedureType.Vitals.ONCE and not phases:
        gaps.append("record vital signs")
    elif ptype.vitals == ProcedureType.Vitals.BEFORE_AFTER:
        needed = [p for p in VitalSigns.Phase if p not in phases]
        if needed:
            gaps.append(f"record vital signs {' and '.join(p.label.lower() for p in needed)}")
    if ptype.documents_specimen and not doc.specimen_note.strip():
        gaps.append("describe the specimen collected")
    if not doc.tolerance:
        gaps.append("record how the patient tolerated it")
    return gaps


def _require_complete(order: ProcedureOrder, doc: ProcedureDocumentation, *, doing: str) -> None:
    gaps = documentation_gaps(order, doc)
    if gaps:
        raise DocumentationIncomplete(f"Before you {doing}, {'; '.join(gaps)}.")


def _complete_handoff_if_done(handoff: Handoff, *, by: User) -> None:
    """Close the handoff once none of its items is open; its station then needs turnover."""
    if handoff.status not in (HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS):
        return
    if hooks.open_item_count(handoff):
        return
    try:
        with transaction.atomic():
            if handoff.status == HandoffStatus.IDENTITY_VERIFIED:
                handoff_start(handoff=handoff, by=by)
            handoff_complete(handoff=handoff, by=by)
    except TransitionNotAllowed:
        # The procedure's own change stands; whoever works the patient completes the handoff by hand.
        return


def _close(order: ProcedureOrder, *, by: User, action: str, note: str = "", fields: Sequence[str] = ()) -> None:
    """Complete a procedure: its charge line, its performer's supervised count and maybe the handoff."""
    assert order.performer_id is not None  # every started procedure has one (a database constraint)
    order.completed_at = timezone.now()
    move(order, table=PROCEDURE, to=S.COMPLETED, by=by, action=action, note=note, fields=("completed_at", *fields))
    doc = ProcedureDocumentation.objects.get(order=order)
    ptype = order.procedure_type
    performed_at = order.performed_at or order.completed_at
    charge = ChargeLine.objects.create(
        order=order,
        patient_id=order.handoff.patient_id,
        code=ptype.code,
        description=ptype.name,
        units=1,
        modifiers=LATERALITY_MODIFIERS.get(doc.laterality, "") if ptype.laterality_modifier else "",
        service_date=timezone.localdate(performed_at),
        performer_id=order.performer_id,
        supervisor_id=order.cosigned_by_id or order.supervisor_id,
        ordering_clinician_id=order.handoff.ordering_clinician_id,
    )
    _charge_drugs(charge, doc)
    if order.supervision != Supervision.NONE:
        competency, _ = Competency.objects.get_or_create(
            user_id=order.performer_id, procedure_type_id=order.procedure_type_id
        )
        Competency.objects.filter(pk=competency.pk).update(supervised_count=F("supervised_count") + 1)
    _complete_handoff_if_done(order.handoff, by=by)


def _charge_drugs(charge: ChargeLine, doc: ProcedureDocumentation) -> None:
    """Each drug given (not entered in error) with a billing code: its code and units, beside the procedure's."""
    given = doc.medications.filter(error__isnull=True, medication__isnull=False).select_related("medication")
    lines = []
    for administration in given:
        product = administration.medication
        assert product is not None
        units = product.billing_units(administration.dose, administration.unit)
        if units is None:
            continue
        package = product.packages.filter(gtin=administration.gtin).first() if administration.gtin else None
        lines.append(
            DrugChargeLine(
                charge=charge,
                administration=administration,
                code=product.hcpcs_code,
                description=f"{product} {administration.dose_label}"[:120],
                units=units,
                ndc=package.ndc11 if package else "",
            )
        )
    DrugChargeLine.objects.bulk_create(lines)


# --- Guards: each service checks one of these under its lock; procedure_actions asks the same ones. --


def _require_editable(order: ProcedureOrder, *, what: str, late: str) -> None:
    if order.status not in EDITABLE_STATUSES:
        raise DocumentationLocked(
            f"This procedure is {PROCEDURE.name(order.status)}: {what}."
            + (f" {late}" if order.status in ADDENDUM_STATUSES else "")
        )


def check_start(order: ProcedureOrder, by: User, *, facts: StaffFacts | None = None) -> None:
    """Everything starting needs but the supervision choice, which the performer makes on the form."""
    # What the rows in hand can answer first; the credentials and the equipment need a query each.
    require(by, "procedures.perform_procedure", "perform procedures")
    handoff = order.handoff
    require_works_handoff(handoff, by)
    require_identity_verified(handoff)
    PROCEDURE.check(order.status, S.IN_PROGRESS)
    station = handoff.station
    if station is None:
        raise TransitionNotAllowed("Bring the patient to a station before starting.")
    _require_current_credential(by, doing="perform procedures", facts=facts)
    have = set(station.equipment.values_list("pk", flat=True))
    missing = [e.name.lower() for e in order.procedure_type.required_equipment.all() if e.pk not in have]
    if missing:
        raise TransitionNotAllowed(f"{station} has no {', '.join(missing)}; move the patient to a station that has it.")


def check_document(order: ProcedureOrder, by: User) -> None:
    require(by, "procedures.perform_procedure", "document procedures")
    _require_editable(order, what="its documentation can't be changed", late="Add an addendum to correct it.")
    _require_performer(order, by, doing="edit its documentation")


def check_add_medication(order: ProcedureOrder, by: User) -> None:
    require(by, "procedures.perform_procedure", "document procedures")
    _require_editable(order, what="medication can't be added to it", late="Add an addendum to record a late entry.")
    _require_performer(order, by, doing="record medication for it")
    if not order.procedure_type.documents_medication:
        raise TransitionNotAllowed(f"{order.procedure_type.name} doesn't record medication.")


def check_finish(order: ProcedureOrder, by: User) -> None:
    """Performed, then completed or sent for co-sign; complete documentation is checked on the way."""
    require(by, "procedures.perform_procedure", "perform procedures")
    PROCEDURE.check(order.status, S.PERFORMED)
    _require_performer(order, by, doing="finish it")


def check_not_done(order: ProcedureOrder, by: User) -> None:
    require(by, "procedures.perform_procedure", "close procedures")
    require_works_handoff(order.handoff, by)
    PROCEDURE.check(order.status, S.NOT_DONE)


def check_review(order: ProcedureOrder, by: User, *, verb: str = "co-sign", facts: StaffFacts | None = None) -> None:
    """Co-sign or return: a competent supervisor, not the performer, on work awaiting co-sign."""
    _require_reviewer(order, by, doing=f"{verb} procedures", facts=facts)
    if order.status != S.AWAITING_COSIGN:
        raise TransitionNotAllowed(
            f"This procedure is {PROCEDURE.name(order.status)}; only work awaiting co-sign can be {verb}ed."
        )


def check_resubmit(order: ProcedureOrder, by: User) -> None:
    """Returned work goes back to the co-sign queue once corrected and complete."""
    require(by, "procedures.perform_procedure", "perform procedures")
    if order.status != S.RETURNED:
        raise TransitionNotAllowed(
            f"This procedure is {PROCEDURE.name(order.status)}; only returned work can be resubmitted."
        )
    _require_performer(order, by, doing="resubmit it")
    doc = ProcedureDocumentation.objects.get(order=order)
    returned_at = order.returned_at or order.status_changed_at
    corrected = doc.updated_at > returned_at or order.addenda.filter(created_at__gt=returned_at).exists()
    if not corrected:
        raise TransitionNotAllowed(
            "Make the correction first: change the documentation or add an addendum, then resubmit."
        )
    _require_complete(order, doc, doing="resubmit")


def _require_addendum_role(by: User) -> None:
    if not by.is_active or not (
        by.has_perm("procedures.perform_procedure") or by.has_perm("procedures.supervise_procedure")
    ):
        raise PermissionRefused("Your role doesn't allow you to add addenda.")


def check_addendum(order: ProcedureOrder, by: User) -> None:
    _require_addendum_role(by)
    if order.status not in ADDENDUM_STATUSES:
        raise TransitionNotAllowed(
            "Only documented procedures take addenda; edit the documentation while it is in progress."
        )
    if order.performer_id != by.pk and not by.has_perm("procedures.supervise_procedure"):
        raise PermissionRefused(f"Only {order.performer} or a supervisor can add an addendum.")


# --- Ordering ----------------------------------------------------------------------------------


def procedure_orders_add(
    *, handoff: Handoff, procedure_types: Sequence[ProcedureType], by: User
) -> list[ProcedureOrder]:
    """Order catalog procedures on an open handoff; the handoff is locked and records what was ordered."""
    if not procedure_types:
        return []
    inactive = [p.name for p in procedure_types if not p.is_active]
    if inactive:
        raise TransitionNotAllowed(f"No longer offered: {', '.join(inactive)}.")
    with transaction.atomic():
        handoff_lock_for_items(
            handoff=handoff, by=by, items="Procedures: " + ", ".join(p.name for p in procedure_types)
        )
        orders = ProcedureOrder.objects.bulk_create(
            [ProcedureOrder(handoff=handoff, procedure_type=p, created_by=by) for p in procedure_types]
        )
        record_all(orders, by=by, action=Action.ORDERED, created=True)
    return orders


# --- Performing --------------------------------------------------------------------------------


def eligible_supervisor_problem(supervisor: User, *, procedure_type: ProcedureType, performer: User) -> str:
    """Why this person can't supervise this performer for this procedure, or ""."""
    if supervisor.pk == performer.pk:
        return "You can't supervise yourself; name another supervisor."
    if not supervisor.is_active or not supervisor.has_perm("procedures.supervise_procedure"):
        return f"{supervisor} is not a supervisor."
    problem = credential_problem(supervisor)
    if problem:
        return f"{supervisor} can't supervise: {problem}."
    if not is_competent(supervisor, procedure_type):
        return f"{supervisor} isn't signed off for {procedure_type.name}; name a supervisor who is."
    return ""


def _confirm_supervisor(supervisor: User, secret: str, request: HttpRequest | None, by: User) -> None:
    """The supervisor proves they are at the station: their own password, or their authenticator's code.

    Not a sign-in: a wrong try never counts toward the supervisor's sign-in pauses; it has its own
    limiter per trainee and supervisor (backoffice.accounts.reauth).
    """
    if not secret:
        raise SupervisorRefused(f"Ask {supervisor} to type their password to confirm they are with you.")
    try:
        reauth.confirm(account=supervisor, secret=secret, by=by, request=request)
    except reauth.ConfirmationRefused as exc:
        raise SupervisorRefused(str(exc)) from exc


def procedure_start(
    *,
    order: ProcedureOrder,
    by: User,
    supervision: str = Supervision.NONE,
    supervisor: User | None = None,
    supervisor_password: str = "",
    request: HttpRequest | None = None,
) -> ProcedureOrder:
    """Begin an ordered procedure at the patient's station.

    A performer not yet competent for the procedure needs a supervisor: present now (confirmed by
    the supervisor's own password) or co-signing afterwards. Starting the first procedure starts
    the handoff's work.
    """
    require(by, "procedures.perform_procedure", "perform procedures")
    _require_current_credential(by, doing="perform procedures")
    ptype = ProcedureType.objects.get(pk=order.procedure_type_id)
    competent = is_competent(by, ptype)
    mode = Supervision.NONE
    if ptype.supervision_required_if_not_competent and not competent:
        if supervision == Supervision.PRESENT:
            if supervisor is None:
                raise SupervisorRefused("Name the supervisor who is with you.")
            problem = eligible_supervisor_problem(supervisor, procedure_type=ptype, performer=by)
            if problem:
                raise SupervisorRefused(problem)
            # Outside the transaction: hashing the password shouldn't hold the patient's row locked.
            _confirm_supervisor(supervisor, supervisor_password, request, by)
            mode = Supervision.PRESENT
        elif supervision == Supervision.COSIGN:
            mode = Supervision.COSIGN
        else:
            raise SupervisionRequired(
                f"You aren't signed off for {ptype.name} yet: a supervisor must be with you, "
                "or co-sign your documentation afterwards."
            )
    with transaction.atomic():
        locked = _lock(order)
        handoff = locked.handoff
        check_start(locked, by)
        station = handoff.station
        assert station is not None  # check_start refuses a patient at no station
        now = timezone.now()
        locked.performer = by
        locked.performer_competent = competent
        locked.station = station
        locked.started_at = now
        locked.supervision = mode
        locked.supervisor = supervisor if mode == Supervision.PRESENT else None
        locked.supervisor_confirmed_at = now if mode == Supervision.PRESENT else None
        note = {
            Supervision.PRESENT: f"Supervised by {supervisor}, present and confirmed by password or code",
            Supervision.COSIGN: "Not yet signed off: a supervisor co-signs afterwards",
        }.get(mode, "")
        move(
            locked,
            table=PROCEDURE,
            to=S.IN_PROGRESS,
            by=by,
            action=Action.STARTED,
            note=f"At {station}. {note}".strip(". ") if note else f"At {station}",
            fields=(
                "performer",
                "performer_competent",
                "station",
                "started_at",
                "supervision",
                "supervisor",
                "supervisor_confirmed_at",
            ),
        )
        ProcedureDocumentation.objects.create(order=locked, updated_by=by, consent_from="Patient")
        if handoff.status == HandoffStatus.IDENTITY_VERIFIED:
            handoff_start(handoff=handoff, by=by)
    return order


def _vitals_changed(existing: VitalSigns | None, wanted: Vitals) -> bool:
    if existing is None:
        return not wanted.is_empty()
    return any(getattr(existing, name) != value for name, value in wanted.values().items())


def procedure_document(*, order: ProcedureOrder, by: User, version: int, data: Documentation) -> ProcedureDocumentation:
    """Save the performer's documentation; a version that is no longer current writes nothing."""
    require(by, "procedures.perform_procedure", "document procedures")
    with transaction.atomic():
        locked = _lock(order)
        check_document(locked, by)
        doc = _lock_documentation(locked, version=version)
        ptype = locked.procedure_type
        now = timezone.now()
        wanted: dict[str, Any] = {
            "complications": data.complications.strip(),
            "tolerance": data.tolerance,
            "site": data.site.strip() if ptype.documents_site else "",
            "laterality": data.laterality if ptype.documents_site else "",
            "findings": data.findings.strip() if ptype.documents_findings else "",
            "specimen_note": data.specimen_note.strip() if ptype.documents_specimen else "",
        }
        if ptype.consent_required and doc.consent_at is None:
            wanted["consent_from"] = data.consent_from.strip() or "Patient"
        changed = [name for name, value in wanted.items() if getattr(doc, name) != value]
        for name in changed:
            setattr(doc, name, wanted[name])
        # Consent and time-out are recorded once, by whoever saves them first; they aren't undone.
        if ptype.consent_required and data.consent_obtained and doc.consent_at is None:
            doc.consent_at, doc.consent_by = now, by
            changed += ["consent_at", "consent_by"]
        if ptype.timeout_required and data.timeout_done and doc.timeout_at is None:
            doc.timeout_at, doc.timeout_by = now, by
            changed += ["timeout_at", "timeout_by"]

        steps_changed = False
        valid_steps = set(ptype.steps.values_list("pk", flat=True))
        wanted_steps = set(data.steps_done) & valid_steps
        done = set(doc.steps_done.values_list("step_id", flat=True))
        # A step ticked while typing (the draft) keeps the time it was ticked; the save files it.
        ticked_at = _draft_ticks(doc)
        if wanted_steps != done:
            steps_changed = True
            doc.steps_done.filter(step_id__in=done - wanted_steps).delete()
            StepCompletion.objects.bulk_create(
                [
                    StepCompletion(documentation=doc, step_id=pk, done_by=by, done_at=min(ticked_at.get(pk, now), now))
                    for pk in sorted(wanted_steps - done)
                ]
            )
        DocumentationDraft.objects.filter(documentation=doc).delete()

        vitals_changed = False
        if ptype.vitals:
            existing = {v.phase: v for v in doc.vitals.all()}
            phases = [(VitalSigns.Phase.BEFORE, data.vitals_before)]
            if ptype.vitals == ProcedureType.Vitals.BEFORE_AFTER:
                phases.append((VitalSigns.Phase.AFTER, data.vitals_after))
            for phase, vitals in phases:
                row = existing.get(phase)
                if not _vitals_changed(row, vitals):
                    continue
                vitals_changed = True
                if vitals.is_empty():
                    assert row is not None
                    row.delete()
                else:
                    VitalSigns.objects.update_or_create(
                        documentation=doc, phase=phase, defaults={**vitals.values(), "taken_by": by, "taken_at": now}
                    )

        if not (changed or steps_changed or vitals_changed):
            return doc
        doc.version += 1
        doc.updated_at, doc.updated_by = now, by
        doc.save(update_fields=[*changed, "version", "updated_at", "updated_by"])
        record(locked, by=by, action=Action.DOCUMENTED, note=f"Version {doc.version}")
    return doc


def _draft_ticks(doc: ProcedureDocumentation) -> dict[int, datetime]:
    """When each step in the documentation's current draft was ticked (none when there is no current draft)."""
    draft = DocumentationDraft.objects.filter(documentation=doc, base_version=doc.version).first()
    return draft.ticked_at() if draft else {}


def _bump_version_keeping_draft(doc: ProcedureDocumentation, *, by: User) -> None:
    """A new version for a change that touches nothing a draft holds (the medications): the draft
    of the current version stays current, so what the performer typed survives the page's reload."""
    DocumentationDraft.objects.filter(documentation=doc, base_version=doc.version).update(base_version=doc.version + 1)
    doc.version += 1
    doc.updated_at, doc.updated_by = timezone.now(), by
    doc.save(update_fields=["version", "updated_at", "updated_by"])


def documentation_draft_save(
    *, order: ProcedureOrder, by: User, version: int, values: Mapping[str, Any], steps: Iterable[int]
) -> DocumentationDraft:
    """Keep what the performer has typed so far, unsaved (the page sends it as they type).

    Refused like a save: only while the performer may document, and only on the version they
    opened (StaleDocumentation otherwise, nothing kept). Each checklist step is stamped the first
    time a draft carries it ticked (or keeps its saved time); unticking drops the stamp.
    """
    require(by, "procedures.perform_procedure", "document procedures")
    with transaction.atomic():
        locked = _lock(order)
        check_document(locked, by)
        doc = _lock_documentation(locked, version=version)
        valid_steps = set(locked.procedure_type.steps.values_list("pk", flat=True))
        now = timezone.now()
        # The draft read once, under the documentation's lock: its earlier ticks, then the row to write.
        draft = DocumentationDraft.objects.filter(documentation=doc).first() or DocumentationDraft(documentation=doc)
        earlier = draft.ticked_at() if draft.pk and draft.base_version == doc.version else {}
        saved = dict(doc.steps_done.values_list("step_id", "done_at"))
        ticked = {pk: saved.get(pk) or earlier.get(pk) or now for pk in sorted(set(steps) & valid_steps)}
        draft.base_version, draft.values = doc.version, dict(values)
        draft.steps_ticked = {str(pk): at.isoformat() for pk, at in ticked.items()}
        draft.saved_at, draft.saved_by = now, by
        draft.save()
    return draft


def check_drug(
    order: ProcedureOrder, product: CatalogMedication, *, lot_number: str, expiry_date: date, scanned: bool
) -> None:
    """This package may be given on this order: in date, the drug ordered, and no allergy stop.

    Asked when a package is scanned (the page says so at once) and again when the dose is recorded.
    """
    if expiry_date < timezone.localdate():
        raise ExpiredLot(
            f"Lot {lot_number} of {product} expired on {expiry_date:%m/%d/%Y}. "
            "Don't give it: take a lot that is in date and set this one aside."
        )
    if not product.is_active:
        raise WrongDrug(f"{product} is no longer in the clinic's catalog.")
    ordered = [o.medication for o in order.ordered_medications.select_related("medication")]
    if ordered and product.pk not in {m.pk for m in ordered}:
        how = "scanned" if scanned else "chose"
        raise WrongDrug(
            f"Wrong drug: you {how} {product}, but {', '.join(map(str, ordered))} was ordered. Don't give it."
        )
    conflicts = drugs.medication_conflicts(order.handoff.patient, product)
    if conflicts and not drugs.is_overridden(order, product):
        raise AllergyStop(drugs.conflict_message(order.handoff.patient, product, conflicts))


def check_medication(order: ProcedureOrder, medication: Medication) -> None:
    """The drug may be given on this order: check_drug, then one of its routes and a dose it can be billed in."""
    product = medication.product
    check_drug(
        order,
        product,
        lot_number=medication.lot_number,
        expiry_date=medication.expiry_date,
        scanned=medication.entry == MedicationAdministration.Entry.SCANNED,
    )
    if medication.route not in product.routes:
        routes = ", ".join(product.routes)
        raise WrongDrug(f"{product} is given {routes}, not {medication.route}.")
    if product.hcpcs_code and product.billing_units(medication.dose, medication.unit) is None:
        raise WrongDrug(
            f"Give the dose of {product} in {product.billing_unit} (its billing unit), not {medication.unit}."
        )


def procedure_add_medication(
    *, order: ProcedureOrder, by: User, version: int, medication: Medication
) -> MedicationAdministration:
    """Record a medication given: from the catalog, in date, the one ordered, and not a drug the patient is
    allergic to unless a clinician overrode it (checked again here, under the lock, whatever the page showed)."""
    require(by, "procedures.perform_procedure", "document procedures")
    if medication.dose <= 0 or not medication.lot_number.strip():
        raise TransitionNotAllowed("Give the drug, a dose above zero and the lot number.")
    with transaction.atomic():
        locked = _lock(order)
        check_add_medication(locked, by)
        check_medication(locked, medication)
        doc = _lock_documentation(locked, version=version)
        given = MedicationAdministration.objects.create(
            documentation=doc,
            medication=medication.product,
            drug=medication.drug,
            dose=medication.dose,
            unit=medication.unit,
            route=medication.route,
            site=medication.site.strip(),
            lot_number=medication.lot_number.strip().upper(),
            expiry_date=medication.expiry_date,
            administered_by=by,
            entry=medication.entry,
            gtin=medication.gtin if medication.entry == MedicationAdministration.Entry.SCANNED else "",
        )
        _bump_version_keeping_draft(doc, by=by)
        record(locked, by=by, action=Action.MEDICATION, note=str(given))
    return given


def check_mark_medication_error(order: ProcedureOrder, by: User) -> None:
    require(by, "procedures.perform_procedure", "document procedures")
    _require_editable(order, what="its medication can't be changed", late="Add an addendum to correct it.")
    _require_performer(order, by, doing="correct its medication")


def medication_mark_error(*, administration: MedicationAdministration, by: User, reason: str) -> MedicationError:
    """Mark a medication entry entered in error: it stays, struck through, with who, when and why."""
    reason = reason.strip()
    if not reason:
        raise TransitionNotAllowed("Say why this entry was made in error.")
    order = administration.documentation.order
    with transaction.atomic():
        locked = _lock(order)
        check_mark_medication_error(locked, by)
        if MedicationError.objects.filter(administration=administration).exists():
            raise TransitionNotAllowed(f"{administration.drug} is already marked entered in error.")
        doc = ProcedureDocumentation.objects.select_for_update().get(order=locked)
        error = MedicationError.objects.create(administration=administration, reason=reason[:200], marked_by=by)
        _bump_version_keeping_draft(doc, by=by)
        record(locked, by=by, action=Action.MEDICATION, note=f"Entered in error: {administration} ({reason[:120]})")
    return error


def check_override_allergy(order: ProcedureOrder, by: User) -> None:
    require(by, "procedures.override_allergy", "override an allergy stop (a clinician does)")
    if order.status in DONE_STATUSES:
        raise TransitionNotAllowed(f"This procedure is {PROCEDURE.name(order.status)}.")


def _record_override(
    locked: ProcedureOrder,
    medication: CatalogMedication,
    conflicts: list[Conflict],
    *,
    by: User,
    reason: str,
    stage: str,
) -> AllergyOverride:
    """Under the caller's lock: a clinician's override of these conflicts, recorded with its event."""
    check_override_allergy(locked, by)
    override = AllergyOverride.objects.create(
        order=locked,
        medication=medication,
        conflicts="; ".join(str(c) for c in conflicts),
        reason=reason.strip()[:300],
        stage=stage,
        overridden_by=by,
    )
    record(locked, by=by, action=Action.ALLERGY_OVERRIDE, note=f"{medication}: {reason.strip()[:150]}")
    return override


def allergy_override(
    *, order: ProcedureOrder, medication: CatalogMedication, by: User, reason: str, stage: str
) -> AllergyOverride:
    """A clinician lifts the allergy stop on one drug for one procedure, with a reason; recorded."""
    if not reason.strip():
        raise TransitionNotAllowed("Give the reason for giving it despite the allergy.")
    with transaction.atomic():
        locked = _lock(order)
        check_override_allergy(locked, by)
        conflicts = drugs.medication_conflicts(locked.handoff.patient, medication)
        if not conflicts:
            raise TransitionNotAllowed(
                f"{medication} runs into none of {locked.handoff.patient.full_name}'s allergies."
            )
        return _record_override(locked, medication, conflicts, by=by, reason=reason, stage=stage)


def medications_order(
    *, order: ProcedureOrder, medications: Sequence[CatalogMedication], by: User, override_reason: str = ""
) -> list[OrderedMedication]:
    """Order drugs with a procedure, checked against the allergies: a match stops the order unless the
    orderer is a clinician who gives a reason (the override is recorded with the order)."""
    if not medications:
        return []
    with transaction.atomic():
        locked = _lock(order)
        patient = locked.handoff.patient
        for medication in medications:
            if not medication.is_active:
                raise WrongDrug(f"{medication} is no longer in the clinic's catalog.")
            conflicts = drugs.medication_conflicts(patient, medication)
            if not conflicts:
                continue
            if not override_reason.strip():
                raise AllergyStop(drugs.conflict_message(patient, medication, conflicts))
            # Already locked and checked here: the override is recorded without doing either again.
            _record_override(
                locked, medication, conflicts, by=by, reason=override_reason, stage=AllergyOverride.Stage.ORDERING
            )
        ordered = OrderedMedication.objects.bulk_create(
            [OrderedMedication(order=locked, medication=m, ordered_by=by) for m in medications]
        )
        record(locked, by=by, action=Action.ORDERED, note="Medication: " + ", ".join(map(str, medications)))
    return ordered


def procedure_perform(*, order: ProcedureOrder, by: User, version: int) -> ProcedureOrder:
    """Mark the procedure performed, once its documentation is complete."""
    require(by, "procedures.perform_procedure", "perform procedures")
    with transaction.atomic():
        locked = _lock(order)
        check_finish(locked, by)
        doc = _lock_documentation(locked, version=version)
        _require_complete(locked, doc, doing="finish")
        DocumentationDraft.objects.filter(documentation=doc).delete()
        locked.performed_at = timezone.now()
        move(locked, table=PROCEDURE, to=S.PERFORMED, by=by, action=Action.PERFORMED, fields=("performed_at",))
    return order


def procedure_request_cosign(*, order: ProcedureOrder, by: User) -> ProcedureOrder:
    """Send a performed procedure to the supervisors' co-sign queue; it no longer holds the patient,
    so the handoff completes when nothing else does (procedures.workflow.AT_PATIENT_STATUSES)."""
    require(by, "procedures.perform_procedure", "perform procedures")
    with transaction.atomic():
        locked = _lock(order)
        _require_performer(locked, by, doing="send it for co-sign")
        if locked.supervision != Supervision.COSIGN:
            raise TransitionNotAllowed("This procedure doesn't need a co-sign.")
        move(locked, table=PROCEDURE, to=S.AWAITING_COSIGN, by=by, action=Action.COSIGN_REQUESTED)
        # Done for the patient: the co-sign is the supervisor's and the performer's, not the station's.
        _complete_handoff_if_done(locked.handoff, by=by)
    return order


def procedure_complete(*, order: ProcedureOrder, by: User) -> ProcedureOrder:
    """Complete a performed procedure that needs no co-sign; it yields its charge line."""
    require(by, "procedures.perform_procedure", "perform procedures")
    with transaction.atomic():
        locked = _lock(order)
        _require_performer(locked, by, doing="complete it")
        if locked.supervision == Supervision.COSIGN:
            raise TransitionNotAllowed("A supervisor must co-sign this procedure to complete it.")
        PROCEDURE.check(locked.status, S.COMPLETED)
        note = f"Supervised by {locked.supervisor}, present" if locked.supervision == Supervision.PRESENT else ""
        _close(locked, by=by, action=Action.COMPLETED, note=note)
    return order


def procedure_finish(*, order: ProcedureOrder, by: User, version: int) -> ProcedureOrder:
    """Performed, then completed, or sent for co-sign when a supervisor reviews it afterwards."""
    with transaction.atomic():
        procedure_perform(order=order, by=by, version=version)
        if order.supervision == Supervision.COSIGN:
            procedure_request_cosign(order=order, by=by)
        else:
            procedure_complete(order=order, by=by)
    return order


def procedure_not_done(*, order: ProcedureOrder, by: User, reason: str, note: str = "") -> ProcedureOrder:
    """Close an ordered or started procedure that won't be done today, with the reason."""
    require(by, "procedures.perform_procedure", "close procedures")
    if reason not in CHOSEN_NOT_DONE_REASONS:
        raise TransitionNotAllowed("Choose why the procedure is not done.")
    note = note.strip()
    with transaction.atomic():
        locked = _lock(order)
        check_not_done(locked, by)
        DocumentationDraft.objects.filter(documentation__order=locked).delete()
        locked.not_done_reason = reason
        locked.not_done_note = note[:300]
        text = NotDoneReason(reason).label + (f": {note}" if note else "")
        move(
            locked,
            table=PROCEDURE,
            to=S.NOT_DONE,
            by=by,
            action=Action.NOT_DONE,
            note=text,
            fields=("not_done_reason", "not_done_note"),
        )
        _complete_handoff_if_done(locked.handoff, by=by)
    return order


# A procedure in one of these refuses its handoff's cancel: its performer finishes and documents it,
# or records it as not done, first. The cancel's handler and the page's question both read this.
CANCEL_REFUSING_STATUSES = (S.IN_PROGRESS,)


def _cancel_refusals(started: Sequence[str]) -> list[str]:
    """Why the handoff's cancel is refused, given the names of its procedures in CANCEL_REFUSING_STATUSES."""
    if not started:
        return []
    one = len(started) == 1
    return [
        f"{', '.join(started)} {'is' if one else 'are'} being performed; finish {'it' if one else 'them'} "
        f"or record {'it' if one else 'them'} as not done before cancelling the handoff."
    ]


def procedures_cancel_blockers(handoff: Handoff) -> list[str]:
    """Why procedures_close_for_cancel would refuse now (hooks.handoff_cancel_blockers): one query."""
    started = (
        ProcedureOrder.objects.filter(handoff=handoff, status__in=CANCEL_REFUSING_STATUSES)
        .order_by("id")
        .values_list("procedure_type__name", flat=True)
    )
    return _cancel_refusals(list(started))


def procedures_close_for_cancel(handoff: Handoff, by: User, reason: str) -> None:
    """The handoff is being cancelled (handoff_cancel checked who may, and holds its lock): each
    procedure not started is closed as not done, with the cancel's reason, in that transaction.

    A procedure being performed refuses the cancel (CANCEL_REFUSING_STATUSES). Performed ones stay
    as they are (documented, co-signed as ever).
    """
    orders = list(
        ProcedureOrder.objects.select_for_update(of=("self",), no_key=True)
        .filter(handoff=handoff, status__in=(S.ORDERED, *CANCEL_REFUSING_STATUSES))
        .select_related("procedure_type")
        .order_by("id")
    )
    refusals = _cancel_refusals([o.procedure_type.name for o in orders if o.status in CANCEL_REFUSING_STATUSES])
    if refusals:
        raise TransitionNotAllowed(" ".join(refusals))
    for order in orders:
        order.not_done_reason, order.not_done_note = NotDoneReason.HANDOFF_CANCELLED, reason[:300]
        move(
            order,
            table=PROCEDURE,
            to=S.NOT_DONE,
            by=by,
            action=Action.NOT_DONE,
            note=f"Handoff cancelled: {reason}",
            fields=("not_done_reason", "not_done_note"),
        )


# --- Supervision -------------------------------------------------------------------------------


def procedure_cosign(*, order: ProcedureOrder, by: User, note: str = "") -> ProcedureOrder:
    """A supervisor who is competent for the procedure co-signs a trainee's work; it completes."""
    with transaction.atomic():
        locked = _lock(order)
        check_review(locked, by, verb="co-sign")
        locked.cosigned_by = by
        locked.cosigned_at = timezone.now()
        _close(locked, by=by, action=Action.COSIGNED, note=note.strip(), fields=("cosigned_by", "cosigned_at"))
    return order


def procedure_return(*, order: ProcedureOrder, by: User, comment: str) -> ProcedureOrder:
    """Send a trainee's documentation back with what to correct."""
    comment = comment.strip()
    if not comment:
        raise TransitionNotAllowed("Say what needs correcting.")
    with transaction.atomic():
        locked = _lock(order)
        check_review(locked, by, verb="return")
        locked.returned_by = by
        locked.returned_at = timezone.now()
        locked.return_comment = comment[:500]
        move(
            locked,
            table=PROCEDURE,
            to=S.RETURNED,
            by=by,
            action=Action.RETURNED,
            note=comment,
            fields=("returned_by", "returned_at", "return_comment"),
        )
    return order


def procedure_resubmit(*, order: ProcedureOrder, by: User, note: str = "") -> ProcedureOrder:
    """Send corrected work back to the co-sign queue; something must have changed since the return."""
    require(by, "procedures.perform_procedure", "perform procedures")
    with transaction.atomic():
        # Documentation is edited only under the procedure's lock, so none lands between check and move.
        locked = _lock(order)
        check_resubmit(locked, by)
        move(locked, table=PROCEDURE, to=S.AWAITING_COSIGN, by=by, action=Action.RESUBMITTED, note=note.strip())
    return order


def procedure_add_addendum(*, order: ProcedureOrder, by: User, reason: str, text: str) -> Addendum:
    """Add a correction or late entry to documented work; the original documentation is kept as it was."""
    _require_addendum_role(by)
    text = text.strip()
    if not text:
        raise TransitionNotAllowed("Write the addendum.")
    if reason not in Addendum.Reason.values:
        raise TransitionNotAllowed("Choose the kind of addendum.")
    with transaction.atomic():
        locked = _lock(order)
        check_addendum(locked, by)
        addendum = Addendum.objects.create(order=locked, reason=reason, text=text, author=by)
        record(
            locked,
            by=by,
            action=Action.ADDENDUM,
            note=f"{addendum.get_reason_display()}: {text}",
        )
    return addendum


# --- Competency --------------------------------------------------------------------------------


def competency_sign_off(
    *, user: User, procedure_type: ProcedureType, by: User, expires_on: date | None = None
) -> Competency:
    """Sign a staff member off as competent to perform a procedure on their own."""
    require(by, "procedures.sign_off_competency", "sign staff off")
    if by.pk == user.pk:
        raise SelfReview("You can't sign yourself off; ask another supervisor.")
    if not user.is_active or not user.has_perm("procedures.perform_procedure"):
        raise TransitionNotAllowed(f"{user} doesn't perform procedures.")
    today = timezone.localdate()
    expires_on = expires_on or today + timedelta(days=COMPETENCY_VALID_DAYS)
    if expires_on <= today:
        raise TransitionNotAllowed("The sign-off must run until a date in the future.")
    with transaction.atomic():
        competency, _ = Competency.objects.get_or_create(user=user, procedure_type=procedure_type)
        competency = Competency.objects.select_for_update().get(pk=competency.pk)
        competency.signed_off_by = by
        competency.signed_off_at = timezone.now()
        competency.expires_on = expires_on
        competency.save(update_fields=["signed_off_by", "signed_off_at", "expires_on"])
    return competency
