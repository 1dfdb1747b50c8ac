"""The send-out desk's pages per role: what each shows, the access log, the query counts, the forms."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import roles
from backoffice.models import AccessLog, User
from lab.models import OutboundMessage, SendOut, Shipment, ShipmentEvent
from lab.sendouts import selectors, shipments
from lab.sendouts.services import send_outs_flag_overdue
from lab.workflow import MessageStatus, SendOutStatus, ShipmentStatus
from tests.factories import UserFactory
from tests.lab.sendout_helpers import reference_lab
from tests.lab.sendouts.helpers import at_desk, packed, send_outs_of, shipment

pytestmark = pytest.mark.django_db

DESK = reverse("lab:sendouts:desk")


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH)


def patients_of(entry: AccessLog) -> set[int]:
    return set(entry.patients.values_list("pk", flat=True))


class TestWhoMay:
    @pytest.mark.parametrize("role", [roles.ROLE_LAB_TECH, roles.ROLE_SUPERVISOR])
    def test_lab_techs_and_supervisors_work_the_desk(self, client: Client, role: str) -> None:
        client.force_login(UserFactory(role=role))
        assert client.get(DESK).status_code == 200

    @pytest.mark.parametrize("role", [roles.ROLE_MEDICAL_ASSISTANT, roles.ROLE_CLINICIAN, roles.ROLE_AUDITOR])
    def test_others_are_refused_and_the_refusal_is_logged(self, client: Client, role: str) -> None:
        client.force_login(UserFactory(role=role))
        assert client.get(DESK).status_code == 403
        entry = AccessLog.objects.latest("id")
        assert (entry.what, entry.outcome) == ("send-out desk", "denied")

    def test_a_refused_shipment_names_its_patient(self, client: Client, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        client.force_login(ma)
        assert client.post(reverse("lab:sendouts:dispatch", args=[box.uuid])).status_code == 403
        entry = AccessLog.objects.latest("id")
        assert entry.object_ref == str(box.uuid) and patients_of(entry) == {tube.patient_id}
        assert Shipment.objects.get(pk=box.pk).status == ShipmentStatus.OPEN


class TestTheDesk:
    def test_it_lists_waiting_tubes_by_lab_and_temperature_stat_first_and_logs_them(
        self,
        client: Client,
        ma: User,
        tech: User,
        django_assert_num_queries,  # type: ignore[no-untyped-def]
    ) -> None:
        reference_lab()
        _, [routine] = at_desk("TSH", ma=ma, lab_tech=tech)
        stat_handoff, [stat] = at_desk("Lipids", ma=ma, lab_tech=tech, stat=True, diagnoses=())
        _, [edta] = at_desk("CBC", ma=ma, lab_tech=tech)
        _, [boxed] = packed("PSA", ma=ma, lab_tech=tech)
        sent_box, [gone] = packed("CMP", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=sent_box, by=tech)
        client.force_login(tech)
        # 1 session, 2 user, 3 permissions and roles, 4 the waiting send-outs with patient, test, lab,
        # clinician and tube, 5 their questions, 6 the open shipments with their tube counts, 7 the sent
        # send-outs, 8 their order messages, 9 cancel messages not through, 10 the access-log row with its
        # patients, 11 the active labs for the new-shipment form, 12 the inbound queues' counts.
        with django_assert_num_queries(12):
            response = client.get(DESK)
        html = response.content.decode()
        assert html.index(stat.accession) < html.index(routine.accession)  # STAT first
        assert "Refrigerated (2 to 8 °C)" in html and "Room temperature" in html
        assert html.count("Fasting status: not answered; needed before it can leave") == 1
        assert f"ask {stat_handoff.ordering_clinician}" in html  # no diagnosis: whom to ask
        assert f'Pack<span class="visually-hidden"> {routine.accession}</span> in the' in html
        assert edta.accession in html
        assert boxed.accession not in html  # packed: on its shipment's page, counted on the desk
        assert "1 tube" in html.split("Shipments being packed")[1]
        assert gone.accession in html and "Queued" in html
        entry = AccessLog.objects.get(what="send-out desk")
        assert patients_of(entry) == {t.patient_id for t in (routine, stat, edta, gone)}
        # The way to the results coming back, with what waits in their queues.
        assert 'href="/lab/send-outs/inbound/unmatched/"><strong>0</strong> unmatched' in html
        assert 'href="/lab/send-outs/inbound/holds/"><strong>0</strong> on identity hold' in html

    def test_failed_and_overdue_send_outs_come_first_with_what_to_do(
        self, client: Client, ma: User, tech: User
    ) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        [send_out] = send_outs_of(tube)
        later = timezone.now() + timedelta(minutes=5)
        OutboundMessage.objects.update(
            status=MessageStatus.RETRYING, attempts=2, last_error="MLLP connection to 127.0.0.1:2575 refused",
            next_attempt_at=later,
        )  # fmt: skip
        SendOut.objects.filter(pk=send_out.pk).update(expected_by=timezone.now() - timedelta(hours=1))
        send_outs_flag_overdue()
        client.force_login(tech)
        html = client.get(DESK).content.decode()
        assert f"Failed, retrying at {timezone.localtime(later):%H:%M}" in html
        assert "Attempt 2: MLLP connection to 127.0.0.1:2575 refused" in html
        assert "Retry now" in html and "Overdue" in html and "call Quest Diagnostics West" in html

    def test_a_failed_order_message_is_listed_though_more_sent_ones_are_due_before_it(
        self, client: Client, ma: User, tech: User, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(selectors, "SENT_SHOWN", 1)
        tubes = []
        for test in ("TSH", "PSA"):
            box, [tube] = packed(test, ma=ma, lab_tech=tech)
            shipments.shipment_dispatch(shipment=box, by=tech)
            tubes.append(tube)
        due_first, failing = (send_outs_of(t)[0] for t in tubes)
        SendOut.objects.filter(pk=due_first.pk).update(expected_by=timezone.now() + timedelta(hours=1))
        SendOut.objects.filter(pk=failing.pk).update(expected_by=timezone.now() + timedelta(hours=30))
        OutboundMessage.objects.filter(send_out=failing).update(status=MessageStatus.GAVE_UP, attempts=8)
        client.force_login(tech)
        desk = client.get(DESK).context["desk"]
        assert [r.send_out for r in desk.sent] == [failing] and desk.sent_total_over
        assert desk.troubled_count == 1

    def test_a_new_shipment_with_bad_input_says_why_and_writes_nothing(self, client: Client, tech: User) -> None:
        lab = reference_lab()
        client.force_login(tech)
        data = {
            "shipment-reference_lab": lab.pk,
            "shipment-handling": "refrigerated",
            "shipment-courier": "Route 12",
            "shipment-pickup_at": (timezone.localtime() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M"),
        }
        response = client.post(reverse("lab:sendouts:shipment_new"), data)
        assert response.status_code == 422
        assert "today or in the next two weeks" in response.content.decode()
        assert not Shipment.objects.exists()
        data["shipment-pickup_at"] = (timezone.localtime() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
        response = client.post(reverse("lab:sendouts:shipment_new"), data)
        box = Shipment.objects.get()
        assert response["Location"] == reverse("lab:sendouts:shipment", args=[box.uuid])

    def test_answering_from_the_desk_comes_back_to_the_desk(self, client: Client, ma: User, tech: User) -> None:
        reference_lab()
        _, [serum] = at_desk("Lipids", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(serum)
        client.force_login(tech)
        url = reverse("lab:sendouts:answers", args=[send_out.uuid])
        response = client.post(url, {f"q{send_out.pk}-a_49541_6": "Y", "next": "desk"}, follow=True)
        assert response.redirect_chain[-1][0] == DESK
        assert f"{serum.accession} Lipids: Fasting status: Yes." in response.content.decode()
        response = client.post(url, {f"q{send_out.pk}-a_49541_6": "perhaps"}, follow=True)
        assert "Select a valid choice" in response.content.decode()
        assert SendOut.objects.get(pk=send_out.pk).answers == {"49541-6": "Y"}


class TestAShipment:
    def test_its_page_lists_what_is_packed_and_what_can_go_in(
        self,
        client: Client,
        ma: User,
        tech: User,
        django_assert_num_queries,  # type: ignore[no-untyped-def]
    ) -> None:
        box, [inside] = packed("TSH", ma=ma, lab_tech=tech)
        _, [waiting] = at_desk("PSA", ma=ma, lab_tech=tech)
        client.force_login(tech)
        url = reverse("lab:sendouts:shipment", args=[box.uuid])
        # 1 session, 2 user, 3 permissions and roles, 4 the shipment with its lab and people, 5 its
        # send-outs with their rows, 6 their questions, 7 their order messages, 8 the send-outs that can
        # go in, 9 their questions, 10 the access-log row with its patients, 11 its events.
        with django_assert_num_queries(11):
            html = client.get(url).content.decode()
        assert inside.accession in html and waiting.accession in html
        assert "3. Handed to the courier" in html and "Not ready yet" not in html
        entry = AccessLog.objects.get(what="send-out shipment")
        assert patients_of(entry) == {inside.patient_id, waiting.patient_id}

    def test_scanning_packs_and_a_wrong_scan_says_so(self, client: Client, ma: User, tech: User) -> None:
        lab = reference_lab()
        _, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
        box = shipment(lab, by=tech)
        client.force_login(tech)
        url = reverse("lab:sendouts:pack", args=[box.uuid])
        response = client.post(url, {"accession": "S999999999"}, follow=True)
        assert "No specimen has that accession" in response.content.decode()
        response = client.post(url, {"accession": f" {tube.accession.lower()} "}, follow=True)
        assert f"{tube.accession} (TSH) packed for Quest Diagnostics West." in response.content.decode()
        assert send_outs_of(tube)[0].status == SendOutStatus.PACKED
        response = client.post(reverse("lab:sendouts:unpack", args=[box.uuid]), {"specimen": tube.uuid}, follow=True)
        assert "taken out: it waits at the desk again" in response.content.decode()

    def test_a_shipment_not_ready_lists_every_problem_and_refuses(self, client: Client, ma: User, tech: User) -> None:
        lab = reference_lab()
        _, [serum] = at_desk("Lipids", ma=ma, lab_tech=tech)
        box = shipment(lab, by=tech)
        shipments.shipment_pack(shipment=box, specimen=serum, by=tech)
        client.force_login(tech)
        html = client.get(reverse("lab:sendouts:shipment", args=[box.uuid])).content.decode()
        assert "Not ready yet" in html and f"{serum.accession} Lipids: answer fasting status." in html
        response = client.post(reverse("lab:sendouts:dispatch", args=[box.uuid]), follow=True)
        assert "Not ready to hand over" in response.content.decode()
        assert Shipment.objects.get(pk=box.pk).status == ShipmentStatus.OPEN

    def test_prints_are_pdfs_logged_as_prints_with_their_patients(self, client: Client, ma: User, tech: User) -> None:
        box, [tube] = packed("CMP", "Lipids", ma=ma, lab_tech=tech)
        client.force_login(tech)
        response = client.post(reverse("lab:sendouts:manifest", args=[box.uuid]))
        assert response["Content-Type"] == "application/pdf" and response.content.startswith(b"%PDF")
        assert tube.patient.family_name not in response["Content-Disposition"]
        entry = AccessLog.objects.get(what="send-out manifest")
        assert (entry.action, patients_of(entry)) == ("print", {tube.patient_id})
        assert box.events.filter(action=ShipmentEvent.Action.MANIFEST_PRINTED).count() == 1
        response = client.post(reverse("lab:sendouts:requisitions", args=[box.uuid]))
        assert response.content.startswith(b"%PDF")
        assert AccessLog.objects.get(what="send-out requisitions").action == "print"
        [send_out, _] = send_outs_of(tube)
        response = client.post(reverse("lab:sendouts:requisition", args=[send_out.uuid]))
        assert response["Content-Disposition"] == f'attachment; filename="requisition-{send_out.placer_number}.pdf"'

    def test_dispatch_says_what_was_sent(self, client: Client, ma: User, tech: User) -> None:
        box, _ = packed("TSH", ma=ma, lab_tech=tech)
        client.force_login(tech)
        response = client.post(reverse("lab:sendouts:dispatch", args=[box.uuid]), follow=True)
        assert "handed to Lab courier, route 12: 1 order sent to Quest Diagnostics West" in response.content.decode()
        assert "Queued" in response.content.decode()


class TestASendOut:
    def test_its_page_shows_the_order_as_sent_and_logs_the_patient(self, client: Client, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        [send_out] = send_outs_of(tube)
        message = OutboundMessage.objects.get()
        client.force_login(tech)
        html = client.get(reverse("lab:sendouts:send_out", args=[send_out.uuid])).content.decode()
        assert f"MSH-10 {message.control_id}" in html and "ORC|NW|" in html
        entry = AccessLog.objects.get(what="send-out")
        assert (entry.object_ref, patients_of(entry)) == (str(send_out.uuid), {tube.patient_id})

    def test_retry_now_from_the_desk(self, client: Client, ma: User, tech: User) -> None:
        box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
        shipments.shipment_dispatch(shipment=box, by=tech)
        [send_out] = send_outs_of(tube)
        message = OutboundMessage.objects.get()
        OutboundMessage.objects.update(status=MessageStatus.GAVE_UP, attempts=8)
        client.force_login(tech)
        response = client.post(
            reverse("lab:sendouts:retry", args=[send_out.uuid]), {"message": message.control_id, "next": "desk"}
        )
        assert response["Location"] == DESK
        assert OutboundMessage.objects.get().status == MessageStatus.RETRYING

    def test_cancel_tells_what_reached_the_lab(self, client: Client, ma: User, tech: User) -> None:
        reference_lab()
        _, [tube] = at_desk("TSH", ma=ma, lab_tech=tech)
        [send_out] = send_outs_of(tube)
        client.force_login(tech)
        response = client.post(
            reverse("lab:sendouts:cancel", args=[send_out.uuid]), {"cancel-reason": "not_needed"}, follow=True
        )
        assert "TSH cancelled; nothing had reached the lab." in response.content.decode()


def test_the_supervisor_board_shows_overdue_send_outs_and_logs_them(client: Client, ma: User, tech: User) -> None:
    box, [tube] = packed("TSH", ma=ma, lab_tech=tech)
    shipments.shipment_dispatch(shipment=box, by=tech)
    [send_out] = send_outs_of(tube)
    client.force_login(UserFactory(role=roles.ROLE_SUPERVISOR))
    assert "Send-outs overdue from reference labs" in client.get(reverse("board")).content.decode()
    assert not AccessLog.objects.filter(what="board: overdue send-outs").exists()
    SendOut.objects.filter(pk=send_out.pk).update(expected_by=timezone.now() - timedelta(hours=3))
    html = client.get(reverse("board")).content.decode()
    assert send_out.placer_number in html and "late" in html
    entry = AccessLog.objects.get(what="board: overdue send-outs")
    assert patients_of(entry) == {tube.patient_id}
