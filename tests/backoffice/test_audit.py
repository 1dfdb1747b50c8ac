"""The access log (who saw which patients), append-only rows, field-level history, and the auditor's pages."""

import csv
import datetime as dt
import io
import uuid

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Model
from django.db.utils import DatabaseError
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from pghistory.models import Events, MiddlewareEvents
from pytest_django import DjangoAssertNumQueries, Settings

from backoffice import roles, services
from backoffice.audit.log import client_ip, csv_safe, log_access
from backoffice.identifiers import as_scanned
from backoffice.models import (
    AccessAction,
    AccessLog,
    AccessLogPatient,
    AccessOutcome,
    Handoff,
    HandoffEvent,
    Patient,
    Station,
    StationEvent,
    User,
)
from backoffice.workflow import HandoffStatus
from tests.factories import HandoffFactory, PatientFactory, StationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def records_admin(db: None) -> User:
    """Who sees patients' records in Django admin: a superuser (the Admin role sees none, backoffice.roles)."""
    return User.objects.create_superuser("records-admin", "records@clinic.test", "correct-horse-battery-staple")


def _as(client: Client, user: User) -> Client:
    client.force_login(user)
    return client


def only_row(**filters: object) -> AccessLog:
    return AccessLog.objects.filter(**filters).get()


def patients_of(entry: AccessLog) -> set[int]:
    return set(entry.patients.values_list("pk", flat=True))


# --- What the pages log ---------------------------------------------------------------------------


class TestPagesLogWhatTheyShow:
    def test_the_queue_logs_every_patient_it_lists(self, client: Client, medical_assistant: User) -> None:
        handoffs = HandoffFactory.create_batch(3)

        response = _as(client, medical_assistant).get(reverse("queue"), REMOTE_ADDR="10.1.2.3")

        assert response.status_code == 200
        entry = only_row(what="queue")
        assert (entry.action, entry.outcome) == (AccessAction.LIST, AccessOutcome.OK)
        assert (entry.user, entry.username, entry.ip) == (medical_assistant, "ma", "10.1.2.3")
        assert patients_of(entry) == {h.patient_id for h in handoffs}
        assert abs(entry.at - timezone.now()) < dt.timedelta(seconds=10)
        assert entry.at.utcoffset() == dt.timedelta(0)

    def test_each_htmx_refresh_of_the_queue_is_logged(self, client: Client, medical_assistant: User) -> None:
        handoff = HandoffFactory()
        c = _as(client, medical_assistant)

        c.get(reverse("queue"))
        c.get(reverse("queue"), headers={"HX-Request": "true"})

        entries = AccessLog.objects.filter(what="queue")
        assert entries.count() == 2
        assert all(patients_of(e) == {handoff.patient_id} for e in entries)

    def test_an_empty_queue_is_logged_with_no_patients(self, client: Client, medical_assistant: User) -> None:
        _as(client, medical_assistant).get(reverse("queue"))

        assert patients_of(only_row(what="queue")) == set()

    def test_the_board_logs_its_patients(self, client: Client, supervisor: User) -> None:
        handoffs = HandoffFactory.create_batch(2)

        _as(client, supervisor).get(reverse("board"))

        entry = only_row(what="board")
        assert entry.action == AccessAction.LIST
        assert patients_of(entry) == {h.patient_id for h in handoffs}

    def test_the_detail_page_logs_a_view_of_its_patient(
        self, client: Client, medical_assistant: User, handoff: Handoff
    ) -> None:
        _as(client, medical_assistant).get(reverse("handoff_detail", args=[handoff.uuid]))

        entry = only_row(what="handoff detail")
        assert (entry.action, entry.object_ref, entry.outcome) == (AccessAction.VIEW, str(handoff.uuid), "ok")
        assert patients_of(entry) == {handoff.patient_id}

    def test_a_refused_form_shows_the_patient_again_and_logs_it(
        self, client: Client, medical_assistant: User, handoff: Handoff
    ) -> None:
        services.handoff_claim(handoff=handoff, by=medical_assistant)

        response = _as(client, medical_assistant).post(
            reverse("handoff_verify", args=[handoff.uuid]), {"scanned_mrn": as_scanned("M999999")}
        )

        assert response.status_code == 422
        assert patients_of(only_row(what="handoff detail")) == {handoff.patient_id}

    def test_patient_search_logs_the_patients_found_and_never_the_query(
        self, client: Client, clinician: User, patient: Patient
    ) -> None:
        PatientFactory(family_name="Other", given_name="Person")

        _as(client, clinician).post(reverse("patient_search"), {"q": "rosa mart"})

        entry = only_row(what="patient search")
        assert entry.action == AccessAction.SEARCH
        assert patients_of(entry) == {patient.pk}
        stored = " ".join(str(v) for v in AccessLog.objects.values_list("what", "object_ref", "username").get())
        assert "rosa" not in stored.lower()

    def test_a_search_that_finds_nobody_is_still_logged(self, client: Client, clinician: User) -> None:
        _as(client, clinician).post(reverse("patient_search"), {"q": "nobody-like-this"})

        assert patients_of(only_row(what="patient search")) == set()

    def test_a_new_handoff_logs_its_patient(self, client: Client, clinician: User, patient: Patient, exam_room) -> None:  # type: ignore[no-untyped-def]
        from lab.models import TestDefinition

        payload = {
            "patient": str(patient.uuid),
            "ordering_clinician": clinician.pk,
            "exam_room": exam_room.pk,
            "priority": 2,
            "tests": [TestDefinition.objects.get(loinc_code="24323-8").pk],
            "mobility": Handoff.Mobility.INDEPENDENT,
            "isolation": Handoff.Isolation.NONE,
        }

        response = _as(client, clinician).post(reverse("handoff_new"), payload)

        assert response.status_code == 302
        entry = only_row(what="new handoff")
        assert entry.object_ref == str(Handoff.objects.get(patient=patient).uuid)
        assert patients_of(entry) == {patient.pk}

    def test_health_checks_and_the_login_page_log_nothing(self, client: Client) -> None:
        client.get(reverse("healthz"))
        client.get(reverse("login"))

        assert not AccessLog.objects.exists()


class TestAdminPagesLogToo:
    def test_a_patients_change_page_logs_a_view(self, client: Client, records_admin: User, patient: Patient) -> None:
        url = reverse("admin:backoffice_patient_change", args=[patient.pk])

        assert _as(client, records_admin).get(url).status_code == 200

        entry = only_row(what="admin patient")
        assert (entry.action, entry.object_ref) == (AccessAction.VIEW, str(patient.uuid))
        assert patients_of(entry) == {patient.pk}

    def test_a_handoffs_change_page_logs_a_view_of_its_patient(
        self, client: Client, records_admin: User, handoff: Handoff
    ) -> None:
        _as(client, records_admin).get(reverse("admin:backoffice_handoff_change", args=[handoff.pk]))

        entry = only_row(what="admin handoff")
        assert entry.object_ref == str(handoff.uuid)
        assert patients_of(entry) == {handoff.patient_id}

    def test_the_patient_list_logs_the_patients_on_the_page(self, client: Client, records_admin: User) -> None:
        patients = PatientFactory.create_batch(3)

        _as(client, records_admin).get(reverse("admin:backoffice_patient_changelist"))

        assert patients_of(only_row(what="admin patient list")) == {p.pk for p in patients}

    def test_a_patients_history_page_logs_the_patient(
        self, client: Client, records_admin: User, patient: Patient
    ) -> None:
        url = reverse("admin:backoffice_patienthistory_changelist")

        response = _as(client, records_admin).get(url, {"obj": f"backoffice.Patient:{patient.pk}"})

        assert response.status_code == 200
        assert patients_of(only_row(what="admin patient history list")) == {patient.pk}


class TestClientIp:
    def test_it_is_remote_addr_by_default(self, rf: RequestFactory) -> None:
        request = rf.get("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="198.51.100.1")
        assert client_ip(request) == "192.0.2.10"

    def test_it_is_the_trusted_proxys_header_when_set(self, rf: RequestFactory, settings: Settings) -> None:
        settings.TRUSTED_PROXY_IP_HEADER = "HTTP_X_FORWARDED_FOR"
        # The client may send its own X-Forwarded-For; the proxy appends the address it saw last.
        request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")
        assert client_ip(request) == "198.51.100.7"

    def test_garbage_is_recorded_as_unknown(self, rf: RequestFactory, settings: Settings) -> None:
        settings.TRUSTED_PROXY_IP_HEADER = "HTTP_X_REAL_IP"
        assert client_ip(rf.get("/", HTTP_X_REAL_IP="<script>")) is None


# --- IDOR attempts: refused, nothing changed, logged ------------------------------------------------


class TestRefusedAttemptsAreLogged:
    def test_an_unknown_handoff_id_is_404_and_logged_as_not_found(
        self, client: Client, medical_assistant: User
    ) -> None:
        ref = str(uuid.uuid4())

        response = _as(client, medical_assistant).get(reverse("handoff_detail", args=[ref]))

        assert response.status_code == 404
        entry = only_row()
        assert (entry.action, entry.outcome, entry.object_ref) == (AccessAction.DENIED, "not_found", ref)
        assert entry.what == "handoff detail"
        assert patients_of(entry) == set()

    def test_claiming_an_unknown_handoff_changes_nothing_and_is_logged(
        self, client: Client, medical_assistant: User, handoff: Handoff
    ) -> None:
        ref = str(uuid.uuid4())

        response = _as(client, medical_assistant).post(reverse("handoff_claim", args=[ref]))

        assert response.status_code == 404
        handoff.refresh_from_db()
        assert handoff.status == HandoffStatus.WAITING
        assert not HandoffEvent.objects.exclude(action=HandoffEvent.Action.CREATED).exists()
        assert only_row().outcome == AccessOutcome.NOT_FOUND

    def test_a_role_without_access_is_403_and_the_patient_it_tried_is_recorded(
        self, client: Client, outsider: User, handoff: Handoff
    ) -> None:
        response = _as(client, outsider).get(reverse("handoff_detail", args=[handoff.uuid]))

        assert response.status_code == 403
        entry = only_row()
        assert (entry.action, entry.outcome, entry.object_ref) == ("denied", "denied", str(handoff.uuid))
        assert patients_of(entry) == {handoff.patient_id}

    def test_a_lab_tech_cannot_claim_and_the_attempt_is_logged(
        self, client: Client, lab_tech: User, handoff: Handoff
    ) -> None:
        events_before = HandoffEvent.objects.count()

        response = _as(client, lab_tech).post(reverse("handoff_claim", args=[handoff.uuid]))

        assert response.status_code == 403
        handoff.refresh_from_db()
        assert (handoff.status, handoff.claimed_by_id) == (HandoffStatus.WAITING, None)
        assert HandoffEvent.objects.count() == events_before
        entry = only_row()
        assert (entry.what, entry.outcome, entry.user) == ("handoff claim", "denied", lab_tech)

    def test_a_page_a_role_may_not_open_is_logged_as_denied(self, client: Client, medical_assistant: User) -> None:
        assert _as(client, medical_assistant).get(reverse("board")).status_code == 403

        entry = only_row()
        assert (entry.what, entry.outcome, entry.object_ref) == ("board", "denied", "")


# --- Append-only at the database ------------------------------------------------------------------


def _one_of_each() -> dict[str, Model]:
    """A row in every append-only table, written the way the app writes them."""
    patient = PatientFactory()
    handoff = HandoffFactory(patient=patient)
    by = handoff.ordering_clinician
    StationFactory(code="proc-9", name="Procedure room 9")
    ma = User.objects.create_user("ma-9", password="x-correct-horse-9")
    ma.groups.add(Group.objects.get(name=roles.ROLE_SUPERVISOR))
    services.handoff_claim(handoff=handoff, by=ma)
    services.handoff_assign_station(handoff=handoff, station=Station.objects.get(code="proc-9"), by=ma)
    request = RequestFactory().get("/")
    request.user = by
    listed = log_access(request=request, action=AccessAction.LIST, what="test list", patients=[patient])
    # No patient rows hang off this one, so deleting it reaches the database instead of Django's PROTECT.
    entry = log_access(request=request, action=AccessAction.VIEW, what="test", patients=[])
    history = apps.get_model("backoffice", "PatientHistory")
    return {
        "AccessLog": entry,
        "AccessLogPatient": AccessLogPatient.objects.get(log=listed),
        "HandoffEvent": HandoffEvent.objects.filter(handoff=handoff).first(),
        "StationEvent": StationEvent.objects.first(),
        "PatientHistory": history.objects.filter(pgh_obj=patient).first(),
        "HandoffHistory": apps.get_model("backoffice", "HandoffHistory").objects.first(),
    }


# pgtrigger's Protect trigger raises this (SQLSTATE P0001, which psycopg reports as a ProgrammingError).
REFUSED = "Cannot update or delete rows"
APPEND_ONLY_MODELS = [
    "AccessLog",
    "AccessLogPatient",
    "HandoffEvent",
    "StationEvent",
    "PatientHistory",
    "HandoffHistory",
]


class TestAppendOnly:
    @pytest.mark.parametrize("name", APPEND_ONLY_MODELS)
    def test_an_orm_update_is_refused_by_the_database(self, name: str) -> None:
        row = _one_of_each()[name]
        model = type(row)
        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
            model._default_manager.filter(pk=row.pk).update(**{model._meta.pk.name: row.pk})

    @pytest.mark.parametrize("name", APPEND_ONLY_MODELS)
    def test_an_orm_delete_is_refused_by_the_database(self, name: str) -> None:
        row = _one_of_each()[name]
        model = type(row)
        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
            model._default_manager.filter(pk=row.pk).delete()
        assert model._default_manager.filter(pk=row.pk).exists()

    @pytest.mark.parametrize("name", APPEND_ONLY_MODELS)
    def test_raw_sql_update_is_refused_too(self, name: str) -> None:
        row = _one_of_each()[name]
        table = type(row)._meta.db_table
        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f'UPDATE "{table}" SET {type(row)._meta.pk.column} = {type(row)._meta.pk.column}')  # noqa: S608

    def test_saving_an_access_row_again_is_refused(self) -> None:
        entry = _one_of_each()["AccessLog"]
        assert isinstance(entry, AccessLog)
        entry.what = "tampered"
        with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
            entry.save()
        entry.refresh_from_db()
        assert entry.what == "test"

    def test_admin_cannot_delete_a_station_or_patient_with_a_record(self, client: Client, records_admin: User) -> None:
        rows = _one_of_each()
        station = Station.objects.get(code="proc-9")
        patient = Patient.objects.get(pk=rows["AccessLogPatient"].patient_id)  # type: ignore[attr-defined]
        c = _as(client, records_admin)

        for url in (
            reverse("admin:backoffice_station_delete", args=[station.pk]),
            reverse("admin:backoffice_patient_delete", args=[patient.pk]),
        ):
            page = c.get(url)
            assert "<title>Cannot delete" in page.content.decode()
            c.post(url, {"post": "yes"})

        assert Station.objects.filter(pk=station.pk).exists()
        assert Patient.objects.filter(pk=patient.pk).exists()

    def test_inserting_is_still_allowed(self) -> None:
        rows = _one_of_each()
        assert all(row is not None for row in rows.values())


# --- Field-level history ----------------------------------------------------------------------------


class TestHistory:
    def test_changing_allergies_records_the_old_and_the_new_value(self, patient: Patient) -> None:
        before = patient.allergies
        patient.allergies = before + "\nSulfa drugs — rash"
        patient.save(update_fields=["allergies"])

        change = Events.objects.tracks(patient).get(pgh_label="update")
        assert change.pgh_diff == {"allergies": [before, patient.allergies]}

    def test_a_save_that_changes_nothing_records_nothing(self, patient: Patient) -> None:
        patient.save()

        assert not Events.objects.tracks(patient).filter(pgh_label="update").exists()

    def test_a_change_made_in_admin_names_the_user_and_the_page(
        self, client: Client, records_admin: User, patient: Patient
    ) -> None:
        url = reverse("admin:backoffice_patient_change", args=[patient.pk])
        form = {
            "mrn": patient.mrn,
            "family_name": patient.family_name,
            "given_name": patient.given_name,
            "date_of_birth": patient.date_of_birth.isoformat(),
            "sex": patient.sex,
            "preferred_language": "Spanish",
            "phone": "",
            "email": "",
            "address": "",
            "emergency_contact": "",
        }

        response = _as(client, records_admin).post(url, form)

        assert response.status_code == 302
        change = MiddlewareEvents.objects.tracks(patient).get(pgh_label="update")
        assert change.pgh_diff == {"preferred_language": ["English", "Spanish"]}
        assert change.user == records_admin
        assert change.url == url

    def test_workflow_moves_are_in_the_handoffs_history(self, medical_assistant: User, handoff: Handoff) -> None:
        services.handoff_claim(handoff=handoff, by=medical_assistant)

        change = Events.objects.tracks(handoff).get(pgh_label="update")
        assert change.pgh_diff["status"] == [HandoffStatus.WAITING, HandoffStatus.CLAIMED]

    def test_admin_shows_who_changed_a_patient(self, client: Client, records_admin: User, patient: Patient) -> None:
        patient.allergies = "Latex"
        patient.save(update_fields=["allergies"])
        c = _as(client, records_admin)

        change_page = c.get(reverse("admin:backoffice_patient_change", args=[patient.pk])).content.decode()
        events_url = reverse("admin:pghistory_middlewareevents_changelist")
        assert events_url in change_page
        history = c.get(events_url, {"method": "tracks", "obj": f"backoffice.Patient:{patient.pk}"})

        assert history.status_code == 200
        content = history.content.decode()
        assert "Penicillin" in content and "Latex" in content
        assert patients_of(only_row(what="admin history list")) == {patient.pk}


# --- Roles -------------------------------------------------------------------------------------------


class TestRoles:
    def test_the_auditor_role_reads_the_access_log_and_nothing_else(self) -> None:
        perms = {
            f"{app}.{code}"
            for app, code in Group.objects.get(name=roles.ROLE_AUDITOR).permissions.values_list(
                "content_type__app_label", "codename"
            )
        }
        # The access log, who changed accounts, and every break-glass: read-only, in the app.
        assert perms == {"backoffice.view_accesslog", "backoffice.view_accountchange", "backoffice.view_breakglass"}

    def test_supervisors_read_the_access_log_and_admins_do_not(self) -> None:
        def codenames(role: str) -> set[str]:
            return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

        assert "view_accesslog" in codenames(roles.ROLE_SUPERVISOR)
        assert not {c for c in codenames(roles.ROLE_ADMIN) if "accesslog" in c}
        # Nor pghistory's events across models: they carry patients' changes (backoffice.roles).
        assert "view_middlewareevents" not in codenames(roles.ROLE_ADMIN)

    def test_home_sends_an_auditor_to_the_access_log(self, client: Client, auditor: User) -> None:
        response = _as(client, auditor).get(reverse("home"))
        assert response.status_code == 302
        assert response["Location"] == reverse("audit")


# --- The auditor's pages -----------------------------------------------------------------------------


def _seen(
    *, by: User, patients: list[Patient], what: str = "handoff detail", at: dt.datetime | None = None
) -> AccessLog:
    """An access row as a page would write it; with `at`, inserted already in the past (rows can't be updated)."""
    if at is None:
        request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.5")
        request.user = by
        return log_access(request=request, action=AccessAction.VIEW, what=what, patients=patients)
    entry = AccessLog.objects.create(
        at=at, user=by, username=by.username, action=AccessAction.VIEW, what=what, ip="10.0.0.5"
    )
    AccessLogPatient.objects.bulk_create([AccessLogPatient(log=entry, patient=p, at=at) for p in patients])
    return entry


def search(client: Client, **data: object) -> object:
    return client.post(reverse("audit"), data)


class TestAuditPages:
    @pytest.mark.parametrize(
        ("role", "status"),
        [
            ("auditor", 200),
            ("supervisor", 200),
            ("medical_assistant", 403),
            ("clinician", 403),
            ("lab_tech", 403),
            ("outsider", 403),
            ("admin_user", 403),
        ],
    )
    def test_only_auditors_and_supervisors_open_it(
        self, client: Client, request: pytest.FixtureRequest, role: str, status: int
    ) -> None:
        c = _as(client, request.getfixturevalue(role))
        assert c.get(reverse("audit")).status_code == status
        assert c.post(reverse("audit"), {}).status_code == status
        assert c.post(reverse("audit_export"), {}).status_code == status

    def test_opening_the_page_shows_the_form_and_logs_nothing(self, client: Client, auditor: User) -> None:
        response = _as(client, auditor).get(reverse("audit"))

        assert 'name="patient"' in response.content.decode()
        assert response.context["rows"] == []
        assert not AccessLog.objects.exists()

    def test_search_by_patient_finds_who_saw_them_and_is_logged(
        self, client: Client, auditor: User, medical_assistant: User, lab_tech: User, patient: Patient
    ) -> None:
        other = PatientFactory()
        _seen(by=medical_assistant, patients=[patient, other], what="queue")
        _seen(by=lab_tech, patients=[other])
        _seen(by=medical_assistant, patients=[patient])

        response = _as(client, auditor).post(reverse("audit"), {"patient": patient.mrn.lower()})

        assert response.status_code == 200
        rows = response.context["rows"]
        assert [(r.username, r.what) for r in rows] == [("ma", "handoff detail"), ("ma", "queue")]
        assert rows[1].shown_patients[0] == patient  # the searched patient first
        assert "M100001" in response.content.decode()
        mine = AccessLog.objects.get(user=auditor)
        assert (mine.action, mine.what) == (AccessAction.LIST, "access log")
        assert patients_of(mine) == {patient.pk, other.pk}
        assert mine.object_ref == ""

    def test_search_for_an_unknown_mrn_finds_nothing(self, client: Client, auditor: User, patient: Patient) -> None:
        response = _as(client, auditor).post(reverse("audit"), {"patient": "M000000"})

        assert response.context["rows"] == []
        assert "No access rows match" in response.content.decode()

    def test_search_by_user_action_and_dates(
        self, client: Client, auditor: User, medical_assistant: User, other_ma: User, patient: Patient
    ) -> None:
        today = timezone.localdate()
        long_ago = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=40), dt.time(10)))
        _seen(by=medical_assistant, patients=[patient], at=long_ago)
        recent = _seen(by=medical_assistant, patients=[patient])
        _seen(by=other_ma, patients=[patient])
        c = _as(client, auditor)

        by_user = search(c, username="MA").context["rows"]  # type: ignore[attr-defined]
        assert {r.username for r in by_user} == {"ma"} and len(by_user) == 2
        since = (today - dt.timedelta(days=1)).isoformat()
        recent_only = search(c, username="ma", date_from=since, date_to=today.isoformat()).context["rows"]  # type: ignore[attr-defined]
        assert [r.pk for r in recent_only] == [recent.pk]
        old_only = search(c, patient=patient.mrn, date_to=(today - dt.timedelta(days=30)).isoformat())
        assert [r.at for r in old_only.context["rows"]] == [long_ago]  # type: ignore[attr-defined]
        lists = search(c, action=AccessAction.LIST).context["rows"]  # type: ignore[attr-defined]
        assert {r.what for r in lists} == {"access log"}  # only the auditor's own searches

    def test_a_bad_date_is_refused_with_a_message(self, client: Client, auditor: User) -> None:
        response = _as(client, auditor).post(reverse("audit"), {"date_from": "yesterday"})

        assert response.status_code == 422
        assert "Enter a valid date" in response.content.decode()
        assert not AccessLog.objects.exists()

    def test_it_pages_fifty_rows_at_a_time(
        self, client: Client, auditor: User, medical_assistant: User, patient: Patient
    ) -> None:
        for _ in range(60):
            _seen(by=medical_assistant, patients=[patient])
        c = _as(client, auditor)

        first = search(c, username="ma")
        second = search(c, username="ma", page=2)

        assert len(first.context["rows"]) == 50 and first.context["has_next"]  # type: ignore[attr-defined]
        assert len(second.context["rows"]) == 10 and not second.context["has_next"]  # type: ignore[attr-defined]
        assert 'name="page" value="2"' in first.content.decode()  # type: ignore[attr-defined]
        far = search(c, username="ma", page=99999999999999999999)  # capped, not an OFFSET overflow
        assert far.status_code == 200 and far.context["rows"] == []  # type: ignore[attr-defined]

    def test_a_row_lists_ten_patients_and_counts_the_rest(
        self, client: Client, auditor: User, medical_assistant: User
    ) -> None:
        """A queue view names 50 patients; the page's own row names what it showed, so listing all of
        them made every search heavier than the one before (each listing the last one's patients)."""
        crowd = PatientFactory.create_batch(30)
        _seen(by=medical_assistant, patients=crowd, what="queue")
        c = _as(client, auditor)

        first = search(c, username="ma")
        row = first.context["rows"][0]  # type: ignore[attr-defined]
        assert (len(row.shown_patients), row.patient_total, row.unlisted) == (10, 30, 20)
        names = [(p.family_name, p.given_name) for p in row.shown_patients]
        assert names == sorted((p.family_name, p.given_name) for p in crowd)[:10]
        assert "28 more" in first.content.decode() and "and 20 not listed here" in first.content.decode()  # type: ignore[attr-defined]
        mine = AccessLog.objects.get(user=auditor)
        assert patients_of(mine) == {p.pk for p in row.shown_patients}
        # The patient searched for is listed first even when the name order would leave them out.
        last = max(crowd, key=lambda p: (p.family_name, p.given_name))
        by_patient = search(c, patient=last.mrn).context["rows"]  # type: ignore[attr-defined]
        queue_row = next(r for r in by_patient if r.what == "queue")
        assert queue_row.shown_patients[0] == last and len(queue_row.shown_patients) == 10
        # Every patient still goes to the export.
        export = client.post(reverse("audit_export"), {"username": "ma"})
        body = b"".join(export.streaming_content).decode()  # type: ignore[attr-defined]
        assert all(p.mrn in body for p in crowd)

    @pytest.mark.parametrize("rows", [5, 50])
    def test_query_count_does_not_grow_with_rows(
        self,
        client: Client,
        auditor: User,
        medical_assistant: User,
        django_assert_num_queries: DjangoAssertNumQueries,
        rows: int,
    ) -> None:
        patients = PatientFactory.create_batch(3)
        for _ in range(rows):
            _seen(by=medical_assistant, patients=patients)
        c = _as(client, auditor)
        # 1 session, 2 user, 3 permissions and roles, 4 the patient by MRN, 5 the page of rows with
        # their users, 6 their first ten patients each and how many they name (one windowed query),
        # 7 this search's access row with its patients.
        with django_assert_num_queries(7):
            response = c.post(reverse("audit"), {"patient": patients[0].mrn, "username": "ma"})
        assert len(response.context["rows"]) == min(rows, 50)


def _listed(*, by: User, at: dt.datetime, patients: list[Patient], what: str = "queue") -> AccessLog:
    """A list page's access row (a queue refresh), inserted already in the past."""
    entry = AccessLog.objects.create(
        at=at, user=by, username=by.username, action=AccessAction.LIST, what=what, ip="10.0.0.5"
    )
    AccessLogPatient.objects.bulk_create([AccessLogPatient(log=entry, patient=p, at=at) for p in patients])
    return entry


class TestFoldedRefreshes:
    """Issue 14, point 17: an open queue writes a row every 15 s, and a search drowned in them."""

    @pytest.fixture
    def morning(self, medical_assistant: User, other_ma: User, patient: Patient) -> dict[str, AccessLog]:
        nine = timezone.make_aware(dt.datetime.combine(timezone.localdate() - dt.timedelta(days=1), dt.time(9)))
        minute = dt.timedelta(minutes=1)
        ten_oclock = [
            _listed(by=medical_assistant, at=nine + (65 + 5 * n) * minute, patients=[patient]) for n in range(5)
        ]
        nine_oclock = [
            _listed(by=medical_assistant, at=nine + (1 + 3 * n) * minute, patients=[patient]) for n in range(20)
        ]
        theirs = [_listed(by=other_ma, at=nine + (40 + n) * minute, patients=[patient]) for n in range(3)]
        viewed = _seen(by=medical_assistant, patients=[patient], at=nine + 30 * minute)
        return {"ten": ten_oclock[-1], "nine": nine_oclock[-1], "theirs": theirs[-1], "viewed": viewed}

    def test_refreshes_fold_into_one_row_per_person_list_and_hour(
        self, client: Client, auditor: User, morning: dict[str, AccessLog]
    ) -> None:
        c = _as(client, auditor)
        yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()  # not the auditor's own searches
        unfolded = search(c, date_to=yesterday).context["rows"]  # type: ignore[attr-defined]
        assert [r.pk for r in unfolded].index(morning["viewed"].pk) == 18  # under eighteen refreshes

        response = search(c, collapse="on", date_to=yesterday)
        rows = response.context["rows"]  # type: ignore[attr-defined]
        assert [(r.pk, r.refreshes) for r in rows] == [
            (morning["ten"].pk, 5),
            (morning["nine"].pk, 20),
            (morning["theirs"].pk, 3),
            (morning["viewed"].pk, 1),
        ]
        assert rows[1].oldest_at.astimezone(timezone.get_current_timezone()).time() == dt.time(9, 1)
        content = response.content.decode()  # type: ignore[attr-defined]
        assert "20 refreshes" in content and "since <time" in content
        assert "checked" in content.split('name="collapse"')[1].split(">")[0]  # the search says it is folded

    def test_folded_pages_follow_each_other(
        self, client: Client, auditor: User, morning: dict[str, AccessLog], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("backoffice.audit.views.PAGE_SIZE", 2)
        c = _as(client, auditor)
        yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()  # not the auditor's own searches
        first = search(c, collapse="on", date_to=yesterday)
        second = search(c, collapse="on", date_to=yesterday, page=2)
        assert [r.refreshes for r in first.context["rows"]] == [5, 20] and first.context["has_next"]  # type: ignore[attr-defined]
        assert [r.pk for r in second.context["rows"]] == [morning["theirs"].pk, morning["viewed"].pk]  # type: ignore[attr-defined]
        assert not second.context["has_next"]  # type: ignore[attr-defined]

    def test_the_export_still_lists_every_refresh(
        self, client: Client, auditor: User, morning: dict[str, AccessLog]
    ) -> None:
        export = _as(client, auditor).post(reverse("audit_export"), {"collapse": "on", "username": "ma"})
        body = b"".join(export.streaming_content).decode()  # type: ignore[attr-defined]
        assert body.count(",queue,") == 25

    @pytest.mark.parametrize("hours", [2, 20])
    def test_query_count_does_not_grow_with_rows(
        self,
        client: Client,
        auditor: User,
        medical_assistant: User,
        patient: Patient,
        django_assert_num_queries: DjangoAssertNumQueries,
        hours: int,
    ) -> None:
        start = timezone.now() - dt.timedelta(hours=hours + 1)
        for n in range(hours * 12):
            _listed(by=medical_assistant, at=start + dt.timedelta(minutes=5 * n), patients=[patient])
        c = _as(client, auditor)
        # 1 session, 2 user, 3 permissions and roles, 4 the rows' keys newest first (one cursor, read
        # until the page's hours are complete), 5 the page's rows with their users, 6 their first ten
        # patients each (one windowed query), 7 this search's access row with its patients.
        with django_assert_num_queries(7):
            response = c.post(reverse("audit"), {"collapse": "on"})
        assert sum(r.refreshes for r in response.context["rows"]) == hours * 12


class TestExport:
    def _rows(self, response: object) -> list[list[str]]:
        body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
        return list(csv.reader(io.StringIO(body)))

    def test_it_exports_the_matching_rows_as_csv_and_logs_the_export(
        self, client: Client, supervisor: User, medical_assistant: User, patient: Patient
    ) -> None:
        entry = _seen(by=medical_assistant, patients=[patient])
        _seen(by=supervisor, patients=[PatientFactory()])

        response = _as(client, supervisor).post(reverse("audit_export"), {"username": "ma"})

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        assert response["Content-Disposition"].startswith('attachment; filename="access-log-')
        header, *rows = self._rows(response)
        assert header[:3] == ["at_utc", "username", "user_id"]
        assert rows == [
            [
                entry.at.astimezone(dt.UTC).isoformat(timespec="seconds"),
                "ma",
                str(medical_assistant.pk),
                "view",
                "handoff detail",
                "",
                "10.0.0.5",
                "ok",
                "M100001",
                "Martínez, Rosa",
            ]
        ]
        export = AccessLog.objects.get(user=supervisor, action=AccessAction.EXPORT)
        assert patients_of(export) == {patient.pk}

    def test_cells_a_spreadsheet_would_run_are_neutralised(
        self, client: Client, auditor: User, medical_assistant: User
    ) -> None:
        evil = PatientFactory(family_name='=HYPERLINK("http://evil.example","x")', given_name="@SUM(1)")
        _seen(by=medical_assistant, patients=[evil], what="-2+3")

        response = _as(client, auditor).post(reverse("audit_export"), {"username": "ma"})

        (row,) = self._rows(response)[1:]
        assert row[4] == "'-2+3"
        assert row[9] == '\'=HYPERLINK("http://evil.example","x"), @SUM(1)'

    def test_it_refuses_get(self, client: Client, auditor: User) -> None:
        assert _as(client, auditor).get(reverse("audit_export")).status_code == 405


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_csv_safe(value: object, expected: str) -> None:
    assert csv_safe(value) == expected
