"""Sign-in records (django-axes' tables): no typed username in them, the two logs append-only, and a
retention setting that prunes only old rows, as the owner role."""

import datetime as dt
import io
import subprocess
import sys

import pgtrigger
import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.admin import site
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from backoffice.accounts.auth import username_ref
from backoffice.audit import dbroles, seal
from backoffice.models import User
from tests.conftest import PASSWORD
from tests.factories import UserFactory
from tests.security.test_db_roles import BASE_DIR, Roles, _env, roles  # noqa: F401 - the roles fixture

TYPED = "Sekret-Passw0rd-typed"


def sign_in(client: Client, username: str, password: str, ip: str = "10.9.0.1"):  # type: ignore[no-untyped-def]
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _rows_text() -> str:
    """Every column of every row of axes' three tables, as text."""
    text = []
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        for row in model.objects.values():
            text.extend(str(value) for value in row.values())
    return "\n".join(text)


@pytest.mark.django_db
def test_axes_rows_hold_the_keyed_hash_never_what_was_typed(client: Client, medical_assistant: User) -> None:
    # A password typed into the username box, then the real sign-in.
    sign_in(client, TYPED, "x")
    sign_in(client, "ma", "wrong-password-123")
    sign_in(client, "ma", PASSWORD)
    client.post(reverse("logout"))  # the sign-in's row is append-only: signing out changes nothing

    failures = sorted(AccessFailureLog.objects.values_list("username", flat=True))
    assert failures == sorted([username_ref(TYPED), username_ref("ma")])
    assert list(AccessLog.objects.values_list("username", flat=True)) == [username_ref("ma")]
    attempt = AccessAttempt.objects.get()  # the typo's counter; the sign-in cleared the real one's
    assert attempt.username == username_ref(TYPED)
    everything = _rows_text()
    assert TYPED not in everything
    assert "wrong-password-123" not in everything and PASSWORD not in everything
    assert "username=ma" not in everything  # the posted username is masked in the kept POST data


@pytest.mark.django_db
def test_the_failure_and_sign_in_logs_refuse_update_and_delete(client: Client, medical_assistant: User) -> None:
    sign_in(client, "ma", "wrong-password-123")
    sign_in(client, "ma", PASSWORD)
    for model in (AccessFailureLog, AccessLog):
        for change in (
            lambda m=model: m.objects.update(username="someone-else"),
            lambda m=model: m.objects.all().delete(),
        ):
            with pytest.raises(DatabaseError, match="pgtrigger: Cannot update or delete rows"), transaction.atomic():
                change()
        with pytest.raises(DatabaseError, match="pgtrigger"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {model._meta.db_table}")  # noqa: S608 - a table name of ours
    assert AccessFailureLog.objects.count() == AccessLog.objects.count() == 1
    # The live counter is axes' to update and delete: not append-only (the sign-in above cleared it).
    assert not AccessAttempt.objects.exists()


def test_the_app_role_may_only_read_and_append_the_logs_and_they_are_not_sealed() -> None:
    tables = {t.name: t for t in dbroles.tables()}
    for name in ("axes_accesslog", "axes_accessfailurelog", "audit_securityalert"):
        assert tables[name].append_only, name
    assert not tables["axes_accessattempt"].append_only
    grants = dbroles.grant_statements(list(tables), owner="o", app="a")
    assert 'GRANT SELECT, INSERT ON "public"."axes_accesslog" TO "a"' in grants
    assert 'GRANT SELECT, INSERT ON "public"."axes_accessfailurelog" TO "a"' in grants
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."axes_accessattempt" TO "a"' in grants
    # Pruned by retention, so not in the checkpoints (each pruned row would read as deleted).
    sealed = {m._meta.db_table for m in seal.sealed_models()}
    assert "audit_securityalert" in sealed
    assert not sealed & {"axes_accesslog", "axes_accessfailurelog"}


def _backdate(model: type[AccessLog] | type[AccessFailureLog], days: int) -> None:
    """The test's own set-up, as the demo seed backdates its events: the newest row, ``days`` old."""
    proxy = {AccessLog: "audit.SignIn", AccessFailureLog: "audit.SignInFailure"}[model]
    with pgtrigger.ignore(f"{proxy}:append_only"):
        model.objects.filter(pk=model.objects.order_by("-id").values("pk")[:1]).update(
            attempt_time=timezone.now() - dt.timedelta(days=days)
        )


@pytest.mark.django_db
def test_retention_deletes_only_rows_older_than_the_setting(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.SIGNIN_RECORD_RETENTION_DAYS = 30
    UserFactory(username="old-timer")
    for days in (45, 31, 29, 0):
        with transaction.atomic():
            sign_in(Client(), "old-timer", "wrong-password-123", ip=f"10.9.1.{days}")
            sign_in(Client(), "old-timer", PASSWORD, ip=f"10.9.2.{days}")
            _backdate(AccessFailureLog, days)
            _backdate(AccessLog, days)
    sign_in(client, "old-timer", "wrong-password-123", ip="10.9.3.1")  # a live counter: not a record
    AccessAttempt.objects.update(attempt_time=timezone.now() - dt.timedelta(days=40))
    counters = AccessAttempt.objects.count()

    out = io.StringIO()
    call_command("prune_signin_records", stdout=out)
    assert "Deleted 2 failed sign-ins and 2 sign-ins from before" in out.getvalue()
    cutoff = timezone.now() - dt.timedelta(days=30)
    assert AccessFailureLog.objects.count() == 3  # 29 days, today, and the live counter's failure
    assert AccessLog.objects.count() == 2
    assert not AccessFailureLog.objects.filter(attempt_time__lt=cutoff).exists()
    assert not AccessLog.objects.filter(attempt_time__lt=cutoff).exists()
    assert AccessAttempt.objects.count() == counters

    call_command("prune_signin_records", "--days", "1", stdout=out)
    assert AccessLog.objects.count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_pruning_as_the_app_role_is_refused_with_a_clear_message(roles: Roles) -> None:  # noqa: F811
    result = subprocess.run(
        [sys.executable, "manage.py", "prune_signin_records"],
        cwd=BASE_DIR,
        env=_env(roles.url()),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert (
        "holds no DELETE privilege on axes_accessfailurelog, axes_accesslog: run this as the owner role"
        in result.stderr
    )
    assert "DB_CONNECT_AS=owner manage.py prune_signin_records" in result.stderr


@pytest.mark.django_db
def test_admin_finds_a_counter_by_the_typed_username_and_offers_no_edit_of_the_logs(
    client: Client, medical_assistant: User, clinician: User, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.OTP_REQUIRED_FOR_SUPERUSERS = False
    sign_in(Client(), "ma", "wrong-password-123")
    sign_in(Client(), "doc", "wrong-password-123")
    sign_in(Client(), "ma", PASSWORD, ip="10.9.9.9")
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(root)
    counters = site._registry[AccessAttempt]
    request = RequestFactory().get("/admin/axes/accessattempt/")
    request.user = root
    found, _ = counters.get_search_results(request, AccessAttempt.objects.all(), "ma")
    assert list(found) == list(AccessAttempt.objects.filter(username=username_ref("ma")))
    assert found.count() == 1

    log = AccessLog.objects.order_by("id").first()
    assert log is not None
    change = client.get(reverse("admin:axes_accesslog_change", args=[log.pk]))
    assert change.status_code == 200 and b'name="_save"' not in change.content
    assert client.get(reverse("admin:axes_accesslog_delete", args=[log.pk])).status_code == 403
    assert client.get(reverse("admin:axes_accessfailurelog_changelist")).status_code == 200
