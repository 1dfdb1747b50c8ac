"""Every handoff and station transition, through the service functions."""

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from backoffice import roles
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, Station, StationEvent, User
from backoffice.selectors import handoff_actions
from backoffice.services import (
    AlreadyClaimed,
    AlreadyOnTheQueue,
    IdentityMismatch,
    IdentityNotVerified,
    Needs,
    handoff_assign_station,
    handoff_cancel,
    handoff_claim,
    handoff_complete,
    handoff_create,
    handoff_release,
    handoff_start,
    handoff_verify_identity,
    require_identity_verified,
    station_turnover,
)
from backoffice.workflow import HandoffStatus, PermissionRefused, Priority, StationState, TransitionNotAllowed
from lab.models import TestDefinition
from lab.services import test_orders_add
from procedures.models import ProcedureOrder, ProcedureType
from procedures.services import procedure_orders_add
from tests.factories import HandoffFactory, StationFactory, UserFactory
from tests.procedures.helpers import equipped

Action = HandoffEvent.Action

pytestmark = pytest.mark.django_db


# Reaching a state: call the services in order, as the factories' docstring asks.


def claimed(handoff: Handoff, by: User) -> Handoff:
    return handoff_claim(handoff=handoff, by=by)


def at_station(handoff: Handoff, station: Station, by: User) -> Handoff:
    return handoff_assign_station(handoff=claimed(handoff, by), station=station, by=by)


def verified(handoff: Handoff, station: Station, by: User) -> Handoff:
    at_station(handoff, station, by)
    return handoff_verify_identity(handoff=handoff, by=by, scanned_mrn=handoff.patient.mrn)


def started(handoff: Handoff, station: Station, by: User) -> Handoff:
    return handoff_start(handoff=verified(handoff, station, by), by=by)


def events(handoff: Handoff) -> list[HandoffEvent]:
    return list(HandoffEvent.objects.filter(handoff_id=handoff.pk).order_by("at", "id"))


def fresh(obj: Handoff | Station) -> Handoff | Station:
    return type(obj).objects.get(pk=obj.pk)


def assert_one_event(
    handoff: Handoff, do: Callable[[], object], *, action: str, from_status: str, to_status: str, actor: User
) -> HandoffEvent:
    """Run one transition and check it wrote exactly one event and bumped the version once."""
    before_ids = {e.pk for e in events(handoff)}
    version = fresh(handoff).version
    do()
    new = [e for e in events(handoff) if e.pk not in before_ids]
    assert len(new) == 1
    event = new[0]
    assert (event.action, event.from_status, event.to_status, event.actor) == (action, from_status, to_status, actor)
    assert fresh(handoff).version == version + 1
    return event


# --- create ---------------------------------------------------------------------------------------


def test_a_clinician_creates_a_waiting_handoff(clinician: User, patient: Patient, exam_room: ExamRoom) -> None:
    handoff = handoff_create(
        patient=patient,
        ordering_clinician=clinician,
        exam_room=exam_room,
        priority=Priority.STAT,
        clinical_note="  Irrigate left ear.  ",
        by=clinician,
    )

    handoff = fresh(handoff)
    assert handoff.status == HandoffStatus.WAITING
    assert handoff.priority == Priority.STAT
    assert handoff.clinical_note == "Irrigate left ear."
    assert handoff.created_by == clinician
    assert handoff.version == 1
    [event] = events(handoff)
    assert (event.action, event.from_status, event.to_status, event.actor) == (
        Action.CREATED,
        "",
        HandoffStatus.WAITING,
        clinician,
    )
    assert event.note == ""


def test_an_ma_creates_a_handoff_on_behalf_of_a_clinician(
    medical_assistant: User, clinician: User, patient: Patient, exam_room: ExamRoom
) -> None:
    handoff = handoff_create(patient=patient, ordering_clinician=clinician, exam_room=exam_room, by=medical_assistant)

    assert handoff.ordering_clinician == clinician
    assert handoff.created_by == medical_assistant
    [event] = events(handoff)
    assert event.actor == medical_assistant
    assert event.note == "On behalf of Priya Shah"


def test_it_refuses_an_ordering_clinician_who_is_not_a_clinician(
    medical_assistant: User, supervisor: User, patient: Patient, exam_room: ExamRoom
) -> None:
    with pytest.raises(TransitionNotAllowed, match="not a clinician"):
        handoff_create(patient=patient, ordering_clinician=supervisor, exam_room=exam_room, by=medical_assistant)
    assert not Handoff.objects.exists()


@pytest.mark.parametrize(
    "role",
    [
        "lab_tech",
        "outsider",
        "admin_user",
    ],
)
def test_it_refuses_a_creator_without_the_add_handoff_permission(
    role: str, request: pytest.FixtureRequest, clinician: User, patient: Patient, exam_room: ExamRoom
) -> None:
    by = request.getfixturevalue(role)
    with pytest.raises(PermissionRefused, match="hand patients off"):
        handoff_create(patient=patient, ordering_clinician=clinician, exam_room=exam_room, by=by)
    assert not Handoff.objects.exists()
    assert not HandoffEvent.objects.exists()


def test_it_refuses_an_inactive_creator(clinician: User, patient: Patient, exam_room: ExamRoom) -> None:
    clinician.is_active = False
    clinician.save(update_fields=["is_active"])
    with pytest.raises(PermissionRefused):
        handoff_create(patient=patient, ordering_clinician=clinician, exam_room=exam_room, by=clinician)


def test_the_interpreter_language_defaults_to_the_patients_preferred_language(
    clinician: User, patient: Patient, exam_room: ExamRoom
) -> None:
    patient.preferred_language = "Spanish"
    patient.save(update_fields=["preferred_language"])

    handoff = handoff_create(
        patient=patient,
        ordering_clinician=clinician,
        exam_room=exam_room,
        needs=Needs(interpreter_needed=True),
        by=clinician,
    )

    assert fresh(handoff).interpreter_language == "Spanish"


def test_a_given_interpreter_language_wins_over_the_preferred_one(
    clinician: User, patient: Patient, exam_room: ExamRoom
) -> None:
    patient.preferred_language = "Spanish"
    patient.save(update_fields=["preferred_language"])

    handoff = handoff_create(
        patient=patient,
        ordering_clinician=clinician,
        exam_room=exam_room,
        needs=Needs(interpreter_needed=True, interpreter_language=" Portuguese "),
        by=clinician,
    )

    assert fresh(handoff).interpreter_language == "Portuguese"


def test_no_interpreter_means_no_language(clinician: User, patient: Patient, exam_room: ExamRoom) -> None:
    handoff = handoff_create(
        patient=patient,
        ordering_clinician=clinician,
        exam_room=exam_room,
        needs=Needs(interpreter_needed=False, interpreter_language="French"),
        by=clinician,
    )
    assert fresh(handoff).interpreter_language == ""


# --- claim ----------------------------------------------------------------------------------------


def test_an_ma_claims_a_waiting_handoff(handoff: Handoff, medical_assistant: User) -> None:
    assert_one_event(
        handoff,
        lambda: handoff_claim(handoff=handoff, by=medical_assistant),
        action=Action.CLAIMED,
        from_status=HandoffStatus.WAITING,
        to_status=HandoffStatus.CLAIMED,
        actor=medical_assistant,
    )
    assert handoff.status == HandoffStatus.CLAIMED
    assert handoff.claimed_by == medical_assistant
    assert handoff.claimed_at is not None
    stored = fresh(handoff)
    assert (stored.status, stored.claimed_by_id) == (HandoffStatus.CLAIMED, medical_assistant.pk)


def test_it_refuses_a_second_claim_naming_the_claimer_and_the_patient(
    handoff: Handoff, medical_assistant: User, other_ma: User
) -> None:
    claimed(handoff, medical_assistant)

    with pytest.raises(AlreadyClaimed, match=r"^Already claimed by Maria Alvarez at \d\d:\d\d: Rosa Martínez$"):
        handoff_claim(handoff=fresh(handoff), by=other_ma)

    assert fresh(handoff).claimed_by == medical_assistant
    assert [e.action for e in events(handoff)] == [Action.CLAIMED]


def test_a_second_claim_by_the_same_ma_changes_nothing(handoff: Handoff, medical_assistant: User) -> None:
    claimed(handoff, medical_assistant)
    version = fresh(handoff).version

    again = handoff_claim(handoff=fresh(handoff), by=medical_assistant)

    assert again.status == HandoffStatus.CLAIMED
    assert fresh(handoff).version == version
    assert [e.action for e in events(handoff)] == [Action.CLAIMED]


@pytest.mark.parametrize("role", ["clinician", "lab_tech", "outsider"])
def test_it_refuses_a_claim_by_a_role_that_does_not_work_the_queue(
    role: str, request: pytest.FixtureRequest, handoff: Handoff
) -> None:
    with pytest.raises(PermissionRefused, match="claim patients"):
        handoff_claim(handoff=handoff, by=request.getfixturevalue(role))
    assert fresh(handoff).status == HandoffStatus.WAITING
    assert not events(handoff)


def test_a_supervisor_may_claim(handoff: Handoff, supervisor: User) -> None:
    claimed(handoff, supervisor)
    assert fresh(handoff).claimed_by == supervisor


def test_a_cancelled_handoff_cannot_be_claimed(handoff: Handoff, clinician: User, medical_assistant: User) -> None:
    handoff_cancel(handoff=handoff, by=clinician, reason="Patient left")

    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        handoff_claim(handoff=handoff, by=medical_assistant)

    assert fresh(handoff).status == HandoffStatus.CANCELLED
    assert fresh(handoff).claimed_by is None


def test_a_handoff_cancelled_after_claiming_cannot_be_claimed_again(
    handoff: Handoff, clinician: User, medical_assistant: User, other_ma: User
) -> None:
    claimed(handoff, medical_assistant)
    handoff_cancel(handoff=handoff, by=clinician, reason="Patient left")

    for ma in (medical_assistant, other_ma):
        with pytest.raises(TransitionNotAllowed, match="cancelled"):
            handoff_claim(handoff=fresh(handoff), by=ma)


def test_a_claim_updates_a_stale_instance_held_by_the_caller(handoff: Handoff, medical_assistant: User) -> None:
    stale = fresh(handoff)
    handoff_claim(handoff=handoff, by=medical_assistant)
    handoff_claim(handoff=stale, by=medical_assistant)
    assert stale.status == HandoffStatus.CLAIMED
    assert stale.version == fresh(handoff).version


# --- release --------------------------------------------------------------------------------------


def test_releasing_puts_the_handoff_back_on_the_queue(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    assert handoff.claimed_by == medical_assistant
    assert handoff.station == station

    assert_one_event(
        handoff,
        lambda: handoff_release(handoff=handoff, by=medical_assistant, reason="Patient went to the restroom"),
        action=Action.RELEASED,
        from_status=HandoffStatus.CLAIMED,
        to_status=HandoffStatus.WAITING,
        actor=medical_assistant,
    )

    # The caller's own instance tells the truth, including relations it had already loaded.
    assert handoff.status == HandoffStatus.WAITING
    assert handoff.claimed_by is None
    assert handoff.station is None
    stored = fresh(handoff)
    assert (stored.status, stored.claimed_by_id, stored.claimed_at, stored.station_id) == (
        HandoffStatus.WAITING,
        None,
        None,
        None,
    )
    assert fresh(station).state == StationState.NEEDS_TURNOVER
    assert events(handoff)[-1].note == "Patient went to the restroom"


def test_a_release_without_a_reason_names_the_station_left(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    handoff_release(handoff=handoff, by=medical_assistant)
    assert events(handoff)[-1].note == "Left Procedure room 1"


def test_a_released_handoff_can_be_claimed_by_someone_else(
    handoff: Handoff, medical_assistant: User, other_ma: User
) -> None:
    claimed(handoff, medical_assistant)
    handoff_release(handoff=handoff, by=medical_assistant)
    claimed(handoff, other_ma)
    assert fresh(handoff).claimed_by == other_ma


def test_another_ma_cannot_release_my_patient(handoff: Handoff, medical_assistant: User, other_ma: User) -> None:
    claimed(handoff, medical_assistant)
    with pytest.raises(PermissionRefused, match="claimed by Maria Alvarez"):
        handoff_release(handoff=handoff, by=other_ma)
    assert fresh(handoff).status == HandoffStatus.CLAIMED


def test_a_supervisor_may_release_someone_elses_patient(
    handoff: Handoff, medical_assistant: User, supervisor: User
) -> None:
    claimed(handoff, medical_assistant)
    handoff_release(handoff=handoff, by=supervisor)
    assert fresh(handoff).status == HandoffStatus.WAITING


def test_a_verified_handoff_cannot_be_released(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    verified(handoff, station, medical_assistant)
    with pytest.raises(TransitionNotAllowed, match="identity verified"):
        handoff_release(handoff=handoff, by=medical_assistant)


def test_a_waiting_handoff_cannot_be_released(handoff: Handoff, medical_assistant: User) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        handoff_release(handoff=handoff, by=medical_assistant)
    assert "None" not in str(caught.value)


# --- assign station -------------------------------------------------------------------------------


def test_assigning_a_station_occupies_it(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    claimed(handoff, medical_assistant)
    version = fresh(handoff).version

    handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)

    assert handoff.station == station
    assert fresh(handoff).station == station
    assert fresh(handoff).version == version + 1
    assert fresh(station).state == StationState.OCCUPIED
    [station_event] = StationEvent.objects.filter(station=station)
    assert (station_event.from_status, station_event.to_status, station_event.actor) == (
        StationState.READY,
        StationState.OCCUPIED,
        medical_assistant,
    )
    event = events(handoff)[-1]
    assert (event.action, event.from_status, event.to_status, event.actor) == (
        Action.STATION_ASSIGNED,
        HandoffStatus.CLAIMED,
        HandoffStatus.CLAIMED,
        medical_assistant,
    )
    assert len(events(handoff)) == 2


def test_a_station_needs_a_claimed_handoff(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    with pytest.raises(TransitionNotAllowed, match="Claim the patient") as caught:
        handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)
    assert "None" not in str(caught.value)
    assert fresh(station).state == StationState.READY
    assert fresh(handoff).station_id is None


@pytest.mark.parametrize("state", [StationState.OCCUPIED, StationState.NEEDS_TURNOVER])
def test_it_refuses_a_station_that_is_not_ready(
    state: str, handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    Station.objects.filter(pk=station.pk).update(state=state)  # a plain row in that state, no event wanted
    claimed(handoff, medical_assistant)

    with pytest.raises(TransitionNotAllowed, match="pick a ready station"):
        handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)

    assert fresh(handoff).station_id is None


def test_it_refuses_a_station_out_of_service(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    Station.objects.filter(pk=station.pk).update(is_active=False)
    claimed(handoff, medical_assistant)
    with pytest.raises(TransitionNotAllowed, match="out of service"):
        handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)


def test_it_refuses_a_station_occupied_by_another_patient(
    handoff: Handoff, medical_assistant: User, other_ma: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    other = claimed(HandoffFactory(), other_ma)
    with pytest.raises(TransitionNotAllowed, match="occupied"):
        handoff_assign_station(handoff=other, station=station, by=other_ma)


def test_switching_stations_sends_the_old_one_to_turnover(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    second = StationFactory(code="phleb-1", name="Phlebotomy 1", kind=Station.Kind.PHLEBOTOMY)
    at_station(handoff, station, medical_assistant)
    assert handoff.station == station

    handoff_assign_station(handoff=handoff, station=second, by=medical_assistant)

    assert handoff.station == second
    assert fresh(handoff).station == second
    assert fresh(station).state == StationState.NEEDS_TURNOVER
    assert fresh(second).state == StationState.OCCUPIED


def test_assigning_the_same_station_again_changes_nothing(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    version = fresh(handoff).version
    handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)
    assert fresh(handoff).version == version
    assert StationEvent.objects.filter(station=station).count() == 1


def test_only_the_claimer_assigns_a_station(
    handoff: Handoff, medical_assistant: User, other_ma: User, station: Station
) -> None:
    claimed(handoff, medical_assistant)
    with pytest.raises(PermissionRefused, match="claimed by Maria Alvarez"):
        handoff_assign_station(handoff=handoff, station=station, by=other_ma)
    assert fresh(station).state == StationState.READY


def test_a_supervisor_may_assign_a_station(
    handoff: Handoff, medical_assistant: User, supervisor: User, station: Station
) -> None:
    claimed(handoff, medical_assistant)
    handoff_assign_station(handoff=handoff, station=station, by=supervisor)
    assert fresh(handoff).station == station


def test_a_lab_tech_cannot_assign_a_station(
    handoff: Handoff, medical_assistant: User, lab_tech: User, station: Station
) -> None:
    claimed(handoff, medical_assistant)
    with pytest.raises(PermissionRefused):
        handoff_assign_station(handoff=handoff, station=station, by=lab_tech)


# --- verify identity ------------------------------------------------------------------------------


def test_name_and_date_of_birth_verify_the_patient(handoff: Handoff, medical_assistant: User, patient: Patient) -> None:
    claimed(handoff, medical_assistant)

    assert_one_event(
        handoff,
        lambda: handoff_verify_identity(
            handoff=handoff, by=medical_assistant, full_name="Rosa Martínez", date_of_birth=patient.date_of_birth
        ),
        action=Action.IDENTITY_VERIFIED,
        from_status=HandoffStatus.CLAIMED,
        to_status=HandoffStatus.IDENTITY_VERIFIED,
        actor=medical_assistant,
    )
    stored = fresh(handoff)
    assert stored.status == HandoffStatus.IDENTITY_VERIFIED
    assert stored.identity_method == "name+dob"
    assert stored.identity_verified_by == medical_assistant
    assert stored.identity_verified_at is not None


@pytest.mark.parametrize("typed", ["martinez rosa", "ROSA MARTINEZ", "  Martínez,  Rosa ", "rosa   martínez"])
def test_the_name_match_ignores_accents_case_and_order(
    typed: str, handoff: Handoff, medical_assistant: User, patient: Patient
) -> None:
    claimed(handoff, medical_assistant)
    handoff_verify_identity(handoff=handoff, by=medical_assistant, full_name=typed, date_of_birth=patient.date_of_birth)
    assert fresh(handoff).status == HandoffStatus.IDENTITY_VERIFIED


@pytest.mark.parametrize("scanned", ["M100001", " m100001 "])
def test_a_scanned_wristband_verifies_the_patient(scanned: str, handoff: Handoff, medical_assistant: User) -> None:
    claimed(handoff, medical_assistant)
    handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn=scanned)
    stored = fresh(handoff)
    assert stored.status == HandoffStatus.IDENTITY_VERIFIED
    assert stored.identity_method == "wristband"
    assert events(handoff)[-1].note == "Wristband scanned"


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [
        ({"full_name": "Rosa Martinez", "date_of_birth": "wrong"}, "date of birth"),
        ({"full_name": "Rosa Marquez", "date_of_birth": "right"}, "name"),
        ({"full_name": "Rosa", "date_of_birth": "right"}, "name"),
        ({"full_name": "Ana Lopez", "date_of_birth": "wrong"}, "name and date of birth"),
        ({"scanned_mrn": "M999999"}, "wristband"),
    ],
)
def test_a_mismatch_is_refused_and_recorded(
    kwargs: dict[str, object], what: str, handoff: Handoff, medical_assistant: User, patient: Patient
) -> None:
    if "date_of_birth" in kwargs:
        dob = patient.date_of_birth
        kwargs = {**kwargs, "date_of_birth": dob if kwargs["date_of_birth"] == "right" else dob - timedelta(days=1)}
    claimed(handoff, medical_assistant)
    version = fresh(handoff).version

    with pytest.raises(IdentityMismatch, match=what):
        handoff_verify_identity(handoff=handoff, by=medical_assistant, **kwargs)  # type: ignore[arg-type]

    # The failed attempt survives the refusal: a fresh query still finds it.
    mismatches = HandoffEvent.objects.filter(handoff_id=handoff.pk, action=Action.IDENTITY_MISMATCH)
    assert mismatches.count() == 1
    mismatch = mismatches.get()
    assert (mismatch.actor, mismatch.from_status, mismatch.to_status) == (
        medical_assistant,
        HandoffStatus.CLAIMED,
        HandoffStatus.CLAIMED,
    )
    stored = fresh(handoff)
    assert stored.status == HandoffStatus.CLAIMED
    assert stored.identity_verified_at is None
    assert stored.version == version


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"full_name": "Rosa Martínez"}, {"date_of_birth": "dob"}, {"full_name": "   ", "date_of_birth": "dob"}],
)
def test_it_refuses_a_check_without_two_identifiers(
    kwargs: dict[str, object], handoff: Handoff, medical_assistant: User, patient: Patient
) -> None:
    if kwargs.get("date_of_birth") == "dob":
        kwargs = {**kwargs, "date_of_birth": patient.date_of_birth}
    claimed(handoff, medical_assistant)

    with pytest.raises(TransitionNotAllowed, match="Scan the wristband"):
        handoff_verify_identity(handoff=handoff, by=medical_assistant, **kwargs)  # type: ignore[arg-type]

    assert fresh(handoff).status == HandoffStatus.CLAIMED
    assert [e.action for e in events(handoff)] == [Action.CLAIMED]


def test_another_ma_cannot_verify_my_patient(handoff: Handoff, medical_assistant: User, other_ma: User) -> None:
    claimed(handoff, medical_assistant)
    with pytest.raises(PermissionRefused):
        handoff_verify_identity(handoff=handoff, by=other_ma, scanned_mrn="M100001")
    assert fresh(handoff).status == HandoffStatus.CLAIMED
    assert [e.action for e in events(handoff)] == [Action.CLAIMED]


def test_a_waiting_handoff_cannot_be_verified(handoff: Handoff, medical_assistant: User) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn="M100001")
    assert "None" not in str(caught.value)
    assert fresh(handoff).status == HandoffStatus.WAITING


# --- start ----------------------------------------------------------------------------------------


def test_work_starts_once_identity_is_verified_at_a_station(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    verified(handoff, station, medical_assistant)

    assert_one_event(
        handoff,
        lambda: handoff_start(handoff=handoff, by=medical_assistant),
        action=Action.STARTED,
        from_status=HandoffStatus.IDENTITY_VERIFIED,
        to_status=HandoffStatus.IN_PROGRESS,
        actor=medical_assistant,
    )
    assert handoff.status == HandoffStatus.IN_PROGRESS


def test_work_cannot_start_before_identity_is_verified(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    with pytest.raises(IdentityNotVerified, match="two identifiers"):
        handoff_start(handoff=handoff, by=medical_assistant)
    assert fresh(handoff).status == HandoffStatus.CLAIMED


def test_work_cannot_start_without_a_station(handoff: Handoff, medical_assistant: User) -> None:
    claimed(handoff, medical_assistant)
    handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn="M100001")
    with pytest.raises(TransitionNotAllowed, match="Assign a station"):
        handoff_start(handoff=handoff, by=medical_assistant)
    assert fresh(handoff).status == HandoffStatus.IDENTITY_VERIFIED


def test_starting_twice_changes_nothing(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    started(handoff, station, medical_assistant)
    version = fresh(handoff).version
    handoff_start(handoff=handoff, by=medical_assistant)
    assert fresh(handoff).version == version
    assert [e.action for e in events(handoff)].count(Action.STARTED) == 1


def test_another_ma_cannot_start_my_patient(
    handoff: Handoff, medical_assistant: User, other_ma: User, station: Station
) -> None:
    verified(handoff, station, medical_assistant)
    with pytest.raises(PermissionRefused):
        handoff_start(handoff=handoff, by=other_ma)


@pytest.mark.parametrize("status", [HandoffStatus.WAITING, HandoffStatus.CLAIMED])
def test_the_identity_guard_refuses_before_verification(status: str) -> None:
    with pytest.raises(IdentityNotVerified, match="Verify the patient's identity"):
        require_identity_verified(Handoff(status=status))


@pytest.mark.parametrize("status", [HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS])
def test_the_identity_guard_passes_after_verification(status: str) -> None:
    require_identity_verified(Handoff(status=status))


@pytest.mark.parametrize("status", [HandoffStatus.COMPLETED, HandoffStatus.CANCELLED])
def test_the_identity_guard_refuses_closed_handoffs(status: str) -> None:
    with pytest.raises(IdentityNotVerified):
        require_identity_verified(Handoff(status=status))


def test_the_identity_guard_works_on_a_real_handoff(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    with pytest.raises(IdentityNotVerified):
        require_identity_verified(handoff)
    handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn="M100001")
    require_identity_verified(handoff)


# --- complete -------------------------------------------------------------------------------------


def an_active_procedure() -> ProcedureType:
    return ProcedureType.objects.get(code="69209")


def test_it_refuses_to_complete_while_ordered_items_are_open(
    handoff: Handoff, medical_assistant: User, clinician: User, station: Station
) -> None:
    procedure_orders_add(handoff=handoff, procedure_types=[an_active_procedure()], by=clinician)
    started(handoff, equipped(station), medical_assistant)

    with pytest.raises(TransitionNotAllowed, match="1 open item"):
        handoff_complete(handoff=handoff, by=medical_assistant)

    stored = fresh(handoff)
    assert (stored.status, stored.closed_at) == (HandoffStatus.IN_PROGRESS, None)
    assert fresh(station).state == StationState.OCCUPIED


def test_the_refusal_names_the_patient_and_lists_what_is_still_open(
    handoff: Handoff, medical_assistant: User, clinician: User, station: Station
) -> None:
    procedure_orders_add(handoff=handoff, procedure_types=[an_active_procedure()], by=clinician)
    [test] = test_orders_add(handoff=handoff, tests=[TestDefinition.objects.get(loinc_code="41653-7")], by=clinician)
    started(handoff, equipped(station), medical_assistant)

    with pytest.raises(TransitionNotAllowed) as refused:
        handoff_complete(handoff=handoff, by=medical_assistant)

    assert str(refused.value) == (
        f"Rosa Martínez still has 2 open items: {an_active_procedure().name} (ordered); {test.test.short_name} (to collect). "
        "Finish or close each one, then complete the handoff."
    )
    assert fresh(handoff).status == HandoffStatus.IN_PROGRESS


def test_a_handoff_completes_when_no_items_are_open(
    handoff: Handoff, medical_assistant: User, clinician: User, station: Station
) -> None:
    [order] = procedure_orders_add(handoff=handoff, procedure_types=[an_active_procedure()], by=clinician)
    started(handoff, equipped(station), medical_assistant)
    # Closing the last procedure through its service would complete the handoff by itself (tests in
    # tests/procedures cover that); here the core's own check is under test, so the row is closed directly.
    ProcedureOrder.objects.filter(pk=order.pk).update(status=ProcedureOrder.Status.COMPLETED)

    assert_one_event(
        handoff,
        lambda: handoff_complete(handoff=handoff, by=medical_assistant),
        action=Action.COMPLETED,
        from_status=HandoffStatus.IN_PROGRESS,
        to_status=HandoffStatus.COMPLETED,
        actor=medical_assistant,
    )
    stored = fresh(handoff)
    assert stored.status == HandoffStatus.COMPLETED
    assert stored.closed_at is not None
    assert fresh(station).state == StationState.NEEDS_TURNOVER
    assert list(StationEvent.objects.filter(station=station).values_list("to_status", flat=True)) == [
        StationState.NEEDS_TURNOVER,
        StationState.OCCUPIED,
    ]


def test_a_handoff_with_nothing_ordered_completes(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    started(handoff, station, medical_assistant)
    handoff_complete(handoff=handoff, by=medical_assistant)
    assert fresh(handoff).status == HandoffStatus.COMPLETED


def test_a_handoff_not_yet_started_cannot_complete(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    verified(handoff, station, medical_assistant)
    with pytest.raises(TransitionNotAllowed, match="can't become completed"):
        handoff_complete(handoff=handoff, by=medical_assistant)


def test_a_completed_handoff_cannot_be_cancelled(
    handoff: Handoff, medical_assistant: User, clinician: User, station: Station
) -> None:
    started(handoff, station, medical_assistant)
    handoff_complete(handoff=handoff, by=medical_assistant)
    with pytest.raises(TransitionNotAllowed, match="completed"):
        handoff_cancel(handoff=handoff, by=clinician, reason="Changed my mind")


def test_another_ma_cannot_complete_my_patient(
    handoff: Handoff, medical_assistant: User, other_ma: User, station: Station
) -> None:
    started(handoff, station, medical_assistant)
    with pytest.raises(PermissionRefused):
        handoff_complete(handoff=handoff, by=other_ma)


# --- cancel ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["clinician", "supervisor"])
def test_a_clinician_or_supervisor_cancels_with_a_reason(
    role: str, request: pytest.FixtureRequest, handoff: Handoff
) -> None:
    by = request.getfixturevalue(role)

    event = assert_one_event(
        handoff,
        lambda: handoff_cancel(handoff=handoff, by=by, reason="  Patient declined  "),
        action=Action.CANCELLED,
        from_status=HandoffStatus.WAITING,
        to_status=HandoffStatus.CANCELLED,
        actor=by,
    )
    assert event.note == "Patient declined"
    stored = fresh(handoff)
    assert (stored.status, stored.cancel_reason) == (HandoffStatus.CANCELLED, "Patient declined")
    assert stored.closed_at is not None


@pytest.mark.parametrize("reason", ["", "   "])
def test_cancelling_needs_a_reason(reason: str, handoff: Handoff, clinician: User) -> None:
    with pytest.raises(TransitionNotAllowed, match="reason"):
        handoff_cancel(handoff=handoff, by=clinician, reason=reason)
    assert fresh(handoff).status == HandoffStatus.WAITING


def test_another_clinician_may_not_cancel_a_handoff_they_did_not_order(handoff: Handoff) -> None:
    colleague = UserFactory(role=roles.ROLE_CLINICIAN, first_name="Ines", last_name="Varga")
    with pytest.raises(PermissionRefused, match=r"Only the ordering clinician \(.+\) or a supervisor"):
        handoff_cancel(handoff=handoff, by=colleague, reason="Wrong patient")
    assert fresh(handoff).status == HandoffStatus.WAITING
    assert not handoff_actions(handoff, colleague).cancel  # the page doesn't offer it either


def test_a_clinician_orders_as_themselves_and_an_ma_on_a_clinicians_behalf(
    patient: Patient, exam_room: ExamRoom, clinician: User, medical_assistant: User
) -> None:
    colleague = UserFactory(role=roles.ROLE_CLINICIAN)
    with pytest.raises(PermissionRefused, match="A clinician orders as themselves"):
        handoff_create(patient=patient, ordering_clinician=colleague, exam_room=exam_room, by=clinician)
    assert not Handoff.objects.filter(patient=patient).exists()
    entered = handoff_create(patient=patient, ordering_clinician=colleague, exam_room=exam_room, by=medical_assistant)
    [created] = entered.events.all()
    assert (entered.ordering_clinician, created.actor, created.note) == (
        colleague,
        medical_assistant,
        f"On behalf of {colleague}",
    )


@pytest.mark.parametrize("role", ["medical_assistant", "lab_tech", "outsider"])
def test_it_refuses_a_cancel_by_a_role_without_the_permission(
    role: str, request: pytest.FixtureRequest, handoff: Handoff
) -> None:
    with pytest.raises(PermissionRefused, match="cancel handoffs"):
        handoff_cancel(handoff=handoff, by=request.getfixturevalue(role), reason="Patient declined")
    assert fresh(handoff).status == HandoffStatus.WAITING


def test_cancelling_frees_the_station_for_turnover(
    handoff: Handoff, medical_assistant: User, supervisor: User, station: Station
) -> None:
    started(handoff, station, medical_assistant)
    handoff_cancel(handoff=handoff, by=supervisor, reason="Patient felt faint; sent to ED")
    assert fresh(handoff).status == HandoffStatus.CANCELLED
    assert fresh(station).state == StationState.NEEDS_TURNOVER


def test_a_cancelled_handoff_cannot_be_cancelled_again(handoff: Handoff, clinician: User) -> None:
    handoff_cancel(handoff=handoff, by=clinician, reason="Patient left")
    with pytest.raises(TransitionNotAllowed, match="cancelled"):
        handoff_cancel(handoff=handoff, by=clinician, reason="Again")
    assert len(events(handoff)) == 1


# --- station turnover -----------------------------------------------------------------------------


def test_turnover_makes_a_station_ready_again(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    at_station(handoff, station, medical_assistant)
    handoff_release(handoff=handoff, by=medical_assistant)

    station_turnover(station=station, by=medical_assistant)

    assert station.state == StationState.READY
    assert fresh(station).state == StationState.READY
    latest = StationEvent.objects.filter(station=station).first()  # newest first
    assert latest is not None
    assert (latest.from_status, latest.to_status, latest.actor, latest.note) == (
        StationState.NEEDS_TURNOVER,
        StationState.READY,
        medical_assistant,
        "Cleaned and restocked",
    )


def test_a_ready_station_cannot_be_turned_over(station: Station, medical_assistant: User) -> None:
    with pytest.raises(TransitionNotAllowed, match=re.escape("This station is ready; it can't become ready.")):
        station_turnover(station=station, by=medical_assistant)
    assert not StationEvent.objects.filter(station=station).exists()


def test_an_occupied_station_cannot_be_turned_over(handoff: Handoff, medical_assistant: User, station: Station) -> None:
    at_station(handoff, station, medical_assistant)
    with pytest.raises(TransitionNotAllowed, match="occupied"):
        station_turnover(station=station, by=medical_assistant)


def test_a_lab_tech_cannot_turn_over_a_station(
    handoff: Handoff, medical_assistant: User, lab_tech: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    handoff_release(handoff=handoff, by=medical_assistant)
    with pytest.raises(PermissionRefused, match="turn over stations"):
        station_turnover(station=station, by=lab_tech)


def test_a_turned_over_station_takes_the_next_patient(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    started(handoff, station, medical_assistant)
    handoff_complete(handoff=handoff, by=medical_assistant)
    station_turnover(station=station, by=medical_assistant)

    following = at_station(HandoffFactory(), station, medical_assistant)

    assert following.station == station
    assert fresh(station).state == StationState.OCCUPIED


# --- the whole path -------------------------------------------------------------------------------


def test_each_step_writes_one_event_and_bumps_the_version(
    clinician: User, medical_assistant: User, patient: Patient, exam_room: ExamRoom, station: Station
) -> None:
    handoff = handoff_create(patient=patient, ordering_clinician=clinician, exam_room=exam_room, by=clinician)
    claimed(handoff, medical_assistant)
    handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)
    handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn=patient.mrn)
    handoff_start(handoff=handoff, by=medical_assistant)
    handoff_complete(handoff=handoff, by=medical_assistant)

    assert [(e.action, e.from_status, e.to_status) for e in events(handoff)] == [
        (Action.CREATED, "", HandoffStatus.WAITING),
        (Action.CLAIMED, HandoffStatus.WAITING, HandoffStatus.CLAIMED),
        (Action.STATION_ASSIGNED, HandoffStatus.CLAIMED, HandoffStatus.CLAIMED),
        (Action.IDENTITY_VERIFIED, HandoffStatus.CLAIMED, HandoffStatus.IDENTITY_VERIFIED),
        (Action.STARTED, HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS),
        (Action.COMPLETED, HandoffStatus.IN_PROGRESS, HandoffStatus.COMPLETED),
    ]
    assert fresh(handoff).version == 6
    assert handoff.version == 6


# --- constraints in Postgres ----------------------------------------------------------------------


def test_the_database_refuses_a_claimed_handoff_without_a_claimer(handoff: Handoff) -> None:
    with pytest.raises(IntegrityError, match="handoff_claimed_has_claimer"), transaction.atomic():
        Handoff.objects.filter(pk=handoff.pk).update(status=HandoffStatus.CLAIMED)
    assert fresh(handoff).status == HandoffStatus.WAITING


def test_the_database_refuses_work_without_a_verified_identity(handoff: Handoff, medical_assistant: User) -> None:
    claimed(handoff, medical_assistant)
    with pytest.raises(IntegrityError, match="handoff_work_needs_identity"), transaction.atomic():
        Handoff.objects.filter(pk=handoff.pk).update(status=HandoffStatus.IN_PROGRESS)


def test_the_database_refuses_an_unknown_status(handoff: Handoff) -> None:
    with pytest.raises(IntegrityError, match="handoff_status_valid"), transaction.atomic():
        Handoff.objects.filter(pk=handoff.pk).update(status="archived")


def test_the_database_refuses_an_interpreter_without_a_language(handoff: Handoff) -> None:
    with pytest.raises(IntegrityError, match="handoff_interpreter_has_language"), transaction.atomic():
        Handoff.objects.filter(pk=handoff.pk).update(interpreter_needed=True, interpreter_language="")


def test_the_database_refuses_two_open_handoffs_at_one_station(
    handoff: Handoff, medical_assistant: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    other = HandoffFactory()
    with pytest.raises(IntegrityError, match="handoff_one_open_per_station"), transaction.atomic():
        Handoff.objects.filter(pk=other.pk).update(station=station)


def test_closed_handoffs_may_share_a_station(
    handoff: Handoff, medical_assistant: User, clinician: User, station: Station
) -> None:
    at_station(handoff, station, medical_assistant)
    handoff_cancel(handoff=handoff, by=clinician, reason="Patient left")
    earlier = HandoffFactory(ordering_clinician=clinician)
    handoff_cancel(handoff=earlier, by=clinician, reason="Duplicate")
    Handoff.objects.filter(pk=earlier.pk).update(station=station)  # history may point at the same room
    assert Handoff.objects.filter(station=station).count() == 2


class TestSecondHandoff:
    """A patient already on the queue gets a second handoff only when it is confirmed."""

    def _send(self, patient: Patient, clinician: User, exam_room: ExamRoom, **kwargs: object) -> Handoff:
        return handoff_create(
            patient=patient, ordering_clinician=clinician, exam_room=exam_room, by=clinician, **kwargs
        )  # type: ignore[arg-type]

    def test_a_second_open_handoff_is_refused_naming_the_patient_and_the_open_one(
        self, clinician: User, patient: Patient, exam_room: ExamRoom
    ) -> None:
        first = self._send(patient, clinician, exam_room)
        at = timezone.localtime(first.created_at)
        with pytest.raises(AlreadyOnTheQueue) as refused:
            self._send(patient, clinician, exam_room)
        assert str(refused.value) == (
            f"Rosa Martínez is already on the back-office queue: handed off at {at:%H:%M} by Priya Shah, "
            "waiting. Tick “Hand off again” to send a second handoff."
        )
        assert refused.value.open_handoff == first
        assert Handoff.objects.filter(patient=patient).count() == 1

    def test_confirmed_it_is_sent_and_keeps_the_first_ones_precautions(
        self, clinician: User, patient: Patient, exam_room: ExamRoom
    ) -> None:
        self._send(patient, clinician, exam_room, needs=Needs(isolation=Handoff.Isolation.DROPLET))
        second = self._send(patient, clinician, exam_room, again=True)
        assert second.status == HandoffStatus.WAITING
        assert second.isolation == Handoff.Isolation.DROPLET
        # Precautions chosen for the second one stand.
        third = self._send(patient, clinician, exam_room, again=True, needs=Needs(isolation=Handoff.Isolation.CONTACT))
        assert third.isolation == Handoff.Isolation.CONTACT

    def test_a_closed_handoff_asks_nothing(self, clinician: User, patient: Patient, exam_room: ExamRoom) -> None:
        first = self._send(patient, clinician, exam_room)
        handoff_cancel(handoff=first, by=clinician, reason="Wrong patient")
        again = self._send(patient, clinician, exam_room)
        assert again.isolation == Handoff.Isolation.NONE
