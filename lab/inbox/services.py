"""The ordering clinician signs the released results they were shown: exactly those, at those versions.

The inbox page sends back the (uuid, version) of every result it listed. A result released after the
page rendered is not among them, so it stays unsigned; one that changed since (a version bump, or
superseded by a correction) refuses the whole acknowledgement, so nothing is signed unseen and
nothing is half-written. The clinician reloads, sees the current values, and signs again.
"""

import uuid as uuid_lib
from collections.abc import Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from backoffice.models import User
from backoffice.transitions import record_all, require
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import Result, ResultEvent
from lab.workflow import ResultStatus

Shown = tuple[uuid_lib.UUID, int]

# A supervisor may sign for a clinician who is away: the board's permission says who supervises.
SUPERVISOR_PERM = "backoffice.view_board"


class ResultRefused(PermissionRefused):
    """Acting on a result this user may not sign; ``ref`` is its opaque id, for the access log."""

    def __init__(self, message: str, *, ref: str) -> None:
        super().__init__(message)
        self.ref = ref


def _label(result: Result) -> str:
    return f"{result.analyte.short_name} for {result.patient.family_name.upper()}, {result.patient.given_name}"


def check_acknowledge(result: Result, by: User) -> None:
    """The ordering clinician (or a supervisor acting for one away) signs a released, unsigned result.

    Reads ``result.order.handoff.ordering_clinician``, ``result.analyte`` and ``result.patient``.
    """
    require(by, "lab.acknowledge_result", "acknowledge results")
    clinician = result.order.handoff.ordering_clinician
    if clinician.pk != by.pk and not by.has_perm(SUPERVISOR_PERM):
        raise ResultRefused(
            f"{_label(result)} was ordered by {clinician}; only they or a supervisor acknowledge it.",
            ref=str(result.uuid),
        )
    if result.status == ResultStatus.SUPERSEDED:
        raise TransitionNotAllowed(f"{_label(result)} has been corrected since: review the corrected value.")
    if result.status != ResultStatus.RELEASED:
        raise TransitionNotAllowed(f"{_label(result)} is not released yet.")
    if result.acknowledged_at is not None:
        raise TransitionNotAllowed(
            f"{_label(result)} was acknowledged by {result.acknowledged_by} at "
            f"{timezone.localtime(result.acknowledged_at):%H:%M}."
        )


def results_acknowledge(*, shown: Sequence[Shown], by: User) -> list[Result]:
    """Sign exactly these results at exactly these versions, all or none; an event per result.

    Refused as a whole (TransitionNotAllowed, with every reason) when any of them is unknown, has
    changed since it was shown, was superseded or signed meanwhile, or is not ``by``'s to sign.
    """
    require(by, "lab.acknowledge_result", "acknowledge results")
    versions: dict[uuid_lib.UUID, int] = {}
    for ref, version in shown:
        versions[ref] = version
    if not versions:
        raise TransitionNotAllowed("There are no results to acknowledge.")
    with transaction.atomic():
        # One statement locks them all, in id order so two overlapping acknowledgements can't deadlock.
        results = list(
            Result.objects.select_for_update(no_key=True, of=("self",))
            .filter(uuid__in=list(versions))
            .select_related("analyte", "patient", "order__handoff__ordering_clinician", "acknowledged_by")
            .order_by("pk")
        )
        if len(results) != len(versions):
            raise TransitionNotAllowed("Some of these results no longer exist. Reload the inbox.")
        problems: list[str] = []
        for result in results:
            try:
                check_acknowledge(result, by)
            except ResultRefused:
                raise  # not yours to sign: refuses all, and the view logs it as a refusal on that result
            except TransitionNotAllowed as exc:
                problems.append(str(exc))
            else:
                if result.version != versions[result.uuid]:
                    problems.append(f"{_label(result)} changed after the page was shown.")
        if problems:
            raise TransitionNotAllowed("Nothing was signed. " + " ".join(problems) + " Review and sign again.")
        now = timezone.now()
        # One UPDATE for them all rather than a save per row: a clinician signs a dozen at a time.
        # The version moves on, as every edit's does (backoffice.transitions.edit).
        Result.objects.filter(pk__in=[r.pk for r in results]).update(
            acknowledged_at=now, acknowledged_by=by, version=F("version") + 1
        )
        for result in results:
            result.acknowledged_at, result.acknowledged_by = now, by
            result.version += 1
        record_all(
            results,
            by=by,
            action=ResultEvent.Action.ACKNOWLEDGED,
            note=lambda r: _acting_for(r, by),
            at=now,
        )
    return results


def _acting_for(result: Result, by: User) -> str:
    clinician = result.order.handoff.ordering_clinician
    return "" if clinician.pk == by.pk else f"For {clinician}, ordering clinician"
