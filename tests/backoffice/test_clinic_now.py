"""In the clinic now (/clinic-now/): a row per patient still here, and "patient left" handing what is pending on."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import roles, services
from backoffice.models import AccessAction, AccessLog, AccessOutcome, Handoff, HandoffEvent, Station, User
from backoffice.pages.clinic_now import Row, clinic_now_handoffs, clinic_rows
from backoffice.selectors import handoff_actions
from backoffice.workflow import HandBackReason, HandoffStatus, PermissionRefused, Priority, StationState
from backoffice.workflow import TransitionNotAllowed as Refused
from lab.models import RecollectionCall
from lab.workflow import CallKind
from procedures.services import procedure_orders_add
from specimens import services as specimen_services
from specimens.models import Specimen
from tests.factories import HandoffFactory, StationFactory, UserFactory
from tests.lab.sendouts.helpers import packed
from tests.procedures.helpers import credentialed, procedure_type, ready_handoff, start
from tests.specimens.helpers import collected, reason, received, results_released, verified_handoff

pytestmark = pytest.mark.django_db

Action = HandoffEvent.Action


def fresh(handoff: Handoff) -> Handoff:
    return Handoff.objects.select_related("patient", "ordering_clinician", "station").get(pk=handoff.pk)


def rows(user: User) -> dict[int, Row]:
    found, _ = clinic_rows(clinic_now_handoffs(user=user), user=user)
    return {r.handoff.pk: r for r in found}


def states(items: list[Any]) -> list[tuple[str, str]]:
    return [(i.name, i.state) for i in items]


def running(*short_names: str, ma: User, lab_tech: User) -> tuple[Handoff, Specimen]:
    """Identified at a station, work started, the tube drawn and on the in-house bench, testing."""
    handoff, [tube] = collected(*short_names, ma=ma)
    services.handoff_start(handoff=fresh(handoff), by=ma)
    received(tube, ma=ma, lab_tech=lab_tech)
    specimen_services.specimen_start_testing(specimen=tube, by=lab_tech)
    return fresh(handoff), tube


def to_recollect(short_name: str, *, ma: User, lab_tech: User) -> tuple[Handoff, Specimen]:
    """Work started, the tube drawn, received and rejected while the patient is still being worked."""
    handoff, [tube] = collected(short_name, ma=ma)
    services.handoff_start(handoff=fresh(handoff), by=ma)
    received(tube, ma=ma, lab_tech=lab_tech)
    specimen_services.specimen_reject(specimen=tube, reason=reason("RC"), by=lab_tech)
    return fresh(handoff), tube


def completed_with_result_running(*, ma: User, lab_tech: User) -> tuple[Handoff, Specimen]:
    handoff, tube = running("Rapid strep", ma=ma, lab_tech=lab_tech)
    services.handoff_complete(handoff=handoff, by=ma)  # a running test no longer needs the patient
    return fresh(handoff), tube


# --- Rows ------------------------------------------------------------------------------------------


class TestRows:
    def test_each_item_kind_shows_its_state_and_the_next_step(
        self, medical_assistant: User, lab_tech: User, supervisor: User
    ) -> None:
        ma = medical_assistant
        waiting = HandoffFactory()
        procedure_orders_add(handoff=waiting, procedure_types=[procedure_type("36415")], by=waiting.ordering_clinician)
        poc, _ = running("Rapid strep", ma=ma, lab_tech=lab_tech)
        again, _ = to_recollect("POC glucose", ma=ma, lab_tech=lab_tech)
        _, [box_tube] = packed("TSH", ma=ma, lab_tech=lab_tech)
        sent_out = box_tube.handoff
        to_draw = verified_handoff("Urine hCG", ma=ma)

        shown = rows(supervisor)

        assert states(shown[waiting.pk].procedures) == [("Venipuncture", "to do")]
        assert shown[waiting.pk].next_step == "Claim, bring to a station"
        assert states(shown[poc.pk].poc) == [("Rapid strep", "running")]
        assert shown[poc.pk].next_step == "Complete the handoff; the patient may wait for Rapid strep"
        assert states(shown[again.pk].to_collect) == [("POC glucose", "recollect")]
        assert shown[again.pk].next_step == "Recollect POC glucose"
        assert states(shown[sent_out.pk].send_outs) == [("TSH", "packaged")]
        assert states(shown[to_draw.pk].to_collect) == [("Urine hCG", "to collect")]
        assert shown[to_draw.pk].next_step == "Start work"

    def test_the_results_back_flag_counts_only_the_in_house_results_awaited(
        self, medical_assistant: User, lab_tech: User, supervisor: User
    ) -> None:
        pending, _ = running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
        back, tube = running("Urine hCG", ma=medical_assistant, lab_tech=lab_tech)
        results_released(tube, lab_tech=lab_tech)
        _, [send_out_tube] = collected("CBC", ma=medical_assistant)

        shown = rows(supervisor)

        assert (shown[pending.pk].results_back, shown[pending.pk].back, shown[pending.pk].awaited) == (False, 0, 1)
        assert shown[back.pk].results_back is True
        assert states(shown[back.pk].poc) == [("Urine hCG", "result back")]
        # A send-out's result comes in days: nobody waits in the clinic for it.
        assert shown[send_out_tube.handoff_id].results_back is None

    def test_it_lists_who_is_still_here_and_no_one_else(
        self, medical_assistant: User, lab_tech: User, supervisor: User, clinician: User
    ) -> None:
        open_one = HandoffFactory()
        waiting_for_result, _ = completed_with_result_running(ma=medical_assistant, lab_tech=lab_tech)
        done, _ = running("Urine hCG", ma=medical_assistant, lab_tech=lab_tech)
        results_released(Specimen.objects.get(handoff=done), lab_tech=lab_tech)
        services.handoff_complete(handoff=fresh(done), by=medical_assistant)
        cancelled = HandoffFactory()
        services.handoff_cancel(handoff=cancelled, by=supervisor, reason="Ordered twice")
        yesterday, _ = completed_with_result_running(ma=medical_assistant, lab_tech=lab_tech)
        Handoff.objects.filter(pk=yesterday.pk).update(created_at=timezone.now() - timedelta(days=1))

        assert set(rows(supervisor)) == {open_one.pk, waiting_for_result.pk}

    def test_stat_comes_first_then_the_oldest(self, supervisor: User) -> None:
        now = timezone.now()
        old = HandoffFactory()
        new_stat = HandoffFactory(priority=Priority.STAT)
        newer = HandoffFactory()
        old_stat = HandoffFactory(priority=Priority.STAT)
        for handoff, minutes in ((old, 50), (new_stat, 5), (newer, 10), (old_stat, 30)):
            Handoff.objects.filter(pk=handoff.pk).update(created_at=now - timedelta(minutes=minutes))

        found, total = clinic_rows(clinic_now_handoffs(user=supervisor), user=supervisor)

        assert [r.handoff.pk for r in found] == [old_stat.pk, new_stat.pk, old.pk, newer.pk]
        assert ([r.minutes for r in found], total) == ([30, 5, 50, 10], 4)


class TestPage:
    @pytest.mark.parametrize("role", ["medical_assistant", "supervisor", "clinician", "lab_tech"])
    def test_every_clinical_role_sees_it_in_the_menu(self, client: Client, role: str, request: Any) -> None:
        HandoffFactory()
        client.force_login(request.getfixturevalue(role))
        page = client.get(reverse("clinic_now"))
        assert page.status_code == 200
        assert 'href="/clinic-now/">In the clinic now</a>' in page.content.decode()

    @pytest.mark.parametrize("role", ["admin_user", "auditor", "outsider"])
    def test_other_roles_are_refused_and_logged(self, client: Client, role: str, request: Any) -> None:
        client.force_login(request.getfixturevalue(role))
        assert client.get(reverse("clinic_now")).status_code == 403
        assert AccessLog.objects.filter(what="clinic now", outcome=AccessOutcome.DENIED).count() == 1

    def test_it_filters_by_station_and_by_clinician(
        self, client: Client, medical_assistant: User, supervisor: User
    ) -> None:
        station = StationFactory(code="draw-2", name="Draw 2")
        at_station = verified_handoff("Urine hCG", ma=medical_assistant, station=station)
        other = verified_handoff("Urine hCG", ma=medical_assistant)
        client.force_login(supervisor)

        by_station = client.get(reverse("clinic_now"), {"station": "draw-2"})
        by_clinician = client.get(reverse("clinic_now"), {"clinician": str(other.ordering_clinician.uuid)})

        assert [r.handoff.pk for r in by_station.context["rows"]] == [at_station.pk]
        assert [r.handoff.pk for r in by_clinician.context["rows"]] == [other.pk]
        # The refresh keeps the filter, and the page offers every clinician and station to pick.
        assert 'hx-get="/clinic-now/?station=draw-2"' in by_station.content.decode()
        assert str(other.ordering_clinician) in by_station.content.decode()

    def test_every_refresh_writes_a_list_row_naming_every_patient_shown(
        self, client: Client, medical_assistant: User
    ) -> None:
        first, second = HandoffFactory(), HandoffFactory()
        client.force_login(medical_assistant)

        client.get(reverse("clinic_now"), headers={"HX-Request": "true"})

        log = AccessLog.objects.get(what="clinic now")
        assert (log.action, log.user) == (AccessAction.LIST, medical_assistant)
        assert set(log.patients.values_list("pk", flat=True)) == {first.patient_id, second.patient_id}

    def test_the_refresh_morphs_the_rows_in_place_and_holds_while_patient_left_is_open(
        self, client: Client, medical_assistant: User
    ) -> None:
        handoff = verified_handoff("Urine hCG", ma=medical_assistant)
        client.force_login(medical_assistant)
        page = client.get(reverse("clinic_now")).content.decode()
        assert 'hx-trigger="every 15s" hx-ext="morph" hx-swap="morph:innerHTML" data-hold-while-open' in page
        assert f'<tr id="now-{handoff.uuid}"' in page
        fragment = client.get(reverse("clinic_now"), headers={"HX-Request": "true"}).content.decode()
        assert "<h1" not in fragment and f'<tr id="now-{handoff.uuid}"' in fragment

    @pytest.mark.parametrize("count", [2, 6])
    def test_its_queries_are_the_same_whatever_the_number_of_rows(
        self, client: Client, medical_assistant: User, lab_tech: User, django_assert_num_queries: Any, count: int
    ) -> None:
        for _ in range(count // 2):
            running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
            handoff = HandoffFactory()
            procedure_orders_add(
                handoff=handoff, procedure_types=[procedure_type("36415")], by=handoff.ordering_clinician
            )
        client.force_login(medical_assistant)
        client.get(reverse("clinic_now"))  # the station and clinician choices are cached for a minute
        # 1 session, 2 user, 3 permissions and roles, 4 the handoffs with patient, clinician, claimer,
        # station and room and the total, 5 their procedures, 6 their tests with send-outs, 7 the tests'
        # released results, 8 the tests a patient leaving would leave behind, 9 the calls already made
        # for them, 10 the rejected tubes a recollection replaces, 11 the access row with its patients.
        with django_assert_num_queries(11):
            response = client.get(reverse("clinic_now"))
        assert len(response.context["rows"]) == count

    def test_a_row_is_rendered_once_while_nothing_it_shows_changes(
        self, client: Client, medical_assistant: User, lab_tech: User
    ) -> None:
        from django.test.signals import template_rendered

        drawn, tube = running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
        waiting = verified_handoff("Urine hCG", ma=medical_assistant)
        rendered: list[int] = []

        def count(sender: Any, template: Any, context: Any, **kwargs: Any) -> None:
            if template.name == "backoffice/pages/partials/clinic_now_row.html":
                rendered.append(context["handoff"].pk)

        template_rendered.connect(count)
        try:
            client.force_login(medical_assistant)
            first = client.get(reverse("clinic_now")).content.decode()
            assert sorted(rendered) == sorted([drawn.pk, waiting.pk])
            rendered.clear()
            again = client.get(reverse("clinic_now"), headers={"HX-Request": "true"}).content.decode()
            assert rendered == []  # both from the cache
            assert first.count('<tr id="now-') == again.count('<tr id="now-') == 2
            # The bench results the strep test: only that row is rendered again, showing it.
            results_released(tube, lab_tech=lab_tech)
            after = client.get(reverse("clinic_now"), headers={"HX-Request": "true"}).content.decode()
            assert rendered == [drawn.pk]
            assert "result back" in after.split(f'id="now-{drawn.uuid}"')[1].split("</tr>")[0]
            # Another minute waited is another row (its wait label moved on).
            rendered.clear()
            Handoff.objects.filter(pk=waiting.pk).update(created_at=waiting.created_at - timedelta(minutes=1))
            client.get(reverse("clinic_now"), headers={"HX-Request": "true"})
            assert rendered == [waiting.pk]
        finally:
            template_rendered.disconnect(count)


# --- Patient left ------------------------------------------------------------------------------------


class TestPatientLeft:
    def test_a_running_poc_result_becomes_call_the_patient_and_the_handoff_completes(
        self, medical_assistant: User, lab_tech: User, supervisor: User
    ) -> None:
        handoff, tube = running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
        station = handoff.station
        assert station is not None

        services.handoff_patient_left(handoff=handoff, by=medical_assistant)

        stored = fresh(handoff)
        assert stored.status == HandoffStatus.COMPLETED
        assert stored.patient_left_at is not None and stored.closed_at == stored.patient_left_at
        call = RecollectionCall.objects.get(handoff=handoff)
        assert (call.kind, call.specimen, call.clinician, call.tests_label) == (
            CallKind.RESULT,
            tube,
            handoff.ordering_clinician,
            "Rapid strep",
        )
        assert call.events.get().action == "opened"
        # The fact, then what it did to the handoff, each its own event (whoever reads completions finds it).
        left, completed = stored.events.filter(action__in=[Action.PATIENT_LEFT, Action.COMPLETED])
        assert (left.action, left.actor, left.from_status, left.to_status) == (
            Action.PATIENT_LEFT,
            medical_assistant,
            "in_progress",
            "in_progress",
        )
        assert left.note == (
            f"Patient left; to {handoff.ordering_clinician}: Rapid strep: call the patient with the result"
        )
        assert (completed.action, completed.from_status, completed.to_status) == (
            Action.COMPLETED,
            "in_progress",
            "completed",
        )
        station.refresh_from_db()
        assert station.state == StationState.NEEDS_TURNOVER
        assert handoff.pk not in rows(supervisor)

    def test_a_recollection_goes_to_the_clinician_and_the_handoff_is_handed_back(
        self, medical_assistant: User, lab_tech: User
    ) -> None:
        handoff, tube = to_recollect("POC glucose", ma=medical_assistant, lab_tech=lab_tech)
        assert not RecollectionCall.objects.exists()  # rejected while the patient was still being worked

        services.handoff_patient_left(handoff=handoff, by=medical_assistant)

        stored = fresh(handoff)
        assert (stored.status, stored.hand_back_reason) == (HandoffStatus.RETURNED, HandBackReason.PATIENT_LEFT)
        assert (stored.claimed_by, stored.station) == (None, None)
        # Handed back as the MA's hand-back is, so the clinician's pages read who and why the same way.
        assert stored.events.get(action=Action.HANDED_BACK).note.startswith("Patient left; returned to")
        call = RecollectionCall.objects.get(handoff=handoff)
        assert (call.kind, call.specimen, call.clinician) == (CallKind.RECOLLECT, tube, handoff.ordering_clinician)
        assert "before the new draw" in call.reason

    def test_after_the_back_office_is_done_it_is_the_event_alone(
        self, medical_assistant: User, lab_tech: User, supervisor: User
    ) -> None:
        handoff, tube = completed_with_result_running(ma=medical_assistant, lab_tech=lab_tech)
        version = handoff.version

        services.handoff_patient_left(handoff=handoff, by=supervisor)

        stored = fresh(handoff)
        assert (stored.status, stored.version) == (HandoffStatus.COMPLETED, version + 1)
        event = stored.events.get(action=Action.PATIENT_LEFT)
        assert (event.from_status, event.to_status) == ("completed", "completed")
        assert RecollectionCall.objects.get(specimen=tube).kind == CallKind.RESULT

    def test_a_tube_with_a_result_call_may_still_be_rejected_and_get_its_call_back(
        self, medical_assistant: User, lab_tech: User
    ) -> None:
        handoff, tube = completed_with_result_running(ma=medical_assistant, lab_tech=lab_tech)
        services.handoff_patient_left(handoff=handoff, by=medical_assistant)

        specimen_services.specimen_reject(specimen=tube, reason=reason("RC"), by=lab_tech)

        assert set(RecollectionCall.objects.filter(specimen=tube).values_list("kind", flat=True)) == {
            CallKind.RESULT,
            CallKind.RECOLLECT,
        }

    def test_it_is_refused_when_nothing_is_left_pending(self, medical_assistant: User, lab_tech: User) -> None:
        handoff, tube = running("Urine hCG", ma=medical_assistant, lab_tech=lab_tech)
        results_released(tube, lab_tech=lab_tech)
        services.handoff_complete(handoff=fresh(handoff), by=medical_assistant)

        with pytest.raises(Refused, match=r"Nothing is pending for .*: no result still running"):
            services.handoff_patient_left(handoff=fresh(handoff), by=medical_assistant)
        assert fresh(handoff).patient_left_at is None

    def test_it_is_refused_on_a_waiting_a_cancelled_or_an_already_recorded_handoff(
        self, medical_assistant: User, lab_tech: User, supervisor: User
    ) -> None:
        waiting = HandoffFactory()
        with pytest.raises(Refused, match="still waiting unclaimed on the queue"):
            services.handoff_patient_left(handoff=waiting, by=medical_assistant)
        cancelled = HandoffFactory()
        services.handoff_cancel(handoff=cancelled, by=supervisor, reason="Ordered twice")
        with pytest.raises(Refused, match="This handoff is cancelled"):
            services.handoff_patient_left(handoff=fresh(cancelled), by=medical_assistant)
        gone, _ = completed_with_result_running(ma=medical_assistant, lab_tech=lab_tech)
        services.handoff_patient_left(handoff=gone, by=medical_assistant)
        with pytest.raises(Refused, match="already recorded as gone at"):
            services.handoff_patient_left(handoff=fresh(gone), by=medical_assistant)
        assert RecollectionCall.objects.count() == 1

    def test_it_is_refused_while_a_procedure_is_being_performed(self, medical_assistant: User) -> None:
        handoff, orders = ready_handoff("36415", ma=medical_assistant)
        start(orders["36415"], credentialed(medical_assistant), cosign=True)

        with pytest.raises(Refused, match="Venipuncture is being performed; finish it or record it as not done"):
            services.handoff_patient_left(handoff=fresh(handoff), by=medical_assistant)

    @pytest.mark.parametrize("role", [roles.ROLE_CLINICIAN, roles.ROLE_LAB_TECH])
    def test_only_mas_and_supervisors_record_it(self, medical_assistant: User, lab_tech: User, role: str) -> None:
        handoff, _ = running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
        with pytest.raises(PermissionRefused, match="Your role doesn't allow you to record that a patient left"):
            services.handoff_patient_left(handoff=handoff, by=UserFactory(role=role))
        assert fresh(handoff).status == HandoffStatus.IN_PROGRESS


class TestPatientLeftPage:
    def test_the_board_offers_it_exactly_where_the_service_accepts_it(
        self, medical_assistant: User, lab_tech: User, supervisor: User, clinician: User
    ) -> None:
        """The board decides from what it read for all its rows; the service asks the apps under the lock."""
        ma = medical_assistant
        HandoffFactory()  # waiting
        running("Rapid strep", ma=ma, lab_tech=lab_tech)
        to_recollect("POC glucose", ma=ma, lab_tech=lab_tech)
        completed_with_result_running(ma=ma, lab_tech=lab_tech)
        ready_handoff("36415", ma=ma)
        _, orders = ready_handoff("36415", ma=ma)
        start(orders["36415"], credentialed(ma), cosign=True)
        verified_handoff("Urine hCG", ma=ma)
        returned, _ = running("Rapid strep", ma=ma, lab_tech=lab_tech)
        services.handoff_hand_back(handoff=returned, by=ma, reason=HandBackReason.ORDER_CHANGED)
        for user in (ma, supervisor, clinician):
            shown = rows(user)
            assert len(shown) == 8
            for pk, row in shown.items():
                assert bool(row.left) == bool(handoff_actions(fresh(Handoff(pk=pk)), user).patient_left), (pk, user)
        assert sum(bool(r.left) for r in rows(ma).values()) == 6  # not the waiting one, nor the one performing

    def test_recording_it_goes_back_to_the_board_with_its_filters_saying_what_went_to_whom(
        self, client: Client, medical_assistant: User, lab_tech: User
    ) -> None:
        station = StationFactory(code="bench-chair")
        handoff, _ = collected("Rapid strep", ma=medical_assistant)
        Handoff.objects.filter(pk=handoff.pk).update(station=station)  # as if moved there
        handoff = fresh(handoff)
        services.handoff_start(handoff=handoff, by=medical_assistant)
        [tube] = Specimen.objects.filter(handoff=handoff)
        received(tube, ma=medical_assistant, lab_tech=lab_tech)
        client.force_login(medical_assistant)

        response = client.post(
            reverse("handoff_patient_left", args=[handoff.uuid]), {"station": "bench-chair", "page": "2"}, follow=True
        )

        assert response.redirect_chain == [("/clinic-now/?station=bench-chair", 302)]
        page = response.content.decode()
        said = (
            f"{handoff.patient.full_name} has left; to {handoff.ordering_clinician}: Rapid strep: call the patient "
            "with the result. Nothing else needed them: the handoff is completed."
        )
        assert said in page
        assert fresh(handoff).patient_left_at is not None

    def test_the_call_is_on_the_ordering_clinicians_follow_ups(
        self, client: Client, medical_assistant: User, lab_tech: User
    ) -> None:
        handoff, _ = running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
        services.handoff_patient_left(handoff=handoff, by=medical_assistant)
        client.force_login(handoff.ordering_clinician)

        page = client.get(reverse("lab:calls")).content.decode()

        assert handoff.patient.family_name.upper() in page
        assert '<span class="badge text-bg-primary">Result</span> Rapid strep' in page

    def test_a_refusal_is_a_message_naming_the_patient(self, client: Client, medical_assistant: User) -> None:
        waiting = HandoffFactory()
        client.force_login(medical_assistant)
        page = client.post(reverse("handoff_patient_left", args=[waiting.uuid]), follow=True).content.decode()
        assert f"{waiting.patient.full_name} is still waiting unclaimed on the queue" in page
        assert fresh(waiting).patient_left_at is None

    @pytest.mark.parametrize("role", ["clinician", "lab_tech", "auditor"])
    def test_a_role_that_may_not_is_refused_and_the_denied_row_names_the_patient(
        self, client: Client, medical_assistant: User, lab_tech: User, role: str, request: Any
    ) -> None:
        handoff, _ = running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
        client.force_login(request.getfixturevalue(role))

        assert client.post(reverse("handoff_patient_left", args=[handoff.uuid])).status_code == 403

        denied = AccessLog.objects.get(action=AccessAction.DENIED, what="patient left")
        assert (denied.outcome, denied.object_ref) == (AccessOutcome.DENIED, str(handoff.uuid))
        assert list(denied.patients.values_list("pk", flat=True)) == [handoff.patient_id]
        assert fresh(handoff).patient_left_at is None

    def test_an_unknown_handoff_is_a_logged_404(self, client: Client, medical_assistant: User) -> None:
        client.force_login(medical_assistant)
        url = reverse("handoff_patient_left", args=["00000000-0000-4000-8000-000000000000"])
        assert client.post(url).status_code == 404
        assert AccessLog.objects.get(what="patient left").outcome == AccessOutcome.NOT_FOUND

    def test_a_station_left_by_the_patient_needs_turnover(self, medical_assistant: User, lab_tech: User) -> None:
        handoff, _ = running("Rapid strep", ma=medical_assistant, lab_tech=lab_tech)
        station = Station.objects.get(pk=handoff.station_id)
        services.handoff_patient_left(handoff=handoff, by=medical_assistant)
        station.refresh_from_db()
        assert station.state == StationState.NEEDS_TURNOVER


# --- The MA's hand-back with "Patient left" is the same fact ---------------------------------------


class TestHandBackPatientLeft:
    def test_returned_what_was_pending_goes_to_the_clinician_as_the_doors_patient_left_does(
        self, settings: Any, medical_assistant: User, lab_tech: User, supervisor: User
    ) -> None:
        settings.MA_HAND_BACK = "return"
        handoff, tube = to_recollect("POC glucose", ma=medical_assistant, lab_tech=lab_tech)

        services.handoff_hand_back(handoff=handoff, by=medical_assistant, reason=HandBackReason.PATIENT_LEFT)

        stored = fresh(handoff)
        assert (stored.status, stored.hand_back_reason) == (HandoffStatus.RETURNED, HandBackReason.PATIENT_LEFT)
        assert stored.patient_left_at is not None
        call = RecollectionCall.objects.get(handoff=handoff)
        assert (call.kind, call.specimen, call.clinician) == (CallKind.RECOLLECT, tube, handoff.ordering_clinician)
        left, back = stored.events.filter(action__in=[Action.PATIENT_LEFT, Action.HANDED_BACK])
        assert left.action == Action.PATIENT_LEFT
        assert (
            left.note
            == f"Patient left; to {handoff.ordering_clinician}: POC glucose: call the patient back to collect again"
        )
        assert back.note.startswith("Patient left; returned to")
        assert handoff.pk not in rows(supervisor)  # gone: off the board like a patient recorded at the door

    def test_cancelled_the_fact_is_recorded_and_nothing_is_handed_over_that_the_cancel_closes(
        self, settings: Any, medical_assistant: User, lab_tech: User
    ) -> None:
        settings.MA_HAND_BACK = "cancel"
        handoff, _ = to_recollect("POC glucose", ma=medical_assistant, lab_tech=lab_tech)

        services.handoff_hand_back(handoff=handoff, by=medical_assistant, reason=HandBackReason.PATIENT_LEFT)

        stored = fresh(handoff)
        assert stored.status == HandoffStatus.CANCELLED and stored.patient_left_at is not None
        assert stored.events.get(action=Action.PATIENT_LEFT).note == "Patient left"
        assert not RecollectionCall.objects.filter(handoff=handoff).exists()

    def test_another_reason_records_no_departure(self, settings: Any, medical_assistant: User, lab_tech: User) -> None:
        settings.MA_HAND_BACK = "return"
        handoff, _ = to_recollect("POC glucose", ma=medical_assistant, lab_tech=lab_tech)

        services.handoff_hand_back(handoff=handoff, by=medical_assistant, reason=HandBackReason.PATIENT_REFUSED)

        stored = fresh(handoff)
        assert stored.patient_left_at is None
        assert not stored.events.filter(action=Action.PATIENT_LEFT).exists()
        assert not RecollectionCall.objects.filter(handoff=handoff).exists()

    def test_sent_back_to_the_queue_the_patient_is_here_again(
        self, settings: Any, medical_assistant: User, lab_tech: User, supervisor: User
    ) -> None:
        settings.MA_HAND_BACK = "return"
        handoff, _ = to_recollect("POC glucose", ma=medical_assistant, lab_tech=lab_tech)
        services.handoff_patient_left(handoff=handoff, by=medical_assistant)
        assert handoff.pk not in rows(supervisor)

        services.handoff_resend(handoff=fresh(handoff), by=handoff.ordering_clinician)

        stored = fresh(handoff)
        assert (stored.status, stored.patient_left_at) == (HandoffStatus.WAITING, None)
        assert stored.events.filter(action=Action.PATIENT_LEFT).exists()  # the history keeps the departure
        assert handoff.pk in rows(supervisor)
