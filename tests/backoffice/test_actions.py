"""A page offers exactly what the services accept: handoff_actions against every service, state by role.

For each state a handoff can be in and each role, the actions the selector offers are compared with
the services that, given good input, actually change something (write an event). Each attempt runs
in a savepoint that is rolled back, so every service sees the same starting point.
"""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.test import Client, override_settings
from django.urls import reverse

from backoffice import roles, services
from backoffice.models import Handoff, HandoffEvent, Station, User
from backoffice.selectors import HandoffActions, handoff_actions
from backoffice.workflow import HandBackReason, TransitionNotAllowed
from procedures.models import ProcedureType
from procedures.services import procedure_orders_add
from tests.factories import HandoffFactory, StationFactory, UserFactory
from tests.procedures.helpers import credentialed, equipped, start

pytestmark = pytest.mark.django_db

ROLES = {
    "claimer": roles.ROLE_MEDICAL_ASSISTANT,
    "other_ma": roles.ROLE_MEDICAL_ASSISTANT,
    "supervisor": roles.ROLE_SUPERVISOR,
    "clinician": roles.ROLE_CLINICIAN,
    "lab_tech": roles.ROLE_LAB_TECH,
    "auditor": roles.ROLE_AUDITOR,
}
STATES = [
    "waiting",
    "claimed",
    "claimed_at_station",
    "verified_without_station",
    "verified_at_station",
    "in_progress_with_open_items",
    "in_progress_all_done",
    "in_progress_procedure_being_performed",
    "completed",
    "cancelled",
    "returned",
]


def build(state: str, claimer: User) -> Handoff:
    """A handoff in this state, reached through the services as the claimer would."""
    if state == "returned":
        return _returned(claimer)
    handoff = HandoffFactory()
    if state == "in_progress_with_open_items":
        procedure_orders_add(
            handoff=handoff, procedure_types=[ProcedureType.objects.get(code="36415")], by=handoff.ordering_clinician
        )
    if state == "cancelled":
        return services.handoff_cancel(handoff=handoff, by=handoff.ordering_clinician, reason="Patient left")
    if state == "waiting":
        return handoff
    services.handoff_claim(handoff=handoff, by=claimer)
    if state in ("claimed_at_station", "verified_at_station") or state.startswith(("in_progress", "completed")):
        services.handoff_assign_station(handoff=handoff, station=equipped(StationFactory()), by=claimer)
    if state in ("claimed", "claimed_at_station"):
        return handoff
    services.handoff_verify_identity(handoff=handoff, by=claimer, scanned_mrn=handoff.patient.mrn)
    if state.startswith("verified"):
        return handoff
    services.handoff_start(handoff=handoff, by=claimer)
    if state == "in_progress_procedure_being_performed":  # the cancel's procedures handler refuses it
        [order] = procedure_orders_add(
            handoff=handoff, procedure_types=[ProcedureType.objects.get(code="36415")], by=handoff.ordering_clinician
        )
        equipped(handoff.station)
        start(order, credentialed(claimer), cosign=True)
    if state == "completed":
        services.handoff_complete(handoff=handoff, by=claimer)
    return handoff


def _returned(claimer: User) -> Handoff:
    handoff = build("claimed_at_station", claimer)
    with override_settings(MA_HAND_BACK="return"):
        return services.handoff_hand_back(handoff=handoff, by=claimer, reason=HandBackReason.PATIENT_REFUSED)


class _Done(Exception):
    """Carries an attempt's outcome out of the savepoint it rolls back."""


def accepted(handoff: Handoff, attempt: Callable[[Handoff], object]) -> bool:
    """Whether the service, on a fresh copy of the handoff, changed something (wrote an event)."""
    try:
        with transaction.atomic():
            before = HandoffEvent.objects.filter(handoff=handoff).count()
            try:
                attempt(Handoff.objects.get(pk=handoff.pk))
            except TransitionNotAllowed:
                raise _Done(False) from None
            raise _Done(HandoffEvent.objects.filter(handoff=handoff).count() > before)
    except _Done as outcome:
        return bool(outcome.args[0])


def attempts(user: User, spare_station: Station) -> dict[str, Callable[[Handoff], object]]:
    """Each action with good input: a ready station, the right wristband, a reason."""
    return {
        "claim": lambda h: services.handoff_claim(handoff=h, by=user),
        "release": lambda h: services.handoff_release(handoff=h, by=user),
        "assign_station": lambda h: services.handoff_assign_station(handoff=h, station=spare_station, by=user),
        "verify_identity": lambda h: services.handoff_verify_identity(handoff=h, by=user, scanned_mrn=h.patient.mrn),
        "start": lambda h: services.handoff_start(handoff=h, by=user),
        "complete": lambda h: services.handoff_complete(handoff=h, by=user),
        "cancel": lambda h: services.handoff_cancel(handoff=h, by=user, reason="Patient left"),
        "hand_back": lambda h: services.handoff_hand_back(handoff=h, by=user, reason=HandBackReason.PATIENT_LEFT),
        "resend": lambda h: services.handoff_resend(handoff=h, by=user),
        "patient_left": lambda h: services.handoff_patient_left(handoff=h, by=user),
    }


def test_every_action_has_an_attempt() -> None:
    assert set(attempts(User(), Station())) == set(HandoffActions.NAMES)


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("state", STATES)
def test_the_offered_actions_are_exactly_those_the_services_accept(state: str, role: str) -> None:
    claimer = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    handoff = build(state, claimer)
    user = claimer if role == "claimer" else UserFactory(role=ROLES[role])
    spare = equipped(StationFactory())  # has what any procedure needs

    offered = handoff_actions(Handoff.objects.get(pk=handoff.pk), user).allowed()
    done = {name for name, attempt in attempts(user, spare).items() if accepted(handoff, attempt)}

    assert offered == done


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize(
    "state", ["claimed", "verified_at_station", "in_progress_with_open_items", "in_progress_procedure_being_performed"]
)
def test_in_a_clinic_where_a_hand_back_cancels_it_is_offered_exactly_when_accepted(
    state: str, role: str, settings: Any
) -> None:
    settings.MA_HAND_BACK = "cancel"
    claimer = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    handoff = build(state, claimer)
    user = claimer if role == "claimer" else UserFactory(role=ROLES[role])

    offered = bool(handoff_actions(Handoff.objects.get(pk=handoff.pk), user).hand_back)

    assert offered == accepted(handoff, attempts(user, StationFactory())["hand_back"])


def test_a_refused_action_says_why_in_the_services_words() -> None:
    claimer = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    handoff = build("in_progress_with_open_items", claimer)
    actions = handoff_actions(handoff, claimer)
    assert not actions.complete
    why = f"{handoff.patient.full_name} still has 1 open item: Venipuncture (ordered). Finish or close it, then complete the handoff."
    assert actions.complete.why == why
    with pytest.raises(TransitionNotAllowed) as refused:
        services.handoff_complete(handoff=handoff, by=claimer)
    assert str(refused.value) == why


@pytest.mark.parametrize("role", ["claimer", "supervisor", "clinician", "lab_tech"])
def test_the_queue_offers_claim_exactly_when_the_service_accepts_it(client: Client, role: str) -> None:
    handoff = HandoffFactory()
    user = UserFactory(role=ROLES[role])
    client.force_login(user)
    page = client.get(reverse("queue")).content.decode()
    claim_url = reverse("handoff_claim", args=[handoff.uuid])
    assert (claim_url in page) == bool(handoff_actions(handoff, user).claim)


def test_the_handoff_page_never_offers_complete_while_items_are_open(client: Client) -> None:
    claimer = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    handoff = build("in_progress_with_open_items", claimer)
    client.force_login(claimer)
    page = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
    assert reverse("handoff_complete", args=[handoff.uuid]) not in page
    assert "still has 1 open item: Venipuncture (ordered)" in page
