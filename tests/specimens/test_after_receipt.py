"""After receipt: testing at the bench, storage, disposal; and the coded body site of a draw."""

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import roles
from backoffice.models import AccessLog, AccessOutcome, Patient, User
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.workflow import TestOrderStatus
from specimens import services
from specimens.models import Specimen, SpecimenEvent
from specimens.workflow import Location, SpecimenStatus
from tests.factories import UserFactory
from tests.specimens.helpers import collected, labelled, orders_of, reason, received, results_released

pytestmark = pytest.mark.django_db
S = SpecimenStatus


@pytest.fixture
def ma() -> User:
    return UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)


@pytest.fixture
def lab_tech() -> User:
    return UserFactory(role=roles.ROLE_LAB_TECH, first_name="Lee", last_name="Chen")


def at_bench(ma: User, lab_tech: User, *tests: str) -> Specimen:
    _, [tube] = collected(*(tests or ("HbA1c",)), ma=ma)
    return received(tube, ma=ma, lab_tech=lab_tech)


class TestCustodyToTheEnd:
    def test_testing_storage_and_disposal_each_leave_an_event(self, ma: User, lab_tech: User) -> None:
        tube = at_bench(ma, lab_tech, "HbA1c", "CBC")
        services.specimen_start_testing(specimen=tube, by=lab_tech)
        # The tests it serves are in progress with it.
        assert {o.status for o in orders_of(tube.handoff).values()} == {TestOrderStatus.IN_PROGRESS}
        # Not done by hand while the bench still owes a result; the last result released marks it done.
        with pytest.raises(TransitionNotAllowed, match="HbA1c has no released result yet: enter it at the bench"):
            services.specimen_testing_done(specimen=tube, by=lab_tech)
        assert results_released(tube, lab_tech=lab_tech).status == S.DONE
        services.specimen_store(specimen=tube, place="  Fridge 2,   rack B ", by=lab_tech)
        tube.refresh_from_db()
        assert (tube.status, tube.location, tube.storage_place) == (S.STORED, Location.STORAGE, "Fridge 2, rack B")
        # Brought back for an add-on test, then disposed of at the end.
        services.specimen_start_testing(specimen=tube, by=lab_tech)
        services.specimen_testing_done(specimen=tube, by=lab_tech)
        services.specimen_dispose(specimen=tube, by=lab_tech, note="Biohazard bin")
        tube.refresh_from_db()
        assert (tube.status, tube.location, tube.disposed_by, tube.disposal_note) == (
            S.DISPOSED,
            Location.DISPOSED,
            lab_tech,
            "Biohazard bin",
        )
        moves = list(
            SpecimenEvent.objects.filter(specimen=tube, action__in=["testing", "done", "stored", "disposed"])
            .order_by("id")
            .values_list("action", "from_location", "to_location")
        )
        assert moves == [
            ("testing", "bench", "bench"),
            ("done", "", ""),
            ("stored", "bench", "storage"),
            ("testing", "storage", "bench"),
            ("done", "", ""),
            ("disposed", "bench", "disposed"),
        ]

    def test_a_send_out_specimen_is_not_tested_at_the_bench(self, ma: User, lab_tech: User) -> None:
        _, [tube] = collected("CBC", ma=ma)
        received(tube, ma=ma, lab_tech=lab_tech, at=Location.SEND_OUT_DESK)
        with pytest.raises(TransitionNotAllowed, match="at the send-out desk; it is tested at the in-house bench"):
            services.specimen_start_testing(specimen=tube, by=lab_tech)

    def test_storage_needs_a_place_and_the_role(self, ma: User, lab_tech: User) -> None:
        tube = at_bench(ma, lab_tech)
        with pytest.raises(TransitionNotAllowed, match="Say where it is kept"):
            services.specimen_store(specimen=tube, place="   ", by=lab_tech)
        with pytest.raises(PermissionRefused, match="store specimens"):
            services.specimen_store(specimen=tube, place="Fridge 1", by=ma)
        assert Specimen.objects.get(pk=tube.pk).status == S.RECEIVED

    def test_a_rejected_specimen_is_disposed_of_and_stays_on_record(self, ma: User, lab_tech: User) -> None:
        tube = at_bench(ma, lab_tech)
        services.specimen_reject(specimen=tube, reason=reason("RC"), by=lab_tech, note="Clotted")
        services.specimen_dispose(specimen=tube, by=lab_tech)
        tube.refresh_from_db()
        assert (tube.status, tube.rejection_reason.code, tube.rejection_note) == (S.DISPOSED, "RC", "Clotted")
        with pytest.raises(TransitionNotAllowed, match="is disposed"):
            services.specimen_dispose(specimen=tube, by=lab_tech)

    def test_a_specimen_found_unsuitable_during_testing_is_collected_again(self, ma: User, lab_tech: User) -> None:
        tube = at_bench(ma, lab_tech)
        services.specimen_start_testing(specimen=tube, by=lab_tech)
        services.specimen_reject(specimen=tube, reason=reason("RC"), by=lab_tech)
        order = orders_of(tube.handoff)["HbA1c"]
        assert (order.status, order.needs_recollection) == (TestOrderStatus.ORDERED, True)


class TestThePage:
    def test_the_lab_tech_is_offered_the_bench_steps_and_the_ma_is_not(
        self, client: Client, ma: User, lab_tech: User
    ) -> None:
        tube = at_bench(ma, lab_tech)
        url = reverse("specimens:detail", args=[tube.uuid])
        client.force_login(ma)
        assert "Start testing" not in client.get(url).content.decode()
        client.force_login(lab_tech)
        content = client.get(url).content.decode()
        assert "Start testing" in content and "Kept where" in content
        client.post(reverse("specimens:start_testing", args=[tube.uuid]))
        refused = client.post(reverse("specimens:testing_done", args=[tube.uuid]), follow=True)
        assert "HbA1c has no released result yet" in refused.content.decode()
        results_released(tube, lab_tech=lab_tech)
        response = client.post(reverse("specimens:store", args=[tube.uuid]), {"store-place": "Fridge 2"}, follow=True)
        assert "stored: Fridge 2." in response.content.decode()
        assert "Fridge 2 ·" in response.content.decode()

    def test_storing_without_a_place_says_so_and_writes_nothing(self, client: Client, ma: User, lab_tech: User) -> None:
        tube = at_bench(ma, lab_tech)
        client.force_login(lab_tech)
        before = SpecimenEvent.objects.filter(specimen=tube).count()
        response = client.post(reverse("specimens:store", args=[tube.uuid]), {"store-place": ""})
        assert response.status_code == 422
        assert "This field is required" in response.content.decode()
        assert SpecimenEvent.objects.filter(specimen=tube).count() == before

    def test_an_ma_disposing_is_refused_on_record(self, client: Client, ma: User, lab_tech: User) -> None:
        tube = at_bench(ma, lab_tech)
        client.force_login(ma)
        assert client.post(reverse("specimens:dispose", args=[tube.uuid])).status_code == 403
        denied = AccessLog.objects.get(user=ma, outcome=AccessOutcome.DENIED)
        assert list(denied.patients.values_list("pk", flat=True)) == [tube.patient_id]

    def test_the_stored_tab_lists_what_is_kept(self, client: Client, ma: User, lab_tech: User) -> None:
        tube = at_bench(ma, lab_tech)
        services.specimen_store(specimen=tube, place="Fridge 3", by=lab_tech)
        client.force_login(lab_tech)
        assert tube.accession not in client.get(reverse("specimens:tracking")).content.decode()
        assert tube.accession in client.get(reverse("specimens:tracking") + "?status=stored").content.decode()


class TestTheBodySite:
    def test_the_site_is_coded_in_snomed(self, ma: User) -> None:
        handoff, [tube] = labelled("CBC", ma=ma)
        services.specimen_confirm(
            handoff=handoff,
            scanned_label=tube.accession,
            scanned_wristband=handoff.patient.mrn,
            by=ma,
            body_site="median_cubital_right",
        )
        tube.refresh_from_db()
        assert (tube.body_site, tube.body_site_snomed) == ("Right arm, median cubital vein", "49852007")

    def test_a_site_that_doesnt_fit_the_method_is_refused(self, ma: User) -> None:
        handoff, [tube] = labelled("CBC", ma=ma)
        for site, message in (("nasopharynx", "is not where a venipuncture is taken"), ("elbow", "from the list")):
            with pytest.raises(TransitionNotAllowed, match=message):
                services.specimen_confirm(
                    handoff=handoff,
                    scanned_label=tube.accession,
                    scanned_wristband=handoff.patient.mrn,
                    by=ma,
                    body_site=site,
                )
        assert Specimen.objects.get(pk=tube.pk).status == S.LABELLED

    def test_the_bedside_form_offers_the_sites_by_method(self, client: Client, ma: User) -> None:
        handoff, _ = labelled("CBC", ma=ma)
        client.force_login(ma)
        content = client.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        assert '<optgroup label="Venipuncture">' in content
        assert '<option value="median_cubital_left">Left arm, median cubital vein</option>' in content


def test_a_specimen_label_in_the_access_log_search_finds_its_patient(client: Client, ma: User, lab_tech: User) -> None:
    tube = at_bench(ma, lab_tech)
    client.force_login(lab_tech)
    client.get(reverse("specimens:detail", args=[tube.uuid]))  # the view to find
    auditor = UserFactory(role=roles.ROLE_AUDITOR)
    client.force_login(auditor)
    response = client.post(reverse("audit"), {"patient": tube.accession.lower()})
    assert response.status_code == 200
    assert any(r.what == "specimen" for r in response.context["rows"])
    patient = Patient.objects.get(pk=tube.patient_id)
    assert patient.mrn in response.content.decode()
    mine = AccessLog.objects.get(user=auditor)
    assert patient.pk in set(mine.patients.values_list("pk", flat=True))
