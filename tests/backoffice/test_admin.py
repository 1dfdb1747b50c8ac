"""Django admin: every page loads, audit rows stay untouched, workflow moves go through the services."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pghistory.models import Event

from backoffice import roles, services
from backoffice.models import (
    AccessLog,
    AccessLogPatient,
    AccountChange,
    Allergy,
    BreakGlass,
    BreakGlassAccess,
    Credential,
    Handoff,
    HandoffEvent,
    RolePolicy,
    Station,
    StationEvent,
    User,
    UserSession,
)
from backoffice.workflow import HandoffStatus, Priority, StationState
from lab.models import (
    CriticalCall,
    CriticalCallAttempt,
    CriticalCallEvent,
    OutboundMessage,
    QCRun,
    RecollectionCall,
    RecollectionCallEvent,
    Result,
    ResultEvent,
    SendOut,
    SendOutEvent,
    Shipment,
    ShipmentEvent,
    TestDefinition,
    TestOrder,
    TestOrderEvent,
)
from lab.services import test_orders_add
from procedures.models import PROCEDURE_RECORDS, DocumentationDraft, ProcedureOrder, ProcedureType
from procedures.services import procedure_orders_add
from specimens import services as specimen_services
from specimens.models import LabelPrint, Specimen, SpecimenEvent
from tests.factories import CredentialFactory, HandoffFactory, StationFactory, UserFactory
from tests.lab import helpers as lab_helpers
from tests.lab import sendout_helpers
from tests.lab.hl7.intake_helpers import held_message
from tests.procedures.helpers import one_of_everything
from tests.specimens import helpers as specimen_helpers

PROJECT_APPS = ("backoffice", "procedures", "specimens", "lab")
# The access log and the account-change log are read in the app (/audit/) by auditors and supervisors,
# never in admin by admins.
# So is break-glass (its report, /audit/break-glass/).
# Sessions neither: a row's primary key is its session key, a credential, which admin would put in the
# change page's URL (server logs, browser history); each person ends their own on /account/2fa/, and a
# deactivation or a new password ends all of an account's (backoffice.accounts.sessions).
# A performer's documentation draft is their typing not yet saved: not part of the record, shown only to
# them on the procedure's page, gone at the save.
NOT_IN_ADMIN = {
    AccessLog,
    AccessLogPatient,
    AccountChange,
    BreakGlass,
    BreakGlassAccess,
    UserSession,
    DocumentationDraft,
}
# Field-level history snapshots (pghistory), written by triggers: append-only like the event rows.
HISTORY = {
    model for label in PROJECT_APPS for model in apps.get_app_config(label).get_models() if issubclass(model, Event)
}
# Created by the app's pages through the services, or append-only: never added in admin.
SPECIMEN_RECORDS = {Specimen, SpecimenEvent, LabelPrint, TestOrderEvent, RecollectionCall, RecollectionCallEvent}
# The bench's records: QC runs, results and critical calls move only through lab's services.
BENCH_RECORDS = {QCRun, Result, ResultEvent, CriticalCall, CriticalCallAttempt, CriticalCallEvent}
# Every message a lab sent us (and its events): read on the desk's logged queue pages, not by the Admin role.
INTAKE_RECORDS = {model for model in apps.get_app_config("lab").get_models() if model.__module__ == "lab.models.intake"}
# Patients' data: the Admin role sees none of it in admin (backoffice.roles.CLINICAL_RECORDS).
CLINICAL = {apps.get_model(app, name) for app, names in roles.CLINICAL_RECORDS.items() for name in names}
# The send-out desk's records move only through its services.
SEND_OUT_RECORDS = {Shipment, ShipmentEvent, SendOut, SendOutEvent, OutboundMessage, *INTAKE_RECORDS}
NO_ADD = {
    Allergy,  # recorded on the patient's allergy page (backoffice.allergies), which keeps the banner's summary
    Handoff,
    HandoffEvent,
    StationEvent,
    ProcedureOrder,
    TestOrder,
    *PROCEDURE_RECORDS,
    *SPECIMEN_RECORDS,
    *BENCH_RECORDS,
    *SEND_OUT_RECORDS,
    *HISTORY,
}
READ_ONLY = {
    Allergy,
    HandoffEvent,
    StationEvent,
    ProcedureOrder,
    TestOrder,
    *PROCEDURE_RECORDS,
    *SPECIMEN_RECORDS,
    *BENCH_RECORDS,
    *SEND_OUT_RECORDS,
    *HISTORY,
}

pytestmark = pytest.mark.django_db


def project_models() -> list[type[Model]]:
    return [
        model
        for label in PROJECT_APPS
        for model in apps.get_app_config(label).get_models()
        if model not in NOT_IN_ADMIN
    ]


def url(model: type[Model], view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_superuser("root", "root@clinic.test", "correct-horse-battery-staple")


@pytest.fixture(params=["superuser", "admin_user"])
def staff_client(request: pytest.FixtureRequest, client: Client) -> Client:
    client.force_login(request.getfixturevalue(request.param))
    return client


@pytest.fixture
def root_client(client: Client, superuser: User) -> Client:
    """Logged in as a superuser: the one who sees patients' records in admin (the Admin role doesn't)."""
    client.force_login(superuser)
    return client


@pytest.fixture
def admin_client_(client: Client, admin_user: User) -> Client:
    """Logged in as the Admin role (staff, not superuser)."""
    client.force_login(admin_user)
    return client


def start_work(handoff: Handoff, station: Station, ma: User) -> Handoff:
    """Claim a handoff, take the patient to a station, order one procedure and one test."""
    services.handoff_claim(handoff=handoff, by=ma)
    services.handoff_assign_station(handoff=handoff, station=station, by=ma)
    procedure_orders_add(handoff=handoff, procedure_types=[ProcedureType.objects.filter(is_active=True)[0]], by=ma)
    test_orders_add(handoff=handoff, tests=[TestDefinition.objects.filter(is_active=True)[0]], by=ma)
    return handoff


def station_needing_turnover(handoff: Handoff, station: Station, ma: User, supervisor: User) -> Station:
    services.handoff_claim(handoff=handoff, by=ma)
    services.handoff_assign_station(handoff=handoff, station=station, by=ma)
    services.handoff_cancel(handoff=handoff, by=supervisor, reason="Patient left before the procedure")
    station.refresh_from_db()
    assert station.state == StationState.NEEDS_TURNOVER
    return station


def add_work(count: int) -> None:
    """`count` more handoffs in progress, each with its own MA, station, credential and orders."""
    for _ in range(count):
        ma = UserFactory.create(role=roles.ROLE_MEDICAL_ASSISTANT)
        CredentialFactory.create(user=ma)
        start_work(HandoffFactory.create(), StationFactory.create(), ma)


@pytest.fixture
def some_of_everything(handoff: Handoff, station: Station, medical_assistant: User, supervisor: User) -> None:
    CredentialFactory.create(user=medical_assistant)
    station_needing_turnover(
        HandoffFactory.create(), StationFactory.create(code="chair-1", name="Chair 1"), medical_assistant, supervisor
    )
    start_work(handoff, station, medical_assistant)
    RolePolicy.objects.create(group=Group.objects.get(name=roles.ROLE_LAB_TECH), require_second_factor=False)
    one_of_everything()  # a procedure with every kind of record: documentation, medication, co-sign, charge
    # A collected specimen with its label printed on the station's printer, and its tests' events.
    collector = UserFactory.create(role=roles.ROLE_MEDICAL_ASSISTANT)
    sendout_helpers.reference_lab()  # its orderables and questions; the CBC below becomes a send-out
    _, [tube] = specimen_helpers.collected("CBC", ma=collector)
    send_out = SendOut.objects.get(order__specimen=tube)
    shipment = Shipment.objects.create(
        reference_lab=send_out.reference_lab,
        handling=tube.container.handling,
        courier="Lab courier",
        pickup_at=timezone.now(),
        created_by=collector,
    )
    ShipmentEvent.objects.create(shipment=shipment, actor=collector, action=ShipmentEvent.Action.CREATED)
    OutboundMessage.objects.create(send_out=send_out, kind=OutboundMessage.Kind.NEW, control_id="T1", text="MSH|")
    held_message()  # a lab's result on identity hold, with its intake events
    printer = specimen_helpers.pdf_printer(station)
    specimen_services.specimen_labels_printed(specimens=[tube], by=collector, output="pdf", printer=printer)
    specimen_helpers.call_back(ma=collector, lab_tech=UserFactory.create(role=roles.ROLE_LAB_TECH))
    lab_helpers.bench_catalog()  # a kit with a lot, the QC rule and control lots of a strep test, the ladder
    lab_helpers.released_critical_result()  # QC runs, a released critical result with its events and call


def test_every_project_model_has_an_admin() -> None:
    missing = [model.__name__ for model in project_models() if not admin.site.is_registered(model)]
    assert missing == []


@pytest.mark.usefixtures("some_of_everything")
@pytest.mark.parametrize("model", project_models(), ids=lambda m: m.__name__)
def test_changelist_add_and_change_pages_load(staff_client: Client, model: type[Model]) -> None:
    response = staff_client.get(url(model, "changelist"))
    if model in CLINICAL and not response.wsgi_request.user.is_superuser:
        assert response.status_code == 403  # the Admin role sees no patient's data, nor what labs sent
        obj = model._default_manager.order_by("pk").last()
        assert obj is not None
        assert staff_client.get(url(model, "change", obj.pk)).status_code == 403
        return
    assert response.status_code == 200
    assert response.context["cl"].result_count >= 1

    response = staff_client.get(url(model, "add"))
    assert response.status_code == (403 if model in NO_ADD else 200)

    objects = model._default_manager.order_by("pk")
    if model is User:  # a colleague's account: one's own, and a superuser's, are only shown to the Admin role
        objects = objects.filter(is_superuser=False).exclude(pk=response.wsgi_request.user.pk)
    obj = objects.last()
    assert obj is not None
    response = staff_client.get(url(model, "change", obj.pk))
    assert response.status_code == 200
    assert (b'name="_save"' in response.content) is (model not in READ_ONLY)


@pytest.mark.usefixtures("some_of_everything")
@pytest.mark.parametrize("search", ["M100001", "Martínez", "Rosa"])
def test_search_pages_load(root_client: Client, search: str) -> None:
    for model in (Handoff, HandoffEvent, ProcedureOrder, TestOrder):
        # Posted, and followed to the list URL holding a token for it (tests/security/test_phi_in_urls.py).
        response = root_client.post(url(model, "changelist"), {"_search": "1", "q": search}, follow=True)
        assert response.status_code == 200
        assert search not in response.redirect_chain[-1][0]
        assert response.context["cl"].result_count >= 1, model


CHANGELISTS_WITH_RELATIONS = [User, Credential, Handoff, HandoffEvent, StationEvent, ProcedureOrder, TestOrder]


@pytest.mark.parametrize("model", CHANGELISTS_WITH_RELATIONS, ids=lambda m: m.__name__)
def test_changelist_queries_do_not_grow_with_rows(root_client: Client, model: type[Model]) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = root_client.get(url(model, "changelist"))
        assert response.status_code == 200
        return len(ctx.captured_queries)

    add_work(1)
    few = queries()
    add_work(4)
    assert queries() == few


# --- audit rows ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("some_of_everything")
@pytest.mark.parametrize("model", [HandoffEvent, StationEvent], ids=lambda m: m.__name__)
def test_event_rows_cannot_be_changed_or_deleted(staff_client: Client, model: type[Model]) -> None:
    event = model._default_manager.order_by("pk").first()
    assert event is not None
    before = {f.attname: getattr(event, f.attname) for f in model._meta.concrete_fields}

    page = staff_client.get(url(model, "change", event.pk))
    if not page.wsgi_request.user.is_superuser:  # the Admin role doesn't see them at all
        assert page.status_code == 403
        assert staff_client.post(url(model, "change", event.pk), {"note": "tampered"}).status_code == 403
        return
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert url(model, "delete", event.pk).encode() not in page.content

    assert staff_client.post(url(model, "change", event.pk), {"note": "tampered"}).status_code == 403
    assert staff_client.get(url(model, "delete", event.pk)).status_code == 403
    assert staff_client.post(url(model, "delete", event.pk), {"post": "yes"}).status_code == 403

    changelist = staff_client.get(url(model, "changelist"))
    assert "delete_selected" not in changelist.context["cl"].model_admin.get_actions(changelist.wsgi_request)
    response = staff_client.post(
        url(model, "changelist"), {"action": "delete_selected", ACTION_CHECKBOX_NAME: [event.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)

    event.refresh_from_db()
    assert {f.attname: getattr(event, f.attname) for f in model._meta.concrete_fields} == before


def test_handoff_event_inline_is_read_only(root_client: Client, handoff: Handoff, medical_assistant: User) -> None:
    services.handoff_claim(handoff=handoff, by=medical_assistant)
    response = root_client.get(url(Handoff, "change", handoff.pk))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0]
    assert formset.opts.model is HandoffEvent
    assert not formset.has_add_permission
    assert not formset.has_change_permission
    assert not formset.has_delete_permission
    assert "Claimed" in response.content.decode()


# --- handoffs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["superuser", "admin_user"])
def test_handoffs_cannot_be_added_or_deleted_in_admin(
    client: Client, request: pytest.FixtureRequest, user: str, handoff: Handoff
) -> None:
    client.force_login(request.getfixturevalue(user))
    assert client.get(url(Handoff, "add")).status_code == 403
    assert client.post(url(Handoff, "add"), {"priority": Priority.STAT}).status_code == 403
    assert client.get(url(Handoff, "delete", handoff.pk)).status_code == 403
    assert client.post(url(Handoff, "delete", handoff.pk), {"post": "yes"}).status_code == 403
    changelist = client.get(url(Handoff, "changelist"))
    assert url(Handoff, "add").encode() not in changelist.content
    assert Handoff.objects.filter(pk=handoff.pk).exists()


def handoff_form_data(handoff: Handoff, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "priority": handoff.priority,
        "clinical_note": handoff.clinical_note,
        "interpreter_language": handoff.interpreter_language,
        "companion": handoff.companion,
        "mobility": handoff.mobility,
        "isolation": handoff.isolation,
        "expected_version": handoff.version,
        # The read-only event inline still posts its management form.
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "0",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not False}


def test_handoff_workflow_fields_are_read_only(root_client: Client, handoff: Handoff) -> None:
    response = root_client.get(url(Handoff, "change", handoff.pk))
    form = response.context["adminform"].form
    for name in ("status", "station", "claimed_by", "identity_verified_at", "closed_at", "version", "patient"):
        assert name not in form.fields


def test_handoff_edit_keeps_workflow_state_and_bumps_version(
    root_client: Client, handoff: Handoff, medical_assistant: User
) -> None:
    page = root_client.get(url(Handoff, "change", handoff.pk))  # opened while waiting, version 1
    assert page.status_code == 200
    handoff.refresh_from_db()
    data = handoff_form_data(handoff, priority=Priority.STAT, status=HandoffStatus.CANCELLED, version=99)

    response = root_client.post(url(Handoff, "change", handoff.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    handoff.refresh_from_db()
    assert handoff.priority == Priority.STAT
    assert handoff.status == HandoffStatus.WAITING
    assert handoff.version == 2


def test_handoff_edit_refused_when_someone_changed_it_meanwhile(
    root_client: Client, handoff: Handoff, medical_assistant: User
) -> None:
    data = handoff_form_data(handoff, clinical_note="Left ear only")
    services.handoff_claim(handoff=handoff, by=medical_assistant)  # version 1 → 2 after the form was opened

    response = root_client.post(url(Handoff, "change", handoff.pk), data)

    assert response.status_code == 200
    assert "Someone changed this handoff" in response.content.decode()
    handoff.refresh_from_db()
    assert handoff.clinical_note == ""
    assert handoff.status == HandoffStatus.CLAIMED


# --- stations ------------------------------------------------------------------------------------


def test_station_state_is_read_only(admin_client_: Client, station: Station) -> None:
    response = admin_client_.get(url(Station, "change", station.pk))
    assert "state" not in response.context["adminform"].form.fields
    data = {"code": station.code, "name": station.name, "kind": station.kind, "is_active": "on"}
    response = admin_client_.post(url(Station, "change", station.pk), {**data, "state": StationState.OCCUPIED})
    assert response.status_code == 302
    station.refresh_from_db()
    assert station.state == StationState.READY


def test_turnover_action_makes_station_ready_and_records_it(
    admin_client_: Client,
    admin_user: User,
    handoff: Handoff,
    station: Station,
    medical_assistant: User,
    supervisor: User,
) -> None:
    station = station_needing_turnover(handoff, station, medical_assistant, supervisor)
    ready = StationFactory.create(code="chair-9", name="Chair 9")

    response = admin_client_.post(
        url(Station, "changelist"),
        {"action": "mark_turned_over", ACTION_CHECKBOX_NAME: [station.pk, ready.pk], "index": "0"},
        follow=True,
    )

    assert response.status_code == 200
    station.refresh_from_db()
    assert station.state == StationState.READY
    event = StationEvent.objects.filter(station=station).first()  # newest first
    assert event is not None
    assert (event.from_status, event.to_status, event.actor) == (
        StationState.NEEDS_TURNOVER,
        StationState.READY,
        admin_user,
    )
    assert not StationEvent.objects.filter(station=ready).exists()
    texts = [str(m) for m in response.context["messages"]]
    assert any("Ready again: Procedure room 1" in t for t in texts)
    assert any("Chair 9 (ready)" in t for t in texts)


def test_turnover_action_from_the_station_page(
    admin_client_: Client, handoff: Handoff, station: Station, medical_assistant: User, supervisor: User
) -> None:
    station = station_needing_turnover(handoff, station, medical_assistant, supervisor)

    response = admin_client_.post(
        url(Station, "change", station.pk),
        {"CHANGE_FORM-action": "mark_turned_over", ACTION_CHECKBOX_NAME: [station.pk]},
    )

    assert response.status_code == 302
    station.refresh_from_db()
    assert station.state == StationState.READY


def test_turnover_action_reports_a_refused_move(
    admin_client_: Client,
    handoff: Handoff,
    station: Station,
    medical_assistant: User,
    supervisor: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    station = station_needing_turnover(handoff, station, medical_assistant, supervisor)

    def already_done(*, station: Station, by: User) -> Station:
        raise services.TransitionNotAllowed("This station is ready; it can't become ready.")

    monkeypatch.setattr(services, "station_turnover", already_done)
    response = admin_client_.post(
        url(Station, "changelist"),
        {"action": "mark_turned_over", ACTION_CHECKBOX_NAME: [station.pk], "index": "0"},
        follow=True,
    )

    assert response.status_code == 200
    messages = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert ("error", "Procedure room 1: This station is ready; it can't become ready.") in messages
    station.refresh_from_db()
    assert station.state == StationState.NEEDS_TURNOVER


# --- staff ---------------------------------------------------------------------------------------


def test_user_list_shows_roles_and_title(admin_client_: Client, medical_assistant: User) -> None:
    medical_assistant.title = "Medical assistant II"
    medical_assistant.save()
    response = admin_client_.get(url(User, "changelist"), {"groups__id__exact": medical_assistant.groups.get().pk})
    content = response.content.decode()
    assert "Medical assistant II" in content
    assert "Maria Alvarez" in content
    assert response.context["cl"].result_count == 1


def test_a_superuser_adds_a_user_with_title_and_role(client: Client, superuser: User) -> None:
    """The Admin role opens accounts without role or password (tests/backoffice/test_admin_role.py)."""
    client.force_login(superuser)
    group = Group.objects.get(name=roles.ROLE_MEDICAL_ASSISTANT)
    response = client.post(
        url(User, "add"),
        {
            "username": "jdoe",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
            "first_name": "Jamie",
            "last_name": "Doe",
            "title": "Phlebotomist",
            "email": "jdoe@clinic.test",
            "groups": [group.pk],
            "credentials-TOTAL_FORMS": "1",
            "credentials-INITIAL_FORMS": "0",
            "credentials-0-kind": Credential.Kind.CPT,
            "credentials-0-number": "CPT-55501",
            "credentials-0-expires_on": "2030-01-31",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(username="jdoe")
    assert (user.title, user.is_superuser, list(user.groups.all())) == ("Phlebotomist", False, [group])
    assert [str(c) for c in user.credentials.all()] == ["CPT CPT-55501"]


def test_admin_role_cannot_grant_superuser_or_edit_a_superuser(
    admin_client_: Client, medical_assistant: User, superuser: User
) -> None:
    response = admin_client_.get(url(User, "change", medical_assistant.pk))
    form = response.context["adminform"].form
    assert "title" in form.fields
    assert "groups" not in form.fields  # roles are a superuser's (tests/backoffice/test_admin_role.py)
    assert "is_superuser" not in form.fields

    assert admin_client_.post(url(User, "change", superuser.pk), {"username": "root"}).status_code == 403
    assert admin_client_.get(reverse("admin:auth_user_password_change", args=[superuser.pk])).status_code == 403


def test_credential_expiry_filter(admin_client_: Client, medical_assistant: User) -> None:
    today = timezone.localdate()
    expired = CredentialFactory.create(user=medical_assistant, expires_on=today - dt.timedelta(days=1))
    soon = CredentialFactory.create(user=medical_assistant, expires_on=today + dt.timedelta(days=30))
    valid = CredentialFactory.create(user=medical_assistant, expires_on=today + dt.timedelta(days=31))

    def listed(expiry: str) -> set[int]:
        response = admin_client_.get(url(Credential, "changelist"), {"expiry": expiry})
        assert response.status_code == 200
        return {c.pk for c in response.context["cl"].result_list}

    assert listed("expired") == {expired.pk}
    assert listed("soon") == {soon.pk}
    assert listed("renew") == {expired.pk, soon.pk}
    assert listed("current") == {valid.pk}


# --- who may enter -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["supervisor", "medical_assistant"])
@pytest.mark.parametrize("page", [lambda: reverse("admin:index"), lambda: url(Station, "changelist")])
def test_non_staff_are_sent_to_the_admin_login(
    client: Client, request: pytest.FixtureRequest, role: str, page: Callable[[], str]
) -> None:
    client.force_login(request.getfixturevalue(role))
    path = page()
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert client.get(response["Location"]).status_code == 200


def test_the_admin_role_can_unlock_accounts_but_not_touch_authenticators(admin_user) -> None:  # type: ignore[no-untyped-def]
    assert admin_user.has_perm("axes.delete_accessattempt")
    # Removing one turns someone's second factor off; adding or changing one plants a known secret.
    for verb in ("view", "add", "change", "delete"):
        assert not admin_user.has_perm(f"otp_totp.{verb}_totpdevice")
