"""A page offers exactly what the services accept: procedure_actions against every service, state by role.

Each attempt gets good input (a current documentation version, a lot in date, a reason) and runs in a
savepoint that is rolled back, so every service sees the same starting point. "Accepted" means the
service wrote an event for the procedure.
"""

import contextlib
import itertools
from collections.abc import Callable

import pytest
from django.db import transaction

from backoffice import roles
from backoffice.models import User
from backoffice.services import handoff_claim
from backoffice.workflow import TransitionNotAllowed
from procedures import services
from procedures.models import ProcedureDocumentation, ProcedureEvent, ProcedureOrder
from procedures.selectors import ProcedureActions, procedure_actions
from tests.factories import HandoffFactory, StationFactory, UserFactory
from tests.procedures.helpers import (
    credentialed,
    documented,
    equipped,
    finished,
    full_documentation,
    good_lot,
    new_ma,
    new_supervisor,
    procedure_type,
    ready_handoff,
    start,
)

pytestmark = pytest.mark.django_db

CODE = "96372"  # therapeutic injection: documents a medication, and the MA needs a co-sign
STATES = [
    "ordered_identity_pending",
    "ordered_ready",
    "in_progress",
    "in_progress_documented",
    "awaiting_cosign",
    "returned",
    "returned_corrected",
    "completed",
    "not_done",
]
ROLES = ["performer", "other_ma", "supervisor", "clinician", "lab_tech", "uncredentialed_ma"]
_serial = itertools.count()


def build(state: str, ma: User, supervisor: User) -> ProcedureOrder:
    """A procedure in this state, reached through the services in order."""
    if state == "ordered_identity_pending":
        handoff = HandoffFactory()
        [order] = services.procedure_orders_add(
            handoff=handoff, procedure_types=[procedure_type(CODE)], by=handoff.ordering_clinician
        )
        handoff_claim(handoff=handoff, by=ma)
        return order
    _, orders = ready_handoff(CODE, ma=ma, station=equipped(StationFactory()))
    order = orders[CODE]
    if state == "ordered_ready":
        return order
    if state == "not_done":
        return services.procedure_not_done(order=order, by=ma, reason="patient_declined")
    start(order, ma, cosign=True)
    if state == "in_progress":
        return order
    documented(order, ma)
    if state == "in_progress_documented":
        return order
    finished(order, ma)
    if state == "awaiting_cosign":
        return order
    if state == "completed":
        return services.procedure_cosign(order=order, by=supervisor)
    services.procedure_return(order=order, by=supervisor, comment="Which deltoid?")
    if state == "returned_corrected":
        services.procedure_add_addendum(order=order, by=ma, reason="correction", text="Left deltoid.")
    return order


class _Done(Exception):
    """Carries an attempt's outcome out of the savepoint it rolls back."""


def fresh(order: ProcedureOrder) -> ProcedureOrder:
    return ProcedureOrder.objects.select_related("handoff__patient", "handoff__station", "procedure_type").get(
        pk=order.pk
    )


def accepted(order: ProcedureOrder, attempt: Callable[[ProcedureOrder], object]) -> bool:
    try:
        with transaction.atomic():
            before = ProcedureEvent.objects.filter(order=order).count()
            try:
                attempt(fresh(order))
            except TransitionNotAllowed:
                raise _Done(False) from None
            raise _Done(ProcedureEvent.objects.filter(order=order).count() > before)
    except _Done as outcome:
        return bool(outcome.args[0])


def _document(order: ProcedureOrder, by: User) -> object:
    # A change each time, so a save always has something to write.
    data = full_documentation(order, complications=f"None seen ({next(_serial)})")
    return services.procedure_document(order=order, by=by, version=current_version(order), data=data)


def _finish(order: ProcedureOrder, by: User) -> object:
    # Good input for finishing: the documentation complete, as the performer would have it.
    if ProcedureDocumentation.objects.filter(order=order).exists():
        with contextlib.suppress(TransitionNotAllowed):
            documented(order, by)
    return services.procedure_finish(order=order, by=by, version=current_version(order))


def current_version(order: ProcedureOrder) -> int:
    """The documentation's version, as the page's form carries it (1 before anything is documented)."""
    doc = ProcedureDocumentation.objects.filter(order=order).first()
    return doc.version if doc else 1


def attempts(user: User) -> dict[str, Callable[[ProcedureOrder], object]]:
    return {
        "start": lambda o: services.procedure_start(order=o, by=user, supervision="cosign"),
        "document": lambda o: _document(o, user),
        "add_medication": lambda o: services.procedure_add_medication(
            order=o, by=user, version=current_version(o), medication=good_lot()
        ),
        "finish": lambda o: _finish(o, user),
        "not_done": lambda o: services.procedure_not_done(order=o, by=user, reason="patient_declined"),
        "cosign": lambda o: services.procedure_cosign(order=o, by=user),
        "return_": lambda o: services.procedure_return(order=o, by=user, comment="Check the lot"),
        "resubmit": lambda o: services.procedure_resubmit(order=o, by=user),
        "addendum": lambda o: services.procedure_add_addendum(order=o, by=user, reason="late_entry", text="Late."),
    }


def user_for(role: str, *, ma: User, supervisor: User) -> User:
    return {
        "performer": lambda: ma,
        "other_ma": lambda: new_ma(),
        "supervisor": lambda: supervisor,
        "clinician": lambda: credentialed(UserFactory(role=roles.ROLE_CLINICIAN)),
        "lab_tech": lambda: credentialed(UserFactory(role=roles.ROLE_LAB_TECH)),
        "uncredentialed_ma": lambda: UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT),
    }[role]()


def test_every_action_has_an_attempt() -> None:
    assert set(attempts(User())) == set(ProcedureActions.NAMES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", STATES)
def test_the_offered_actions_are_exactly_those_the_services_accept(state: str, role: str) -> None:
    ma, supervisor = new_ma(), new_supervisor()
    order = build(state, ma, supervisor)
    user = user_for(role, ma=ma, supervisor=supervisor)

    offered = procedure_actions(fresh(order), user).allowed()
    done = {name for name, attempt in attempts(user).items() if accepted(order, attempt)}

    assert offered == done


def test_a_supervisor_without_the_sign_off_is_not_offered_the_co_sign() -> None:
    ma = new_ma()
    supervisor = credentialed(UserFactory(role=roles.ROLE_SUPERVISOR))  # current credential, no sign-off
    order = build("awaiting_cosign", ma, new_supervisor())
    actions = procedure_actions(fresh(order), supervisor)
    assert not actions.cosign
    assert "aren't signed off as competent" in actions.cosign.why
