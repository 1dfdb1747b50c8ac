"""Backup and restore: ``manage.py backup`` then ``manage.py restore`` into a new, empty database gives
the same rows, the app role's grants, and an audit trail ``audit_verify`` finds clean; a backup of a
tampered database restores with the problem reported; a database that isn't empty is refused.

The suite's login is a superuser: the restore makes its roles (named after the test database, so runs on
one cluster don't meet) and a database of its own, and the fixture drops them all.
"""

import io
import secrets
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pgtrigger
import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors, sql

from backoffice.audit.models import Checkpoint
from backoffice.audit.seal import seal, verify
from backoffice.models import AccessLog, AccessLogPatient, Handoff, HandoffEvent, User
from tests.factories import HandoffFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@dataclass
class Target:
    name: str
    owner: str
    app: str

    def url(self, user: str | None = None, password: str = "") -> str:
        settings = connection.settings_dict
        login = urllib.parse.quote(user or settings["USER"])
        if password:
            login += ":" + urllib.parse.quote(password)
        # The embedded server's socket folder comes in OPTIONS (backoffice.embedded_db), not HOST.
        host, query = settings["HOST"] or settings["OPTIONS"].get("host", ""), ""
        if host.startswith("/"):  # the embedded server's socket folder
            query, host = "?" + urllib.parse.urlencode({"host": host}), ""
        port = f":{settings['PORT']}" if settings["PORT"] else ""
        return f"postgres://{login}@{host}{port}/{self.name}{query}"


def _admin() -> psycopg.Connection:
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """A new, empty database and role names for the restore; dropped afterwards."""
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(50))  # audit_verify's process: production settings
    stem = f"t_{connection.settings_dict['NAME']}_{secrets.token_hex(3)}"[:50]
    made = Target(name=f"{stem}_restore", owner=f"{stem}_owner", app=f"{stem}_app")
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(made.name)))
    try:
        yield made
    finally:
        with _admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(made.name)))
            for role in (made.app, made.owner):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def seeded(django_user_model: type[User]) -> dict[str, int]:
    """Handoffs with their events, access rows naming their patients, all of it sealed."""
    user = django_user_model.objects.create_user("backup-ma", password="x" * 16)
    handoffs = HandoffFactory.create_batch(3)
    for handoff in handoffs:
        HandoffEvent.objects.create(handoff=handoff, actor=user, action="created", from_status="", to_status="waiting")
        log = AccessLog.objects.create(user=user, username=user.username, action="view", what="handoff detail")
        AccessLogPatient.objects.create(log=log, patient=handoff.patient, at=log.at)
    seal()  # notes the horizon
    assert seal().rows  # seals up to it
    assert verify().ok
    return {
        "access_rows": AccessLog.objects.count(),
        "patient_rows": AccessLogPatient.objects.count(),
        "handoffs": Handoff.objects.count(),
        "events": HandoffEvent.objects.count(),
        "checkpoints": Checkpoint.objects.count(),
    }


def _restore(path: Path, target: Target) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("restore", str(path), database_url=target.url(), owner=target.owner, app=target.app, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + str(exc)
    return 0, out.getvalue()


def test_a_backup_restores_into_a_clean_database_that_audit_verify_finds_clean(
    seeded: dict[str, int], target: Target, tmp_path: Path
) -> None:
    path = tmp_path / "clinic.dump"
    out = io.StringIO()
    call_command("backup", str(path), stdout=out)
    assert path.stat().st_size > 0 and "Backed up" in out.getvalue()

    code, output = _restore(path, target)

    assert code == 0, output
    assert "audit_verify on the restored database:" in output
    assert "The audit tables match their checkpoints." in output
    assert "backoffice_accesslog: ok, " in output
    with psycopg.connect(target.url()) as conn:
        counts = {
            "access_rows": conn.execute("SELECT count(*) FROM backoffice_accesslog").fetchone()[0],  # type: ignore[index]
            "patient_rows": conn.execute("SELECT count(*) FROM backoffice_accesslogpatient").fetchone()[0],  # type: ignore[index]
            "handoffs": conn.execute("SELECT count(*) FROM backoffice_handoff").fetchone()[0],  # type: ignore[index]
            "events": conn.execute("SELECT count(*) FROM backoffice_handoffevent").fetchone()[0],  # type: ignore[index]
            "checkpoints": conn.execute("SELECT count(*) FROM audit_checkpoint").fetchone()[0],  # type: ignore[index]
        }
        owners = conn.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        ).fetchall()
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD 'restore-probe'").format(sql.Identifier(target.app)))
    assert counts == seeded
    assert owners == [(target.owner,)]
    # The app role got its grants back: it reads and appends, and can't rewrite the access log.
    with psycopg.connect(target.url(target.app, "restore-probe")) as conn:
        assert conn.execute("SELECT count(*) FROM backoffice_accesslog").fetchone() == (seeded["access_rows"],)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM backoffice_accesslog")


def test_a_backup_of_a_tampered_database_restores_with_the_edit_reported(
    seeded: dict[str, int], target: Target, tmp_path: Path
) -> None:
    row = AccessLog.objects.order_by("id").first()
    assert row is not None
    with pgtrigger.ignore("backoffice.AccessLog:append_only"):  # as the owner could
        AccessLog.objects.filter(pk=row.pk).update(what="nothing to see")
    path = tmp_path / "tampered.dump"
    call_command("backup", str(path), stdout=io.StringIO())

    code, output = _restore(path, target)

    assert code == 1
    assert f"row backoffice_accesslog id {row.pk} was edited" in output
    assert "Restored, but audit_verify found problems" in output


def test_restore_refuses_a_database_that_is_not_empty(seeded: dict[str, int], target: Target, tmp_path: Path) -> None:
    path = tmp_path / "clinic.dump"
    call_command("backup", str(path), stdout=io.StringIO())
    into_the_test_database = Target(name=connection.settings_dict["NAME"], owner=target.owner, app=target.app)

    with pytest.raises(CommandError, match=r"is not empty .*restore only into a new, empty database"):
        call_command(
            "restore",
            str(path),
            database_url=into_the_test_database.url(),
            owner=target.owner,
            app=target.app,
            stdout=io.StringIO(),
        )
    assert AccessLog.objects.count() == seeded["access_rows"]


def test_backup_and_restore_say_what_is_wrong_with_their_file(tmp_path: Path, target: Target) -> None:
    with pytest.raises(CommandError, match="is a folder"):
        call_command("backup", str(tmp_path), stdout=io.StringIO())
    with pytest.raises(CommandError, match="No backup file at"):
        call_command("restore", str(tmp_path / "missing.dump"), database_url=target.url(), stdout=io.StringIO())
    junk = tmp_path / "junk.dump"
    junk.write_text("not a backup")
    with pytest.raises(CommandError, match="is not a backup pg_restore can read"):
        call_command(
            "restore", str(junk), database_url=target.url(), owner=target.owner, app=target.app, stdout=io.StringIO()
        )
