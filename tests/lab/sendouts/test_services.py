"""The send-out desk's services: every guard, every move, the events, and nothing half-written."""

from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from backoffice import roles
from backoffice.models import User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import OutboundMessage, SendOut, SendOutEvent, Shipment, ShipmentEvent, TestOrder, TestOrderEvent
from lab.sendouts import services, shipments
from lab.sendouts.tasks import send_order_message
from lab.workflow import CancelReason, MessageStatus, SendOutStatus, ShipmentStatus, TestOrderStatus
from specimens.models import SpecimenEvent
from specimens.services import specimen_ship
from specimens.workflow import SPECIMEN, Handling, Location, SpecimenStatus
from tests.factories import UserFactory
from tests.lab.sendout_helpers import reference_lab
from tests.lab.sendouts.helpers import at_desk, fasting, packed, send_outs_of, shipment
from tests.specimens.helpers import collected, received

pytestmark = pytest.mark.django_db


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


def fresh[M: (SendOut, Shipment, OutboundMessage)](obj: M) -> M:
    obj.refresh_from_db()
    return obj


def queued_sends() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=send_order_message.module_path, status=TaskResultStatus.READY))


class TestTheSpecimenFloor:
    def test_a_received_specimen_may_be_shipped_and_nothing_follows(self) -> None:
        assert SPECIMEN.allows(SpecimenStatus.RECEIVED, SpecimenStatus.SHIPPED)
        assert not SPECIMEN.moves[SpecimenStatus.SHIPPED]
        assert not SPECIMEN.allows(SpecimenStatus.IN_TRANSIT, SpecimenStatus.SHIPPED)

    def test_a_specimen_at_the_bench_is_not_shipped_from_there(self, ma: User, tech: User) -> None:
        _, [tube] = collected("Hemoglobin", ma=ma)
        received(tube, ma=ma, lab_tech=tech)
        with pytest.raises(TransitionNotAllowed, match="it is shipped from the send-out desk"):
            specimen_ship(specimen=tube, by=tech, note="To a lab")

    def test_shipping_moves_it_to_the_reference_lab_with_a_custody_event(self, ma: User, tech: User) -> None:
        reference_lab()
        _, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
        specimen_ship(specimen=tube, by=tech, note="To Quest with route 12")
        tube.refresh_from_db()
        assert (tube.status, tube.location) == (SpecimenStatus.SHIPPED, Location.REFERENCE_LAB)
        event = SpecimenEvent.objects.filter(specimen=tube).latest("id")
        assert (event.action, event.from_location, event.to_location) == (
            SpecimenEvent.Action.SHIPPED,
            Location.SEND_OUT_DESK,
            Location.REFERENCE_LAB,
        )
        assert tube.is_collected  # shipped still counts as drawn: the patient isn't needed again


class TestCreatingAShipment:
    def test_it_records_who_opened_it_for_which_pickup(self, tech: User) -> None:
        lab = reference_lab()
        box = shipment(lab, by=tech)
        assert (box.status, box.handling, box.created_by) == (ShipmentStatus.OPEN, Handling.REFRIGERATED, tech)
        event = ShipmentEvent.objects.get(shipment=box)
        assert event.action == ShipmentEvent.Action.CREATED and "refrigerated (2 to 8 °C)" in event.note

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"courier": "  "}, "Say who picks it up"),
            ({"pickup_at": timezone.now() + timedelta(days=30)}, "today or in the next two weeks"),
            ({"pickup_at": timezone.now() - timedelta(days=2)}, "today or in the next two weeks"),
            ({"handling": "warm"}, "Choose the temperature"),
        ],
    )
    def test_bad_input_is_refused_and_nothing_is_written(self, tech: User, change: dict, message: str) -> None:  # type: ignore[type-arg]
        lab = reference_lab()
        args = {"courier": "Route 12", "pickup_at": timezone.now() + timedelta(hours=1), "handling": "room"} | change
        with pytest.raises(TransitionNotAllowed, match=message):
            shipments.shipment_create(reference_lab=lab, by=tech, **args)
        assert not Shipment.objects.exists()

    def test_an_ma_may_not_pack_shipments(self, ma: User) -> None:
        with pytest.raises(PermissionRefused, match="pack shipments"):
            shipment(reference_lab(), by=ma)

    def test_an_inactive_lab_takes_no_shipment(self, tech: User) -> None:
        lab = reference_lab()
        lab.is_active = False
        lab.save()
        with pytest.raises(TransitionNotAllowed, match="no longer used"):
            shipment(lab, by=tech)


class TestPacking:
    def test_a_tube_goes_in_with_every_send_out_it_carries(self, ma: User, tech: User) -> None:
        lab = reference_lab()
        _, [serum] = at_desk("CMP", "Lipids", ma=ma, lab_tech=tech)
        box = shipment(lab, by=tech)
        packed_now = shipments.shipment_pack(shipment=box, specimen=serum, by=tech)
        assert len(packed_now) == 2
        for send_out in send_outs_of(serum):
            assert (send_out.status, send_out.shipment) == (SendOutStatus.PACKED, box)
            event = send_out.events.latest("id")
            assert (event.action, event.from_status, event.to_status) == ("packed", "waiting", "packed")
            assert serum.accession in event.note

    def test_a_tube_not_yet_received_at_the_desk_is_refused(self, ma: User, tech: User) -> None:
        lab = reference_lab()
        _, [tube] = collected("TSH", ma=ma)
        box = shipment(lab, by=tech)
        with pytest.raises(TransitionNotAllowed, match="isn't at the desk yet: receive it here first"):
            shipments.shipment_pack(shipment=box, specimen=tube, by=tech)
        assert send_outs_of(tube)[0].status == SendOutStatus.WAITING

    def test_another_labs_tube_is_refused_by_name(self, ma: User, tech: User) -> None:
        reference_lab("TSH")
        other = reference_lab("PSA", name="Bayside Clinical Laboratory")
        _, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
        box = shipment(other, by=tech)
        with pytest.raises(TransitionNotAllowed, match="goes to Quest Diagnostics West, not Bayside"):
            shipments.shipment_pack(shipment=box, specimen=tube, by=tech)

    def test_a_tube_at_another_temperature_is_refused(self, ma: User, tech: User) -> None:
        lab = reference_lab()
        _, [edta] = at_desk("CBC", ma=ma, lab_tech=tech)  # lavender EDTA: room temperature
        box = shipment(lab, by=tech, handling=Handling.FROZEN)
        with pytest.raises(TransitionNotAllowed, match="travels room temperature; this shipment is frozen"):
            shipments.shipment_pack(shipment=box, specimen=edta, by=tech)

    def test_a_tube_already_packed_has_nothing_waiting(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        with pytest.raises(TransitionNotAllowed, match="has no send-out waiting at the desk"):
            shipments.shipment_pack(shipment=box, specimen=tube, by=tech)

    def test_taking_a_tube_out_puts_it_back_on_the_desk(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_unpack(shipment=box, specimen=tube, by=tech)
        [send_out] = send_outs_of(tube)
        assert (send_out.status, send_out.shipment) == (SendOutStatus.WAITING, None)
        assert send_out.events.latest("id").action == SendOutEvent.Action.UNPACKED
        with pytest.raises(TransitionNotAllowed, match="isn't in this shipment"):
            shipments.shipment_unpack(shipment=box, specimen=tube, by=tech)

    def test_calling_off_a_pickup_puts_its_tubes_back(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        with pytest.raises(TransitionNotAllowed, match="Say why"):
            shipments.shipment_cancel(shipment=box, by=tech, reason=" ")
        shipments.shipment_cancel(shipment=box, by=tech, reason="Courier didn't come")
        assert fresh(box).status == ShipmentStatus.CANCELLED
        assert send_outs_of(tube)[0].status == SendOutStatus.WAITING
        with pytest.raises(TransitionNotAllowed, match="can't change"):
            shipments.shipment_pack(shipment=box, specimen=tube, by=tech)


class TestAnswers:
    def test_a_coded_answer_is_checked_and_recorded_once(self, ma: User, tech: User) -> None:
        reference_lab()
        _, [serum] = at_desk("Lipids", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(serum)
        assert [q.question for q in services.missing_answers(send_out)] == ["Fasting status"]
        with pytest.raises(TransitionNotAllowed, match="Fasting status: choose one of Yes, No"):
            services.send_out_answer(send_out=send_out, answers={"49541-6": "maybe"}, by=tech)
        assert fresh(send_out).answers == {}
        fasting(send_out, by=tech, answer="N")
        assert fresh(send_out).answers == {"49541-6": "N"}
        event = send_out.events.latest("id")
        assert (event.action, event.note) == (SendOutEvent.Action.ANSWERED, "Fasting status: No")
        fasting(send_out, by=tech, answer="N")  # the same answer again: nothing changes, no event
        assert send_out.events.filter(action=SendOutEvent.Action.ANSWERED).count() == 1
        assert not services.missing_answers(fresh(send_out))

    def test_a_question_the_lab_does_not_ask_is_refused(self, ma: User, tech: User) -> None:
        reference_lab()
        _, [serum] = at_desk("Lipids", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(serum)
        with pytest.raises(TransitionNotAllowed, match="doesn't ask 1234-5"):
            services.send_out_answer(send_out=send_out, answers={"1234-5": "x"}, by=tech)

    def test_a_test_without_questions_has_nothing_to_answer(self, ma: User, tech: User) -> None:
        reference_lab()
        _, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
        with pytest.raises(TransitionNotAllowed, match="asks nothing"):
            services.check_answer(send_outs_of(tube)[0], tech)

    def test_once_sent_the_answers_are_the_labs(self, ma: User, tech: User) -> None:
        box, [serum] = packed("Lipids", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        with pytest.raises(TransitionNotAllowed, match="the lab has the answers it was sent with"):
            fasting(send_outs_of(serum)[0], by=tech, answer="N")


class TestDispatch:
    def test_it_ships_sends_out_and_queues_one_order_per_send_out(self, ma: User, tech: User) -> None:
        box, [serum] = packed("CMP", "Lipids", ma=ma, lab_tech=tech)
        before = timezone.now()
        shipments.shipment_dispatch(shipment=box, by=tech)
        box = fresh(box)
        assert (box.status, box.dispatched_by) == (ShipmentStatus.DISPATCHED, tech)
        assert box.events.latest("id").note == "1 specimen, 2 orders, to Lab courier, route 12"
        serum.refresh_from_db()
        assert (serum.status, serum.location) == (SpecimenStatus.SHIPPED, Location.REFERENCE_LAB)
        for send_out in send_outs_of(serum):
            assert send_out.status == SendOutStatus.SENT
            assert send_out.sent_at is not None and send_out.sent_at >= before
            assert send_out.expected_by == send_out.sent_at + timedelta(hours=send_out.orderable.expected_hours)
            order = TestOrder.objects.get(pk=send_out.order_id)
            assert order.status == TestOrderStatus.SENT_OUT
            assert order.events.latest("id").action == TestOrderEvent.Action.SENT_OUT
            [message] = send_out.messages.all()
            assert (message.kind, message.status, message.attempts) == ("NW", MessageStatus.PENDING, 0)
            assert message.control_id.startswith("ORM") and len(message.control_id) == 12
            assert message.control_id in send_out.events.latest("id").note
        assert len(queued_sends()) == 2
        ids = {r.args_kwargs["args"][0] for r in queued_sends()}
        assert ids == set(OutboundMessage.objects.values_list("pk", flat=True))

    def test_the_orderables_own_turnaround_wins_over_the_labs(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(tube)
        send_out.orderable.turnaround_hours = 72
        send_out.orderable.save()
        shipments.shipment_dispatch(shipment=box, by=tech)
        send_out = fresh(send_out)
        assert send_out.expected_by == send_out.sent_at + timedelta(hours=72)

    def test_a_required_answer_missing_stops_it_and_nothing_moves(self, ma: User, tech: User) -> None:
        lab = reference_lab()
        _, [serum] = at_desk("Lipids", ma=ma, lab_tech=tech)
        box = shipment(lab, by=tech)
        shipments.shipment_pack(shipment=box, specimen=serum, by=tech)
        with pytest.raises(shipments.ShipmentProblems, match=f"{serum.accession} Lipids: answer fasting status"):
            shipments.shipment_dispatch(shipment=box, by=tech)
        assert fresh(box).status == ShipmentStatus.OPEN
        assert send_outs_of(serum)[0].status == SendOutStatus.PACKED
        serum.refresh_from_db()
        assert serum.status == SpecimenStatus.RECEIVED
        assert not OutboundMessage.objects.exists() and not queued_sends()

    def test_an_ordering_clinician_without_an_npi_stops_it_with_every_problem(self, ma: User, tech: User) -> None:
        lab = reference_lab()
        handoff, [serum] = at_desk("Lipids", ma=ma, lab_tech=tech)
        clinician = handoff.ordering_clinician
        clinician.npi = ""
        clinician.save()
        box = shipment(lab, by=tech)
        shipments.shipment_pack(shipment=box, specimen=serum, by=tech)
        with pytest.raises(shipments.ShipmentProblems) as refused:
            shipments.check_dispatch(fresh(box), tech)
        assert len(refused.value.problems) == 2
        assert refused.value.problems[1] == (
            f"{serum.accession} Lipids: {clinician} has no NPI on file: an admin adds it to their staff record "
            "(Admin → Users)."
        )

    def test_an_empty_shipment_does_not_leave(self, tech: User) -> None:
        box = shipment(reference_lab(), by=tech)
        with pytest.raises(TransitionNotAllowed, match="Pack at least one specimen first"):
            shipments.shipment_dispatch(shipment=box, by=tech)

    def test_it_leaves_once(self, ma: User, tech: User) -> None:
        box, _ = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        with pytest.raises(TransitionNotAllowed, match="is handed to the courier; it can't become handed"):
            shipments.shipment_dispatch(shipment=box, by=tech)

    def test_prints_are_recorded(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.manifest_printed(shipment=box, by=tech, specimens=1)
        shipments.requisitions_printed(send_outs=send_outs_of(tube), by=tech)
        assert box.events.latest("id").action == ShipmentEvent.Action.MANIFEST_PRINTED
        assert send_outs_of(tube)[0].events.latest("id").action == SendOutEvent.Action.REQUISITION_PRINTED


class TestCancel:
    def test_a_waiting_one_is_cancelled_with_its_test_and_nothing_is_sent(self, ma: User, tech: User) -> None:
        reference_lab()
        _, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(tube)
        with pytest.raises(TransitionNotAllowed, match="Say why"):
            services.send_out_cancel(send_out=send_out, reason=CancelReason.OTHER, by=tech)
        services.send_out_cancel(send_out=send_out, reason=CancelReason.NOT_NEEDED, by=tech)
        send_out = fresh(send_out)
        assert send_out.status == SendOutStatus.CANCELLED
        order = TestOrder.objects.get(pk=send_out.order_id)
        assert (order.status, order.cancel_reason, order.cancelled_by) == (
            TestOrderStatus.CANCELLED,
            CancelReason.NOT_NEEDED,
            tech,
        )
        assert order.acknowledged_at is None  # the ordering clinician is told
        assert not OutboundMessage.objects.exists()

    def test_a_packed_one_leaves_its_shipment(self, ma: User, tech: User) -> None:
        _, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(tube)
        services.send_out_cancel(send_out=send_out, reason=CancelReason.ORDERED_IN_ERROR, by=tech)
        assert (fresh(send_out).status, fresh(send_out).shipment) == (SendOutStatus.CANCELLED, None)

    def test_a_sent_one_tells_the_lab_with_orc_1_ca(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        [send_out] = send_outs_of(tube)
        OutboundMessage.objects.filter(send_out=send_out).update(status=MessageStatus.ACCEPTED, attempts=1)
        services.send_out_cancel(send_out=send_out, reason=CancelReason.NOT_NEEDED, by=tech)
        new, cancel = send_out.messages.order_by("id")
        assert (new.status, cancel.kind, cancel.status) == (MessageStatus.ACCEPTED, "CA", MessageStatus.PENDING)
        assert "\rORC|CA|" in cancel.text
        assert f"the lab is told (ORM CA {cancel.control_id})" in send_out.events.latest("id").note
        assert TestOrder.objects.get(pk=send_out.order_id).status == TestOrderStatus.CANCELLED
        assert len(queued_sends()) == 2

    def test_an_order_never_tried_is_withdrawn_and_no_cancel_follows(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        [send_out] = send_outs_of(tube)
        services.send_out_cancel(send_out=send_out, reason=CancelReason.NOT_NEEDED, by=tech)
        [new] = send_out.messages.all()
        assert new.status == MessageStatus.WITHDRAWN

    def test_an_order_tried_without_an_ack_stops_and_the_cancel_follows_it(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        [send_out] = send_outs_of(tube)
        OutboundMessage.objects.filter(send_out=send_out).update(status=MessageStatus.RETRYING, attempts=2)
        services.send_out_cancel(send_out=send_out, reason=CancelReason.NOT_NEEDED, by=tech)
        assert [(m.kind, m.status) for m in send_out.messages.order_by("id")] == [
            ("NW", MessageStatus.WITHDRAWN),
            ("CA", MessageStatus.PENDING),
        ]

    def test_a_cancelled_one_stays_cancelled(self, ma: User, tech: User) -> None:
        reference_lab()
        _, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(tube)
        services.send_out_cancel(send_out=send_out, reason=CancelReason.NOT_NEEDED, by=tech)
        with pytest.raises(TransitionNotAllowed, match="is cancelled; it can't become cancelled"):
            services.send_out_cancel(send_out=send_out, reason=CancelReason.NOT_NEEDED, by=tech)


class TestSendingAgain:
    def test_only_a_failed_message_is_sent_again(self, ma: User, tech: User) -> None:
        box, _ = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        message = OutboundMessage.objects.get()
        with pytest.raises(TransitionNotAllowed, match="is queued; only a failed one is sent again"):
            services.message_retry(message=message, by=tech)

    def test_one_that_gave_up_gets_a_fresh_round_now(self, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        message = OutboundMessage.objects.get()
        OutboundMessage.objects.filter(pk=message.pk).update(
            status=MessageStatus.GAVE_UP, attempts=8, next_attempt_at=None, last_error="refused"
        )
        DBTaskResult.objects.all().delete()
        before = timezone.now()
        services.message_retry(message=fresh(message), by=tech)
        message = fresh(message)
        assert (message.status, message.attempts) == (MessageStatus.RETRYING, 0)
        assert message.next_attempt_at is not None and message.next_attempt_at >= before
        event = send_outs_of(tube)[0].events.latest("id")
        assert event.action == SendOutEvent.Action.RETRIED
        assert event.note == f"ORM NW {message.control_id} sent again after 8 failed attempts (last: refused)"
        [task] = queued_sends()
        assert task.args_kwargs["args"] == [message.pk]

    def test_an_ma_may_not(self, ma: User, tech: User) -> None:
        box, _ = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        OutboundMessage.objects.update(status=MessageStatus.RETRYING)
        with pytest.raises(PermissionRefused):
            services.message_retry(message=OutboundMessage.objects.get(), by=ma)


class TestOverdue:
    def sent(self, ma: User, tech: User) -> SendOut:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        return send_outs_of(tube)[0]

    def test_a_send_out_past_expected_by_is_flagged_once_by_the_system(self, ma: User, tech: User) -> None:
        send_out = self.sent(ma, tech)
        assert send_out.expected_by is not None
        assert services.send_outs_flag_overdue(now=send_out.expected_by - timedelta(minutes=1)) == 0
        assert services.send_outs_flag_overdue(now=send_out.expected_by + timedelta(minutes=5)) == 1
        send_out = fresh(send_out)
        assert send_out.overdue_since == send_out.expected_by
        event = send_out.events.latest("id")
        assert (event.action, event.actor.username) == (SendOutEvent.Action.OVERDUE, "system")
        assert "No final results from Quest Diagnostics West for" in event.note
        assert "On the supervisor board until final." in event.note
        assert services.send_outs_flag_overdue(now=send_out.expected_by + timedelta(hours=5)) == 0

    def test_final_and_cancelled_ones_are_not_flagged(self, ma: User, tech: User) -> None:
        send_out = self.sent(ma, tech)
        assert send_out.expected_by is not None
        later = send_out.expected_by + timedelta(hours=1)
        SendOut.objects.filter(pk=send_out.pk).update(status=SendOutStatus.FINAL)
        assert services.send_outs_flag_overdue(now=later) == 0
