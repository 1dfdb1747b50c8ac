"""Pages per role: who gets what, what each action does, and constant query counts."""

import datetime as dt

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from backoffice import services
from backoffice.audit.models import SecurityAlert
from backoffice.identifiers import as_scanned
from backoffice.models import AccessLog, Handoff, HandoffEvent, Station, User
from backoffice.workflow import HandoffStatus, Priority, StationState
from lab.models import TestDefinition
from procedures.models import ProcedureType
from procedures.services import procedure_orders_add
from tests.factories import HandoffFactory, PatientFactory, StationFactory, UserFactory
from tests.procedures.helpers import equipped, new_ma, ready_handoff, start

pytestmark = pytest.mark.django_db


def _as(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


class TestAccess:
    @pytest.mark.parametrize("name", ["queue", "board", "handoff_new", "home"])
    def test_anonymous_users_are_sent_to_login(self, client: Client, name: str) -> None:
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))

    @pytest.mark.parametrize(
        ("role", "name", "status"),
        [
            ("medical_assistant", "queue", 200),
            ("supervisor", "queue", 200),
            ("clinician", "queue", 200),
            ("lab_tech", "queue", 200),
            ("outsider", "queue", 403),
            ("medical_assistant", "board", 403),
            ("clinician", "board", 403),
            ("supervisor", "board", 200),
            ("outsider", "board", 403),
            ("medical_assistant", "handoff_new", 200),
            ("clinician", "handoff_new", 200),
            ("lab_tech", "handoff_new", 403),
            ("outsider", "handoff_new", 403),
        ],
    )
    def test_each_role_sees_only_its_pages(self, client: Client, request, role: str, name: str, status: int) -> None:  # type: ignore[no-untyped-def]
        user = request.getfixturevalue(role)
        assert _as(client, user).get(reverse(name)).status_code == status

    @pytest.mark.parametrize(
        ("role", "target"),
        [("medical_assistant", "queue"), ("supervisor", "board"), ("clinician", "handoff_new"), ("lab_tech", "queue")],
    )
    def test_home_sends_each_role_to_its_start_page(self, client: Client, request, role: str, target: str) -> None:  # type: ignore[no-untyped-def]
        response = _as(client, request.getfixturevalue(role)).get(reverse("home"))
        assert response.status_code == 302
        assert response["Location"] == reverse(target)

    def test_a_user_without_a_role_is_told_so(self, client: Client, outsider: User) -> None:
        response = _as(client, outsider).get(reverse("home"))
        assert response.status_code == 403
        assert b"no role" in response.content

    def test_detail_of_an_unknown_handoff_is_404(self, client: Client, medical_assistant: User) -> None:
        url = reverse("handoff_detail", args=["00000000-0000-0000-0000-000000000000"])
        assert _as(client, medical_assistant).get(url).status_code == 404

    def test_detail_is_hidden_from_a_user_without_a_role(
        self, client: Client, outsider: User, handoff: Handoff
    ) -> None:
        assert _as(client, outsider).get(reverse("handoff_detail", args=[handoff.uuid])).status_code == 403

    @pytest.mark.parametrize("action", ["handoff_claim", "handoff_start", "handoff_complete", "handoff_release"])
    def test_actions_refuse_get(self, client: Client, medical_assistant: User, handoff: Handoff, action: str) -> None:
        assert _as(client, medical_assistant).get(reverse(action, args=[handoff.uuid])).status_code == 405

    def test_healthz_answers_without_login(self, client: Client) -> None:
        response = client.get(reverse("healthz"))
        assert response.status_code == 200
        assert response.content == b"ok"


class TestQueue:
    def test_it_lists_stat_first_then_longest_waiting(self, client: Client, medical_assistant: User) -> None:
        older = HandoffFactory(priority=Priority.ROUTINE)
        newer = HandoffFactory(priority=Priority.ROUTINE)
        stat = HandoffFactory(priority=Priority.STAT)
        Handoff.objects.filter(pk=older.pk).update(created_at=older.created_at - dt.timedelta(minutes=30))
        response = _as(client, medical_assistant).get(reverse("queue"))
        assert [h.pk for h in response.context["rows"]] == [stat.pk, older.pk, newer.pk]

    def test_it_shows_allergies_and_needs(self, client: Client, medical_assistant: User, handoff: Handoff) -> None:
        Handoff.objects.filter(pk=handoff.pk).update(isolation=Handoff.Isolation.DROPLET, aide_needed=True)
        content = _as(client, medical_assistant).get(reverse("queue")).content.decode()
        assert "Penicillin — hives; Latex" in content
        assert "Droplet precautions" in content
        assert "Needs aide" in content

    def test_it_filters_by_mine(self, client: Client, medical_assistant: User, other_ma: User) -> None:
        mine, theirs, waiting = HandoffFactory(), HandoffFactory(), HandoffFactory()
        services.handoff_claim(handoff=mine, by=medical_assistant)
        services.handoff_claim(handoff=theirs, by=other_ma)
        response = _as(client, medical_assistant).get(reverse("queue"), {"mine": "true"})
        assert [h.pk for h in response.context["rows"]] == [mine.pk]
        assert waiting.pk not in [h.pk for h in response.context["rows"]]

    def test_a_lab_tech_filters_by_lab_work_instead_of_mine(
        self, client: Client, lab_tech: User, medical_assistant: User
    ) -> None:
        # Issue 14, point 17: lab technicians claim nobody, so "Only mine" emptied their queue.
        test, other = TestDefinition.objects.all()[:2]
        to_draw, resulted, cancelled, _no_tests = HandoffFactory.create_batch(4)
        to_draw.test_orders.create(test=test, created_by=to_draw.ordering_clinician)
        resulted.test_orders.create(test=test, created_by=resulted.ordering_clinician, status="resulted")
        cancelled.test_orders.create(
            test=test,
            created_by=cancelled.ordering_clinician,
            status="cancelled",
            cancel_reason="Ordered twice",
            cancelled_by=cancelled.ordering_clinician,
        )
        cancelled.test_orders.create(test=other, created_by=cancelled.ordering_clinician, status="collected")
        c = _as(client, lab_tech)
        response = c.get(reverse("queue"), {"lab": "true"})
        assert [h.pk for h in response.context["rows"]] == [to_draw.pk, cancelled.pk]
        content = response.content.decode()
        assert "Lab work only" in content and "Only mine" not in content
        assert len(c.get(reverse("queue"), {"mine": "true"}).context["rows"]) == 4  # not a filter for them
        content = _as(client, medical_assistant).get(reverse("queue")).content.decode()
        assert "Only mine" in content and "Lab work only" not in content

    def test_it_filters_by_priority_and_status(self, client: Client, medical_assistant: User) -> None:
        stat = HandoffFactory(priority=Priority.STAT)
        HandoffFactory(priority=Priority.ROUTINE)
        claimed = HandoffFactory(priority=Priority.ROUTINE)
        services.handoff_claim(handoff=claimed, by=medical_assistant)
        c = _as(client, medical_assistant)
        assert [h.pk for h in c.get(reverse("queue"), {"priority": "1"}).context["rows"]] == [stat.pk]
        assert [h.pk for h in c.get(reverse("queue"), {"status": "claimed"}).context["rows"]] == [claimed.pk]

    def test_htmx_refresh_returns_only_the_table(
        self, client: Client, medical_assistant: User, handoff: Handoff
    ) -> None:
        response = _as(client, medical_assistant).get(reverse("queue"), headers={"HX-Request": "true"})
        content = response.content.decode()
        assert "<table" in content
        assert "<html" not in content

    def test_closed_handoffs_are_not_listed(self, client: Client, supervisor: User, handoff: Handoff) -> None:
        services.handoff_cancel(handoff=handoff, by=supervisor, reason="Patient left")
        assert list(_as(client, supervisor).get(reverse("queue")).context["rows"]) == []

    @pytest.mark.parametrize("rows", [5, 50])
    def test_query_count_does_not_grow_with_rows(
        self,
        client: Client,
        medical_assistant: User,
        django_assert_num_queries,
        rows: int,  # type: ignore[no-untyped-def]
    ) -> None:
        procedure = ProcedureType.objects.first()
        test = TestDefinition.objects.first()
        for handoff in HandoffFactory.create_batch(rows):
            procedure_orders_add(handoff=handoff, procedure_types=[procedure], by=handoff.ordering_clinician)
            handoff.test_orders.create(test=test, created_by=handoff.ordering_clinician)
        c = _as(client, medical_assistant)
        # 1 session, 2 user, 3 permissions and roles, 4 the page's row keys (ids, patients, row
        # versions, released results) with the queue's totals, 5 access row with its patients, 6 the
        # rows not yet rendered with patient/clinician/claimer/station/room, 7 their procedures,
        # 8 their tests, 9 the tests' released results, 10 station filter choices.
        with django_assert_num_queries(10):
            response = c.get(reverse("queue"))
        assert len(response.context["rows"]) == rows
        # The 15-second refresh finds every row rendered already (6-9 not needed) and renders only
        # the table (no station choices either).
        with django_assert_num_queries(5):
            again = c.get(reverse("queue"), headers={"HX-Request": "true"})
        assert [r.pk for r in again.context["rows"]] == [r.pk for r in response.context["rows"]]

    def test_the_refresh_morphs_rows_in_place_with_vendored_idiomorph(
        self, client: Client, medical_assistant: User
    ) -> None:
        handoff = HandoffFactory()
        page = _as(client, medical_assistant).get(reverse("queue")).content.decode()
        # The refresh morphs (so a focused Claim button is the same element afterwards), each row
        # matched by its id, never a neighbour's content poured into it when the order changes.
        assert 'hx-ext="morph" hx-swap="morph:innerHTML"' in page
        assert f'<tr id="handoff-{handoff.uuid}"' in page
        # Served from our static files with its licence, after htmx (the extension registers with it).
        script = "/static/vendor/idiomorph-0.8.0/idiomorph-ext.min.js"
        assert page.index("htmx.min.js") < page.index(script)
        vendored = settings.BASE_DIR / "static" / "vendor" / "idiomorph-0.8.0"
        assert 'defineExtension("morph"' in (vendored / "idiomorph-ext.min.js").read_text()
        assert "Zero-Clause BSD" in (vendored / "LICENSE").read_text()

    def test_it_pages_a_long_queue_keeping_the_filters(
        self,
        client: Client,
        medical_assistant: User,
        settings,  # type: ignore[no-untyped-def]
    ) -> None:
        settings.QUEUE_PAGE_SIZE = 5
        HandoffFactory.create_batch(7, priority=Priority.ROUTINE)
        HandoffFactory(priority=Priority.STAT)
        c = _as(client, medical_assistant)
        first = c.get(reverse("queue"), {"priority": "2"})
        assert len(first.context["rows"]) == 5
        assert first.context["open_count"] == 7
        assert "priority=2&amp;page=2" in first.content.decode()
        second = c.get(reverse("queue"), {"priority": "2", "page": "2"})
        assert len(second.context["rows"]) == 2
        assert {h.pk for h in first.context["rows"]}.isdisjoint({h.pk for h in second.context["rows"]})
        assert c.get(reverse("queue"), {"page": "junk"}).context["page"] == 1
        past_the_end = c.get(reverse("queue"), {"priority": "2", "page": "9"})
        assert past_the_end.context["page"] == 2
        assert [r.pk for r in past_the_end.context["rows"]] == [r.pk for r in second.context["rows"]]
        assert (past_the_end.context["open_count"], past_the_end.context["waiting_count"]) == (7, 7)


class TestBoard:
    def test_columns_show_the_oldest_and_count_the_rest(
        self,
        client: Client,
        supervisor: User,
        settings,  # type: ignore[no-untyped-def]
    ) -> None:
        settings.BOARD_COLUMN_SIZE = 5
        handoffs = HandoffFactory.create_batch(8)
        response = _as(client, supervisor).get(reverse("board"))
        status, items, count = response.context["columns"][0]
        assert status == HandoffStatus.WAITING
        assert count == 8
        assert [h.pk for h in items] == [h.pk for h in handoffs[:5]]
        assert "First 5 of 8 shown (STAT, then oldest)." in response.content.decode()

    def test_columns_put_stat_first_then_oldest_and_the_cap_never_hides_a_stat(
        self,
        client: Client,
        supervisor: User,
        settings,  # type: ignore[no-untyped-def]
    ) -> None:
        settings.BOARD_COLUMN_SIZE = 3
        routine = HandoffFactory.create_batch(4)
        newest_stat, older_stat = HandoffFactory.create_batch(2, priority=Priority.STAT)
        Handoff.objects.filter(pk=older_stat.pk).update(created_at=timezone.now() - dt.timedelta(minutes=5))
        response = _as(client, supervisor).get(reverse("board"))
        _status, items, count = response.context["columns"][0]
        assert count == 6
        assert [h.pk for h in items] == [older_stat.pk, newest_stat.pk, routine[0].pk]

    def test_the_station_strip_comes_before_the_columns(
        self, client: Client, supervisor: User, station: Station
    ) -> None:
        page = _as(client, supervisor).get(reverse("board")).content.decode()
        assert 'id="stations-title"' in page
        assert page.index('id="stations-title"') < page.index('class="row g-3 board-columns"')

    @pytest.mark.parametrize("rows", [5, 50])
    def test_query_count_does_not_grow_with_rows(
        self,
        client: Client,
        supervisor: User,
        medical_assistant: User,
        django_assert_num_queries,
        rows: int,  # type: ignore[no-untyped-def]
    ) -> None:
        procedure = ProcedureType.objects.first()
        handoffs = HandoffFactory.create_batch(rows)
        for index, handoff in enumerate(handoffs):
            procedure_orders_add(handoff=handoff, procedure_types=[procedure], by=handoff.ordering_clinician)
            if index < 3:
                services.handoff_claim(handoff=handoff, by=medical_assistant)
                services.handoff_assign_station(
                    handoff=handoff, station=equipped(StationFactory()), by=medical_assistant
                )
        # Sign-in alerts, one per five rows (the panel shows ten at most), of both kinds.
        for index in range(rows // 5):
            kind = SecurityAlert.Kind.CONFIRMATION_PAUSED if index % 2 else SecurityAlert.Kind.SIGN_IN_PAUSED
            SecurityAlert.objects.create(
                kind=kind,
                account=UserFactory(),
                by=medical_assistant if index % 2 else None,
                ip_address="10.0.0.7",
                failures=5,
                pause_seconds=60,
            )
        c = _as(client, supervisor)
        # 1 session, 2 user, 3 permissions and roles, 4 the keys of each status's first handoffs (STAT,
        # then oldest) with each status's total, 5 stations, 6 station occupants, 7 access row with its patients,
        # 8 the cards not yet rendered with their joins, 9 procedures, 10 tests (no tests ordered:
        # no read of their results), 11 the last day's sign-in alerts with the accounts they name and
        # who was at the workstation (security_alerts_panel, one query however many), 12 results left
        # unacknowledged too long (none: nothing logged), 13 send-outs past their expected-by (none:
        # nothing logged).
        with django_assert_num_queries(13):
            response = c.get(reverse("board"))
        with django_assert_num_queries(10):  # every card rendered already: 8-10 are not needed, 11-13 are
            page = c.get(reverse("board")).content.decode()
        assert page.count('class="security-alert"') == rows // 5
        columns = response.context["columns"]
        assert sum(count for _, _, count in columns) == rows
        assert all(len(items) == min(count, 25) for _, items, count in columns)

    def test_it_groups_by_status_and_shows_station_states(
        self, client: Client, supervisor: User, medical_assistant: User, handoff: Handoff, station
    ) -> None:  # type: ignore[no-untyped-def]
        services.handoff_claim(handoff=handoff, by=medical_assistant)
        services.handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)
        response = _as(client, supervisor).get(reverse("board"))
        columns = {status: items for status, items, _count in response.context["columns"]}
        assert [h.pk for h in columns[HandoffStatus.CLAIMED]] == [handoff.pk]
        assert "Occupied" in response.content.decode()


class TestDetail:
    @pytest.mark.parametrize("items", [1, 10])
    def test_query_count_does_not_grow_with_items_or_events(
        self,
        client: Client,
        medical_assistant: User,
        other_ma: User,
        handoff: Handoff,
        station,
        django_assert_num_queries,
        items: int,  # type: ignore[no-untyped-def]
    ) -> None:
        procedure_types = list(ProcedureType.objects.filter(is_active=True).order_by("code")[:items])
        procedure_orders_add(handoff=handoff, procedure_types=procedure_types, by=handoff.ordering_clinician)
        for test in TestDefinition.objects.filter(is_active=True).order_by("pk")[:items]:
            handoff.test_orders.create(test=test, created_by=handoff.ordering_clinician)
        for _ in range(items):  # claimed and released by someone else, `items` times
            services.handoff_claim(handoff=handoff, by=other_ma)
            services.handoff_release(handoff=handoff, by=other_ma)
        services.handoff_claim(handoff=handoff, by=medical_assistant)
        c = _as(client, medical_assistant)
        # 1 session, 2 user, 3 permissions and roles, 4 the handoff with patient/room/station, 5 the
        # staff it names (orderer, claimer), 6 events with actors, 7 access row with its patient,
        # 8 the equipment the procedures need (hooks.equipment_needed), 9 ready stations with their
        # equipment for the station picker, 10 procedures with types, 11 lab tests with their
        # specimen types and containers (what to draw comes from the same rows), 12 the handoff's
        # specimens with their label-print counts (none yet).
        with django_assert_num_queries(12) as captured:
            response = c.get(reverse("handoff_detail", args=[handoff.uuid]))
        # The station choices are one plain query, not a server-side cursor (DECLARE, FETCH, CLOSE).
        assert not [q for q in captured.captured_queries if q["sql"].startswith("DECLARE")]
        content = response.content.decode()
        assert len(response.context["events"]) == 2 * items + 2  # claims, releases, the claim, the items ordered
        assert content.count("LOINC ") == items
        assert content.count('class="fw-semibold" href="/procedures/') == items
        assert 'id="id_station"' in content
        assert "Procedure room 1" in content

    @pytest.mark.parametrize("started", [1, 3])
    def test_query_count_does_not_grow_with_started_procedures(
        self,
        client: Client,
        django_assert_num_queries,
        started: int,  # type: ignore[no-untyped-def]
    ) -> None:
        ma = new_ma()
        codes = ["36415", "96372", "69209"][:started]
        handoff, orders = ready_handoff(*codes, ma=ma)
        for order in orders.values():
            start(order, ma, cosign=True)
        c = _as(client, ma)
        # 1 session, 2 user, 3 permissions and roles, 4 the handoff with patient/room/station, 5 the
        # staff it names (orderer, claimer, identity checker), 6 lab tests, 7 events with actors,
        # 8 access row with its patient, 9-10 the open procedures and open lab tests (whether
        # "Complete handoff" can be offered), 11 the equipment the procedures still need and 12 the
        # ready stations with their equipment, for "move to another station", 13 the procedures being
        # performed (whether she can hand the patient back: here, why not), 14 procedures with types,
        # 15 the staff the procedures name (performers).
        with django_assert_num_queries(15):
            response = c.get(reverse("handoff_detail", args=[handoff.uuid]))
        assert response.content.decode().count(">Document<") == started

    @pytest.mark.parametrize("started", [1, 3])
    def test_query_count_for_who_may_cancel_does_not_grow_with_started_procedures(
        self,
        client: Client,
        django_assert_num_queries,
        started: int,  # type: ignore[no-untyped-def]
    ) -> None:
        ma = new_ma()
        codes = ["36415", "96372", "69209"][:started]
        handoff, orders = ready_handoff(*codes, ma=ma)
        for order in orders.values():
            start(order, ma, cosign=True)
        c = _as(client, handoff.ordering_clinician)
        # 1 session, 2 user, 3 permissions and roles, 4 the handoff with patient/room/station, 5 the
        # staff it names (orderer, claimer, identity checker), 6 events with actors, 7 access row with
        # its patient, 8 procedures with types, 9 the staff the procedures name (performers), 10 lab
        # tests, 11-12 the procedures being performed and the tests on the bench, asked only of
        # someone who may cancel (hooks.handoff_cancel_blockers: would the apps let the cancel through).
        # Not asked: the open items (no "Complete handoff" for her) and the ready stations.
        with django_assert_num_queries(12):
            response = c.get(reverse("handoff_detail", args=[handoff.uuid]))
        content = response.content.decode()
        assert reverse("handoff_cancel", args=[handoff.uuid]) not in content
        assert content.count("being performed; finish") == 1


class TestActions:
    def test_claim_then_verify_then_start(
        self, client: Client, medical_assistant: User, handoff: Handoff, station
    ) -> None:  # type: ignore[no-untyped-def]
        c = _as(client, medical_assistant)
        assert c.post(reverse("handoff_claim", args=[handoff.uuid])).status_code == 302
        c.post(reverse("handoff_station", args=[handoff.uuid]), {"station": station.code})
        response = c.post(
            reverse("handoff_verify", args=[handoff.uuid]),
            {"full_name": "Rosa Martinez", "date_of_birth": handoff.patient.date_of_birth.isoformat()},
        )
        assert response.status_code == 302
        c.post(reverse("handoff_start", args=[handoff.uuid]))
        handoff.refresh_from_db()
        assert handoff.status == HandoffStatus.IN_PROGRESS
        assert handoff.station == station

    def test_a_second_claim_gets_a_clear_message(
        self, client: Client, medical_assistant: User, other_ma: User, handoff: Handoff
    ) -> None:
        claimed = services.handoff_claim(handoff=handoff, by=other_ma)
        response = _as(client, medical_assistant).post(reverse("handoff_claim", args=[handoff.uuid]), follow=True)
        # Back on the queue, among other patients: the message says which one was taken.
        assert response.redirect_chain[-1][0] == reverse("queue")
        assert claimed.claimed_at is not None
        at = f"{timezone.localtime(claimed.claimed_at):%H:%M}"
        assert f"Already claimed by Jordan Lee at {at}: Rosa Martínez" in response.content.decode()

    def test_a_refused_complete_stays_on_the_patients_page_naming_them_and_what_is_open(
        self, client: Client, medical_assistant: User, handoff: Handoff, station
    ) -> None:  # type: ignore[no-untyped-def]
        # A page loaded before the clinician added a test still shows "Complete handoff": its post is refused.
        services.handoff_claim(handoff=handoff, by=medical_assistant)
        services.handoff_assign_station(handoff=handoff, station=station, by=medical_assistant)
        services.handoff_verify_identity(handoff=handoff, by=medical_assistant, scanned_mrn=handoff.patient.mrn)
        services.handoff_start(handoff=handoff, by=medical_assistant)
        procedure_orders_add(
            handoff=handoff, procedure_types=[ProcedureType.objects.get(code="36415")], by=handoff.ordering_clinician
        )

        response = _as(client, medical_assistant).post(reverse("handoff_complete", args=[handoff.uuid]), follow=True)

        assert response.redirect_chain[-1][0] == reverse("handoff_detail", args=[handoff.uuid])
        messages = [str(m) for m in response.context["messages"]]
        assert messages == [
            "Rosa Martínez still has 1 open item: Venipuncture (ordered). Finish or close it, then complete the handoff."
        ]
        handoff.refresh_from_db()
        assert handoff.status == HandoffStatus.IN_PROGRESS

    def test_a_refusal_that_does_not_say_whose_names_the_patient(
        self, client: Client, medical_assistant: User, other_ma: User, handoff: Handoff
    ) -> None:
        services.handoff_claim(handoff=handoff, by=medical_assistant)
        services.handoff_release(handoff=handoff, by=medical_assistant)  # another tab released it meanwhile

        response = _as(client, medical_assistant).post(reverse("handoff_release", args=[handoff.uuid]), follow=True)

        # Not the queue, where the message wouldn't say which of fifteen patients it was about.
        assert response.redirect_chain[-1][0] == reverse("handoff_detail", args=[handoff.uuid])
        assert [str(m) for m in response.context["messages"]] == ["Rosa Martínez: Claim the patient first."]

    def test_identity_mismatch_shows_the_form_again_and_is_recorded(
        self, client: Client, medical_assistant: User, handoff: Handoff
    ) -> None:
        services.handoff_claim(handoff=handoff, by=medical_assistant)
        response = _as(client, medical_assistant).post(
            reverse("handoff_verify", args=[handoff.uuid]), {"scanned_mrn": as_scanned("M999999")}
        )
        assert response.status_code == 422
        assert "does not match" in response.content.decode()
        assert handoff.events.filter(action=HandoffEvent.Action.IDENTITY_MISMATCH).count() == 1
        handoff.refresh_from_db()
        assert handoff.status == HandoffStatus.CLAIMED

    def test_verify_needs_two_identifiers(self, client: Client, medical_assistant: User, handoff: Handoff) -> None:
        services.handoff_claim(handoff=handoff, by=medical_assistant)
        response = _as(client, medical_assistant).post(
            reverse("handoff_verify", args=[handoff.uuid]), {"full_name": "Rosa Martinez"}
        )
        assert response.status_code == 422
        assert "both the full name and the date of birth" in response.content.decode()
        assert not handoff.events.filter(action=HandoffEvent.Action.IDENTITY_MISMATCH).exists()

    def test_another_ma_cannot_verify_someone_elses_patient(
        self, client: Client, medical_assistant: User, other_ma: User, handoff: Handoff
    ) -> None:
        services.handoff_claim(handoff=handoff, by=other_ma)
        response = _as(client, medical_assistant).post(
            reverse("handoff_verify", args=[handoff.uuid]), {"scanned_mrn": as_scanned(handoff.patient.mrn)}
        )
        assert response.status_code == 422
        handoff.refresh_from_db()
        assert handoff.status == HandoffStatus.CLAIMED

    def test_cancel_needs_a_reason(self, client: Client, supervisor: User, handoff: Handoff) -> None:
        response = _as(client, supervisor).post(reverse("handoff_cancel", args=[handoff.uuid]), {"reason": ""})
        assert response.status_code == 422
        handoff.refresh_from_db()
        assert handoff.status == HandoffStatus.WAITING

    def test_an_ma_cannot_cancel(self, client: Client, medical_assistant: User, handoff: Handoff) -> None:
        response = _as(client, medical_assistant).post(reverse("handoff_cancel", args=[handoff.uuid]), {"reason": "x"})
        assert response.status_code == 403

    def test_station_turnover_makes_it_ready(self, client: Client, supervisor: User, handoff: Handoff, station) -> None:  # type: ignore[no-untyped-def]
        services.handoff_claim(handoff=handoff, by=supervisor)
        services.handoff_assign_station(handoff=handoff, station=station, by=supervisor)
        services.handoff_cancel(handoff=handoff, by=supervisor, reason="Patient left")
        station.refresh_from_db()
        assert station.state == StationState.NEEDS_TURNOVER
        _as(client, supervisor).post(reverse("station_turnover", args=[station.code]))
        station.refresh_from_db()
        assert station.state == StationState.READY


class TestNewHandoff:
    def _payload(self, patient, clinician: User, exam_room, **extra):  # type: ignore[no-untyped-def]
        return {
            "patient": str(patient.uuid),
            "ordering_clinician": clinician.pk,
            "exam_room": exam_room.pk,
            "priority": Priority.STAT,
            "procedures": [ProcedureType.objects.get(code="36415").pk],
            "tests": [TestDefinition.objects.get(loinc_code="24323-8").pk],
            "mobility": Handoff.Mobility.WHEELCHAIR,
            "isolation": Handoff.Isolation.NONE,
            **extra,
        }

    def test_an_ma_hands_off_on_a_clinicians_behalf(
        self, client: Client, medical_assistant: User, clinician: User, patient, exam_room
    ) -> None:  # type: ignore[no-untyped-def]
        response = _as(client, medical_assistant).post(
            reverse("handoff_new"), self._payload(patient, clinician, exam_room)
        )
        assert response.status_code == 302
        handoff = Handoff.objects.get(patient=patient)
        assert handoff.ordering_clinician == clinician
        assert handoff.procedure_orders.count() == 1
        assert handoff.test_orders.count() == 1
        created, *ordered = handoff.events.order_by("id")
        assert (created.action, created.note) == ("created", f"On behalf of {clinician}")
        # Each app's items are ordered under the handoff's lock, each with its event.
        assert [e.action for e in ordered] == ["items_ordered", "items_ordered"]

    def test_nothing_is_written_without_an_item(self, client: Client, clinician: User, patient, exam_room) -> None:  # type: ignore[no-untyped-def]
        payload = self._payload(patient, clinician, exam_room, procedures=[], tests=[])
        response = _as(client, clinician).post(reverse("handoff_new"), payload)
        assert response.status_code == 422
        assert "Order at least one procedure or lab test." in response.content.decode()
        assert not Handoff.objects.exists()

    def test_a_tampered_patient_id_is_refused(self, client: Client, clinician: User, patient, exam_room) -> None:  # type: ignore[no-untyped-def]
        payload = {**self._payload(patient, clinician, exam_room), "patient": "not-a-uuid"}
        response = _as(client, clinician).post(reverse("handoff_new"), payload)
        assert response.status_code == 422
        assert not Handoff.objects.exists()

    def test_a_non_clinician_cannot_be_the_orderer(
        self, client: Client, clinician: User, medical_assistant: User, patient, exam_room
    ) -> None:  # type: ignore[no-untyped-def]
        payload = self._payload(patient, medical_assistant, exam_room)
        response = _as(client, clinician).post(reverse("handoff_new"), payload)
        assert response.status_code == 422
        assert not Handoff.objects.exists()

    def test_picking_a_patient_fills_in_their_interpreter_and_todays_precautions(
        self, client: Client, clinician: User, patient, exam_room, django_assert_num_queries
    ) -> None:  # type: ignore[no-untyped-def]
        patient.preferred_language = "Spanish"
        patient.interpreter_needed = True
        patient.save()
        # Last week's droplet precautions are not today's; this morning's completed handoff's are.
        old = HandoffFactory(patient=patient, isolation=Handoff.Isolation.DROPLET, ordering_clinician=clinician)
        services.handoff_cancel(handoff=old, by=clinician, reason="Seen")
        Handoff.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=7))
        c = _as(client, clinician)
        page = c.post(reverse("handoff_needs"), {"patient": str(patient.uuid)}).content.decode()
        assert (
            'name="interpreter_needed" class="checkboxinput form-check-input" id="id_interpreter_needed" checked'
            in page
        )
        assert 'value="Spanish"' in page
        assert '<option value="none" selected>' in page
        assert "second-handoff" not in page
        services.handoff_cancel(
            handoff=HandoffFactory(patient=patient, isolation=Handoff.Isolation.CONTACT, ordering_clinician=clinician),
            by=clinician,
            reason="Seen",
        )
        # 1 session, 2 user, 3 permissions and roles, 4 the clinician's role (the form's orderer), 5 the
        # patient picked, 6 their open and today's handoffs with clinicians, 7 access row, 8 its patient.
        with django_assert_num_queries(8):
            page = c.post(reverse("handoff_needs"), {"patient": str(patient.uuid)}).content.decode()
        assert '<option value="contact" selected>' in page
        assert "contact precautions (their handoff of" in page
        logged = AccessLog.objects.filter(what="new handoff needs")
        assert logged.count() == 2
        assert list(logged.latest("id").patients.values_list("pk", flat=True)) == [patient.pk]

    def test_a_patient_on_the_queue_needs_a_confirmed_second_handoff(
        self, client: Client, clinician: User, patient, exam_room
    ) -> None:  # type: ignore[no-untyped-def]
        c = _as(client, clinician)
        assert (
            c.post(
                reverse("handoff_new"), self._payload(patient, clinician, exam_room, isolation="droplet")
            ).status_code
            == 302
        )
        first = Handoff.objects.get(patient=patient)
        # Picking them again shows the open handoff, its precautions carried, and the confirmation.
        needs = c.post(reverse("handoff_needs"), {"patient": str(patient.uuid)}).content.decode()
        assert "Rosa Martínez is already on the back-office queue" in needs
        assert 'name="again"' in needs and '<option value="droplet" selected>' in needs
        refused = c.post(reverse("handoff_new"), self._payload(patient, clinician, exam_room))
        assert refused.status_code == 422
        page = refused.content.decode()
        assert "Rosa Martínez is already on the back-office queue: handed off at" in page
        assert 'name="again" id="id_again"' in page and reverse("handoff_detail", args=[first.uuid]) in page
        assert Handoff.objects.filter(patient=patient).count() == 1
        sent = c.post(reverse("handoff_new"), self._payload(patient, clinician, exam_room, again="on"))
        assert sent.status_code == 302
        second = Handoff.objects.exclude(pk=first.pk).get(patient=patient)
        assert second.isolation == Handoff.Isolation.DROPLET

    def test_patient_search_finds_by_mrn_and_name(self, client: Client, clinician: User, patient) -> None:  # type: ignore[no-untyped-def]
        PatientFactory(family_name="Other", given_name="Person")
        c = _as(client, clinician)
        by_mrn = c.post(reverse("patient_search"), {"q": "m100001"}).content.decode()
        assert "MARTÍNEZ, Rosa" in by_mrn
        assert "checked" in by_mrn  # a scanned MRN selects the one patient
        by_name = c.post(reverse("patient_search"), {"q": "rosa mart"}).content.decode()
        assert "MARTÍNEZ, Rosa" in by_name
        assert "OTHER" not in by_name

    def test_patient_search_refuses_get(self, client: Client, clinician: User) -> None:
        assert _as(client, clinician).get(reverse("patient_search")).status_code == 405
