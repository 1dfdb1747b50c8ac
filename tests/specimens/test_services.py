"""Collecting at the bedside, custody, rejection and recollection, through the services in order."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from backoffice import roles
from backoffice.models import Handoff, HandoffEvent, User
from backoffice.services import handoff_complete
from backoffice.workflow import HandoffStatus, PermissionRefused, TransitionNotAllowed
from lab.selectors import draws_for_handoff, open_test_count
from lab.services import tests_start_collection
from lab.workflow import TestOrderStatus
from specimens import services
from specimens.models import LabelPrint, Specimen, SpecimenEvent
from specimens.services import LabelOfAnotherPatient, WristbandMismatch
from specimens.workflow import FailedDrawReason, Location, SpecimenStatus
from tests.factories import HandoffFactory, UserFactory
from tests.specimens.helpers import (
    collected,
    confirm,
    labelled,
    orders_of,
    reason,
    received,
    tests,
    verified_handoff,
)

pytestmark = pytest.mark.django_db
S = SpecimenStatus


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT, first_name="Maria", last_name="Alvarez")


@pytest.fixture
def lab_tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


def actions(specimen: Specimen) -> list[str]:
    return list(SpecimenEvent.objects.filter(specimen=specimen).order_by("id").values_list("action", flat=True))


# --- What to draw --------------------------------------------------------------------------------


def test_tests_sharing_a_container_are_drawn_into_one_in_the_order_of_draw(ma: User) -> None:
    handoff = verified_handoff("Urine dipstick", "CBC", "CMP", "HbA1c", ma=ma)
    draws = draws_for_handoff(handoff)
    assert [(d.container.code, d.tests_label) for d in draws] == [
        ("sst-gold", "CMP"),  # serum before EDTA, as CLSI's order of draw asks
        ("edta-lavender", "CBC, HbA1c"),
        ("sterile-cup", "Urine dipstick"),
    ]


def test_starting_collection_labels_one_specimen_per_container_and_starts_the_work(ma: User) -> None:
    handoff, specimens = labelled("CBC", "HbA1c", "Urine dipstick", ma=ma)
    assert [s.container.code for s in specimens] == ["edta-lavender", "sterile-cup"]
    assert all(s.status == S.LABELLED and s.location == Location.BEDSIDE for s in specimens)
    assert len({s.accession for s in specimens}) == 2
    orders = orders_of(handoff)
    assert orders["CBC"].specimen == orders["HbA1c"].specimen == specimens[0]
    assert orders["Urine dipstick"].specimen == specimens[1]
    # Labelled is not collected: the tests still hold the patient.
    assert {o.status for o in orders.values()} == {TestOrderStatus.ORDERED}
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.IN_PROGRESS
    assert actions(specimens[0]) == [SpecimenEvent.Action.LABELLED]
    assert draws_for_handoff(handoff) == []


def test_nothing_is_labelled_before_identity_is_verified(ma: User) -> None:
    handoff = HandoffFactory()
    from backoffice.services import handoff_claim
    from lab.services import test_orders_add

    test_orders_add(handoff=handoff, tests=tests("CBC"), by=handoff.ordering_clinician)
    handoff_claim(handoff=handoff, by=ma)
    with pytest.raises(TransitionNotAllowed, match="Verify the patient's identity"):
        tests_start_collection(handoff=handoff, by=ma)
    assert not Specimen.objects.exists()


def test_a_lab_tech_does_not_collect(ma: User, lab_tech: User) -> None:
    handoff = verified_handoff("CBC", ma=ma)
    with pytest.raises(PermissionRefused, match="collect specimens"):
        tests_start_collection(handoff=handoff, by=lab_tech)


def test_nothing_to_draw_is_refused(ma: User) -> None:
    handoff, _ = labelled("CBC", ma=ma)
    with pytest.raises(TransitionNotAllowed, match="Nothing is waiting to be collected"):
        tests_start_collection(handoff=handoff, by=ma)


# --- The bedside check ---------------------------------------------------------------------------


def test_the_label_and_the_wristband_together_make_it_collected(ma: User) -> None:
    handoff, [tube] = labelled("CBC", "HbA1c", ma=ma)
    drawn = timezone.now() - dt.timedelta(minutes=3)
    services.specimen_confirm(
        handoff=handoff,
        scanned_label=f" {tube.accession.lower()} ",
        scanned_wristband=handoff.patient.mrn,
        by=ma,
        collected_at=drawn,
        volume_ml=Decimal("4.0"),
        body_site="median_cubital_left",
    )
    tube.refresh_from_db()
    assert tube.status == S.COLLECTED
    assert (tube.verified_by, tube.verify_method, tube.collected_by, tube.collected_at) == (ma, "scanned", ma, drawn)
    assert actions(tube) == ["labelled", "verified", "collected"]
    assert {o.status for o in orders_of(handoff).values()} == {TestOrderStatus.COLLECTED}
    # Collected specimens no longer hold the patient: the handoff can close.
    assert open_test_count(handoff) == 0
    handoff_complete(handoff=Handoff.objects.get(pk=handoff.pk), by=ma)


def test_a_label_of_another_patient_is_refused_loudly_and_recorded(ma: User) -> None:
    handoff, _ = labelled("CBC", ma=ma)
    _other, [foreign] = labelled("CBC", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT))
    with pytest.raises(LabelOfAnotherPatient, match=r"STOP: label .* belongs to another patient"):
        services.specimen_confirm(
            handoff=handoff, scanned_label=foreign.accession, scanned_wristband=handoff.patient.mrn, by=ma
        )
    foreign.refresh_from_db()
    assert foreign.status == S.LABELLED
    mismatch = HandoffEvent.objects.filter(handoff=handoff, action=HandoffEvent.Action.IDENTITY_MISMATCH).get()
    assert foreign.accession in mismatch.note and mismatch.actor == ma


def test_a_wristband_that_is_not_the_patients_is_refused_and_recorded(ma: User) -> None:
    handoff, [tube] = labelled("CBC", ma=ma)
    with pytest.raises(WristbandMismatch, match="STOP: the wristband M999999"):
        services.specimen_confirm(handoff=handoff, scanned_label=tube.accession, scanned_wristband="M999999", by=ma)
    tube.refresh_from_db()
    assert tube.status == S.LABELLED and tube.verified_at is None
    assert actions(tube) == ["labelled", "id_mismatch"]


def test_the_draw_time_is_never_in_the_future(ma: User) -> None:
    handoff, [tube] = labelled("CBC", ma=ma)
    with pytest.raises(TransitionNotAllowed, match="can't be in the future"):
        services.specimen_confirm(
            handoff=handoff,
            scanned_label=tube.accession,
            scanned_wristband=handoff.patient.mrn,
            by=ma,
            collected_at=timezone.now() + dt.timedelta(minutes=5),
        )
    assert Specimen.objects.get(pk=tube.pk).status == S.LABELLED


def test_too_little_is_refused(ma: User) -> None:
    handoff, [tube] = labelled("CBC", ma=ma)
    with pytest.raises(TransitionNotAllowed, match=r"below the 1\.0 mL"):
        services.specimen_confirm(
            handoff=handoff,
            scanned_label=tube.accession,
            scanned_wristband=handoff.patient.mrn,
            by=ma,
            volume_ml=Decimal("0.5"),
        )


def test_a_specimen_is_collected_once(ma: User) -> None:
    _handoff, [tube] = collected("CBC", ma=ma)
    with pytest.raises(TransitionNotAllowed, match="is collected; it can't become collected"):
        confirm(tube, ma)


def test_a_failed_draw_keeps_the_test_waiting(ma: User) -> None:
    handoff, [tube] = labelled("CBC", ma=ma)
    services.specimen_not_collected(specimen=tube, by=ma, reason=FailedDrawReason.NO_VEIN)
    tube.refresh_from_db()
    assert tube.status == S.NOT_COLLECTED
    order = orders_of(handoff)["CBC"]
    assert (order.status, order.specimen) == (TestOrderStatus.ORDERED, None)
    assert [d.tests_label for d in draws_for_handoff(handoff)] == ["CBC"]


# --- Labels --------------------------------------------------------------------------------------


def test_a_reprint_needs_a_reason_and_is_recorded(ma: User) -> None:
    _, [tube] = labelled("CBC", ma=ma)
    services.specimen_labels_printed(specimens=[tube], by=ma, output="pdf")
    with pytest.raises(TransitionNotAllowed, match="Say why"):
        services.specimen_labels_printed(specimens=[tube], by=ma, output="pdf")
    services.specimen_labels_printed(specimens=[tube], by=ma, output="pdf", reason="Label smudged")
    assert list(LabelPrint.objects.filter(specimen=tube).values_list("reason", flat=True)) == ["", "Label smudged"]
    assert actions(tube)[-2:] == ["label_printed", "label_reprinted"]


# --- Custody -------------------------------------------------------------------------------------


def test_hand_over_and_receipt_are_custody_events_from_place_to_place(ma: User, lab_tech: User) -> None:
    _, [tube] = collected("CBC", ma=ma)
    received(tube, ma=ma, lab_tech=lab_tech)
    tube.refresh_from_db()
    assert (tube.status, tube.location, tube.received_by, tube.received_acceptable) == (
        S.RECEIVED,
        Location.IN_HOUSE_BENCH,
        lab_tech,
        True,
    )
    moves = SpecimenEvent.objects.filter(specimen=tube, action__in=["handed_over", "received"]).order_by("id")
    assert [(e.from_location, e.to_location, e.actor) for e in moves] == [
        (Location.BEDSIDE, Location.IN_HOUSE_BENCH, ma),
        (Location.IN_HOUSE_BENCH, Location.IN_HOUSE_BENCH, lab_tech),
    ]


def test_a_specimen_is_received_once(ma: User, lab_tech: User) -> None:
    _, [tube] = collected("CBC", ma=ma)
    received(tube, ma=ma, lab_tech=lab_tech)
    with pytest.raises(TransitionNotAllowed, match="a receipt is recorded once"):
        services.specimen_receive(specimen=tube, at=Location.IN_HOUSE_BENCH, by=lab_tech)


def test_an_ma_does_not_receive(ma: User) -> None:
    _, [tube] = collected("CBC", ma=ma)
    with pytest.raises(PermissionRefused, match="receive specimens"):
        services.specimen_receive(specimen=tube, at=Location.IN_HOUSE_BENCH, by=ma)


def test_received_in_bad_condition_is_rejected_in_the_same_step(ma: User, lab_tech: User) -> None:
    _handoff, [tube] = collected("CBC", ma=ma)
    with pytest.raises(TransitionNotAllowed, match="Give the reason"):
        services.specimen_receive(specimen=tube, at=Location.IN_HOUSE_BENCH, by=lab_tech, acceptable=False)
    services.specimen_receive(
        specimen=tube, at=Location.IN_HOUSE_BENCH, by=lab_tech, acceptable=False, reason=reason("RC"), note="Clotted"
    )
    tube.refresh_from_db()
    assert (tube.status, tube.received_acceptable, tube.rejection_reason.code) == (S.REJECTED, False, "RC")
    assert actions(tube)[-2:] == ["received", "rejected"]


# --- Rejection and recollection ------------------------------------------------------------------


def test_a_rejected_specimen_is_kept_and_its_tests_are_collected_again_first(ma: User, lab_tech: User) -> None:
    handoff, [_tube, cup] = collected("CBC", "HbA1c", "Urine dipstick", ma=ma)
    received(cup, ma=ma, lab_tech=lab_tech)
    services.specimen_reject(specimen=cup, reason=reason("RN"), by=lab_tech, note="Not a clean catch")
    cup.refresh_from_db()
    assert (cup.status, cup.rejection_reason.code, cup.rejected_by) == (S.REJECTED, "RN", lab_tech)
    dipstick = orders_of(handoff)["Urine dipstick"]
    assert (dipstick.status, dipstick.needs_recollection, dipstick.specimen) == (TestOrderStatus.ORDERED, True, None)
    assert orders_of(handoff)["CBC"].status == TestOrderStatus.COLLECTED
    assert open_test_count(handoff) == 1
    [draw] = draws_for_handoff(handoff)
    assert (draw.container.code, draw.needs_recollection) == ("sterile-cup", True)

    [again] = tests_start_collection(handoff=Handoff.objects.get(pk=handoff.pk), by=ma)
    assert again.recollection_of == cup
    confirm(again, ma)
    dipstick = orders_of(handoff)["Urine dipstick"]
    assert (dipstick.status, dipstick.needs_recollection, dipstick.specimen) == (
        TestOrderStatus.COLLECTED,
        False,
        again,
    )
    assert Specimen.objects.filter(pk=cup.pk, status=S.REJECTED).exists()  # never deleted


def test_only_a_drawn_specimen_can_be_rejected(ma: User, lab_tech: User) -> None:
    _, [tube] = labelled("CBC", ma=ma)
    with pytest.raises(TransitionNotAllowed, match="is labelled, not yet verified; it can't become rejected"):
        services.specimen_reject(specimen=tube, reason=reason("RH"), by=lab_tech)


def test_an_ma_does_not_reject(ma: User) -> None:
    _, [tube] = collected("CBC", ma=ma)
    with pytest.raises(PermissionRefused, match="reject specimens"):
        services.specimen_reject(specimen=tube, reason=reason("RH"), by=ma)
