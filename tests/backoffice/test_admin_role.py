"""The Admin role in Django admin: catalogs, stations, staff profiles and credentials, nothing that raises access.

Model by model, what an Admin-role user may view, add, change and delete; then every way the security
review escalated (a role for itself, a group with any permission, an authenticator planted, another
account's password) tried over HTTP and refused; and the account-change log that records each change
of roles, passwords and authenticators whoever makes it, append-only, read by auditors.
"""

from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from axes.models import AccessLog as AxesAccessLog
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import DatabaseError, connection, transaction
from django.db.models import Model
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tasks_db.models import DBTaskResult
from pghistory.models import MiddlewareEvents

from backoffice import roles
from backoffice.admin import AccessLoggedAdmin
from backoffice.fhir.models import ApiClient
from backoffice.models import AccountChange, AccountChangeKind, Credential, User
from tests.backoffice.test_admin import CLINICAL, NO_ADD, READ_ONLY
from tests.conftest import PASSWORD
from tests.factories import CredentialFactory, UserFactory

pytestmark = pytest.mark.django_db

Kind = AccountChangeKind

# --- model by model ------------------------------------------------------------------------------

# What the Admin role may not open at all: roles and authenticators are a superuser's; sign-in records
# and the task queue are machinery; patients' data (and pghistory's events across models, which carry
# patients' changes) is minimum-necessary: none of it.
# FHIR API clients: a token reads patients' records, so superusers only (backoffice.admin_site's Internals).
NO_ACCESS = {Group, TOTPDevice, AccessFailureLog, AxesAccessLog, DBTaskResult, MiddlewareEvents, ApiClient, *CLINICAL}
# Shown, never written: workflow and audit records, history; lockouts are cleared (deleted), not edited.
VIEW_ONLY = READ_ONLY - CLINICAL
VIEW_AND_DELETE = {AccessAttempt}
# Staff leave by deactivation, never by deletion.
NO_DELETE = {User}


def expected(model: type[Model]) -> tuple[bool, bool, bool, bool]:
    """(view, add, change, delete) for the Admin role."""
    if model in NO_ACCESS:
        return (False, False, False, False)
    if model in VIEW_AND_DELETE:
        return (True, False, False, True)
    if model in VIEW_ONLY:
        return (True, False, False, False)
    return (True, model not in NO_ADD, True, model not in NO_DELETE)


def _label(model: type[Model]) -> str:
    return model._meta.label


@pytest.mark.parametrize("model", sorted(admin.site._registry, key=_label), ids=_label)
def test_what_the_admin_role_may_do_with_each_admin_model(admin_user: User, model: type[Model]) -> None:
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    model_admin = admin.site._registry[model]
    got = (
        model_admin.has_view_permission(request),
        model_admin.has_add_permission(request),
        model_admin.has_change_permission(request),
        model_admin.has_delete_permission(request),
    )
    assert got == expected(model), "(view, add, change, delete)"


def test_the_admin_role_holds_no_permission_on_roles_accounts_flags_or_authenticators(admin_user: User) -> None:
    held = admin_user.get_all_permissions()
    assert not [p for p in held if p.startswith(("auth.", "otp_totp."))]
    assert "backoffice.delete_user" not in held
    assert not [p for p in held if p.endswith("_accountchange")]
    # What it keeps: staff profiles and credentials, catalogs, stations, unlocking a locked-out account.
    assert {"backoffice.change_user", "backoffice.change_credential", "backoffice.change_station"} <= held
    assert {"axes.view_accessattempt", "axes.delete_accessattempt"} <= held


# --- escalations, tried over HTTP ------------------------------------------------------------------


@pytest.fixture
def admin_client_(client: Client, admin_user: User) -> Client:
    client.force_login(admin_user)
    return client


def url(model: type[Model], view: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def profile_form(user: User, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "title": user.title,
        "email": user.email,
        "phone": user.phone,
        "npi": user.npi,
        "is_active": "on",
        "credentials-TOTAL_FORMS": "0",
        "credentials-INITIAL_FORMS": "0",
        "credentials-MIN_NUM_FORMS": "0",
        "credentials-MAX_NUM_FORMS": "1000",
    }
    data.update(changes)
    return data


def test_an_admin_cannot_edit_its_own_account(admin_client_: Client, admin_user: User) -> None:
    auditor = Group.objects.get(name=roles.ROLE_AUDITOR)
    page = admin_client_.get(url(User, "change", admin_user.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # view only
    response = admin_client_.post(url(User, "change", admin_user.pk), profile_form(admin_user, groups=[auditor.pk]))
    assert response.status_code == 403
    assert list(admin_user.groups.values_list("name", flat=True)) == [roles.ROLE_ADMIN]
    # Nor its own credentials.
    own = CredentialFactory.create(user=admin_user)
    assert admin_client_.post(url(Credential, "change", own.pk), {"number": "X"}).status_code == 403
    data = {"user": admin_user.pk, "kind": Credential.Kind.RN, "number": "RN-1", "expires_on": "2030-01-01"}
    assert admin_client_.post(url(Credential, "add"), data).status_code == 403
    assert not Credential.objects.filter(number="RN-1").exists()


def test_an_admin_edits_a_profile_but_not_its_roles_flags_permissions_or_password(
    admin_client_: Client, medical_assistant: User
) -> None:
    page = admin_client_.get(url(User, "change", medical_assistant.pk))
    form = page.context["adminform"].form
    assert set(form.fields) == {"username", "first_name", "last_name", "title", "email", "phone", "npi", "is_active"}
    assert b"/password/" not in page.content  # no link to set the password
    supervisor = Group.objects.get(name=roles.ROLE_SUPERVISOR)
    permission = Permission.objects.get(codename="view_accesslog", content_type__app_label="backoffice")
    hash_before = medical_assistant.password

    response = admin_client_.post(
        url(User, "change", medical_assistant.pk),
        profile_form(
            medical_assistant,
            title="Medical assistant II",
            groups=[supervisor.pk],
            user_permissions=[permission.pk],
            is_staff="on",
            is_superuser="on",
            password="known-to-the-admin",
        ),
    )

    assert response.status_code == 302
    medical_assistant.refresh_from_db()
    assert medical_assistant.title == "Medical assistant II"
    assert list(medical_assistant.groups.values_list("name", flat=True)) == [roles.ROLE_MEDICAL_ASSISTANT]
    assert not medical_assistant.user_permissions.exists()
    assert (medical_assistant.is_staff, medical_assistant.is_superuser) == (False, False)
    assert medical_assistant.password == hash_before


def test_an_admin_cannot_set_anyones_password(admin_client_: Client, medical_assistant: User, admin_user: User) -> None:
    for who in (medical_assistant, admin_user):
        change_password = reverse("admin:auth_user_password_change", args=[who.pk])
        assert admin_client_.get(change_password).status_code == 403
        data = {"password1": "a-password-the-admin-knows", "password2": "a-password-the-admin-knows"}
        assert admin_client_.post(change_password, data).status_code == 403
    medical_assistant.refresh_from_db()
    assert medical_assistant.check_password(PASSWORD)


def test_a_new_account_from_an_admin_has_no_role_and_no_password(admin_client_: Client) -> None:
    auditor = Group.objects.get(name=roles.ROLE_AUDITOR)
    page = admin_client_.get(url(User, "add"))
    assert set(page.context["adminform"].form.fields) == {
        "username",
        "first_name",
        "last_name",
        "title",
        "email",
        "phone",
        "npi",
    }
    response = admin_client_.post(
        url(User, "add"),
        {
            "username": "jdoe",
            "first_name": "Jamie",
            "last_name": "Doe",
            "title": "Phlebotomist",
            "email": "jdoe@clinic.test",
            "usable_password": "true",
            "password1": "a-password-the-admin-knows",
            "password2": "a-password-the-admin-knows",
            "groups": [auditor.pk],
            "is_staff": "on",
            "credentials-TOTAL_FORMS": "0",
            "credentials-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(username="jdoe")
    assert (user.title, user.has_usable_password(), user.is_staff, user.groups.count()) == (
        "Phlebotomist",
        False,
        False,
        0,
    )


def test_an_admin_cannot_create_or_edit_a_role(admin_client_: Client) -> None:
    admin_group = Group.objects.get(name=roles.ROLE_ADMIN)
    every = list(Permission.objects.values_list("pk", flat=True))
    assert admin_client_.get(url(Group, "add")).status_code == 403
    assert admin_client_.post(url(Group, "add"), {"name": "Everything", "permissions": every}).status_code == 403
    assert (
        admin_client_.post(url(Group, "change", admin_group.pk), {"name": "Admin", "permissions": every}).status_code
        == 403
    )
    assert not Group.objects.filter(name="Everything").exists()
    assert admin_group.permissions.count() < len(every)


def test_an_admin_cannot_plant_change_or_remove_an_authenticator(admin_client_: Client, supervisor: User) -> None:
    device = TOTPDevice.objects.create(user=supervisor, name="Authenticator app", confirmed=True)
    known = "3132333435363738393031323334353637383930"
    planted = {"user": supervisor.pk, "name": "mine", "key": known, "step": 30, "t0": 0, "digits": 6, "tolerance": 1}
    assert admin_client_.post(url(TOTPDevice, "add"), {**planted, "confirmed": "on"}).status_code == 403
    assert admin_client_.post(url(TOTPDevice, "change", device.pk), {**planted, "confirmed": "on"}).status_code == 403
    assert admin_client_.post(url(TOTPDevice, "delete", device.pk), {"post": "yes"}).status_code == 403
    assert list(TOTPDevice.objects.filter(user=supervisor).values_list("key", flat=True)) == [device.key]


def test_the_admin_role_still_keeps_staff_credentials_and_deactivates_leavers(
    admin_client_: Client, medical_assistant: User
) -> None:
    credential = CredentialFactory.create(user=medical_assistant)
    data = {"user": medical_assistant.pk, "kind": credential.kind, "number": "CMA-999999", "expires_on": "2031-05-01"}
    assert admin_client_.post(url(Credential, "change", credential.pk), data).status_code == 302
    credential.refresh_from_db()
    assert credential.number == "CMA-999999"
    response = admin_client_.post(
        url(User, "change", medical_assistant.pk), profile_form(medical_assistant, is_active="")
    )
    assert response.status_code == 302
    medical_assistant.refresh_from_db()
    assert not medical_assistant.is_active
    change = AccountChange.objects.get(subject=medical_assistant, kind=Kind.DEACTIVATED)
    assert change.actor_username == "admin"


# --- the account-change log ---------------------------------------------------------------------------


@pytest.fixture
def superuser_client(client: Client) -> tuple[Client, User]:
    root = User.objects.create_superuser("root", "root@clinic.test", PASSWORD)
    client.force_login(root)
    return client, root


def test_a_superusers_role_change_and_password_reset_are_logged(
    superuser_client: tuple[Client, User], medical_assistant: User
) -> None:
    client, root = superuser_client
    supervisor = Group.objects.get(name=roles.ROLE_SUPERVISOR)
    ma_group = Group.objects.get(name=roles.ROLE_MEDICAL_ASSISTANT)
    page = client.get(url(User, "change", medical_assistant.pk))
    assert "groups" in page.context["adminform"].form.fields
    data = profile_form(medical_assistant, groups=[supervisor.pk], date_joined_0="2026-01-05", date_joined_1="08:00:00")
    response = client.post(url(User, "change", medical_assistant.pk), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    change_password = reverse("admin:auth_user_password_change", args=[medical_assistant.pk])
    new = {"password1": "a-fresh-passphrase-2026", "password2": "a-fresh-passphrase-2026", "usable_password": "true"}
    assert client.post(change_password, new).status_code == 302

    rows = list(AccountChange.objects.filter(subject=medical_assistant).order_by("id"))
    assert [(r.kind, r.detail) for r in rows][-3:] == [
        (Kind.ROLE_REMOVED, ma_group.name),
        (Kind.ROLE_ADDED, supervisor.name),
        (Kind.PASSWORD_RESET, ""),
    ]
    for row in rows[-3:]:
        assert (row.actor, row.actor_username, row.subject_username) == (root, "root", medical_assistant.username)
        assert row.source.startswith(f"/admin/backoffice/user/{medical_assistant.pk}/")


def test_a_superusers_new_role_and_its_permissions_are_logged(superuser_client: tuple[Client, User]) -> None:
    client, root = superuser_client
    permission = Permission.objects.get(codename="view_accesslog", content_type__app_label="backoffice")
    assert client.post(url(Group, "add"), {"name": "Night desk", "permissions": [permission.pk]}).status_code == 302
    rows = AccountChange.objects.filter(actor=root).order_by("id")
    assert [(r.kind, r.detail) for r in rows] == [
        (Kind.GROUP_CREATED, "Night desk"),
        (Kind.GROUP_PERMISSION_ADDED, "Night desk: backoffice.view_accesslog"),
    ]


def test_changes_outside_admin_are_logged_too(medical_assistant: User, supervisor: User) -> None:
    """The receivers sit on the models: a shell, a command or another page is recorded alike."""
    auditor = Group.objects.get(name=roles.ROLE_AUDITOR)
    medical_assistant.groups.add(auditor)
    auditor.user_set.remove(medical_assistant)
    medical_assistant.groups.clear()
    medical_assistant.is_superuser = True
    medical_assistant.set_password("another-long-passphrase")
    medical_assistant.save()
    device = TOTPDevice.objects.create(user=supervisor, name="phone", confirmed=True)
    device.key = "3132333435363738393031323334353637383930"
    device.save()
    device.save(update_fields=["last_t"])  # a verification saves the device: not a change of who may sign in
    device.delete()
    got = [
        (r.subject_username, r.kind, r.detail, r.actor_id)
        for r in AccountChange.objects.filter(subject__in=[medical_assistant, supervisor]).order_by("id")
        if r.kind != Kind.ACCOUNT_CREATED
    ]
    ma, sup = medical_assistant.username, supervisor.username
    assert got == [
        (ma, Kind.ROLE_ADDED, roles.ROLE_MEDICAL_ASSISTANT, None),  # the fixture
        (sup, Kind.ROLE_ADDED, roles.ROLE_SUPERVISOR, None),
        (ma, Kind.ROLE_ADDED, roles.ROLE_AUDITOR, None),
        (ma, Kind.ROLE_REMOVED, roles.ROLE_AUDITOR, None),
        (ma, Kind.ROLE_REMOVED, roles.ROLE_MEDICAL_ASSISTANT, None),
        (ma, Kind.SUPERUSER_GRANTED, "", None),
        (ma, Kind.PASSWORD_RESET, "", None),
        (sup, Kind.SECOND_FACTOR_ADDED, "phone", None),
        (sup, Kind.SECOND_FACTOR_CHANGED, "phone", None),
        (sup, Kind.SECOND_FACTOR_REMOVED, "phone", None),
    ]


@override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.ScryptPasswordHasher", *settings.PASSWORD_HASHERS])
def test_signing_in_with_an_upgraded_hash_is_not_a_password_change(client: Client, medical_assistant: User) -> None:
    User.objects.filter(pk=medical_assistant.pk).update(password=make_password(PASSWORD, hasher="md5"))  # an old hash
    assert client.login(username=medical_assistant.username, password=PASSWORD)
    medical_assistant.refresh_from_db()
    assert not medical_assistant.password.startswith("md5$")  # upgraded on sign-in
    assert not AccountChange.objects.filter(subject=medical_assistant, kind__startswith="password").exists()


def test_the_roles_table_restored_at_migrate_is_not_an_account_change() -> None:
    """sync_roles puts the code's table back: nothing to record (and nothing in the test snapshot)."""
    assert not AccountChange.objects.exists()
    ma_group = Group.objects.get(name=roles.ROLE_MEDICAL_ASSISTANT)
    ma_group.permissions.clear()  # a shell change: recorded
    removed = AccountChange.objects.filter(kind=Kind.GROUP_PERMISSION_REMOVED).count()
    assert removed == len(roles.ROLE_PERMISSIONS[roles.ROLE_MEDICAL_ASSISTANT])
    roles.sync_roles()
    assert ma_group.permissions.count() == removed
    assert not AccountChange.objects.filter(kind=Kind.GROUP_PERMISSION_ADDED).exists()


def test_account_change_rows_cannot_be_changed_or_deleted(medical_assistant: User) -> None:
    row = AccountChange.objects.filter(subject=medical_assistant).first()
    assert row is not None
    for statement in (
        lambda: AccountChange.objects.filter(pk=row.pk).update(detail="nothing happened"),
        lambda: AccountChange.objects.filter(pk=row.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="Cannot update or delete rows"), transaction.atomic():
            statement()


# --- auditors read it ---------------------------------------------------------------------------------


def test_auditors_and_supervisors_read_the_account_changes(
    client: Client, auditor: User, supervisor: User, admin_user: User, medical_assistant: User
) -> None:
    medical_assistant.groups.add(Group.objects.get(name=roles.ROLE_AUDITOR))
    for reader in (auditor, supervisor):
        client.force_login(reader)
        response = client.get(reverse("audit_account_changes"), {"username": medical_assistant.username})
        assert response.status_code == 200
        kinds = [(row.kind, row.detail) for row in response.context["rows"]]
        assert kinds[0] == (Kind.ROLE_ADDED, roles.ROLE_AUDITOR)
        assert "Role added" in response.content.decode()
    client.force_login(admin_user)
    assert client.get(reverse("audit_account_changes")).status_code == 403


def test_the_account_change_list_queries_do_not_grow_with_rows(client: Client, auditor: User) -> None:
    client.force_login(auditor)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("audit_account_changes")).status_code == 200
        return len(ctx.captured_queries)

    UserFactory.create(role=roles.ROLE_CLINICIAN)
    few = queries()
    for _ in range(5):
        UserFactory.create(role=roles.ROLE_LAB_TECH)
    assert queries() == few


def test_every_admin_of_patient_data_is_kept_from_the_admin_role() -> None:
    """An admin whose pages show patients' data (its model leads to a patient: backoffice.audit.patients,
    so the site logs its pages) must be in roles.CLINICAL_RECORDS; so must every one that names its pages
    in the access log (AccessLoggedAdmin)."""
    logged = {
        model
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, AccessLoggedAdmin) or model_admin.shows_patients()  # type: ignore[attr-defined]
    }
    assert MiddlewareEvents in logged  # every model's changes: held from the Admin role by its own permission
    assert logged - {MiddlewareEvents} <= CLINICAL


def test_every_admin_model_is_classified() -> None:
    """A new admin model must be placed in one of the sets above (or be fully the Admin role's)."""
    project = {"backoffice", "procedures", "specimens", "lab"}
    others = {m for m in admin.site._registry if m._meta.app_label not in project}
    assert others <= NO_ACCESS | VIEW_ONLY | VIEW_AND_DELETE
    assert apps.get_model("backoffice", "AccountChange") not in admin.site._registry
