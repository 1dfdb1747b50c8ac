"""Cancelling a handoff closes its open items through each app's own service, in one transaction.

The core (backoffice.services.handoff_cancel) imports no domain app: procedures, specimens and lab
register their handler (backoffice.hooks.register_handoff_cancel_handler) at start-up. Each item
moves on the transition mechanism with its event row; an item that can't be closed (a procedure
being performed, a test on the bench) refuses, and nothing is written.
"""

import html

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import hooks, roles
from backoffice.models import Handoff, HandoffEvent, User
from backoffice.selectors import handoff_actions
from backoffice.services import handoff_cancel
from backoffice.workflow import HandoffStatus, TransitionNotAllowed
from lab.models import OutboundMessage, SendOut, SendOutEvent, TestOrder, TestOrderEvent
from lab.sendouts import shipments
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import CancelReason, MessageStatus, SendOutStatus, TestOrderStatus
from procedures.models import ProcedureEvent, ProcedureOrder
from procedures.workflow import NotDoneReason, ProcedureStatus
from specimens.models import Specimen, SpecimenEvent
from specimens.services import specimen_start_testing
from specimens.workflow import Location, SpecimenStatus
from tests.factories import HandoffFactory, UserFactory
from tests.lab.sendout_helpers import reference_lab
from tests.lab.sendouts.helpers import send_outs_of, shipment, with_npi
from tests.procedures.helpers import credentialed, ready_handoff, start
from tests.specimens.helpers import confirm, received, tests

pytestmark = pytest.mark.django_db

REASON = "Patient left before being seen"


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


@pytest.fixture
def supervisor() -> User:
    return UserFactory(role=roles.ROLE_SUPERVISOR)


def handoff_with(*test_names: str, procedures: tuple[str, ...] = ("69209",), ma: User) -> Handoff:
    """A handoff with these procedures and lab tests, claimed by the MA at a station, identity verified."""
    handoff = HandoffFactory()
    test_orders_add(handoff=handoff, tests=tests(*test_names), by=handoff.ordering_clinician)
    handoff, _ = ready_handoff(*procedures, ma=ma, handoff=handoff)
    return handoff


def order(handoff: Handoff, short_name: str) -> TestOrder:
    return TestOrder.objects.get(handoff=handoff, test__short_name=short_name)


def snapshot(handoff: Handoff) -> dict[str, object]:
    """Every status and event count the cascade could touch."""
    return {
        "handoff": Handoff.objects.get(pk=handoff.pk).status,
        "procedures": sorted(ProcedureOrder.objects.filter(handoff=handoff).values_list("status", flat=True)),
        "tests": sorted(TestOrder.objects.filter(handoff=handoff).values_list("status", flat=True)),
        "specimens": sorted(Specimen.objects.filter(handoff=handoff).values_list("status", flat=True)),
        "send_outs": sorted(SendOut.objects.filter(order__handoff=handoff).values_list("status", flat=True)),
        "messages": OutboundMessage.objects.count(),
        "events": (
            HandoffEvent.objects.filter(handoff=handoff).count(),
            ProcedureEvent.objects.count(),
            TestOrderEvent.objects.count(),
            SpecimenEvent.objects.count(),
            SendOutEvent.objects.count(),
        ),
    }


class TestEachItemClosesThroughItsService:
    def test_a_procedure_not_started_is_not_done_with_the_reason(self, ma: User, supervisor: User) -> None:
        handoff = handoff_with(ma=ma, procedures=("69209", "36415"))
        handoff_cancel(handoff=handoff, by=supervisor, reason=REASON)
        for procedure in ProcedureOrder.objects.filter(handoff=handoff):
            assert (procedure.status, procedure.not_done_reason, procedure.not_done_note) == (
                ProcedureStatus.NOT_DONE,
                NotDoneReason.HANDOFF_CANCELLED,
                REASON,
            )
            event = procedure.events.latest("id")
            assert (event.action, event.to_status, event.actor) == (
                ProcedureEvent.Action.NOT_DONE,
                ProcedureStatus.NOT_DONE,
                supervisor,
            )
            assert REASON in event.note
        assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.CANCELLED

    def test_a_labelled_tube_is_not_collected_and_its_test_cancelled(self, ma: User, supervisor: User) -> None:
        handoff = handoff_with("CBC", ma=ma)
        [tube] = tests_start_collection(handoff=handoff, by=ma)
        handoff_cancel(handoff=handoff, by=supervisor, reason=REASON)
        tube.refresh_from_db()
        assert (tube.status, tube.failed_draw_note) == (SpecimenStatus.NOT_COLLECTED, f"Handoff cancelled: {REASON}")
        assert tube.events.latest("id").action == SpecimenEvent.Action.NOT_COLLECTED
        cbc = order(handoff, "CBC")
        assert (cbc.status, cbc.cancel_reason, cbc.cancelled_by, cbc.specimen_id) == (
            TestOrderStatus.CANCELLED,
            CancelReason.OTHER,
            supervisor,
            None,
        )
        assert cbc.cancel_note == f"Handoff cancelled: {REASON}"
        assert cbc.events.latest("id").action == TestOrderEvent.Action.CANCELLED
        assert cbc.acknowledged_at is None  # the ordering clinician sees it on their list

    def test_the_ordering_clinician_cancelling_has_seen_it(self, ma: User) -> None:
        handoff = handoff_with("CBC", ma=ma)
        handoff_cancel(handoff=handoff, by=handoff.ordering_clinician, reason=REASON)
        cbc = order(handoff, "CBC")
        assert (cbc.status, cbc.acknowledged_by) == (TestOrderStatus.CANCELLED, handoff.ordering_clinician)

    def test_a_drawn_in_house_test_is_cancelled_and_its_tube_keeps_its_custody(
        self, ma: User, supervisor: User
    ) -> None:
        handoff = handoff_with("CBC", ma=ma)
        [tube] = tests_start_collection(handoff=handoff, by=ma)
        confirm(tube, ma)
        assert order(handoff, "CBC").status == TestOrderStatus.COLLECTED
        handoff_cancel(handoff=handoff, by=supervisor, reason=REASON)
        assert order(handoff, "CBC").status == TestOrderStatus.CANCELLED
        assert Specimen.objects.get(pk=tube.pk).status == SpecimenStatus.COLLECTED

    def test_a_send_out_at_the_desk_is_cancelled_and_nothing_is_sent(
        self, ma: User, tech: User, supervisor: User
    ) -> None:
        reference_lab()
        handoff = handoff_with("TSH", ma=ma)
        [tube] = tests_start_collection(handoff=handoff, by=ma)
        confirm(tube, ma)
        [send_out] = send_outs_of(tube)
        handoff_cancel(handoff=handoff, by=supervisor, reason=REASON)
        send_out.refresh_from_db()
        assert send_out.status == SendOutStatus.CANCELLED
        assert send_out.events.latest("id").action == SendOutEvent.Action.CANCELLED
        assert order(handoff, "TSH").status == TestOrderStatus.CANCELLED
        assert not OutboundMessage.objects.exists()

    def test_a_sent_send_out_tells_the_lab_with_orc_1_ca(self, ma: User, tech: User, supervisor: User) -> None:
        lab = reference_lab()
        handoff = handoff_with("TSH", ma=ma)
        with_npi(handoff.ordering_clinician)
        Handoff.objects.filter(pk=handoff.pk).update(diagnosis_codes=["E78.5"])
        [tube] = tests_start_collection(handoff=handoff, by=ma)
        confirm(tube, ma)
        received(Specimen.objects.get(pk=tube.pk), ma=ma, lab_tech=tech, at=Location.SEND_OUT_DESK)
        box = shipment(lab, by=tech)
        shipments.shipment_pack(shipment=box, specimen=Specimen.objects.get(pk=tube.pk), by=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        [send_out] = send_outs_of(tube)
        OutboundMessage.objects.filter(send_out=send_out).update(status=MessageStatus.ACCEPTED, attempts=1)

        handoff_cancel(handoff=handoff, by=supervisor, reason=REASON)

        send_out.refresh_from_db()
        new, cancel = send_out.messages.order_by("id")
        assert (send_out.status, new.status, cancel.kind) == (SendOutStatus.CANCELLED, MessageStatus.ACCEPTED, "CA")
        assert "\rORC|CA|" in cancel.text
        event = send_out.events.latest("id")
        assert f"Handoff cancelled: {REASON}; the lab is told (ORM CA {cancel.control_id})" in event.note
        assert order(handoff, "TSH").status == TestOrderStatus.CANCELLED


class TestARefusalWritesNothing:
    def test_a_procedure_being_performed_refuses_and_nothing_changes(self, ma: User, supervisor: User) -> None:
        reference_lab()
        handoff = handoff_with("CBC", "TSH", procedures=("69209", "36415"), ma=ma)
        tests_start_collection(handoff=handoff, by=ma)
        credentialed(ma)
        start(ProcedureOrder.objects.get(handoff=handoff, procedure_type__code="69209"), ma, cosign=True)
        before = snapshot(handoff)
        with pytest.raises(TransitionNotAllowed, match="being performed; finish it or record it as not done"):
            handoff_cancel(handoff=handoff, by=supervisor, reason=REASON)
        assert snapshot(handoff) == before

    def test_a_test_on_the_bench_refuses_after_the_others_were_closed_and_all_is_rolled_back(
        self, ma: User, tech: User, supervisor: User
    ) -> None:
        # Procedures and specimens close first (they register first); lab refuses last: all rolls back.
        handoff = handoff_with("CBC", "HbA1c", ma=ma)
        tubes = tests_start_collection(handoff=handoff, by=ma)
        cbc_tube = next(t for t in tubes if "CBC" in t.tests_label)
        confirm(cbc_tube, ma)
        received(Specimen.objects.get(pk=cbc_tube.pk), ma=ma, lab_tech=tech)
        specimen_start_testing(specimen=Specimen.objects.get(pk=cbc_tube.pk), by=tech)
        before = snapshot(handoff)
        with pytest.raises(TransitionNotAllowed, match="CBC, HbA1c are being tested at the bench; enter their results"):
            handoff_cancel(handoff=handoff, by=supervisor, reason=REASON)
        assert snapshot(handoff) == before

    def test_the_page_says_why_and_keeps_the_handoff_open(self, ma: User, tech: User) -> None:
        handoff = handoff_with("CBC", ma=ma)
        [tube] = tests_start_collection(handoff=handoff, by=ma)
        confirm(tube, ma)
        received(Specimen.objects.get(pk=tube.pk), ma=ma, lab_tech=tech)
        specimen_start_testing(specimen=Specimen.objects.get(pk=tube.pk), by=tech)
        client = Client()
        client.force_login(handoff.ordering_clinician)
        response = client.post(reverse("handoff_cancel", args=[handoff.uuid]), {"reason": REASON}, follow=True)
        assert "CBC is being tested at the bench; enter its result or reject the specimen" in response.text
        assert Handoff.objects.get(pk=handoff.pk).is_open
        assert ProcedureOrder.objects.get(handoff=handoff).status == ProcedureStatus.ORDERED


class TestThePageOffersCancelOnlyWhenTheAppsWouldClose:
    """The handoff page asks the apps the cancel's handlers' own rule (hooks.handoff_cancel_blockers)
    and shows why instead of a Cancel button the service would refuse."""

    def refusal(self, handoff: Handoff, by: User) -> str:
        with pytest.raises(TransitionNotAllowed) as refused:
            handoff_cancel(handoff=handoff, by=by, reason=REASON)
        return str(refused.value)

    def page(self, handoff: Handoff, user: User) -> str:
        client = Client()
        client.force_login(user)
        return client.get(reverse("handoff_detail", args=[handoff.uuid])).text

    def test_every_app_whose_handler_refuses_answers_the_question(self) -> None:
        assert set(hooks._cancel_blockers) == {"procedures", "lab"}  # specimens' handler never refuses

    def test_a_procedure_being_performed(self, ma: User, supervisor: User) -> None:
        handoff = handoff_with(ma=ma, procedures=("69209", "36415"))
        credentialed(ma)
        start(ProcedureOrder.objects.get(handoff=handoff, procedure_type__code="69209"), ma, cosign=True)
        for who in (supervisor, handoff.ordering_clinician):
            actions = handoff_actions(handoff, who)
            assert actions.may_cancel and not actions.cancel
            assert actions.cancel.why == self.refusal(handoff, who)  # the service's own words
            assert "being performed; finish it or record it as not done" in actions.cancel.why
            page = self.page(handoff, who)
            assert reverse("handoff_cancel", args=[handoff.uuid]) not in page
            assert actions.cancel.why in html.unescape(page)

    def test_a_test_on_the_bench(self, ma: User, tech: User, supervisor: User) -> None:
        handoff = handoff_with("CBC", ma=ma)
        [tube] = tests_start_collection(handoff=handoff, by=ma)
        confirm(tube, ma)
        received(Specimen.objects.get(pk=tube.pk), ma=ma, lab_tech=tech)
        specimen_start_testing(specimen=Specimen.objects.get(pk=tube.pk), by=tech)
        actions = handoff_actions(handoff, supervisor)
        assert not actions.cancel
        assert actions.cancel.why == self.refusal(handoff, supervisor)
        assert actions.cancel.why.startswith("CBC is being tested at the bench; enter its result")
        page = self.page(handoff, supervisor)
        assert reverse("handoff_cancel", args=[handoff.uuid]) not in page
        assert actions.cancel.why in html.unescape(page)

    def test_both_apps_reasons_are_shown_together(self, ma: User, tech: User, supervisor: User) -> None:
        handoff = handoff_with("CBC", ma=ma)
        [tube] = tests_start_collection(handoff=handoff, by=ma)
        confirm(tube, ma)
        received(Specimen.objects.get(pk=tube.pk), ma=ma, lab_tech=tech)
        specimen_start_testing(specimen=Specimen.objects.get(pk=tube.pk), by=tech)
        credentialed(ma)
        start(ProcedureOrder.objects.get(handoff=handoff), ma, cosign=True)
        assert hooks.handoff_cancel_blockers(handoff) == [
            "Cerumen removal by irrigation is being performed; finish it or record it as not done before cancelling the handoff.",
            "CBC is being tested at the bench; enter its result or reject the specimen before cancelling the handoff.",
        ]

    def test_open_items_that_would_close_leave_cancel_offered(self, ma: User, supervisor: User) -> None:
        # A procedure not started and a labelled tube: the handlers close them, so the page offers it.
        handoff = handoff_with("CBC", ma=ma)
        tests_start_collection(handoff=handoff, by=ma)
        assert hooks.handoff_cancel_blockers(handoff) == []
        assert handoff_actions(handoff, supervisor).cancel
        assert reverse("handoff_cancel", args=[handoff.uuid]) in self.page(handoff, supervisor)

    def test_someone_who_may_not_cancel_is_told_nothing_and_nothing_is_asked(
        self, ma: User, django_assert_num_queries
    ) -> None:  # type: ignore[no-untyped-def]
        handoff = handoff_with(ma=ma, procedures=("69209",))
        credentialed(ma)
        start(ProcedureOrder.objects.get(handoff=handoff), ma, cosign=True)
        actions = handoff_actions(Handoff.objects.get(pk=handoff.pk), ma)
        ma.has_perm("backoffice.cancel_handoff")  # her permissions read once, as the page's first check does
        with django_assert_num_queries(0):  # no app is asked
            assert not actions.may_cancel and not actions.cancel
        page = self.page(handoff, ma)
        assert "before cancelling the handoff" not in page  # her page says only why she can't hand it back
        assert 'id="cancel-title"' not in page
