"""A page offers exactly what the services accept: result_actions against every service, state by role.

Each attempt gets good input (a valid value, a reason) and runs in a savepoint that is rolled back, so
every service sees the same starting point. "Accepted" means the service wrote an event for the result.
"""

from collections.abc import Callable

import pytest
from django.db import transaction

from backoffice import roles
from backoffice.models import User
from backoffice.workflow import TransitionNotAllowed
from lab.models import ControlLot, KitLot, Result, ResultEvent
from lab.qc.services import qc_run_record
from lab.results import selectors, services
from lab.results.selectors import ResultActions, result_actions
from lab.workflow import ControlLevel
from tests.factories import UserFactory
from tests.lab.helpers import ladder
from tests.lab.results_helpers import at_bench, enter, fresh, passing_lot, values

pytestmark = pytest.mark.django_db

STATES = [
    "entered",  # hemoglobin: a second person verifies it
    "entered_waived",  # POC glucose: its performer may release it
    "sent_back",
    "released",
    "amendment",  # a correction of a released glucose, waiting for verification
    "superseded",
    "held",  # entered, then its lot's control failed: held until repeated
    "held_requalified",  # held, and the lot's control has passed again: it may be repeated
    "under_review",  # released, then its lot's control failed
    "under_review_requalified",
]
ROLES = ["performer", "other_tech", "supervisor", "clinician", "medical_assistant", "admin_user"]


def qc_fails(lot: KitLot, by: User, *, then_passes: bool) -> None:
    """The lot's level 1 control far out (1-3s), and where asked, back in range on the repeat."""
    level_1 = ControlLot.objects.get(test__short_name="Hemoglobin", level=ControlLevel.LEVEL_1)
    assert not qc_run_record(kit_lot=lot, control_lot=level_1, value="12.0", by=by).passed
    if then_passes:
        assert qc_run_record(kit_lot=lot, control_lot=level_1, value="8.0", by=by).passed


def build(state: str, ma: User, performer: User, verifier: User) -> Result:
    """A result in this state, reached through the services in order."""
    test = "POC glucose" if state in ("entered_waived", "amendment", "superseded") else "Hemoglobin"
    specimen = at_bench(test, ma=ma, lab_tech=performer)
    lot = passing_lot(test, by=performer)
    [result] = enter(specimen, test, "95" if test == "POC glucose" else "13.0", by=performer, lot=lot)
    if state in ("entered", "entered_waived"):
        return result
    if state.startswith("held"):
        qc_fails(lot, performer, then_passes=state == "held_requalified")
        return result
    if state.startswith("under_review"):
        services.result_verify(result=fresh(result), by=verifier)
        qc_fails(lot, performer, then_passes=state == "under_review_requalified")
        return result
    if state == "sent_back":
        services.result_send_back(result=fresh(result), by=verifier, reason="Repeat it")
        return result
    services.result_verify(result=fresh(result), by=verifier)
    if state == "released":
        return result
    amended = services.result_amend(result=fresh(result), value="59", reason="Misread", by=performer)
    if state == "amendment":
        return amended
    services.result_verify(result=fresh(amended), by=verifier)
    return result


class _Done(Exception):
    """Carries an attempt's outcome out of the savepoint it rolls back."""


def accepted(result: Result, attempt: Callable[[Result], object]) -> bool:
    try:
        with transaction.atomic():
            before = ResultEvent.objects.filter(result=result).count()
            try:
                attempt(fresh(result))
            except TransitionNotAllowed:
                raise _Done(False) from None
            raise _Done(ResultEvent.objects.filter(result=result).count() > before)
    except _Done as outcome:
        return bool(outcome.args[0])


def attempts(user: User) -> dict[str, Callable[[Result], object]]:
    return {
        "correct": lambda r: services.result_correct(
            result=r, value="60" if "glucose" in str(r.order.test) else "12.5", by=user
        ),
        "verify": lambda r: services.result_verify(result=r, by=user),
        "release": lambda r: services.result_release(result=r, by=user),
        "send_back": lambda r: services.result_send_back(result=r, by=user, reason="Check the lot"),
        "amend": lambda r: services.result_amend(result=r, value="61", reason="Wrong strip", by=user),
        "close_review": lambda r: services.result_close_review(result=r, by=user, note="Repeated: same value"),
    }


def user_for(role: str, *, performer: User) -> User:
    if role == "performer":
        return performer
    return UserFactory(
        role={
            "other_tech": roles.ROLE_LAB_TECH,
            "supervisor": roles.ROLE_SUPERVISOR,
            "clinician": roles.ROLE_CLINICIAN,
            "medical_assistant": roles.ROLE_MEDICAL_ASSISTANT,
            "admin_user": roles.ROLE_ADMIN,
        }[role]
    )


def test_every_action_has_an_attempt() -> None:
    assert set(attempts(User())) == set(ResultActions.NAMES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", STATES)
def test_the_offered_actions_are_exactly_those_the_services_accept(state: str, role: str) -> None:
    ladder()
    ma, performer = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), UserFactory(role=roles.ROLE_LAB_TECH)
    verifier = UserFactory(role=roles.ROLE_LAB_TECH)
    result = build(state, ma, performer, verifier)
    user = user_for(role, performer=performer)

    offered = result_actions(fresh(result), user).allowed()
    done = {name for name, attempt in attempts(user).items() if accepted(result, attempt)}

    assert offered == done


@pytest.mark.parametrize("state", ["entered", "released"])
def test_entry_is_offered_exactly_where_the_service_accepts_it(state: str) -> None:
    ladder()
    ma, tech = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), UserFactory(role=roles.ROLE_LAB_TECH)
    specimen = at_bench("Hemoglobin", "POC glucose", ma=ma, lab_tech=tech)
    lots = {name: passing_lot(name, by=tech) for name in ("Hemoglobin", "POC glucose")}
    [glucose] = enter(specimen, "POC glucose", "95", by=tech, lot=lots["POC glucose"])
    if state == "released":
        services.result_release(result=fresh(glucose), by=tech)
    typed = {"Hemoglobin": "13.0", "POC glucose": "96"}
    for user in (tech, ma, UserFactory(role=roles.ROLE_CLINICIAN), UserFactory(role=roles.ROLE_SUPERVISOR)):
        for order in selectors.orders_of_specimen(specimen):
            name = order.test.short_name
            offered = bool(selectors.enter_offer(order, user))
            try:
                with transaction.atomic():
                    services.results_enter(order=order, values=values(name, typed[name]), kit_lot=lots[name], by=user)
                    raise _Done(True)
            except TransitionNotAllowed:
                done = False
            except _Done:
                done = True
            assert offered is done, (name, user)
            assert offered is (name == "Hemoglobin" and user.has_perm("lab.enter_result"))
