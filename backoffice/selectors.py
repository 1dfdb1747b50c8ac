"""Reads the core pages need, with their access checks and joins applied together."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.search import SearchQuery, SearchVector, SearchVectorExact
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Case, Count, Exists, F, ForeignKey, Model, Prefetch, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber
from django.http import Http404
from django.utils import timezone

from backoffice import hooks, services
from backoffice.models import AccessLog, Handoff, HandoffEvent, HandoffQuerySet, Patient, Station, User
from backoffice.text import MRN_PART_MIN, search_words
from backoffice.transitions import Offer, offer
from backoffice.workflow import OPEN_STATUSES, HandoffStatus, StationState


def _require_view(user: User) -> None:
    if not user.has_perm("backoffice.view_handoff"):
        raise Http404


def queue_handoffs(*, user: User) -> HandoffQuerySet:
    """Open handoffs, STAT first, then longest waiting."""
    _require_view(user)
    return Handoff.objects.open().for_lists().order_by("priority", "created_at")


def board_handoffs(*, user: User, per_status: int) -> HandoffQuerySet:
    """Open handoffs STAT first, then oldest, only the first per_status of each status in that order.

    The cap is a window function in the same query, so a busy day's hundreds of open handoffs
    cost one indexed read, not one query per column. The board reads row keys from it
    (backoffice.pages.fragments), so it joins nothing.
    """
    if not user.has_perm("backoffice.view_board"):
        raise Http404
    # Priority.STAT is 1: a STAT patient heads its column, and is never the one cut off by the cap.
    first = [F("priority").asc(), F("created_at").asc(), F("pk").asc()]
    rank = Window(RowNumber(), partition_by=[F("status")], order_by=first)
    return Handoff.objects.open().order_by(*first).annotate(rank_in_status=rank).filter(rank_in_status__lte=per_status)


def open_counts(handoffs: QuerySet[Handoff]) -> dict[str, int]:
    """How many handoffs each open status holds in this queryset, in one query."""
    counts = dict.fromkeys(OPEN_STATUSES, 0)
    for row in handoffs.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def handoff_for_user(*, user: User, uuid: str) -> Handoff:
    """One handoff by its opaque id, or 404 for a user whose role may not see handoffs."""
    _require_view(user)
    try:
        return Handoff.objects.for_lists().select_related("identity_verified_by").get(uuid=uuid)
    except (Handoff.DoesNotExist, ValueError):
        raise Http404 from None


def handed_back_to(*, user: User) -> list[Handoff]:
    """Handoffs the back office handed back to this clinician, waiting for their decision, oldest first."""
    _require_view(user)
    return list(
        Handoff.objects.filter(status=HandoffStatus.RETURNED, ordering_clinician=user)
        .select_related("patient")
        .order_by("created_at", "id")
    )


@dataclass(frozen=True)
class CarriedNeeds:
    """What a new handoff starts with from the patient: their interpreter and their precautions."""

    interpreter_needed: bool
    interpreter_language: str
    isolation: str
    isolation_from: Handoff | None  # the handoff whose precautions these are, to say so on the page
    open_handoff: Handoff | None  # the patient is already on the queue: a second handoff is confirmed


def carried_needs(*, patient: Patient, user: User) -> CarriedNeeds:
    """The needs a new handoff for this patient starts with; one query.

    The interpreter is the patient's own (their record). Isolation precautions come from the
    patient's open handoff, else from their latest handoff today: a clinic's precautions follow the
    visit's symptoms (droplet for a sore throat), so last week's are not offered as today's, while a
    patient sent back for more today still needs the precautions they had this morning.
    """
    _require_view(user)
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    recent = list(
        Handoff.objects.filter(Q(status__in=OPEN_STATUSES) | Q(created_at__gte=today), patient=patient)
        .select_related("ordering_clinician")
        .order_by("-created_at", "-id")[:10]
    )
    for handoff in recent:
        handoff.patient = patient  # the page names them: no query for the row we have
    open_ones = [h for h in recent if h.is_open]
    first_open = open_ones[-1] if open_ones else None
    source = first_open or (recent[0] if recent else None)
    isolated = source is not None and source.isolation != Handoff.Isolation.NONE
    return CarriedNeeds(
        interpreter_needed=patient.interpreter_needed,
        interpreter_language=patient.preferred_language if patient.interpreter_needed else "",
        isolation=source.isolation if source is not None and isolated else Handoff.Isolation.NONE,
        isolation_from=source if isolated else None,
        open_handoff=first_open,
    )


# What the pages show of a member of staff: User.__str__ (full name, else username).
STAFF_NAME_FIELDS = ("id", "username", "first_name", "last_name")


def load_staff_names(objects: Sequence[Model], *relations: str) -> None:
    """Fill these user relations of these objects from one query, name columns only.

    For pages that show who did something: cheaper than a join per relation (each adds columns to
    build and, past a few tables, Postgres planning time), and no query at all when they name nobody.
    """
    if not objects:
        return
    attnames: dict[str, str] = {}
    for name in relations:
        field = objects[0]._meta.get_field(name)
        if not isinstance(field, ForeignKey) or field.related_model is not User:
            raise TypeError(f"{name} is not a relation to a member of staff")
        attnames[name] = field.attname  # e.g. "claimed_by_id"
    ids = {getattr(obj, attname) for obj in objects for attname in attnames.values()} - {None}
    staff = User.objects.only(*STAFF_NAME_FIELDS).in_bulk(ids) if ids else {}
    for obj in objects:
        for name, attname in attnames.items():
            if (pk := getattr(obj, attname)) is not None:
                setattr(obj, name, staff[pk])  # fills Django's cache of the relation: no query later


def handoff_detail_for_user(*, user: User, uuid: str) -> Handoff:
    """handoff_for_user for the handoff page: the same access rule, read in two small queries.

    The handoff with its patient, exam room and station, then the staff it names (orderer, claimer,
    identity checker), names only. Joining all seven tables in one query cost Postgres 1-2 ms of
    planning (the join-order search) on every request; these two plan in a fifth of that.
    """
    _require_view(user)
    try:
        handoff = Handoff.objects.select_related("patient", "exam_room", "station").get(uuid=uuid)
    except (Handoff.DoesNotExist, ValueError):
        raise Http404 from None
    load_staff_names([handoff], "ordering_clinician", "claimed_by", "identity_verified_by")
    return handoff


def handoff_events(handoff: Handoff) -> list[HandoffEvent]:
    return list(handoff.events.select_related("actor").order_by("-at", "-id"))


def station_choices() -> list[tuple[str, str]]:
    """(code, name) of the active stations, for filter drop-downs; cached for a minute per process.

    The queue shows this list on every full load; building the ORM query cost more than running
    it. A station added or retired in admin shows in the list within a minute.
    """
    choices: list[tuple[str, str]] | None = cache.get(STATION_CHOICES_KEY)
    if choices is None:
        choices = list(Station.objects.filter(is_active=True).order_by("name").values_list("code", "name"))
        cache.set(STATION_CHOICES_KEY, choices, 60)
    return choices


STATION_CHOICES_KEY = "selectors:station_choices"


@dataclass(frozen=True)
class StationChoice:
    station: Station
    lacks: list[services.EquipmentNeed]  # empty: it has what the handoff's items need


@dataclass(frozen=True)
class StationPicker:
    """The ready stations for a handoff: those with every piece of equipment its items need first."""

    needs: list[services.EquipmentNeed]
    fitting: list[StationChoice]
    lacking: list[StationChoice]

    @property
    def by_item(self) -> list[tuple[str, list[str]]]:
        """The needs as the page says them: each item with the equipment it needs."""
        grouped: dict[str, list[str]] = {}
        for need in self.needs:
            for item in need.items:
                grouped.setdefault(item, []).append(need.name.lower())
        return list(grouped.items())


def station_picker(handoff: Handoff) -> StationPicker:
    """Ready stations for this handoff, each with what it lacks of what its items need. Two queries: the
    needs (one per app that has any, hooks.equipment_needed), the stations with their equipment's ids."""
    needs = services.equipment_needs(handoff)
    stations = list(
        Station.objects.filter(is_active=True, state=StationState.READY)
        .annotate(equipment_ids=ArrayAgg("equipment", filter=Q(equipment__isnull=False), default=Value([])))
        .order_by("kind", "name")
    )
    choices = [StationChoice(s, services.lacking(needs, set(s.equipment_ids))) for s in stations]
    return StationPicker(
        needs=needs, fitting=[c for c in choices if not c.lacks], lacking=[c for c in choices if c.lacks]
    )


def stations_with_occupant() -> list[Station]:
    """Active stations with their equipment's names, and the open handoff occupying each (two queries)."""
    names = ArrayAgg(
        "equipment__name", filter=Q(equipment__isnull=False), order_by="equipment__name", default=Value([])
    )
    stations: list[Station] = list(
        Station.objects.filter(is_active=True).annotate(equipment_names=names).order_by("kind", "name")
    )
    occupants = {
        h.station_id: h
        for h in Handoff.objects.open().filter(station__isnull=False).select_related("patient", "claimed_by")
    }
    for station in stations:
        station.occupant = occupants.get(station.pk)  # type: ignore[attr-defined]
    return stations


def searches_every_patient(user: User) -> bool:
    """Who hands patients off (MAs, clinicians) or oversees the floor (supervisors) finds any patient; a
    lab technician finds only the patients in the lab's work (minimum necessary)."""
    return user.has_perm("backoffice.add_handoff") or user.has_perm("backoffice.view_board")


@dataclass(frozen=True)
class PatientSearch:
    patients: list[Patient]  # what the searcher is shown
    withheld: list[int]  # ids of patients who matched outside the searcher's work: a denied row names them
    scoped: bool  # the search covered only the lab's work


# Dates of birth as people type them: the pages' own 03/14/1980, and ISO 1980-03-14.
DOB_FORMATS = ("%m/%d/%Y", "%Y-%m-%d", "%m-%d-%Y")


def _typed_date(word: str) -> date | None:
    for fmt in DOB_FORMATS:
        try:
            return datetime.strptime(word, fmt).date()
        except ValueError:
            continue
    return None


def patient_match(query: str) -> Q | None:
    """What a typed search asks of patients: each word a date of birth, or the start of a name word or
    of an MRN's digits (three or more; Patient.search_text), all of them; None when it asks nothing.

    Names are compared as the identity check compares them (backoffice.text.normal_name): no accents,
    no case. The search column's words are matched through its GIN index (patient_search_idx).
    """
    match = Q()
    terms: list[str] = []
    for word in query.replace(",", " ").split():
        if (born := _typed_date(word)) is not None:
            match &= Q(date_of_birth=born)
            continue
        for typed in search_words(word):
            # An MRN typed from its start ("M2001") is searched by its digits, as the column keeps them.
            term = "".join(c for c in typed if c.isdigit()) if any(c.isdigit() for c in typed) else typed
            if term.isdigit() and len(term) < MRN_PART_MIN:
                continue  # two digits match most MRNs: wait for a third
            terms.append(f"'{term}':*")  # only letters and digits: nothing to escape in a quoted lexeme
    if terms:
        words = SearchQuery(" & ".join(terms), search_type="raw", config="simple")
        match &= Q(SearchVectorExact(SearchVector("search_text", config="simple"), words))
    return match if match else None


def search_patients(query: str, *, user: User, limit: int = 10) -> PatientSearch:
    """Patients by exact MRN (a scanned wristband), else by name, date of birth or part of the MRN (patient_match).

    A lab technician's search is limited to patients with a specimen, test or send-out the lab has open,
    or that changed in the last LAB_SEARCH_RECENT_DAYS (the apps say which: backoffice.hooks.
    patient_work). Matches outside it are not shown; they are returned as ``withheld``. One query.
    """
    if not user.has_perm("backoffice.view_patient"):
        raise Http404
    scoped = not searches_every_patient(user)
    query = query.strip()
    if len(query) < 2:
        return PatientSearch(patients=[], withheld=[], scoped=scoped)
    exact = Q(mrn__iexact=query)
    by_words = patient_match(query) or Q(pk__in=[])
    open_count = Count("handoffs", filter=Q(handoffs__status__in=OPEN_STATUSES))
    if not scoped:
        found = list(Patient.objects.filter(exact))
        if not found:
            found = list(
                Patient.objects.filter(by_words)
                .annotate(open_handoffs=open_count)
                .order_by("family_name", "given_name", "id")[:limit]
            )
        return PatientSearch(patients=found, withheld=[], scoped=False)
    since = timezone.now() - timedelta(days=settings.LAB_SEARCH_RECENT_DAYS)
    # EXISTS of each app's work, per patient matched (their patient indexes), never a scan of the work.
    in_work = Q(pk__in=[])
    for work in hooks.patient_work(since):
        in_work |= Q(Exists(work))
    # The exact MRN first, then the rest; the lab's patients before the others, which are only counted.
    rows = list(
        Patient.objects.filter(exact | by_words)
        .annotate(
            open_handoffs=open_count,
            is_exact=Case(When(exact, then=True), default=False),
            in_work=Case(When(in_work, then=True), default=False),
        )
        .order_by("-is_exact", "-in_work", "family_name", "given_name", "id")[:limit]
    )
    if rows and rows[0].is_exact:
        rows = [r for r in rows if r.is_exact]
    return PatientSearch(
        patients=[r for r in rows if r.in_work],
        withheld=[r.pk for r in rows if not r.in_work],
        scoped=True,
    )


def find_patients(query: str, *, user: User, limit: int = 10) -> list[Patient]:
    """The patients this user's search shows (search_patients)."""
    return search_patients(query, user=user, limit=limit).patients


def access_log(*, user: User) -> QuerySet[AccessLog]:
    """Access rows, newest first, with their user and patients (one query for the patients of a page)."""
    if not user.has_perm("backoffice.view_accesslog"):
        raise PermissionDenied
    patients = Patient.objects.only("pk", "mrn", "family_name", "given_name").order_by("family_name", "given_name")
    return (
        # break_glass: the flag on a row written under emergency access (one LEFT JOIN, no query more).
        AccessLog.objects.select_related("user", "break_glass")
        .prefetch_related(Prefetch("patients", queryset=patients))
        .order_by("-at", "-id")
    )


class HandoffActions:
    """What this user may do to this handoff now, each asked of the guard its service runs.

    Each answer is an Offer (truthy when the service would accept it, else carrying the service's
    own refusal) worked out when first read, so a page pays only for what it shows.
    """

    def __init__(self, handoff: Handoff, user: User) -> None:
        self.handoff = handoff
        self.user = user

    def _offer(self, check: Callable[[Handoff, User], None]) -> Offer:
        return offer(lambda: check(self.handoff, self.user))

    @cached_property
    def claim(self) -> Offer:
        return self._offer(services.check_claim)

    @cached_property
    def release(self) -> Offer:
        return self._offer(services.check_release)

    @cached_property
    def assign_station(self) -> Offer:
        return self._offer(services.check_assign_station)

    @cached_property
    def verify_identity(self) -> Offer:
        return self._offer(services.check_verify_identity)

    @cached_property
    def start(self) -> Offer:
        return self._offer(services.check_start)

    @cached_property
    def complete(self) -> Offer:
        return self._offer(services.check_complete)

    @cached_property
    def may_cancel(self) -> Offer:
        """Whether this user may cancel the handoff in its state, its items aside (no query)."""
        return self._offer(services.check_cancel)

    @cached_property
    def cancel(self) -> Offer:
        """may_cancel, and then whether the apps would close every open item (a procedure being
        performed or a test on the bench refuses): asked, one query per app, only of who may cancel."""
        return self.may_cancel and offer(lambda: services.check_cancel_items(self.handoff))

    @cached_property
    def hand_back(self) -> Offer:
        """Hand the patient back (returned to the clinician, or cancelled, per MA_HAND_BACK): the claimer's,
        or a supervisor's; one query per app (what is under way, or what the cancel would refuse)."""
        return self._offer(services.check_hand_back)

    @cached_property
    def resend(self) -> Offer:
        return self._offer(services.check_resend)

    @cached_property
    def patient_left(self) -> Offer:
        """Record that the patient has gone: MAs and supervisors, while something is still theirs or
        pending (one query per app: what is under way, still open, or would be handed over)."""
        return offer(lambda: services.check_patient_left(self.handoff, self.user))

    @cached_property
    def works(self) -> bool:
        """Whether the user works this open handoff (its claimer, or a supervisor stepping in)."""
        return self.handoff.is_open and services.works_handoff(self.handoff, self.user)

    NAMES = (
        "claim",
        "release",
        "assign_station",
        "verify_identity",
        "start",
        "complete",
        "cancel",
        "hand_back",
        "resend",
        "patient_left",
    )

    def allowed(self) -> set[str]:
        return {name for name in self.NAMES if getattr(self, name)}


def handoff_actions(handoff: Handoff, user: User) -> HandoffActions:
    return HandoffActions(handoff, user)
