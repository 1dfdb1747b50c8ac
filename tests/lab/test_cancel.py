"""Cancelling a test that won't be collected, and the ordering clinician being told."""

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import roles
from backoffice.hooks import open_item_count
from backoffice.models import AccessLog, AccessOutcome, Handoff, HandoffEvent, User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import TestOrder, TestOrderEvent
from lab.services import test_order_acknowledge, test_order_cancel
from lab.workflow import CancelReason, TestOrderStatus
from specimens import services as specimen_services
from specimens.workflow import FailedDrawReason
from tests.factories import UserFactory
from tests.specimens.helpers import collected, labelled, orders_of, verified_handoff

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT, first_name="Maria", last_name="Alvarez")


def failed_draw(ma: User) -> tuple[Handoff, TestOrder]:
    """A CBC whose draw failed: the patient refused."""
    handoff, [tube] = labelled("CBC", ma=ma)
    specimen_services.specimen_not_collected(specimen=tube, by=ma, reason=FailedDrawReason.PATIENT_REFUSED)
    return handoff, orders_of(handoff)["CBC"]


class TestTheService:
    def test_after_a_failed_draw_the_ma_cancels_and_the_clinician_is_told(self, ma: User) -> None:
        handoff, order = failed_draw(ma)
        assert open_item_count(Handoff.objects.get(pk=handoff.pk)) == 1

        test_order_cancel(order=order, reason=CancelReason.PATIENT_REFUSED, note="Will come back fasting", by=ma)

        order.refresh_from_db()
        assert (order.status, order.cancel_reason, order.cancelled_by) == (
            TestOrderStatus.CANCELLED,
            CancelReason.PATIENT_REFUSED,
            ma,
        )
        assert order.acknowledged_at is None  # waiting on the clinician's list
        assert open_item_count(Handoff.objects.get(pk=handoff.pk)) == 0  # nothing holds the patient now
        event = HandoffEvent.objects.filter(handoff=handoff).latest("id")
        assert event.action == HandoffEvent.Action.ITEMS_CANCELLED
        assert "CBC cancelled: Patient refused: Will come back fasting" in event.note

        test_order_acknowledge(order=TestOrder.objects.get(pk=order.pk), by=handoff.ordering_clinician)
        order.refresh_from_db()
        assert order.acknowledged_by == handoff.ordering_clinician
        assert list(order.events.order_by("id").values_list("action", flat=True))[-2:] == [
            TestOrderEvent.Action.CANCELLED,
            TestOrderEvent.Action.ACKNOWLEDGED,
        ]

    def test_the_ordering_clinician_cancelling_needs_no_notice(self, ma: User) -> None:
        handoff = verified_handoff("CBC", ma=ma)
        order = orders_of(handoff)["CBC"]
        test_order_cancel(order=order, reason=CancelReason.NOT_NEEDED, by=handoff.ordering_clinician)
        order.refresh_from_db()
        assert order.acknowledged_by == handoff.ordering_clinician

    def test_other_needs_a_note_and_a_reason_is_required(self, ma: User) -> None:
        _, order = failed_draw(ma)
        with pytest.raises(TransitionNotAllowed, match="Say why"):
            test_order_cancel(order=order, reason=CancelReason.OTHER, by=ma)
        with pytest.raises(TransitionNotAllowed, match="Choose why"):
            test_order_cancel(order=order, reason="bored", by=ma)
        assert TestOrder.objects.get(pk=order.pk).status == TestOrderStatus.ORDERED

    def test_only_the_ma_working_the_handoff_clinician_or_supervisor_cancels(self, ma: User) -> None:
        _, order = failed_draw(ma)
        with pytest.raises(PermissionRefused, match="claimed by"):
            test_order_cancel(
                order=order, reason=CancelReason.PATIENT_REFUSED, by=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
            )
        with pytest.raises(PermissionRefused, match="cancel lab tests"):
            test_order_cancel(
                order=order, reason=CancelReason.PATIENT_REFUSED, by=UserFactory(role=roles.ROLE_LAB_TECH)
            )
        test_order_cancel(order=order, reason=CancelReason.PATIENT_REFUSED, by=UserFactory(role=roles.ROLE_SUPERVISOR))

    def test_a_test_with_a_labelled_tube_waiting_is_not_cancelled(self, ma: User) -> None:
        handoff, _ = labelled("CBC", ma=ma)
        with pytest.raises(TransitionNotAllowed, match="record it as not collected first"):
            test_order_cancel(order=orders_of(handoff)["CBC"], reason=CancelReason.PATIENT_REFUSED, by=ma)

    def test_a_collected_test_is_not_cancelled(self, ma: User) -> None:
        handoff, _ = collected("CBC", ma=ma)
        with pytest.raises(TransitionNotAllowed, match="is collected; it can't be cancelled"):
            test_order_cancel(order=orders_of(handoff)["CBC"], reason=CancelReason.ORDERED_IN_ERROR, by=ma)

    def test_only_the_ordering_clinician_or_a_supervisor_acknowledges(self, ma: User) -> None:
        _, order = failed_draw(ma)
        test_order_cancel(order=order, reason=CancelReason.COULD_NOT_COLLECT, by=ma)
        with pytest.raises(PermissionRefused, match="only they or a supervisor"):
            test_order_acknowledge(order=TestOrder.objects.get(pk=order.pk), by=UserFactory(role=roles.ROLE_CLINICIAN))
        test_order_acknowledge(order=TestOrder.objects.get(pk=order.pk), by=UserFactory(role=roles.ROLE_SUPERVISOR))
        with pytest.raises(TransitionNotAllowed, match="no cancellation waiting"):
            test_order_acknowledge(order=TestOrder.objects.get(pk=order.pk), by=UserFactory(role=roles.ROLE_SUPERVISOR))


class TestThePages:
    def test_the_panel_offers_cancel_after_a_failed_draw(self, client: Client, ma: User) -> None:
        handoff, order = failed_draw(ma)
        client.force_login(ma)
        content = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        assert "Not drawn" in content and "Patient refused" in content
        assert reverse("lab:cancel", args=[order.uuid]) in content

        response = client.post(
            reverse("lab:cancel", args=[order.uuid]),
            {"cancel-reason": CancelReason.PATIENT_REFUSED, "cancel-note": ""},
            follow=True,
        )
        assert (
            f"Complete blood count (CBC) panel cancelled; {handoff.ordering_clinician} is told."
            in response.content.decode()
        )
        assert TestOrder.objects.get(pk=order.pk).status == TestOrderStatus.CANCELLED

        clinician = Client()
        clinician.force_login(handoff.ordering_clinician)
        content = clinician.get(reverse("lab:calls")).content.decode()
        assert content.count("Tests cancelled after you ordered them") == 1 and handoff.patient.mrn in content
        assert "<title>Lab follow-ups" in content
        logged = AccessLog.objects.get(what="lab follow-ups")
        assert list(logged.patients.values_list("pk", flat=True)) == [handoff.patient_id]
        clinician.post(reverse("lab:acknowledge", args=[order.uuid]))
        assert TestOrder.objects.get(pk=order.pk).acknowledged_by == handoff.ordering_clinician
        assert "No cancelled tests to see." in clinician.get(reverse("lab:calls")).content.decode()

    def test_a_lab_tech_is_not_offered_cancel_and_is_refused_on_record(self, client: Client, ma: User) -> None:
        handoff, order = failed_draw(ma)
        tech = UserFactory(role=roles.ROLE_LAB_TECH)
        client.force_login(tech)
        assert (
            reverse("lab:cancel", args=[order.uuid])
            not in client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        )
        assert client.post(reverse("lab:cancel", args=[order.uuid]), {"cancel-reason": "refused"}).status_code == 403
        denied = AccessLog.objects.get(user=tech, outcome=AccessOutcome.DENIED)
        assert list(denied.patients.values_list("pk", flat=True)) == [handoff.patient_id]

    def test_another_ma_is_refused_with_a_message_and_a_denied_row(self, client: Client, ma: User) -> None:
        handoff, order = failed_draw(ma)
        other = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
        client.force_login(other)
        response = client.post(reverse("lab:cancel", args=[order.uuid]), {"cancel-reason": "refused"}, follow=True)
        assert "only they or a supervisor" in response.content.decode()
        assert TestOrder.objects.get(pk=order.pk).status == TestOrderStatus.ORDERED
        denied = AccessLog.objects.get(user=other, outcome=AccessOutcome.DENIED)
        assert list(denied.patients.values_list("pk", flat=True)) == [handoff.patient_id]
