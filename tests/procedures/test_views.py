"""Procedure pages per role: who gets what, what each action does, and constant query counts."""

import csv
import datetime as dt
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import roles
from backoffice.models import AccessLog, Credential, Handoff, Station, User
from backoffice.workflow import HandoffStatus, Priority, StationState
from procedures import services
from procedures.models import ChargeLine, MedicationAdministration, ProcedureDocumentation, ProcedureOrder
from procedures.workflow import ProcedureStatus, Supervision
from tests.factories import PatientFactory, UserFactory, medication
from tests.procedures.helpers import (
    awaiting_cosign,
    credentialed,
    documented,
    finished,
    new_ma,
    new_supervisor,
    ready_handoff,
    signed_off,
    start,
    version,
)

pytestmark = pytest.mark.django_db

S = ProcedureStatus
PASSWORD = "correct-horse-battery-staple"


def _as(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def detail(order: ProcedureOrder, action: str = "detail") -> str:
    return reverse(f"procedures:{action}", args=[order.uuid])


@pytest.fixture
def ma() -> User:
    return new_ma(username="trainee", first_name="Jordan", last_name="Lee")


@pytest.fixture
def competent_ma() -> User:
    return signed_off(new_ma(username="senior", first_name="Maria", last_name="Alvarez"))


@pytest.fixture
def sup() -> User:
    return new_supervisor(username="boss", first_name="Samira", last_name="Okafor")


@pytest.fixture
def order(ma: User) -> ProcedureOrder:
    """A trainee's IM injection, documented and waiting for a co-sign."""
    return awaiting_cosign("96372", ma=ma)


# --- Access ------------------------------------------------------------------------------------


class TestAccess:
    @pytest.mark.parametrize(
        "name", ["procedures:home", "procedures:queue", "procedures:competency", "procedures:charges"]
    )
    def test_anonymous_users_are_sent_to_login(self, client: Client, name: str) -> None:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    @pytest.mark.parametrize(
        ("role", "name", "status"),
        [
            ("medical_assistant", "procedures:queue", 200),
            ("supervisor", "procedures:queue", 200),
            ("clinician", "procedures:queue", 403),
            ("lab_tech", "procedures:queue", 403),
            ("outsider", "procedures:queue", 403),
            ("medical_assistant", "procedures:competency", 403),
            ("supervisor", "procedures:competency", 200),
            ("clinician", "procedures:competency", 403),
            ("admin_user", "procedures:competency", 403),
            ("medical_assistant", "procedures:charges", 403),
            ("supervisor", "procedures:charges", 200),
            ("admin_user", "procedures:charges", 403),
            ("medical_assistant", "procedures:charges_csv", 403),
            ("supervisor", "procedures:charges_csv", 200),
        ],
    )
    def test_each_role_sees_only_its_pages(self, client: Client, request, role: str, name: str, status: int) -> None:  # type: ignore[no-untyped-def]
        assert _as(client, request.getfixturevalue(role)).get(reverse(name)).status_code == status

    @pytest.mark.parametrize(
        ("role", "status"),
        [("medical_assistant", 200), ("supervisor", 200), ("clinician", 200), ("lab_tech", 403), ("outsider", 403)],
    )
    def test_a_procedure_page_is_shown_to_clinical_roles(
        self, client: Client, request, role: str, status: int, order: ProcedureOrder
    ) -> None:  # type: ignore[no-untyped-def]
        assert _as(client, request.getfixturevalue(role)).get(detail(order)).status_code == status

    def test_an_unknown_procedure_is_404(self, client: Client, ma: User) -> None:
        url = reverse("procedures:detail", args=["00000000-0000-0000-0000-000000000000"])
        assert _as(client, ma).get(url).status_code == 404

    def test_a_sequential_id_is_not_a_procedure_url(self, client: Client, ma: User, order: ProcedureOrder) -> None:
        assert _as(client, ma).get(f"/procedures/{order.pk}/").status_code == 404

    @pytest.mark.parametrize(
        ("role", "target"),
        [("medical_assistant", "procedures:queue"), ("supervisor", "procedures:queue")],
    )
    def test_the_procedures_link_lands_on_the_queue(self, client: Client, request, role: str, target: str) -> None:  # type: ignore[no-untyped-def]
        response = _as(client, request.getfixturevalue(role)).get(reverse("procedures:home"))
        assert response["Location"] == reverse(target)

    @pytest.mark.parametrize(
        "action", ["start", "document", "medication", "not_done", "cosign", "return", "resubmit", "addendum"]
    )
    def test_actions_refuse_get(self, client: Client, sup: User, order: ProcedureOrder, action: str) -> None:
        assert _as(client, sup).get(detail(order, action)).status_code == 405

    @pytest.mark.parametrize("action", ["cosign", "return"])
    def test_an_ma_cannot_review(self, client: Client, competent_ma: User, order: ProcedureOrder, action: str) -> None:
        response = _as(client, competent_ma).post(detail(order, action), {"comment": "x"})
        assert response.status_code == 403
        order.refresh_from_db()
        assert order.status == S.AWAITING_COSIGN

    def test_a_clinician_reads_but_cannot_start(self, client: Client, clinician: User, competent_ma: User) -> None:
        _, orders = ready_handoff("36415", ma=competent_ma)
        assert _as(client, clinician).post(detail(orders["36415"], "start")).status_code == 403

    def test_the_nav_shows_procedures_only_to_roles_that_use_them(
        self, client: Client, clinician: User, sup: User
    ) -> None:
        link = f'href="{reverse("procedures:home")}"'
        assert link not in _as(client, clinician).get(reverse("handoff_new")).content.decode()
        assert link in _as(Client(), sup).get(reverse("board")).content.decode()


# --- The procedure page ------------------------------------------------------------------------


class TestProcedurePage:
    def test_it_shows_the_patient_banner_and_allergies(self, client: Client, ma: User, order: ProcedureOrder) -> None:
        patient = order.handoff.patient
        patient.allergies = "Penicillin — hives"
        patient.save(update_fields=["allergies"])
        content = _as(client, ma).get(detail(order)).content.decode()
        assert 'class="patient-banner' in content
        assert patient.mrn in content
        assert "Penicillin — hives" in content
        assert "Therapeutic injection, IM or SC" in content
        assert "CX4471B" in content  # the lot given, read-only now

    def test_viewing_a_procedure_is_access_logged(self, client: Client, ma: User, order: ProcedureOrder) -> None:
        _as(client, ma).get(detail(order))
        entry = AccessLog.objects.get(what="procedure")
        assert entry.object_ref == str(order.uuid)
        assert list(entry.patients.values_list("pk", flat=True)) == [order.handoff.patient_id]

    def test_a_trainee_is_offered_both_kinds_of_supervision(self, client: Client, ma: User, sup: User) -> None:
        _, orders = ready_handoff("36415", ma=ma)
        content = _as(client, ma).get(detail(orders["36415"])).content.decode()
        assert "A supervisor is with me now" in content
        assert "A supervisor co-signs my documentation afterwards" in content
        assert "Samira Okafor" in content  # signed off for venipuncture: listed as a supervisor

    def test_a_competent_ma_just_starts(self, client: Client, competent_ma: User) -> None:
        handoff, orders = ready_handoff("36415", ma=competent_ma)
        c = _as(client, competent_ma)
        assert "A supervisor is with me now" not in c.get(detail(orders["36415"])).content.decode()
        response = c.post(detail(orders["36415"], "start"))
        assert response.status_code == 302
        orders["36415"].refresh_from_db()
        assert orders["36415"].status == S.IN_PROGRESS
        handoff.refresh_from_db()
        assert handoff.status == HandoffStatus.IN_PROGRESS

    def test_a_trainee_must_choose_a_supervision(self, client: Client, ma: User) -> None:
        _, orders = ready_handoff("36415", ma=ma)
        response = _as(client, ma).post(detail(orders["36415"], "start"), {})
        assert response.status_code == 422
        assert "Choose how you are supervised." in response.content.decode()

    def test_a_present_supervisor_confirms_with_their_password(self, client: Client, ma: User, sup: User) -> None:
        _, orders = ready_handoff("36415", ma=ma)
        c = _as(client, ma)
        wrong = c.post(
            detail(orders["36415"], "start"),
            {"supervision": "present", "supervisor": sup.pk, "supervisor_password": "not-it"},
        )
        assert wrong.status_code == 422
        assert "That is not Samira Okafor&#x27;s password" in wrong.content.decode()
        right = c.post(
            detail(orders["36415"], "start"),
            {"supervision": "present", "supervisor": sup.pk, "supervisor_password": PASSWORD},
        )
        assert right.status_code == 302
        orders["36415"].refresh_from_db()
        assert (orders["36415"].supervision, orders["36415"].supervisor) == (Supervision.PRESENT, sup)

    def test_save_and_finish_completes_the_last_item_and_closes_the_handoff(
        self, client: Client, competent_ma: User
    ) -> None:
        handoff, orders = ready_handoff("69209", ma=competent_ma)
        order = start(orders["69209"], competent_ma)
        steps = list(order.procedure_type.steps.values_list("pk", flat=True))
        response = _as(client, competent_ma).post(
            detail(order, "document"),
            {
                "version": 1,
                "steps": steps,
                "site": "Ear canal",
                "laterality": "right",
                "findings": "Impacted cerumen removed; TM intact.",
                "tolerance": "well",
                "finish": "1",
            },
            follow=True,
        )
        order.refresh_from_db()
        handoff.refresh_from_db()
        assert order.status == S.COMPLETED
        assert handoff.status == HandoffStatus.COMPLETED
        assert response.redirect_chain[-1][0] == reverse("handoff_detail", args=[handoff.uuid])
        content = response.content.decode()
        assert "Every ordered item is done" in content
        assert "needs turnover" in content
        assert "Cleaned &amp; restocked" in content  # the panel offers the turnover right there
        assert ChargeLine.objects.get(order=order).modifiers == "RT"

    def test_finishing_with_gaps_saves_and_says_what_is_missing(self, client: Client, competent_ma: User) -> None:
        _, orders = ready_handoff("69209", ma=competent_ma)
        order = start(orders["69209"], competent_ma)
        response = _as(client, competent_ma).post(
            detail(order, "document"), {"version": 1, "findings": "Wax", "finish": "1"}, follow=True
        )
        content = response.content.decode()
        assert "Saved. Before you finish, tick checklist steps 1, 2, 3, 4, 5" in content
        order.refresh_from_db()
        assert order.status == S.IN_PROGRESS
        assert ProcedureDocumentation.objects.get(order=order).findings == "Wax"

    def test_a_stale_save_is_refused_with_what_is_stored_now(self, client: Client, competent_ma: User) -> None:
        _, orders = ready_handoff("69209", ma=competent_ma)
        order = start(orders["69209"], competent_ma)
        services.procedure_document(
            order=order, by=competent_ma, version=1, data=services.Documentation(findings="Saved on the other tab")
        )
        response = _as(client, competent_ma).post(detail(order, "document"), {"version": 1, "findings": "Mine"})
        assert response.status_code == 422
        content = response.content.decode()
        assert "after you opened it. Nothing of yours was saved" in content
        assert "Saved on the other tab" in content
        assert ProcedureDocumentation.objects.get(order=order).findings == "Saved on the other tab"

    def test_an_expired_lot_is_refused_under_the_field(self, client: Client, ma: User) -> None:
        _, orders = ready_handoff("96372", ma=ma)
        order = start(orders["96372"], ma, cosign=True)
        response = _as(client, ma).post(
            detail(order, "medication"),
            {
                "med-version": 1,
                "med-product": medication("Ceftriaxone", "250 mg/mL").pk,
                "med-dose": "250",
                "med-unit": "mg",
                "med-route": "IM",
                "med-lot_number": "OLD-1",
                "med-expiry_date": (timezone.localdate() - dt.timedelta(days=3)).isoformat(),
            },
        )
        assert response.status_code == 422
        assert "Lot OLD-1 of Ceftriaxone 250 mg/mL expired on" in response.content.decode()
        assert not MedicationAdministration.objects.exists()

    def test_consent_required_shows_until_consent_is_recorded_and_never_once_completed(
        self, client: Client, competent_ma: User, sup: User
    ) -> None:
        # Issue 14, point 14: a completed injection still wore "Consent required" in its heading.
        _, orders = ready_handoff("96372", "12001", ma=competent_ma)
        c = _as(client, competent_ma)
        assert "Consent required" in c.get(detail(orders["96372"])).content.decode()
        assert "Time-out required" in c.get(detail(orders["12001"])).content.decode()
        order = finished(documented(start(orders["96372"], competent_ma), competent_ma), competent_ma)
        assert order.status == S.COMPLETED
        content = c.get(detail(order)).content.decode()
        assert "Consent required" not in content
        assert "Consent</dt>" in content  # the record still says who consented

    def test_completed_documentation_is_shown_locked_with_an_addendum_form(
        self, client: Client, competent_ma: User
    ) -> None:
        _, orders = ready_handoff("69209", ma=competent_ma)
        order = finished(documented(start(orders["69209"], competent_ma), competent_ma), competent_ma)
        c = _as(client, competent_ma)
        content = c.get(detail(order)).content.decode()
        assert "locked; corrections go in an addendum" in content
        assert 'action="' + detail(order, "document") not in content
        response = c.post(detail(order, "document"), {"version": version(order), "findings": "Changed"})
        assert response.status_code == 302
        c.post(detail(order, "addendum"), {"addendum-reason": "correction", "addendum-text": "Right ear, not left."})
        assert order.addenda.get().text == "Right ear, not left."

    def test_not_done_needs_a_reason(self, client: Client, competent_ma: User) -> None:
        _, orders = ready_handoff("69209", "36415", ma=competent_ma)
        c = _as(client, competent_ma)
        assert c.post(detail(orders["69209"], "not_done"), {"notdone-reason": ""}).status_code == 422
        c.post(detail(orders["69209"], "not_done"), {"notdone-reason": "patient_declined", "notdone-note": "Declined"})
        orders["69209"].refresh_from_db()
        assert orders["69209"].status == S.NOT_DONE


# --- Supervision -------------------------------------------------------------------------------


class TestSupervision:
    def test_a_supervisor_cosigns_inline_from_the_queue(self, client: Client, sup: User, order: ProcedureOrder) -> None:
        response = _as(client, sup).post(detail(order, "cosign"), {"back": "queue"}, follow=True)
        assert response.redirect_chain[0][0] == reverse("procedures:queue")
        order.refresh_from_db()
        assert order.status == S.COMPLETED
        assert "Co-signed: Therapeutic injection, IM or SC" in response.content.decode()

    def test_a_return_from_the_queue_needs_a_comment(self, client: Client, sup: User, order: ProcedureOrder) -> None:
        response = _as(client, sup).post(detail(order, "return"), {"back": "queue", "comment": ""}, follow=True)
        assert "Say what needs correcting before you return it." in response.content.decode()
        order.refresh_from_db()
        assert order.status == S.AWAITING_COSIGN

    def test_the_ma_sees_the_return_corrects_and_resubmits(
        self, client: Client, ma: User, sup: User, order: ProcedureOrder
    ) -> None:
        _as(client, sup).post(detail(order, "return"), {"comment": "Which deltoid?"})
        c = _as(Client(), ma)
        queue = c.get(reverse("procedures:queue")).content.decode()
        assert "Which deltoid?" in queue
        assert "Correct<span" in queue
        page = c.get(detail(order)).content.decode()
        assert "Returned for correction" in page
        # Nothing corrected yet: the page says what to do first instead of offering a refused resubmit.
        assert "Resubmit</button>" not in page
        assert "Make the correction first" in page
        c.post(detail(order, "addendum"), {"addendum-reason": "correction", "addendum-text": "Left deltoid."})
        assert "Resubmit</button>" in c.get(detail(order)).content.decode()
        c.post(detail(order, "resubmit"), {"note": "Site added"})
        order.refresh_from_db()
        assert order.status == S.AWAITING_COSIGN

    def test_a_supervisor_cannot_cosign_their_own_work_from_the_page(self, client: Client) -> None:
        supervisor = credentialed(UserFactory(role=roles.ROLE_SUPERVISOR))
        own = awaiting_cosign("36415", ma=supervisor)
        c = _as(client, supervisor)
        assert "Co-sign</button>" not in c.get(detail(own)).content.decode()
        response = c.post(detail(own, "cosign"), follow=True)
        assert "another supervisor must review it" in response.content.decode()
        own.refresh_from_db()
        assert own.status == S.AWAITING_COSIGN


# --- The procedure queue -----------------------------------------------------------------------


class TestQueue:
    def test_it_lists_the_longest_waiting_patient_first_and_highlights_the_oldest_wait(
        self, client: Client, sup: User
    ) -> None:
        first = awaiting_cosign("36415", ma=new_ma())
        Handoff.objects.filter(pk=first.handoff_id).update(created_at=timezone.now() - dt.timedelta(minutes=70))
        stuck = awaiting_cosign("96372", ma=new_ma())
        ProcedureOrder.objects.filter(pk=stuck.pk).update(status_changed_at=timezone.now() - dt.timedelta(minutes=50))
        response = _as(client, sup).get(reverse("procedures:queue"))
        assert [o.pk for o in response.context["orders"]] == [first.pk, stuck.pk]
        assert response.context["oldest"] == stuck.pk
        content = response.content.decode()
        assert "row-oldest" in content and "row-overdue" in content

    def test_a_patient_s_procedures_stay_in_the_order_they_were_ordered(self, client: Client, ma: User) -> None:
        # Issue 14, point 14: starting, documenting or sending one for co-sign used to move it below the
        # procedures still waiting (the list followed the time in the current status).
        _, orders = ready_handoff("36415", "96372", "94760", ma=ma)
        start(orders["36415"], ma, cosign=True)
        ProcedureOrder.objects.filter(pk=orders["94760"].pk).update(
            status_changed_at=timezone.now() - dt.timedelta(minutes=40)
        )
        listed = [o.pk for o in _as(client, ma).get(reverse("procedures:queue")).context["orders"]]
        assert listed == [orders["36415"].pk, orders["96372"].pk, orders["94760"].pk]

    def test_stat_patients_come_first_with_their_badge_and_the_oldest_is_still_marked(
        self, client: Client, sup: User
    ) -> None:
        older = awaiting_cosign("96372", ma=new_ma())
        ProcedureOrder.objects.filter(pk=older.pk).update(status_changed_at=timezone.now() - dt.timedelta(minutes=50))
        stat = awaiting_cosign("36415", ma=new_ma())
        Handoff.objects.filter(pk=stat.handoff_id).update(priority=Priority.STAT)
        response = _as(client, sup).get(reverse("procedures:queue"))
        assert [o.pk for o in response.context["orders"]] == [stat.pk, older.pk]
        assert response.context["oldest"] == older.pk
        content = response.content.decode()
        rows = content.split("<tbody>")[1].split("</tr>")
        assert "priority-stat" in rows[0] and "row-stat" in rows[0]
        assert "priority-stat" not in rows[1] and "row-oldest" in rows[1]
        assert "STAT first, then the longest-waiting patient" in content

    def test_an_ma_sees_only_their_own_work(self, client: Client, ma: User, order: ProcedureOrder) -> None:
        theirs = awaiting_cosign("36415", ma=new_ma())
        mine = [o.pk for o in _as(client, ma).get(reverse("procedures:queue")).context["orders"]]
        assert mine == [order.pk]
        assert theirs.pk not in mine

    def test_it_filters_by_type_performer_station_status_and_age(self, client: Client, sup: User, ma: User) -> None:
        injection = awaiting_cosign("96372", ma=ma)
        other_ma = new_ma()
        draw = awaiting_cosign("36415", ma=other_ma)
        ProcedureOrder.objects.filter(pk=draw.pk).update(status_changed_at=timezone.now() - dt.timedelta(minutes=45))
        c = _as(client, sup)

        def listed(**params: object) -> list[int]:
            return [o.pk for o in c.get(reverse("procedures:queue"), params).context["orders"]]

        assert listed(procedure_type="96372") == [injection.pk]
        assert listed(performer=other_ma.pk) == [draw.pk]
        station = Station.objects.get(pk=injection.station_id)
        assert listed(station=station.code) == [injection.pk]
        assert listed(status="awaiting_cosign") == [injection.pk, draw.pk]  # the first patient first
        assert listed(status="ordered") == []
        assert listed(age="30") == [draw.pk]

    def test_the_performer_is_told_when_their_work_is_cosigned_or_returned(
        self, client: Client, ma: User, sup: User
    ) -> None:
        cosigned = awaiting_cosign("36415", ma=ma)
        returned = awaiting_cosign("96372", ma=ma)
        services.procedure_cosign(order=cosigned, by=sup)
        services.procedure_return(order=returned, by=sup, comment="Give the injection site.")

        response = _as(client, ma).get(reverse("procedures:queue"))

        reviews = [(e.order.pk, e.action) for e in response.context["reviews"]]
        assert reviews == [(returned.pk, "returned"), (cosigned.pk, "cosigned")]  # newest first
        panel = response.content.decode().split('id="reviews-title"')[1].split("</section>")[0]
        assert "Co-signed" in panel and "Returned" in panel and "Give the injection site." in panel
        assert "by Samira Okafor" in panel
        assert f'href="{detail(returned)}">Correct' in panel
        # The co-signed one has left the queue's table, but the notice shows its patient: logged too.
        entry = AccessLog.objects.get(what="procedure queue")
        assert cosigned.handoff.patient_id in set(entry.patients.values_list("pk", flat=True))

    def test_a_cosign_already_done_from_the_queue_lands_on_the_procedure_naming_the_patient(
        self, client: Client, sup: User, order: ProcedureOrder
    ) -> None:
        services.procedure_cosign(order=order, by=new_supervisor())  # another supervisor, a moment before

        response = _as(client, sup).post(detail(order, "cosign"), {"back": "queue"}, follow=True)

        assert response.redirect_chain[-1][0] == detail(order)
        name = order.handoff.patient.full_name
        assert [str(m) for m in response.context["messages"]] == [
            f"{name}: This procedure is completed; only work awaiting co-sign can be co-signed."
        ]

    def test_someone_elses_reviews_are_not_shown(self, client: Client, ma: User, sup: User) -> None:
        services.procedure_cosign(order=awaiting_cosign("36415", ma=new_ma()), by=sup)
        response = _as(client, ma).get(reverse("procedures:queue"))
        assert response.context["reviews"] == []
        assert 'id="reviews-title"' not in response.content.decode()

    def test_listing_the_queue_is_access_logged(self, client: Client, sup: User, order: ProcedureOrder) -> None:
        _as(client, sup).get(reverse("procedures:queue"))
        entry = AccessLog.objects.get(what="procedure queue")
        assert list(entry.patients.values_list("pk", flat=True)) == [order.handoff.patient_id]

    @pytest.mark.parametrize("rows", [3, 30])
    def test_query_count_does_not_grow_with_rows(
        self, client: Client, sup: User, django_assert_num_queries, rows: int
    ) -> None:  # type: ignore[no-untyped-def]
        for n in range(rows):
            if n % 3 == 0:
                awaiting_cosign("96372", ma=new_ma())
            elif n % 3 == 1:
                _, orders = ready_handoff("36415", ma=new_ma())
                start(orders["36415"], orders["36415"].handoff.claimed_by, cosign=True)
            else:
                ready_handoff("69209", ma=new_ma())
        c = _as(client, sup)
        # 1 session, 2 user, 3 permissions and roles,
        # 4 the whole filtered queue's counts by status, 5 its longest wait in the current status,
        # 6 a page of open procedures (STAT first, then the longest-waiting patient, as ordered: the handoff is
        # joined) with patient, station, type, performer, supervisor, returner and documentation,
        # 7 their medications, 8 today's co-signs and returns of the user's own work, with their
        # procedures, patients and reviewers, 9 access log row with its patients,
        # 10 the supervisor's credentials and 11 sign-offs (may they co-sign each row? read once for all),
        # 12 station filter choices, 13 performer filter choices, 14 procedure type filter choices.
        with django_assert_num_queries(14):
            response = c.get(reverse("procedures:queue"))
        assert len(response.context["orders"]) == rows

    def test_a_long_queue_comes_a_page_at_a_time_with_the_whole_queue_s_counts(
        self, client: Client, sup: User, settings
    ) -> None:  # type: ignore[no-untyped-def]
        settings.QUEUE_PAGE_SIZE = 5
        waiting = [ready_handoff("69209", ma=new_ma())[1]["69209"] for _ in range(7)]
        started = start(waiting[6], waiting[6].handoff.claimed_by, cosign=True)
        ProcedureOrder.objects.filter(pk=waiting[3].pk).update(status_changed_at=timezone.now() - dt.timedelta(hours=2))
        c = _as(client, sup)

        first = c.get(reverse("procedures:queue"))
        assert [o.pk for o in first.context["orders"]] == [o.pk for o in waiting[:5]]
        content = first.content.decode()
        assert "<strong>6</strong> ordered" in content and "<strong>1</strong> in progress" in content
        assert "showing 1\N{EN DASH}5" in content and "Page 1 of 2" in content
        assert first.context["oldest"] == waiting[3].pk  # the whole queue's longest wait, wherever it is

        second = c.get(reverse("procedures:queue"), {"page": "2", "status": ""})
        assert [o.pk for o in second.context["orders"]] == [o.pk for o in waiting[5:]]
        assert "showing 6\N{EN DASH}7" in second.content.decode()
        assert 'href="?status=&amp;page=1"' in second.content.decode()  # the filters kept, the page changed
        # Past the end: the last page. The access log names only the patients shown.
        assert [o.pk for o in c.get(reverse("procedures:queue"), {"page": "9"}).context["orders"]] == [
            o.pk for o in waiting[5:]
        ]
        shown = AccessLog.objects.filter(what="procedure queue").latest("pk")
        assert set(shown.patients.values_list("pk", flat=True)) == {o.handoff.patient_id for o in waiting[5:]}
        assert started.status == "in_progress"


# --- Competency --------------------------------------------------------------------------------


class TestCompetency:
    def test_it_shows_who_is_competent_training_and_close_to_expiry(self, client: Client, sup: User, ma: User) -> None:
        signed_off(ma, "69209")
        services.procedure_cosign(order=awaiting_cosign("36415", ma=ma), by=sup)
        soon = new_ma(first_name="Rita", last_name="Soon")
        soon.credentials.update(expires_on=timezone.localdate() + dt.timedelta(days=10))
        response = _as(client, sup).get(reverse("procedures:competency"))
        rows = {row.user.pk: row for row in response.context["rows"]}
        states = {cell.procedure_type.code: cell.state for cell in rows[ma.pk].cells}
        assert (states["69209"], states["36415"], states["96372"]) == ("competent", "training", "none")
        assert rows[ma.pk].supervised_total == 1
        assert rows[soon.pk].credential_state == "expiring"
        assert "Expires within 30 days" in response.content.decode()

    def test_columns_are_named_and_dates_spell_their_month(self, client: Client, sup: User, ma: User) -> None:
        # Issue 14, point 13: a bare CPT code heads no column, "12/27" could be a day or a year, and
        # the phlebotomy certificate is not called CPT beside the billing codes.
        signed_off(ma, "36415", expires_on=dt.date(2027, 12, 31))
        ma.credentials.update(kind=Credential.Kind.CPT, expires_on=dt.date(2027, 3, 4))
        html = _as(client, sup).get(reverse("procedures:competency")).content.decode()
        head = html[html.index("<thead") : html.index("</thead>")]
        assert '<span class="cm-name">Venipuncture</span>' in head
        assert "36415" not in head and "96372" not in head
        row = html[html.index("Jordan Lee") :].split("</tr>", 1)[0]
        assert '>Phlebotomy tech</abbr> <span class="text-body-secondary">to</span> Mar 4, 2027' in row
        assert ">CPT<" not in row and "03/04/2027" not in row
        assert "Dec 2027" in row and "12/27" not in row

    def test_a_supervisor_signs_off_from_the_page(self, client: Client, sup: User, ma: User) -> None:
        response = _as(client, sup).post(
            reverse("procedures:competency_sign_off"),
            {"user": ma.pk, "procedure_type": services.ProcedureType.objects.get(code="36415").pk},
            follow=True,
        )
        assert "Jordan Lee is signed off for Venipuncture." in response.content.decode()
        assert services.is_competent(ma, services.ProcedureType.objects.get(code="36415"))

    def test_signing_yourself_off_is_refused_on_the_page(self, client: Client, sup: User) -> None:
        response = _as(client, sup).post(
            reverse("procedures:competency_sign_off"),
            {"user": sup.pk, "procedure_type": services.ProcedureType.objects.get(code="36415").pk},
        )
        assert response.status_code == 422
        assert "You can&#x27;t sign yourself off" in response.content.decode()

    @pytest.mark.parametrize("staff", [2, 20])
    def test_query_count_does_not_grow_with_staff(
        self, client: Client, sup: User, django_assert_num_queries, staff: int
    ) -> None:  # type: ignore[no-untyped-def]
        for _ in range(staff):
            signed_off(new_ma(), "36415", "69209", by=sup)
        c = _as(client, sup)
        # 1 session, 2 user, 3 permissions and roles, 4 active procedure types,
        # 5 staff who perform procedures, 6 their credentials, 7 their competencies with signers,
        # 8 their groups, 9 sign-off staff choices, 10 sign-off procedure choices.
        with django_assert_num_queries(10):
            response = c.get(reverse("procedures:competency"))
        # The MAs, the supervisor, and the supervisor who signed the supervisor off.
        assert len(response.context["rows"]) == staff + 2


# --- Charges -----------------------------------------------------------------------------------


class TestCharges:
    def test_the_day_lists_each_completed_procedure_once(
        self, client: Client, sup: User, order: ProcedureOrder
    ) -> None:
        services.procedure_cosign(order=order, by=sup)
        _, orders = ready_handoff("69209", ma=signed_off(new_ma()))
        performer = orders["69209"].handoff.claimed_by
        finished(documented(start(orders["69209"], performer), performer, laterality="left"), performer)
        response = _as(client, sup).get(reverse("procedures:charges"))
        codes = [(line.code, line.modifiers) for line in response.context["lines"]]
        assert codes == [("96372", ""), ("69209", "LT")]
        yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
        assert list(_as(client, sup).get(reverse("procedures:charges"), {"date": yesterday}).context["lines"]) == []

    def test_the_csv_export_neutralises_formulas_and_is_logged(self, client: Client, sup: User, ma: User) -> None:
        handoff, orders = ready_handoff("36415", ma=ma, handoff=None)
        patient = handoff.patient
        patient.family_name = '=HYPERLINK("http://evil")'
        patient.given_name = "+Ana"
        patient.save(update_fields=["family_name", "given_name"])
        order = finished(documented(start(orders["36415"], ma, cosign=True), ma), ma)
        services.procedure_cosign(order=order, by=sup)

        response = _as(client, sup).get(reverse("procedures:charges_csv"), {"date": timezone.localdate().isoformat()})

        assert response["Content-Type"].startswith("text/csv")
        assert response["Content-Disposition"] == f'attachment; filename="charges-{timezone.localdate():%Y-%m-%d}.csv"'
        rows = list(csv.reader(io.StringIO(response.content.decode())))
        assert rows[0][:5] == ["Service date", "MRN", "Patient", "Date of birth", "CPT/HCPCS"]
        assert rows[1][2] == '\'=HYPERLINK("http://evil"), +Ana'
        assert rows[1][4] == "36415"
        assert rows[1][9] == "Samira Okafor"
        entry = AccessLog.objects.get(what="charge list CSV")
        assert (entry.action, list(entry.patients.values_list("pk", flat=True))) == ("export", [patient.pk])


# --- The handoff page's panel ------------------------------------------------------------------


class TestHandoffPanel:
    def test_the_handoff_page_lists_procedures_with_their_next_action(self, client: Client, ma: User) -> None:
        handoff, orders = ready_handoff("36415", "96372", ma=ma)
        start(orders["36415"], ma, cosign=True)
        content = _as(client, ma).get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        assert 'id="procedures-title"' in content
        assert f'href="{detail(orders["96372"])}">Start' in content
        assert f'href="{detail(orders["36415"])}">Document' in content
        assert "Needs co-sign" in content

    def test_a_waiting_handoff_offers_no_start(self, client: Client, ma: User, clinician: User) -> None:
        handoff = Handoff.objects.create(
            patient=PatientFactory(), ordering_clinician=clinician, created_by=clinician, exam_room_id=_room()
        )
        services.procedure_orders_add(
            handoff=handoff, procedure_types=[services.ProcedureType.objects.get(code="36415")], by=clinician
        )
        content = _as(client, ma).get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        assert "Procedures</h2>" in content
        assert ">Start<" not in content

    def test_turnover_is_offered_once_the_handoff_completes(self, client: Client, competent_ma: User) -> None:
        handoff, orders = ready_handoff("69209", ma=competent_ma)
        finished(documented(start(orders["69209"], competent_ma), competent_ma), competent_ma)
        station = Station.objects.get(pk=handoff.station_id)
        c = _as(client, competent_ma)
        assert (
            "needs turnover before the next patient"
            in c.get(reverse("handoff_detail", args=[handoff.uuid])).content.decode()
        )
        c.post(reverse("station_turnover", args=[station.code]))
        station.refresh_from_db()
        assert station.state == StationState.READY


def _room() -> int:
    from tests.factories import ExamRoomFactory

    return ExamRoomFactory().pk


class TestRefusalsAreLogged:
    def test_an_action_on_someone_elses_patient_is_refused_and_logged_naming_the_patient(
        self, client: Client, ma: User
    ) -> None:
        handoff, orders = ready_handoff("36415", ma=ma)
        order = orders["36415"]
        other = new_ma()
        response = _as(client, other).post(
            detail(order, "not_done"), {"notdone-reason": "patient_declined"}, follow=True
        )
        assert "only they or a supervisor can do that" in response.content.decode()
        order.refresh_from_db()
        assert order.status == ProcedureStatus.ORDERED
        entry = AccessLog.objects.get(user=other, action=AccessLog.Action.DENIED)
        assert (entry.what, entry.object_ref, entry.outcome) == ("procedure action not_done", str(order.uuid), "denied")
        assert list(entry.patients.values_list("pk", flat=True)) == [handoff.patient_id]
