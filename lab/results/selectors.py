"""Reads of the bench and of results for the pages, with their access checks and joins applied together."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import Offer, offer
from backoffice.workflow import OPEN_STATUSES
from lab.models import KitLot, Result, ResultEvent, TestDefinition, TestOrder
from lab.qc.lockout import qc_block
from lab.results import services
from lab.workflow import ResultStatus
from specimens.accession import normalise
from specimens.models import Specimen
from specimens.workflow import Location

IN_HOUSE = TestDefinition.Performed.IN_HOUSE


def _require(user: User, perm: str) -> None:
    if not user.has_perm(perm):
        raise Http404


# --- The bench ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchRow:
    specimen: Specimen
    pending: list[TestOrder]
    waiting_minutes: int  # since the bench received it
    in_clinic_minutes: int | None  # since the handoff, while the patient is still in the back office's hands

    @property
    def is_stat(self) -> bool:
        return self.specimen.handoff.is_stat


def _pending_orders() -> QuerySet[TestOrder]:
    return (
        TestOrder.objects.filter(test__performed=IN_HOUSE, status__in=services.ENTERABLE_ORDER_STATUSES)
        .select_related("test")
        .order_by("id")
    )


def bench_list(*, user: User, now: datetime | None = None) -> list[BenchRow]:
    """Specimens at the bench with in-house tests not yet resulted: STAT first, then longest waiting."""
    _require(user, "lab.enter_result")
    now = now or timezone.now()
    specimens = (
        Specimen.objects.filter(
            status__in=services.BENCH_SPECIMEN_STATUSES,
            location=Location.IN_HOUSE_BENCH,
            test_orders__in=_pending_orders(),
        )
        .distinct()
        .select_related("patient", "handoff", "container")
        .prefetch_related(Prefetch("test_orders", queryset=_pending_orders(), to_attr="pending"))
        .order_by("handoff__priority", "received_at", "id")
    )
    rows = []
    for s in specimens:
        since = s.received_at or s.status_changed_at
        in_clinic = (
            int((now - s.handoff.created_at).total_seconds() // 60) if s.handoff.status in OPEN_STATUSES else None
        )
        rows.append(BenchRow(s, s.pending, int((now - since).total_seconds() // 60), in_clinic))
    return rows


def bench_specimen_by_accession(*, user: User, scanned: str) -> Specimen | None:
    _require(user, "lab.enter_result")
    return Specimen.objects.filter(accession=normalise(scanned)).first()


def verification_list(*, user: User) -> list[Result]:
    """Results entered by someone else, waiting for this user's verification: STAT first, then oldest."""
    _require(user, "lab.verify_result")
    return list(
        Result.objects.filter(status=ResultStatus.ENTERED)
        .exclude(entered_by=user)
        .select_related("patient", "analyte", "order__test", "order__handoff", "specimen", "entered_by", "amends")
        .order_by("order__handoff__priority", "status_changed_at", "id")
    )


def review_list(*, user: User) -> list[Result]:
    """Results a failed QC put up for review (released) or holds back (unreleased), oldest first."""
    _require(user, "lab.verify_result")
    return list(
        Result.objects.filter(needs_review=True)
        .exclude(status=ResultStatus.SUPERSEDED)
        .select_related("patient", "analyte", "order__test", "specimen", "kit_lot")
        .order_by("entered_at", "id")
    )


# --- One specimen's results -----------------------------------------------------------------------


def specimen_for_results(*, user: User, uuid: str) -> Specimen:
    _require(user, "lab.view_result")
    try:
        return Specimen.objects.select_related(
            "patient", "handoff__patient", "handoff__ordering_clinician", "container", "specimen_type"
        ).get(uuid=uuid)
    except (Specimen.DoesNotExist, ValueError):
        raise Http404 from None


def result_for_user(*, user: User, uuid: str) -> Result:
    _require(user, "lab.view_result")
    try:
        return Result.objects.select_related(
            "patient",
            "analyte",
            "order__test",
            "order__handoff",
            "specimen__patient",
            "specimen__handoff__patient",
            "kit_lot__kit",
            "entered_by",
            "verified_by",
            "released_by",
            "amends",
        ).get(uuid=uuid)
    except (Result.DoesNotExist, ValueError):
        raise Http404 from None


def orders_of_specimen(specimen: Specimen) -> list[TestOrder]:
    """The in-house tests this specimen serves, each with all its results (superseded ones too), in order."""
    results = Result.objects.select_related(
        "analyte", "kit_lot__kit", "entered_by", "verified_by", "released_by", "amends", "specimen"
    ).order_by("analyte__position", "entered_at", "id")
    return list(
        TestOrder.objects.filter(specimen=specimen, test__performed=IN_HOUSE)
        .select_related("test", "specimen")
        .prefetch_related("test__analytes", Prefetch("results", queryset=results))
        .order_by("id")
    )


def result_events(results: list[Result]) -> list[ResultEvent]:
    return list(
        ResultEvent.objects.filter(result__in=results).select_related("actor", "result__analyte").order_by("-at", "-id")
    )


@dataclass(frozen=True)
class LotChoice:
    lot: KitLot
    blocked: str | None  # why patient testing on it is locked now, or None


def lot_choices(test: TestDefinition) -> list[LotChoice]:
    """The active lots of kits for this test, usable ones first; each other one says why it is locked."""
    lots = KitLot.objects.filter(kit__tests=test, is_active=True).select_related("kit").order_by("expiry_date", "id")
    choices = [LotChoice(lot, qc_block(test, lot)) for lot in lots]
    return sorted(choices, key=lambda c: c.blocked is not None)


# --- What a user may do ---------------------------------------------------------------------------


class ResultActions:
    """What this user may do to this result now, each asked of the guard its service runs."""

    NAMES = ("correct", "verify", "release", "send_back", "amend", "close_review")

    def __init__(self, result: Result, user: User) -> None:
        self.result = result
        self.user = user

    def _offer(self, check: Callable[[Result, User], None]) -> Offer:
        return offer(lambda: check(self.result, self.user))

    @cached_property
    def correct(self) -> Offer:
        return self._offer(services.check_correct)

    @cached_property
    def verify(self) -> Offer:
        return self._offer(services.check_verify)

    @cached_property
    def release(self) -> Offer:
        return self._offer(services.check_release)

    @cached_property
    def send_back(self) -> Offer:
        return self._offer(services.check_send_back)

    @cached_property
    def amend(self) -> Offer:
        return self._offer(services.check_amend)

    @cached_property
    def close_review(self) -> Offer:
        return self._offer(services.check_close_review)

    def allowed(self) -> set[str]:
        return {name for name in self.NAMES if getattr(self, name)}


def result_actions(result: Result, user: User) -> ResultActions:
    return ResultActions(result, user)


def enter_offer(order: TestOrder, user: User) -> Offer:
    return offer(lambda: services.check_enter(order, user))
