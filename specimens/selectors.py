"""Reads of specimens for the pages, with their access checks and joins applied together."""

from collections.abc import Callable
from functools import cached_property

from django.db.models import QuerySet
from django.http import Http404

from backoffice.models import User
from backoffice.transitions import Offer, offer
from specimens import services
from specimens.accession import normalise
from specimens.models import Specimen, SpecimenEvent
from specimens.workflow import SpecimenStatus

# The tracking list: specimens still moving through the back office, oldest first.
TRACKED_STATUSES: tuple[str, ...] = (
    SpecimenStatus.LABELLED,
    SpecimenStatus.COLLECTED,
    SpecimenStatus.IN_TRANSIT,
    SpecimenStatus.RECEIVED,
    SpecimenStatus.IN_TESTING,
)
# Also listed, on their own tab: kept in storage, or rejected and not yet disposed of.
KEPT_STATUSES: tuple[str, ...] = (SpecimenStatus.STORED, SpecimenStatus.REJECTED)
LISTED_STATUSES: tuple[str, ...] = TRACKED_STATUSES + KEPT_STATUSES


def _require_view(user: User) -> None:
    if not user.has_perm("specimens.view_specimen"):
        raise Http404


def specimen_for_user(*, user: User, uuid: str) -> Specimen:
    """One specimen by its opaque id, with what its page shows, or 404 for a role that may not see it."""
    _require_view(user)
    try:
        return Specimen.objects.select_related(
            "patient",
            "handoff__patient",
            "handoff__station",
            "handoff__claimed_by",
            "specimen_type",
            "container",
            "rejection_reason",
            "labelled_by",
            "collected_by",
            "received_by",
            "rejected_by",
            "disposed_by",
            "recollection_of",
        ).get(uuid=uuid)
    except (Specimen.DoesNotExist, ValueError):
        raise Http404 from None


def specimen_by_accession(*, user: User, scanned: str) -> Specimen | None:
    """The specimen a scanned or typed accession names, or None."""
    _require_view(user)
    return Specimen.objects.filter(accession=normalise(scanned)).first()


def specimen_events(specimen: Specimen) -> list[SpecimenEvent]:
    return list(specimen.events.select_related("actor").order_by("-at", "-id"))


def tracking_list(*, user: User, status: str = "") -> QuerySet[Specimen]:
    """Specimens still moving, STAT first then oldest, with their patient, container and handoff."""
    _require_view(user)
    statuses = (status,) if status in LISTED_STATUSES else TRACKED_STATUSES
    return (
        Specimen.objects.filter(status__in=statuses)
        .select_related("patient", "container", "specimen_type", "handoff", "received_by")
        .order_by("handoff__priority", "status_changed_at", "id")
    )


class SpecimenActions:
    """What this user may do to this specimen now, each asked of the guard its service runs."""

    NAMES = (
        "hand_over",
        "receive",
        "reject",
        "reprint",
        "confirm",
        "not_collected",
        "start_testing",
        "testing_done",
        "store",
        "dispose",
    )

    def __init__(self, specimen: Specimen, user: User) -> None:
        self.specimen = specimen
        self.user = user

    def _offer(self, check: Callable[[Specimen, User], None]) -> Offer:
        return offer(lambda: check(self.specimen, self.user))

    @cached_property
    def hand_over(self) -> Offer:
        return self._offer(services.check_hand_over)

    @cached_property
    def receive(self) -> Offer:
        return self._offer(services.check_receive)

    @cached_property
    def reject(self) -> Offer:
        return self._offer(services.check_reject)

    @cached_property
    def reprint(self) -> Offer:
        return self._offer(services.check_reprint)

    @cached_property
    def confirm(self) -> Offer:
        return self._offer(services.check_confirm)

    @cached_property
    def not_collected(self) -> Offer:
        return self._offer(services.check_not_collected)

    @cached_property
    def start_testing(self) -> Offer:
        return self._offer(services.check_start_testing)

    @cached_property
    def testing_done(self) -> Offer:
        return self._offer(services.check_testing_done)

    @cached_property
    def store(self) -> Offer:
        return self._offer(services.check_store)

    @cached_property
    def dispose(self) -> Offer:
        return self._offer(services.check_dispose)

    def allowed(self) -> set[str]:
        return {name for name in self.NAMES if getattr(self, name)}


def specimen_actions(specimen: Specimen, user: User) -> SpecimenActions:
    return SpecimenActions(specimen, user)
