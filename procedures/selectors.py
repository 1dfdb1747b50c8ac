"""Reads of procedures for the pages, with their access checks and joins applied together."""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property

from django.db.models import Count, Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from backoffice.allergies import Conflict
from backoffice.models import Credential, Handoff, Station, User
from backoffice.selectors import load_staff_names
from backoffice.transitions import Offer, offer
from procedures import drugs, services
from procedures.models import (
    Addendum,
    AllergyOverride,
    ChargeLine,
    Competency,
    DocumentationDraft,
    Medication,
    MedicationAdministration,
    ProcedureDocumentation,
    ProcedureEvent,
    ProcedureOrder,
    ProcedureOrderQuerySet,
    ProcedureStep,
    ProcedureType,
    StepCompletion,
)
from procedures.workflow import AT_PATIENT_STATUSES, ProcedureStatus

# A credential this close to its expiry date is flagged on the competency page.
CREDENTIAL_WARNING_DAYS = 30


def open_procedures(handoff: Handoff) -> list[str]:
    """The handoff's procedures that still need the patient (hooks.open_items), as a page names them:
    "Venipuncture (in progress)". One query. Work awaiting co-sign or returned no longer holds them."""
    rows = (
        ProcedureOrder.objects.filter(handoff=handoff, status__in=AT_PATIENT_STATUSES)
        .order_by("id")
        .values_list("procedure_type__name", "status")
    )
    return [f"{name} ({ProcedureStatus(status).label.lower()})" for name, status in rows]


def procedures_under_way(handoff: Handoff) -> list[str]:
    """The handoff's procedures being performed now (hooks.under_way), by name. One query."""
    rows = ProcedureOrder.objects.filter(handoff=handoff, status=ProcedureStatus.IN_PROGRESS).order_by("id")
    return list(rows.values_list("procedure_type__name", flat=True))


def equipment_needed(handoff: Handoff) -> list[tuple[str, int, str]]:
    """The equipment the handoff's procedures not yet finished need at the station (hooks.equipment_needed):
    (procedure, equipment id, equipment name), one row each. One query."""
    rows = (
        ProcedureOrder.objects.filter(
            handoff=handoff,
            status__in=(ProcedureStatus.ORDERED, ProcedureStatus.IN_PROGRESS),
            procedure_type__required_equipment__isnull=False,
        )
        .order_by("id", "procedure_type__required_equipment__name")
        .values_list(
            "procedure_type__name", "procedure_type__required_equipment__id", "procedure_type__required_equipment__name"
        )
    )
    return list(rows)


def open_procedure_count(handoff: Handoff) -> int:
    return len(open_procedures(handoff))


def patient_of_procedure(ref: str) -> int | None:
    """The patient of the procedure whose opaque id a URL carries (for refusals in the access log)."""
    return ProcedureOrder.objects.filter(uuid=ref).values_list("handoff__patient_id", flat=True).first()


def procedure_orders_by_handoff(handoff_ids: Iterable[int]) -> dict[int, list[ProcedureOrder]]:
    """One query for the procedures of many handoffs, for list pages."""
    grouped: dict[int, list[ProcedureOrder]] = defaultdict(list)
    for order in ProcedureOrder.objects.filter(handoff_id__in=list(handoff_ids)).select_related("procedure_type"):
        grouped[order.handoff_id].append(order)
    return grouped


def active_procedure_types() -> list[ProcedureType]:
    return list(ProcedureType.objects.filter(is_active=True).order_by("category", "name"))


def procedures_for_handoff(handoff: Handoff) -> list[ProcedureOrder]:
    """The handoff page's procedure panel: the orders with their types in one query, and the staff
    they name (performer, supervisor, co-signer) in a second once someone has started one."""
    orders = list(ProcedureOrder.objects.filter(handoff=handoff).select_related("procedure_type").order_by("id"))
    load_staff_names(orders, "performer", "supervisor", "cosigned_by")
    return orders


def _require(user: User, perm: str) -> None:
    if not user.has_perm(perm):
        raise Http404


def procedure_for_user(*, user: User, uuid: str) -> ProcedureOrder:
    """One procedure by its opaque id, or 404 for a user whose role may not see procedures."""
    _require(user, "procedures.view_procedureorder")
    try:
        return ProcedureOrder.objects.select_related(
            "handoff__patient",
            "handoff__station",
            "handoff__claimed_by",
            "handoff__ordering_clinician",
            "handoff__exam_room",
            "procedure_type",
            "performer",
            "station",
            "supervisor",
            "cosigned_by",
            "returned_by",
        ).get(uuid=uuid)
    except (ProcedureOrder.DoesNotExist, ValueError):
        raise Http404 from None


@dataclass
class ProcedureRecord:
    """Everything the procedure page shows about one procedure's documentation."""

    documentation: ProcedureDocumentation | None
    steps: list[tuple[ProcedureStep, StepCompletion | None]] = field(default_factory=list)
    events: list[ProcedureEvent] = field(default_factory=list)


def procedure_record(order: ProcedureOrder) -> ProcedureRecord:
    """The documentation with its steps, vitals, medications and addenda, and the event trail."""
    documentation = (
        ProcedureDocumentation.objects.filter(order=order)
        .select_related("consent_by", "timeout_by", "updated_by")
        .prefetch_related(
            "steps_done__done_by", "vitals__taken_by", "medications__administered_by", "medications__error__marked_by"
        )
        .first()
    )
    done = {c.step_id: c for c in documentation.steps_done.all()} if documentation else {}
    steps = [(step, done.get(step.pk)) for step in order.procedure_type.steps.all()]
    events = list(order.events.select_related("actor").order_by("at", "id"))
    return ProcedureRecord(documentation=documentation, steps=steps, events=events)


def documentation_draft(documentation: ProcedureDocumentation, user: User) -> DocumentationDraft | None:
    """The user's unsaved draft of this documentation. A draft is always of the current version (a
    save deletes it, a draft of another version is refused, a medication carries it along); the
    filter on the version keeps that promise here too."""
    return DocumentationDraft.objects.filter(
        documentation=documentation, base_version=documentation.version, saved_by=user
    ).first()


@dataclass(frozen=True)
class AllergyStopShown:
    """A drug this procedure gives that runs into the patient's allergies, and its override if any."""

    medication: Medication
    conflicts: list[Conflict]
    override: AllergyOverride | None


def allergy_stops(order: ProcedureOrder) -> list[AllergyStopShown]:
    """The drugs ordered with the procedure (or, none ordered, the catalog's drugs it gives) that the
    patient's allergies stop: what the page warns of before anyone scans, as procedures.services refuses."""
    ordered = [o.medication for o in order.ordered_medications.select_related("medication")]
    candidates = ordered or list(
        Medication.objects.filter(is_active=True, administration_procedure_id=order.procedure_type_id)
    )
    overrides = {o.medication_id: o for o in order.allergy_overrides.select_related("overridden_by")}
    patient = order.handoff.patient
    stops = []
    for medication in candidates:
        conflicts = drugs.medication_conflicts(patient, medication)
        if conflicts:
            stops.append(AllergyStopShown(medication, conflicts, overrides.get(medication.pk)))
    return stops


def addenda(order: ProcedureOrder) -> list[Addendum]:
    return list(order.addenda.select_related("author").order_by("created_at", "id"))


def eligible_supervisors(*, procedure_type: ProcedureType, performer: User) -> QuerySet[User]:
    """Supervisors signed off for this procedure, with current credentials, other than the performer.

    procedures.services re-checks each rule when a supervisor is named; this list only spares the
    MA from picking someone who would be refused.
    """
    today = timezone.localdate()
    current = Q(competencies__procedure_type=procedure_type, competencies__signed_off_at__isnull=False) & (
        Q(competencies__expires_on__isnull=True) | Q(competencies__expires_on__gte=today)
    )
    lapsed = Credential.objects.filter(expires_on__lt=today).values("user_id")
    return (
        _staff_with("supervise_procedure")
        .filter(current)
        .exclude(pk=performer.pk)
        .exclude(pk__in=lapsed)
        .filter(credentials__isnull=False)
        .distinct()
        .order_by("last_name", "first_name")
    )


def _staff_with(codename: str) -> QuerySet[User]:
    perm = Q(groups__permissions__codename=codename, groups__permissions__content_type__app_label="procedures") | Q(
        user_permissions__codename=codename, user_permissions__content_type__app_label="procedures"
    )
    return User.objects.filter(perm, is_active=True)


def performing_staff() -> QuerySet[User]:
    return _staff_with("perform_procedure").distinct().order_by("last_name", "first_name")


# --- Procedure queue ---------------------------------------------------------------------------


def procedure_queue(*, user: User) -> ProcedureOrderQuerySet:
    """Open procedures, STAT first, then the patient longest in the back office, each patient's in the order
    they were ordered: all of them for supervisors, an MA's own for an MA.

    Not by the time in the current status: a procedure started, documented or sent for co-sign would
    jump below the ones still waiting, and a patient's procedures would shuffle at every step."""
    if user.has_perm("procedures.supervise_procedure"):
        visible = Q()
    elif user.has_perm("procedures.perform_procedure"):
        visible = Q(performer=user) | Q(performer__isnull=True, handoff__claimed_by=user)
    else:
        raise Http404
    return (
        ProcedureOrder.objects.open()
        .filter(visible)
        .select_related(
            "handoff__patient",
            "handoff__station",
            "procedure_type",
            "performer",
            "station",
            "supervisor",
            "returned_by",
            "documentation",
        )
        # What the supervisor reads before co-signing inline: one more query for every row's medications.
        .prefetch_related(
            # An entry marked in error comes with its mark (a join, not a query), so the row strikes it through.
            Prefetch("documentation__medications", queryset=MedicationAdministration.objects.select_related("error"))
        )
        # The handoff's priority and wait, as on the handoff queue (Priority.STAT is 1); then as ordered.
        .order_by("handoff__priority", "handoff__created_at", "handoff_id", "created_at", "id")
    )


@dataclass(frozen=True)
class QueueSummary:
    """The whole filtered procedure queue, whichever page is shown: open procedures by status, and the
    one waiting longest in its current status."""

    counts: dict[str, int]
    oldest: int | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def procedure_queue_summary(orders: QuerySet[ProcedureOrder]) -> QueueSummary:
    """Two queries, whatever the queue's length."""
    bare = orders.order_by().select_related(None).prefetch_related(None)
    counts = dict(bare.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    oldest = bare.order_by("status_changed_at", "pk").values_list("pk", flat=True).first()
    return QueueSummary(counts=counts, oldest=oldest)


def reviews_of_my_work(*, user: User, since: datetime, limit: int = 10) -> list[ProcedureEvent]:
    """The co-signs and returns of procedures this user performed, since `since`, newest first: the
    performer's queue tells them, since the patient (and the handoff) may long be gone. One query."""
    if not user.has_perm("procedures.perform_procedure"):
        raise Http404
    return list(
        ProcedureEvent.objects.filter(
            order__performer=user,
            action__in=(ProcedureEvent.Action.COSIGNED, ProcedureEvent.Action.RETURNED),
            at__gte=since,
        )
        .select_related("actor", "order__procedure_type", "order__handoff__patient")
        .order_by("-at", "-id")[:limit]
    )


# --- Competency page ---------------------------------------------------------------------------


@dataclass
class CompetencyCell:
    procedure_type: ProcedureType
    competency: Competency | None
    today: date

    @property
    def state(self) -> str:
        c = self.competency
        if c is None or (c.signed_off_at is None and not c.supervised_count):
            return "none"
        if c.signed_off_at is None:
            return "training"
        return "competent" if c.is_current(self.today) else "lapsed"


@dataclass
class StaffRow:
    user: User
    credentials: list[Credential]
    cells: list[CompetencyCell]
    today: date

    @property
    def credential_state(self) -> str:
        if not self.credentials:
            return "missing"
        soonest = min(c.expires_on for c in self.credentials)
        if soonest < self.today:
            return "expired"
        if soonest <= self.today + timedelta(days=CREDENTIAL_WARNING_DAYS):
            return "expiring"
        return "current"

    @property
    def competent_count(self) -> int:
        return sum(1 for cell in self.cells if cell.state == "competent")

    @property
    def supervised_total(self) -> int:
        return sum(cell.competency.supervised_count for cell in self.cells if cell.competency)

    @property
    def roles(self) -> str:
        return ", ".join(sorted(g.name for g in self.user.groups.all()))


def competency_matrix(*, user: User) -> tuple[list[ProcedureType], list[StaffRow]]:
    """Staff who perform procedures against the active catalog; five queries whatever the numbers."""
    _require(user, "procedures.sign_off_competency")
    today = timezone.localdate()
    types = list(ProcedureType.objects.filter(is_active=True).order_by("name"))
    staff = performing_staff().prefetch_related(
        Prefetch("credentials", queryset=Credential.objects.order_by("expires_on")),
        Prefetch("competencies", queryset=Competency.objects.select_related("signed_off_by")),
        "groups",
    )
    rows = []
    for member in staff:
        by_type = {c.procedure_type_id: c for c in member.competencies.all()}
        cells = [CompetencyCell(procedure_type=t, competency=by_type.get(t.pk), today=today) for t in types]
        rows.append(StaffRow(user=member, credentials=list(member.credentials.all()), cells=cells, today=today))
    return types, rows


# --- Charges -----------------------------------------------------------------------------------


def charges_for_day(*, user: User, day: date) -> list[ChargeLine]:
    _require(user, "procedures.view_charges")
    return list(
        ChargeLine.objects.filter(service_date=day)
        .select_related("patient", "performer", "supervisor", "ordering_clinician", "order")
        .prefetch_related("drug_lines")  # the drugs billed beside each administration code
        .order_by("created_at", "id")
    )


def stations_for_filter() -> QuerySet[Station]:
    return Station.objects.filter(is_active=True).exclude(kind=Station.Kind.LAB_BENCH).order_by("name")


def oldest_wait(orders: list[ProcedureOrder]) -> datetime | None:
    return min((o.status_changed_at for o in orders), default=None)


class ProcedureActions:
    """What this user may do to this procedure now, each asked of the guard its service runs.

    Each answer is an Offer (truthy when the service would accept it, else carrying the service's
    own refusal), worked out when first read: the handoff page's panel reads only what it shows.
    """

    NAMES = ("start", "document", "add_medication", "finish", "not_done", "cosign", "return_", "resubmit", "addendum")

    def __init__(self, order: ProcedureOrder, user: User, *, facts: services.StaffFacts | None = None) -> None:
        self.order = order
        self.user = user
        # Shared by a list page's rows: the user's credentials and sign-offs are read once.
        self.facts = facts or services.StaffFacts(user)

    def _offer(self, check: Callable[[ProcedureOrder, User], None]) -> Offer:
        return offer(lambda: check(self.order, self.user))

    @cached_property
    def start(self) -> Offer:
        return self._offer(lambda o, u: services.check_start(o, u, facts=self.facts))

    @cached_property
    def needs_supervision(self) -> bool:
        """Starting needs a supervisor, present or co-signing: the start form asks which."""
        return bool(self.start) and services.needs_supervision(self.order, self.user, facts=self.facts)

    @cached_property
    def document(self) -> Offer:
        return self._offer(services.check_document)

    @cached_property
    def add_medication(self) -> Offer:
        return self._offer(services.check_add_medication)

    @cached_property
    def finish(self) -> Offer:
        return self._offer(services.check_finish)

    @cached_property
    def not_done(self) -> Offer:
        return self._offer(services.check_not_done)

    @cached_property
    def cosign(self) -> Offer:
        return self._offer(lambda o, u: services.check_review(o, u, verb="co-sign", facts=self.facts))

    @cached_property
    def return_(self) -> Offer:
        return self._offer(lambda o, u: services.check_review(o, u, verb="return", facts=self.facts))

    @cached_property
    def resubmit(self) -> Offer:
        return self._offer(services.check_resubmit)

    @cached_property
    def addendum(self) -> Offer:
        return self._offer(services.check_addendum)

    def allowed(self) -> set[str]:
        return {name for name in self.NAMES if getattr(self, name)}


def procedure_actions(
    order: ProcedureOrder, user: User, *, facts: services.StaffFacts | None = None
) -> ProcedureActions:
    return ProcedureActions(order, user, facts=facts)
