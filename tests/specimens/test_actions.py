"""A page offers exactly what the services accept: specimen_actions against every service, state by role.

Each attempt gets good input (the right label and wristband, a coded reason, a storage place) and runs
in a savepoint that is rolled back, so every service sees the same starting point. "Accepted" means the
service wrote an event for the specimen.
"""

from collections.abc import Callable

import pytest
from django.db import transaction

from backoffice import roles
from backoffice.models import User
from backoffice.workflow import TransitionNotAllowed
from specimens import services
from specimens.models import LabelPrinter, Specimen, SpecimenEvent
from specimens.selectors import SpecimenActions, specimen_actions
from specimens.workflow import FailedDrawReason, Location, SpecimenStatus
from tests.factories import UserFactory
from tests.specimens.helpers import collected, labelled, reason, received, results_released

pytestmark = pytest.mark.django_db
S = SpecimenStatus

STATES = [
    "labelled",
    "labelled_printed",
    "not_collected",
    "collected",
    "in_transit",
    "received",
    "in_testing",
    "done",
    "stored",
    "rejected",
    "disposed",
]
ROLES = ["collector", "other_ma", "supervisor", "clinician", "lab_tech", "admin_user"]


def build(state: str, ma: User, lab_tech: User) -> Specimen:
    """A CBC tube in this state, reached through the services in order."""
    if state.startswith("labelled") or state == "not_collected":
        _, [tube] = labelled("CBC", ma=ma)
        if state == "labelled_printed":
            services.specimen_labels_printed(specimens=[tube], by=ma, output=LabelPrinter.Transport.PDF)
        if state == "not_collected":
            services.specimen_not_collected(specimen=tube, by=ma, reason=FailedDrawReason.NO_VEIN)
        return tube
    _, [tube] = collected("CBC", ma=ma)
    services.specimen_labels_printed(specimens=[tube], by=ma, output=LabelPrinter.Transport.PDF)
    if state == "collected":
        return tube
    if state == "in_transit":
        return services.specimen_hand_over(specimen=tube, to=Location.IN_HOUSE_BENCH, by=ma)
    received(tube, ma=ma, lab_tech=lab_tech)
    if state == "received":
        return tube
    if state == "rejected":
        return services.specimen_reject(specimen=tube, reason=reason("RH"), by=lab_tech)
    services.specimen_start_testing(specimen=tube, by=lab_tech)
    if state == "in_testing":
        return tube
    results_released(tube, lab_tech=lab_tech)  # the last release marks it done
    if state == "done":
        return tube
    services.specimen_store(specimen=tube, place="Fridge 2, rack B", by=lab_tech)
    if state == "stored":
        return tube
    return services.specimen_dispose(specimen=tube, by=lab_tech)


class _Done(Exception):
    """Carries an attempt's outcome out of the savepoint it rolls back."""


def fresh(specimen: Specimen) -> Specimen:
    return Specimen.objects.select_related("patient", "handoff__patient", "container").get(pk=specimen.pk)


def accepted(specimen: Specimen, attempt: Callable[[Specimen], object]) -> bool:
    try:
        with transaction.atomic():
            before = SpecimenEvent.objects.filter(specimen=specimen).count()
            try:
                attempt(fresh(specimen))
            except TransitionNotAllowed:
                raise _Done(False) from None
            raise _Done(SpecimenEvent.objects.filter(specimen=specimen).count() > before)
    except _Done as outcome:
        return bool(outcome.args[0])


def attempts(user: User) -> dict[str, Callable[[Specimen], object]]:
    return {
        "hand_over": lambda s: services.specimen_hand_over(specimen=s, to=Location.IN_HOUSE_BENCH, by=user),
        "receive": lambda s: services.specimen_receive(specimen=s, at=Location.IN_HOUSE_BENCH, by=user),
        "reject": lambda s: services.specimen_reject(specimen=s, reason=reason("RN"), by=user),
        "reprint": lambda s: services.specimen_labels_printed(
            specimens=[s], by=user, output=LabelPrinter.Transport.PDF, reason="Smudged"
        ),
        "confirm": lambda s: services.specimen_confirm(
            handoff=s.handoff, scanned_label=s.accession, scanned_wristband=s.patient.mrn, by=user
        ),
        "not_collected": lambda s: services.specimen_not_collected(
            specimen=s, by=user, reason=FailedDrawReason.PATIENT_REFUSED
        ),
        "start_testing": lambda s: services.specimen_start_testing(specimen=s, by=user),
        "testing_done": lambda s: services.specimen_testing_done(specimen=s, by=user),
        "store": lambda s: services.specimen_store(specimen=s, place="Fridge 1", by=user),
        "dispose": lambda s: services.specimen_dispose(specimen=s, by=user),
    }


def user_for(role: str, *, ma: User, lab_tech: User) -> User:
    if role == "collector":
        return ma
    if role == "lab_tech":
        return lab_tech
    return UserFactory(
        role={
            "other_ma": roles.ROLE_MEDICAL_ASSISTANT,
            "supervisor": roles.ROLE_SUPERVISOR,
            "clinician": roles.ROLE_CLINICIAN,
            "admin_user": roles.ROLE_ADMIN,
        }[role]
    )


def test_every_action_has_an_attempt() -> None:
    assert set(attempts(User())) == set(SpecimenActions.NAMES)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("state", STATES)
def test_the_offered_actions_are_exactly_those_the_services_accept(state: str, role: str) -> None:
    ma, lab_tech = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT), UserFactory(role=roles.ROLE_LAB_TECH)
    specimen = build(state, ma, lab_tech)
    user = user_for(role, ma=ma, lab_tech=lab_tech)

    offered = specimen_actions(fresh(specimen), user).allowed()
    done = {name for name, attempt in attempts(user).items() if accepted(specimen, attempt)}

    assert offered == done
