"""An MA hands a patient back: returned to the ordering clinician, or cancelled, per the clinic's MA_HAND_BACK."""

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from backoffice import env, services
from backoffice.models import AccessLog, AccessOutcome, Handoff, HandoffEvent, Station, User
from backoffice.workflow import HandBackReason, HandoffStatus, PermissionRefused, StationState, TransitionNotAllowed
from procedures.models import ProcedureOrder
from procedures.workflow import NotDoneReason, ProcedureStatus
from tests.factories import UserFactory
from tests.procedures.helpers import credentialed, new_ma, ready_handoff, start

pytestmark = pytest.mark.django_db

Action = HandoffEvent.Action
LEFT, REFUSED = HandBackReason.PATIENT_LEFT, HandBackReason.PATIENT_REFUSED


@pytest.fixture
def returning(settings: Any) -> None:
    settings.MA_HAND_BACK = "return"


@pytest.fixture
def cancelling(settings: Any) -> None:
    settings.MA_HAND_BACK = "cancel"


def fresh(handoff: Handoff) -> Handoff:
    return Handoff.objects.select_related("station").get(pk=handoff.pk)


def at_station(ma: User) -> tuple[Handoff, ProcedureOrder, Station]:
    """Identified at a station, a venipuncture ordered and not started."""
    handoff, orders = ready_handoff("36415", ma=ma)
    station = handoff.station
    assert station is not None
    return handoff, orders["36415"], station


# --- Returned to the clinician ---------------------------------------------------------------------


@pytest.mark.usefixtures("returning")
class TestReturn:
    def test_it_returns_the_patient_to_the_clinician_and_lets_go_of_the_claim_and_station(self) -> None:
        ma = new_ma(first_name="Maria", last_name="Alvarez")
        handoff, order, station = at_station(ma)

        services.handoff_hand_back(handoff=handoff, by=ma, reason=REFUSED)

        stored = fresh(handoff)
        assert (stored.status, stored.hand_back_reason) == (HandoffStatus.RETURNED, REFUSED)
        assert (stored.claimed_by, stored.station, stored.closed_at) == (None, None, None)
        event = stored.events.get(action=Action.HANDED_BACK)
        assert (event.actor, event.from_status, event.to_status) == (ma, HandoffStatus.IDENTITY_VERIFIED, "returned")
        assert event.note == f"Patient refused; returned to {handoff.ordering_clinician} from {station}"
        station.refresh_from_db()
        assert station.state == StationState.NEEDS_TURNOVER
        # Nothing ordered is cancelled: the clinician decides.
        assert ProcedureOrder.objects.get(pk=order.pk).status == ProcedureStatus.ORDERED

    def test_it_refuses_while_a_procedure_is_being_performed_and_writes_nothing(self) -> None:
        ma = new_ma()
        handoff, order, _ = at_station(ma)
        start(order, credentialed(ma), cosign=True)
        events = HandoffEvent.objects.count()

        with pytest.raises(TransitionNotAllowed, match="Venipuncture is being performed; finish it or record it"):
            services.handoff_hand_back(handoff=handoff, by=ma, reason=LEFT)

        assert fresh(handoff).status == HandoffStatus.IN_PROGRESS
        assert HandoffEvent.objects.count() == events

    def test_the_reason_is_one_of_the_fixed_list(self) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        with pytest.raises(TransitionNotAllowed, match="Choose why the patient is handed back"):
            services.handoff_hand_back(handoff=handoff, by=ma, reason="went for coffee")
        assert fresh(handoff).status == HandoffStatus.IDENTITY_VERIFIED

    def test_only_whoever_works_the_patient_hands_them_back(self, other_ma: User, supervisor: User) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        with pytest.raises(PermissionRefused, match="only they or a supervisor"):
            services.handoff_hand_back(handoff=handoff, by=other_ma, reason=LEFT)
        services.handoff_hand_back(handoff=handoff, by=supervisor, reason=LEFT)
        assert fresh(handoff).status == HandoffStatus.RETURNED

    def test_the_clinician_sends_it_back_to_the_queue_to_be_claimed_and_identified_afresh(self, other_ma: User) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        services.handoff_hand_back(handoff=handoff, by=ma, reason=HandBackReason.ORDER_CHANGED)

        services.handoff_resend(handoff=handoff, by=handoff.ordering_clinician)

        stored = fresh(handoff)
        assert (stored.status, stored.hand_back_reason) == (HandoffStatus.WAITING, "")
        assert stored.events.filter(action=Action.RESENT, actor=handoff.ordering_clinician).exists()
        services.handoff_claim(handoff=stored, by=other_ma)
        with pytest.raises(TransitionNotAllowed, match="Verify the patient's identity"):
            services.handoff_start(handoff=stored, by=other_ma)

    def test_the_clinician_may_cancel_it_and_its_items_close(self) -> None:
        ma = new_ma()
        handoff, order, _ = at_station(ma)
        services.handoff_hand_back(handoff=handoff, by=ma, reason=LEFT)

        services.handoff_cancel(handoff=handoff, by=handoff.ordering_clinician, reason="Patient left; rebooked")

        assert fresh(handoff).status == HandoffStatus.CANCELLED
        assert ProcedureOrder.objects.get(pk=order.pk).not_done_reason == NotDoneReason.HANDOFF_CANCELLED

    def test_only_the_ordering_clinician_or_a_supervisor_sends_it_back(self, supervisor: User) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        services.handoff_hand_back(handoff=handoff, by=ma, reason=LEFT)
        other_clinician = UserFactory(role="Clinician")
        with pytest.raises(PermissionRefused, match="Only the ordering clinician"):
            services.handoff_resend(handoff=handoff, by=other_clinician)
        with pytest.raises(PermissionRefused):
            services.handoff_resend(handoff=handoff, by=ma)  # an MA's role doesn't
        services.handoff_resend(handoff=handoff, by=supervisor)
        assert fresh(handoff).status == HandoffStatus.WAITING

    def test_only_a_returned_handoff_is_sent_back(self, handoff: Handoff) -> None:
        with pytest.raises(TransitionNotAllowed, match="only one returned to its clinician"):
            services.handoff_resend(handoff=handoff, by=handoff.ordering_clinician)


# --- Cancelled by the MA ----------------------------------------------------------------------------


@pytest.mark.usefixtures("cancelling")
class TestCancel:
    def test_it_cancels_with_the_reason_and_closes_the_items(self) -> None:
        ma = new_ma()
        handoff, order, station = at_station(ma)

        services.handoff_hand_back(handoff=handoff, by=ma, reason=LEFT)

        stored = fresh(handoff)
        assert (stored.status, stored.cancel_reason, stored.hand_back_reason) == (
            HandoffStatus.CANCELLED,
            "Patient left",
            LEFT,
        )
        assert stored.closed_at is not None
        assert stored.events.get(action=Action.CANCELLED).note == "Handed back: Patient left"
        closed = ProcedureOrder.objects.get(pk=order.pk)
        assert (closed.status, closed.not_done_note) == (ProcedureStatus.NOT_DONE, "Patient left")
        station.refresh_from_db()
        assert station.state == StationState.NEEDS_TURNOVER

    def test_it_refuses_as_the_cancel_does_while_a_procedure_is_being_performed(self) -> None:
        ma = new_ma()
        handoff, order, _ = at_station(ma)
        start(order, credentialed(ma), cosign=True)
        with pytest.raises(TransitionNotAllowed, match="being performed; finish it or record it as not done"):
            services.handoff_hand_back(handoff=handoff, by=ma, reason=REFUSED)
        assert fresh(handoff).status == HandoffStatus.IN_PROGRESS


def test_a_bad_setting_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MA_HAND_BACK", "delete")
    with pytest.raises(ImproperlyConfigured, match="MA_HAND_BACK must be one of return, cancel, not 'delete'"):
        env.env_choice("MA_HAND_BACK", "return", ("return", "cancel"))
    monkeypatch.setenv("MA_HAND_BACK", "Cancel")
    assert env.env_choice("MA_HAND_BACK", "return", ("return", "cancel")) == "cancel"


# --- Pages --------------------------------------------------------------------------------------------


def _as(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def detail(handoff: Handoff, name: str = "handoff_detail") -> str:
    return reverse(name, args=[handoff.uuid])


@pytest.mark.usefixtures("returning")
class TestPages:
    def test_the_ma_hands_the_patient_back_from_the_patients_page(self, client: Client) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        c = _as(client, ma)
        page = c.get(detail(handoff)).content.decode()
        assert detail(handoff, "handoff_hand_back") in page
        assert f"Hand back to {handoff.ordering_clinician}</button>" in page

        response = c.post(detail(handoff, "handoff_hand_back"), {"reason": REFUSED}, follow=True)

        assert response.redirect_chain[-1][0] == reverse("queue")
        name = handoff.patient.full_name
        assert [str(m) for m in response.context["messages"]] == [
            f"{name} is handed back to {handoff.ordering_clinician}: Patient refused."
        ]
        assert fresh(handoff).status == HandoffStatus.RETURNED

    def test_no_reason_is_a_clear_message_and_nothing_written(self, client: Client) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        response = _as(client, ma).post(detail(handoff, "handoff_hand_back"), {"reason": ""})
        assert response.status_code == 422
        assert "Choose why." in response.content.decode()
        assert fresh(handoff).status == HandoffStatus.IDENTITY_VERIFIED
        assert not HandoffEvent.objects.filter(handoff=handoff, action=Action.HANDED_BACK).exists()

    def test_while_a_procedure_is_performed_the_page_says_why_instead_of_offering_it(self, client: Client) -> None:
        ma = new_ma()
        handoff, order, _ = at_station(ma)
        start(order, credentialed(ma), cosign=True)
        page = _as(client, ma).get(detail(handoff)).content.decode()
        assert detail(handoff, "handoff_hand_back") not in page
        assert "Venipuncture is being performed; finish it or record it as not done before handing" in page

    def test_in_a_cancelling_clinic_the_button_says_so(self, client: Client, settings: Any) -> None:
        settings.MA_HAND_BACK = "cancel"
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        assert "Cancel the handoff</button>" in _as(client, ma).get(detail(handoff)).content.decode()
        response = _as(client, ma).post(detail(handoff, "handoff_hand_back"), {"reason": LEFT}, follow=True)
        assert [str(m) for m in response.context["messages"]] == [
            f"Handoff for {handoff.patient.full_name} cancelled: Patient left."
        ]

    def test_the_clinician_finds_it_handed_back_and_sends_it_back(self, client: Client) -> None:
        ma = new_ma(first_name="Maria", last_name="Alvarez")
        handoff, _, _ = at_station(ma)
        services.handoff_hand_back(handoff=handoff, by=ma, reason=REFUSED)
        c = _as(client, handoff.ordering_clinician)

        new_page = c.get(reverse("handoff_new"))
        assert [h.pk for h in new_page.context["handed_back"]] == [handoff.pk]
        assert "Handed back to you (1)" in new_page.content.decode()
        listed = AccessLog.objects.get(what="handed back")
        assert list(listed.patients.values_list("pk", flat=True)) == [handoff.patient_id]

        page = c.get(detail(handoff)).content.decode()
        assert "by Maria Alvarez at" in page and "Patient refused" in page
        assert detail(handoff, "handoff_resend") in page and detail(handoff, "handoff_cancel") in page
        c.post(detail(handoff, "handoff_resend"))
        assert fresh(handoff).status == HandoffStatus.WAITING

    def test_an_ma_is_not_offered_the_resend_and_is_refused_it(self, client: Client) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        services.handoff_hand_back(handoff=handoff, by=ma, reason=LEFT)
        c = _as(client, ma)
        assert detail(handoff, "handoff_resend") not in c.get(detail(handoff)).content.decode()
        assert c.post(detail(handoff, "handoff_resend")).status_code == 403
        assert fresh(handoff).status == HandoffStatus.RETURNED

    def test_a_lab_tech_cannot_hand_back_and_is_logged(self, client: Client, lab_tech: User) -> None:
        ma = new_ma()
        handoff, _, _ = at_station(ma)
        assert _as(client, lab_tech).post(detail(handoff, "handoff_hand_back"), {"reason": LEFT}).status_code == 403
        row = AccessLog.objects.filter(user=lab_tech).latest("id")
        assert row.outcome == AccessOutcome.DENIED
        assert list(row.patients.values_list("pk", flat=True)) == [handoff.patient_id]
        assert fresh(handoff).status == HandoffStatus.IDENTITY_VERIFIED
