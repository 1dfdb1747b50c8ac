"""Reads of lab test orders for the pages that compose apps."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import Http404

from backoffice.models import Handoff, User
from lab.inbox.selectors import released_results
from lab.models import RecollectionCall, Result, TestDefinition, TestOrder
from lab.workflow import TO_COLLECT_STATUSES, CallKind, CallStatus, ResultStatus, TestOrderStatus
from specimens.models import Container, Specimen, SpecimenType
from specimens.workflow import SpecimenStatus


def open_tests(handoff: Handoff) -> list[str]:
    """Tests still needing the patient (hooks.open_items): nothing collected for them yet (or to be
    collected again), named as a page names them: "CBC (to collect)". One query.

    A collected specimen no longer holds the patient or the station.
    """
    names = (
        TestOrder.objects.filter(handoff=handoff, status=TestOrder.Status.ORDERED)
        .order_by("id")
        .values_list("test__short_name", flat=True)
    )
    return [f"{name} (to collect)" for name in names]


def open_test_count(handoff: Handoff) -> int:
    return len(open_tests(handoff))


def patients_in_lab_work(since: datetime) -> QuerySet[TestOrder]:
    """The outer query's patient's tests the lab has open (ordered, drawn, on the bench, sent out: a
    send-out is its test's) or that changed since `since` (resulted, cancelled)."""
    open_statuses = (
        TestOrderStatus.ORDERED,
        TestOrderStatus.COLLECTED,
        TestOrderStatus.IN_PROGRESS,
        TestOrderStatus.SENT_OUT,
    )
    return TestOrder.objects.filter(handoff__patient=OuterRef("pk")).filter(
        Q(status__in=open_statuses) | Q(status_changed_at__gte=since)
    )


def test_orders_by_handoff(handoff_ids: Iterable[int]) -> dict[int, list[TestOrder]]:
    """The handoffs' ordered tests, each with its released results (``released_results``): two queries.

    The queue and the board show a result as soon as it is released, while the patient is still here.
    """
    grouped: dict[int, list[TestOrder]] = defaultdict(list)
    orders = (
        TestOrder.objects.filter(handoff_id__in=list(handoff_ids))
        .select_related("test")
        .prefetch_related(Prefetch("results", queryset=released_results(), to_attr="released_results"))
    )
    for order in orders:
        grouped[order.handoff_id].append(order)
    return grouped


def released_results_version(handoff_id: str) -> str:
    """SQL for a token that changes whenever a result of the handoff's tests is released or superseded.

    Part of the queue's and the board's cached row keys (backoffice.pages.fragments): a row shows
    its results, so a released one must be a new key, not wait for the cache to expire.
    """
    return (
        f"(SELECT count(*)::text || ',' || coalesce(extract(epoch FROM max(r.status_changed_at))::text, '') "  # noqa: S608
        f'FROM "{Result._meta.db_table}" r JOIN "{TestOrder._meta.db_table}" o ON o.id = r.order_id '
        f"WHERE o.handoff_id = {handoff_id} AND r.status IN ('{ResultStatus.RELEASED}', '{ResultStatus.SUPERSEDED}'))"
    )


def active_tests() -> list[TestDefinition]:
    return list(TestDefinition.objects.filter(is_active=True).order_by("performed", "name"))


# Between the short names of a container's tests ("CBC, HbA1c"); short names may hold spaces.
TESTS_SEPARATOR = ", "


@dataclass(frozen=True)
class DrawItem:
    """One container to fill: the specimen it holds and the ordered tests it serves."""

    specimen_type: SpecimenType
    container: Container
    orders: tuple[TestOrder, ...]

    @property
    def tests_label(self) -> str:
        return TESTS_SEPARATOR.join(o.test.short_name for o in self.orders)

    @property
    def needs_recollection(self) -> bool:
        return any(o.needs_recollection for o in self.orders)


def draws_for_handoff(handoff: Handoff) -> list[DrawItem]:
    """What to draw for the handoff's tests that still need a specimen (one query; see draws_for)."""
    return draws_for(TestOrder.objects.filter(handoff=handoff).select_related("test__specimen_type", "test__container"))


def draws_for(orders: Iterable[TestOrder]) -> list[DrawItem]:
    """What to draw for those of these orders still needing a specimen, one container per kind, in order.

    Tests naming the same specimen type and container share one (CBC and HbA1c: one EDTA tube).
    Blood tubes come in the CLSI order of draw (culture, citrate, serum, heparin, EDTA, fluoride),
    then everything that isn't a tube; a recollection comes first.
    """
    grouped: dict[tuple[int, int], list[TestOrder]] = defaultdict(list)
    for order in sorted(orders, key=lambda o: o.pk):
        if order.status in TO_COLLECT_STATUSES and order.specimen_id is None:
            grouped[(order.test.specimen_type_id, order.test.container_id)].append(order)
    draws = [
        DrawItem(specimen_type=group[0].test.specimen_type, container=group[0].test.container, orders=tuple(group))
        for group in grouped.values()
    ]
    return sorted(draws, key=lambda d: (not d.needs_recollection, d.container.draw_order, d.container.name))


def open_calls(*, user: User) -> QuerySet[RecollectionCall]:
    """Call-backs still to make: a clinician's own, every one for a supervisor; oldest first."""
    if not user.has_perm("lab.view_recollectioncall"):
        raise Http404
    calls = RecollectionCall.objects.filter(status=CallStatus.OPEN)
    if not user.has_perm("backoffice.view_board"):
        calls = calls.filter(clinician=user)
    return calls.select_related("patient", "clinician", "specimen").order_by("created_at", "id")


def call_for_user(*, user: User, uuid: str) -> RecollectionCall:
    if not user.has_perm("lab.view_recollectioncall"):
        raise Http404
    try:
        return RecollectionCall.objects.select_related("patient", "clinician").get(uuid=uuid)
    except (RecollectionCall.DoesNotExist, ValueError):
        raise Http404 from None


def _require_cancel_perm(user: User) -> None:
    if not user.has_perm("lab.cancel_testorder"):
        raise Http404


def test_order_for_user(*, user: User, uuid: str) -> TestOrder:
    """One ordered test by its opaque id, with its handoff and patient, or 404 for a role that can't act on it."""
    _require_cancel_perm(user)
    try:
        return TestOrder.objects.select_related(
            "test", "handoff__patient", "handoff__ordering_clinician", "handoff__claimed_by"
        ).get(uuid=uuid)
    except (TestOrder.DoesNotExist, ValueError):
        raise Http404 from None


def unseen_cancellations(*, user: User) -> QuerySet[TestOrder]:
    """Cancelled tests their ordering clinician hasn't acknowledged: a clinician's own, all for a supervisor."""
    _require_cancel_perm(user)
    orders = TestOrder.objects.filter(status=TestOrder.Status.CANCELLED, acknowledged_at__isnull=True)
    if not user.has_perm("backoffice.view_board"):
        orders = orders.filter(handoff__ordering_clinician=user)
    return orders.select_related("test", "handoff__patient", "handoff__ordering_clinician", "cancelled_by").order_by(
        "status_changed_at", "id"
    )


def pending_bench_orders(specimen_id: int) -> QuerySet[TestOrder]:
    """The specimen's in-house tests still without released results (neither resulted nor cancelled)."""
    return TestOrder.objects.filter(specimen_id=specimen_id, test__performed=TestDefinition.Performed.IN_HOUSE).exclude(
        status__in=(TestOrderStatus.RESULTED, TestOrderStatus.CANCELLED)
    )


# In-house tests whose specimen is drawn and whose result isn't released yet: what a patient waits for.
RUNNING_STATUSES: tuple[str, ...] = (TestOrderStatus.COLLECTED, TestOrderStatus.IN_PROGRESS)


def awaited_for_handoff() -> QuerySet[TestOrder]:
    """For the outer query's handoff (``OuterRef("pk")``): its tests a patient who left would leave behind
    (a point-of-care result still running, a recollection), for an EXISTS."""
    # A recollection whose rejected tube already has its call-back (rejected after the handoff closed) is
    # the clinician's already: matched by the tube's kind, as left_behind_by_handoff matches it.
    called = RecollectionCall.objects.filter(
        handoff=OuterRef("handoff"),
        kind=CallKind.RECOLLECT,
        specimen__specimen_type=OuterRef("test__specimen_type"),
        specimen__container=OuterRef("test__container"),
    )
    return TestOrder.objects.filter(handoff=OuterRef("pk")).filter(
        Q(test__performed=TestDefinition.Performed.IN_HOUSE, status__in=RUNNING_STATUSES)
        | (Q(needs_recollection=True, status=TestOrderStatus.ORDERED) & ~Exists(called))
    )


@dataclass(frozen=True)
class LeftBehind:
    """What a patient who leaves now would leave behind, one call each: by specimen, the tests it serves."""

    results: tuple[tuple[Specimen, tuple[TestOrder, ...]], ...]  # in-house tests still running on it
    recollections: tuple[tuple[Specimen, tuple[TestOrder, ...]], ...]  # the rejected tube, the tests to draw again

    def phrases(self) -> list[str]:
        """As the handoff's event and the page say them, results first."""
        named = [TESTS_SEPARATOR.join(o.test.short_name for o in orders) for _, orders in self.results]
        again = [TESTS_SEPARATOR.join(o.test.short_name for o in orders) for _, orders in self.recollections]
        return [f"{n}: call the patient with the result" for n in named] + [
            f"{n}: call the patient back to collect again" for n in again
        ]


NOTHING_LEFT_BEHIND = LeftBehind(results=(), recollections=())


def left_behind_by_handoff(handoff_ids: Iterable[int]) -> dict[int, LeftBehind]:
    """For each handoff, what its patient would leave behind (awaited_for_handoff), less what already has
    its call (a tube rejected after the handoff closed has its call-back already). Three queries."""
    ids = list(handoff_ids)
    orders = list(
        TestOrder.objects.filter(handoff_id__in=ids)
        .filter(
            Q(test__performed=TestDefinition.Performed.IN_HOUSE, status__in=RUNNING_STATUSES, specimen__isnull=False)
            | Q(needs_recollection=True, status=TestOrderStatus.ORDERED)
        )
        .select_related("test", "specimen__container")
        .order_by("id")
    )
    if not orders:
        return {}
    called = set(RecollectionCall.objects.filter(handoff_id__in=ids).values_list("specimen_id", "kind"))
    # The tube a recollection replaces: the latest rejected of its kind on the handoff (as the draw finds it).
    rejected: dict[tuple[int, int, int], Specimen] = {}
    for tube in (
        Specimen.objects.filter(handoff_id__in=ids, status=SpecimenStatus.REJECTED)
        .select_related("container", "rejection_reason")
        .order_by("rejected_at", "id")
    ):
        rejected[(tube.handoff_id, tube.specimen_type_id, tube.container_id)] = tube
    results: dict[int, dict[int, list[TestOrder]]] = defaultdict(dict)
    again: dict[int, dict[int, list[TestOrder]]] = defaultdict(dict)
    tubes: dict[int, Specimen] = {}
    for order in orders:
        if order.needs_recollection:
            replaced = rejected.get((order.handoff_id, order.test.specimen_type_id, order.test.container_id))
            if replaced is None or (replaced.pk, CallKind.RECOLLECT) in called:
                continue
            tubes[replaced.pk] = replaced
            again[order.handoff_id].setdefault(replaced.pk, []).append(order)
        elif order.specimen is not None and (order.specimen_id, CallKind.RESULT) not in called:
            tubes[order.specimen.pk] = order.specimen
            results[order.handoff_id].setdefault(order.specimen.pk, []).append(order)
    return {
        pk: LeftBehind(
            results=tuple((tubes[s], tuple(o)) for s, o in results.get(pk, {}).items()),
            recollections=tuple((tubes[s], tuple(o)) for s, o in again.get(pk, {}).items()),
        )
        for pk in {*results, *again}
    }


def left_behind(handoff: Handoff) -> list[str]:
    """What the handoff's patient would leave behind (hooks.patient_left_pending)."""
    return left_behind_by_handoff([handoff.pk]).get(handoff.pk, NOTHING_LEFT_BEHIND).phrases()
