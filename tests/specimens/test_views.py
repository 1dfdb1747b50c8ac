"""The collection panel, the specimen page and the tracking list, per role, with their access log."""

import socket
import threading

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import roles
from backoffice.models import AccessLog, HandoffEvent, User
from lab.workflow import TestOrderStatus
from specimens.models import LabelPrint, LabelPrinter, Specimen
from specimens.workflow import Location, SpecimenStatus
from tests.factories import UserFactory
from tests.specimens.helpers import collected, labelled, orders_of, received, verified_handoff

pytestmark = pytest.mark.django_db
S = SpecimenStatus


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT, first_name="Maria", last_name="Alvarez")


@pytest.fixture
def lab_tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH, first_name="Lee", last_name="Chen")


def _as(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def page(client: Client, handoff_uuid: object) -> str:
    return client.get(reverse("handoff_detail", args=[handoff_uuid])).content.decode()


class TestCollecting:
    def test_the_handoff_page_lists_the_containers_to_draw_in_order(self, client: Client, ma: User) -> None:
        handoff = verified_handoff("Urine dipstick", "HbA1c", "CBC", ma=ma)
        content = page(_as(client, ma), handoff.uuid)
        assert content.index("Lavender-top EDTA") < content.index("Sterile urine cup")
        assert "for HbA1c, CBC" in content  # in the order they were ordered
        assert "Start collection: label 2 containers" in content

    def test_labels_print_only_after_collection_starts_and_come_as_a_pdf(self, client: Client, ma: User) -> None:
        handoff = verified_handoff("CBC", "HbA1c", "Urine dipstick", ma=ma)
        c = _as(client, ma)
        assert "Print 2 labels" not in page(c, handoff.uuid)
        c.post(reverse("lab:collect", args=[handoff.uuid]))
        assert Specimen.objects.filter(handoff=handoff, status=S.LABELLED).count() == 2
        assert "Print 2 labels" in page(c, handoff.uuid)
        response = c.post(reverse("lab:labels", args=[handoff.uuid]))
        assert response["Content-Type"] == "application/pdf"
        assert response.content.startswith(b"%PDF")
        assert handoff.patient.family_name not in response["Content-Disposition"]
        assert LabelPrint.objects.filter(specimen__handoff=handoff, reason="").count() == 2
        printed = AccessLog.objects.get(action=AccessLog.Action.PRINT, what="specimen labels")
        assert list(printed.patients.values_list("pk", flat=True)) == [handoff.patient_id]
        assert "Print 2 labels" not in page(c, handoff.uuid)

    def test_a_wrong_label_is_refused_loudly_and_the_right_one_collects(self, client: Client, ma: User) -> None:
        handoff, [tube] = labelled("CBC", ma=ma)
        _, [foreign] = labelled("CBC", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT))
        c = _as(client, ma)
        url = reverse("specimens:confirm", args=[handoff.uuid])
        response = c.post(url, {"label": foreign.accession, "wristband": handoff.patient.mrn}, follow=True)
        assert "STOP: label" in response.content.decode()
        assert HandoffEvent.objects.filter(handoff=handoff, action="identity_mismatch").exists()
        response = c.post(url, {"label": tube.accession, "wristband": handoff.patient.mrn}, follow=True)
        assert "collected" in response.content.decode()
        assert Specimen.objects.get(pk=tube.pk).status == S.COLLECTED
        assert orders_of(handoff)["CBC"].status == TestOrderStatus.COLLECTED

    def test_labels_go_to_the_stations_zebra(self, client: Client, ma: User) -> None:
        received_bytes: list[bytes] = []
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(5)

        def accept() -> None:
            conn, _ = server.accept()
            with conn:
                chunks = []
                while chunk := conn.recv(65536):
                    chunks.append(chunk)
                received_bytes.append(b"".join(chunks))

        thread = threading.Thread(target=accept)
        thread.start()
        handoff = verified_handoff("CBC", ma=ma)
        LabelPrinter.objects.create(
            station=handoff.station,
            name="Zebra",
            transport=LabelPrinter.Transport.ZPL_TCP,
            host="127.0.0.1",
            port=server.getsockname()[1],
        )
        c = _as(client, ma)
        c.post(reverse("lab:collect", args=[handoff.uuid]))
        response = c.post(reverse("lab:labels", args=[handoff.uuid]), follow=True)
        thread.join(timeout=10)
        server.close()
        specimen = Specimen.objects.get(handoff=handoff)
        assert "Labels sent to Zebra" in response.content.decode()
        [zpl] = received_bytes
        assert zpl.startswith(b"^XA") and specimen.accession.encode() in zpl and b"^BC" in zpl
        assert LabelPrint.objects.get(specimen=specimen).output == "zpl_tcp"

    def test_a_lab_tech_is_not_offered_collection(self, client: Client, ma: User, lab_tech: User) -> None:
        handoff = verified_handoff("CBC", ma=ma)
        assert "Start collection" not in page(_as(client, lab_tech), handoff.uuid)
        response = client.post(reverse("lab:collect", args=[handoff.uuid]))
        assert response.status_code == 403


class TestSpecimenPage:
    def test_it_shows_the_specimen_and_logs_the_view(self, client: Client, ma: User, lab_tech: User) -> None:
        _, [tube] = collected("CBC", ma=ma)
        content = _as(client, lab_tech).get(reverse("specimens:detail", args=[tube.uuid])).content.decode()
        assert tube.accession in content and "Receive" in content and "Reject this specimen" in content
        entry = AccessLog.objects.get(what="specimen", object_ref=str(tube.uuid))
        assert list(entry.patients.values_list("pk", flat=True)) == [tube.patient_id]

    def test_a_reprint_asks_why_and_is_logged(self, client: Client, ma: User) -> None:
        handoff, [tube] = labelled("CBC", ma=ma)
        c = _as(client, ma)
        c.post(reverse("lab:labels", args=[handoff.uuid]))
        url = reverse("specimens:reprint", args=[tube.uuid])
        assert c.post(url, {"reason": ""}).status_code == 422
        response = c.post(url, {"reason": "Smudged"})
        assert response["Content-Type"] == "application/pdf"
        assert list(LabelPrint.objects.filter(specimen=tube).values_list("reason", flat=True)) == ["", "Smudged"]
        assert AccessLog.objects.filter(action="print", what="specimen label reprint").count() == 1

    def test_rejecting_puts_a_recollect_item_on_the_handoff(self, client: Client, ma: User, lab_tech: User) -> None:
        handoff, [_tube, cup] = collected("CBC", "Urine dipstick", ma=ma)
        received(cup, ma=ma, lab_tech=lab_tech)
        reason = "RN"
        from specimens.models import RejectionReason

        response = _as(client, lab_tech).post(
            reverse("specimens:reject", args=[cup.uuid]),
            {"reject-reason": RejectionReason.objects.get(code=reason).pk, "reject-note": "Not midstream"},
            follow=True,
        )
        assert "rejected" in response.content.decode()
        content = page(_as(Client(), ma), handoff.uuid)
        assert "Recollect" in content and "Start collection: label 1 container" in content

    def test_an_ma_may_not_reject(self, client: Client, ma: User) -> None:
        _, [tube] = collected("CBC", ma=ma)
        assert (
            "Reject this specimen"
            not in _as(client, ma).get(reverse("specimens:detail", args=[tube.uuid])).content.decode()
        )
        assert client.post(reverse("specimens:reject", args=[tube.uuid]), {}).status_code == 403


class TestTracking:
    def test_a_lab_tech_receives_from_the_list(self, client: Client, ma: User, lab_tech: User) -> None:
        _, [tube] = collected("CBC", ma=ma)
        c = _as(client, lab_tech)
        content = c.get(reverse("specimens:tracking")).content.decode()
        assert tube.accession in content and "Receive</button>" in content
        c.post(
            reverse("specimens:receive", args=[tube.uuid]),
            {"at": Location.IN_HOUSE_BENCH, "acceptable": "yes", "next": "tracking"},
        )
        assert Specimen.objects.get(pk=tube.pk).status == S.RECEIVED
        listed = AccessLog.objects.filter(what="specimen tracking").first()
        assert listed is not None and tube.patient_id in listed.patients.values_list("pk", flat=True)

    def test_scanning_an_accession_opens_its_page(self, client: Client, ma: User) -> None:
        _, [tube] = collected("CBC", ma=ma)
        response = _as(client, ma).post(reverse("specimens:scan"), {"accession": tube.accession.lower()})
        assert response["Location"] == reverse("specimens:detail", args=[tube.uuid])
        response = client.post(reverse("specimens:scan"), {"accession": "S999"}, follow=True)
        assert "No specimen has that accession" in response.content.decode()

    @pytest.mark.parametrize("handoffs", [1, 4])
    def test_query_count_does_not_grow_with_rows(
        self,
        client: Client,
        ma: User,
        lab_tech: User,
        django_assert_num_queries,
        handoffs: int,  # type: ignore[no-untyped-def]
    ) -> None:
        for _ in range(handoffs):
            _, [_tube, cup] = collected("CBC", "Urine dipstick", ma=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT))
            received(cup, ma=cup.collected_by, lab_tech=lab_tech)
        c = _as(client, lab_tech)
        # 1 session, 2 user, 3 permissions and roles, 4 the specimens with patient, container, type,
        # handoff and receiver, 5 the access log row with its patients.
        with django_assert_num_queries(5):
            response = c.get(reverse("specimens:tracking"))
        assert len(response.context["specimens"]) == 2 * handoffs


class TestTheDraw:
    def test_the_actual_draw_time_volume_and_site_are_recorded(self, client: Client, ma: User) -> None:
        import datetime as dt

        from django.utils import timezone

        handoff, [tube] = labelled("CBC", ma=ma)
        drawn = timezone.localtime() - dt.timedelta(minutes=10)
        _as(client, ma).post(
            reverse("specimens:confirm", args=[handoff.uuid]),
            {
                "label": tube.accession,
                "wristband": handoff.patient.mrn,
                "collected_at": drawn.strftime("%Y-%m-%dT%H:%M"),
                "volume_ml": "3.5",
                "body_site": "median_cubital_left",
            },
        )
        tube.refresh_from_db()
        assert tube.status == S.COLLECTED
        assert timezone.localtime(tube.collected_at).strftime("%H:%M") == drawn.strftime("%H:%M")
        assert (str(tube.volume_ml), tube.body_site, tube.body_site_snomed) == (
            "3.5",
            "Left arm, median cubital vein",
            "49852007",
        )

    def test_a_draw_time_in_the_future_is_refused(self, client: Client, ma: User) -> None:
        import datetime as dt

        from django.utils import timezone

        handoff, [tube] = labelled("CBC", ma=ma)
        later = timezone.localtime() + dt.timedelta(hours=1)
        response = _as(client, ma).post(
            reverse("specimens:confirm", args=[handoff.uuid]),
            {
                "label": tube.accession,
                "wristband": handoff.patient.mrn,
                "collected_at": later.strftime("%Y-%m-%dT%H:%M"),
            },
            follow=True,
        )
        assert "be in the future" in response.content.decode()
        assert Specimen.objects.get(pk=tube.pk).status == S.LABELLED


class TestScanningALabelElsewhere:
    def test_a_label_in_the_patient_search_opens_its_specimen(self, client: Client, ma: User) -> None:
        _, [tube] = labelled("CBC", ma=ma)
        content = _as(client, ma).post(reverse("patient_search"), {"q": tube.accession}).content.decode()
        assert reverse("specimens:detail", args=[tube.uuid]) in content
        entry = AccessLog.objects.get(what="patient search")
        assert list(entry.patients.values_list("pk", flat=True)) == [tube.patient_id]

    def test_a_label_scanned_as_the_wristband_is_refused(self, client: Client, ma: User) -> None:
        from backoffice.services import handoff_claim
        from tests.factories import HandoffFactory

        _, [tube] = labelled("CBC", ma=ma)
        handoff = HandoffFactory()
        handoff_claim(handoff=handoff, by=ma)
        response = _as(client, ma).post(reverse("handoff_verify", args=[handoff.uuid]), {"scanned_mrn": tube.accession})
        assert response.status_code == 422
        assert "That is a specimen label, not a wristband." in response.content.decode()


def test_a_label_names_each_test_whole(ma: User) -> None:
    from specimens.printing import label_data

    _, [cup] = labelled("Urine dipstick", "Urine culture", ma=ma)
    assert label_data(cup).tests == ("Urine dipstick", "Urine culture")
