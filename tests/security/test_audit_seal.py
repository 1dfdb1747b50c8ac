"""Tamper evidence: the worker's checkpoints chain the append-only rows, and audit_verify finds the
first edited, deleted or inserted row of each table, written as the owner would (past the trigger).

Transactional: sealing waits for the transactions that were open at the previous run to end, and a
test's own wrapping transaction would never end.
"""

import threading
from datetime import UTC, timedelta
from io import StringIO
from typing import cast

import pghistory
import pgtrigger
import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from backoffice.audit.log_retention import RetentionRefused, cut_off, retain, years_back
from backoffice.audit.models import Checkpoint
from backoffice.audit.seal import SEAL_LOCK_KEY, TableReport, seal, verify
from backoffice.audit.tasks import seal_append_only_rows
from backoffice.models import AccessLog, AccessLogPatient, HandoffEvent, User
from tests.factories import HandoffFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

OWNER_BYPASS = ("backoffice.AccessLog:append_only", "backoffice.HandoffEvent:append_only")


def _log(user: User, what: str) -> AccessLog:
    return AccessLog.objects.create(user=user, username=user.username, action="view", what=what)


def _skip_an_id() -> int:
    """Take an access-log id and leave it unused, as a rolled-back request does."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('backoffice_accesslog', 'id'))")
        return int(cursor.fetchone()[0])


@pytest.fixture
def sealed(django_user_model: type[User]) -> dict[str, object]:
    """Access rows with a gap in their ids, a handoff's events, all of it in two checkpoints."""
    user = django_user_model.objects.create_user("sealer", password="x" * 16)
    first = [_log(user, f"page {n}") for n in range(3)]
    gap = _skip_an_id()
    rest = [_log(user, f"page {n}") for n in range(3, 6)]
    handoff = HandoffFactory()
    events = [
        HandoffEvent.objects.create(handoff=handoff, actor=user, action=action, from_status=old, to_status=new)
        for action, old, new in (("created", "", "waiting"), ("claimed", "waiting", "claimed"))
    ]
    seal()  # notes the horizon
    result = seal()  # seals up to it
    assert result.tables["backoffice_accesslog"] == 6
    assert verify().ok
    return {"user": user, "logs": first + rest, "gap": gap, "events": events, "checkpoint": result.checkpoint}


def _verify_output() -> tuple[int, str]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("audit_verify", stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def test_a_clean_chain_verifies_and_the_command_says_so(sealed: dict[str, object]) -> None:
    code, out = _verify_output()
    assert code == 0
    assert "backoffice_accesslog: ok, 6 rows sealed" in out
    assert "The audit tables match their checkpoints." in out


def test_an_edited_row_is_reported(sealed: dict[str, object]) -> None:
    target = sealed["logs"][4]  # type: ignore[index]
    with pgtrigger.ignore(*OWNER_BYPASS):
        AccessLog.objects.filter(pk=target.pk).update(what="nothing to see")
    code, out = _verify_output()
    assert code == 1
    assert f"backoffice_accesslog: row backoffice_accesslog id {target.pk} was edited" in out
    assert "backoffice_handoffevent: ok" in out


def test_a_deleted_row_is_reported(sealed: dict[str, object]) -> None:
    event = sealed["events"][0]  # type: ignore[index]
    with pgtrigger.ignore(*OWNER_BYPASS):
        HandoffEvent.objects.filter(pk=event.pk).delete()
    code, out = _verify_output()
    assert code == 1
    assert f"row backoffice_handoffevent id {event.pk} was deleted" in out
    assert "backoffice_accesslog: ok" in out


def test_an_inserted_row_is_reported(sealed: dict[str, object]) -> None:
    """A row slipped into the sealed ids (the gap a rolled-back request left), backdated."""
    user = sealed["user"]
    AccessLog.objects.create(
        pk=sealed["gap"],
        user=user,
        username="sealer",
        action="view",
        what="alibi",
        at=timezone.now() - timedelta(days=1),
    )
    code, out = _verify_output()
    assert code == 1
    assert f"row backoffice_accesslog id {sealed['gap']} was inserted" in out


def test_the_first_problem_of_each_table_is_reported(sealed: dict[str, object]) -> None:
    logs, events = sealed["logs"], sealed["events"]
    with pgtrigger.ignore(*OWNER_BYPASS):
        AccessLog.objects.filter(pk__in=[logs[1].pk, logs[5].pk]).update(what="x")  # type: ignore[index]
        HandoffEvent.objects.filter(pk=events[0].pk).update(note="x")  # type: ignore[index]
    report = verify()
    problems = {t.table: t.problem for t in report.tables if t.problem}
    assert problems == {
        "backoffice_accesslog": f"row backoffice_accesslog id {logs[1].pk} was edited "  # type: ignore[index]
        f"(sealed by checkpoint #{sealed['checkpoint'].pk})",  # type: ignore[attr-defined]
        "backoffice_handoffevent": f"row backoffice_handoffevent id {events[0].pk} was edited "  # type: ignore[index]
        f"(sealed by checkpoint #{sealed['checkpoint'].pk})",  # type: ignore[attr-defined]
    }


def test_edited_or_removed_checkpoints_break_the_chain(sealed: dict[str, object]) -> None:
    _log(sealed["user"], "later")  # type: ignore[arg-type]
    seal()
    seal()
    first, second, *_ = Checkpoint.objects.order_by("id")
    with pgtrigger.ignore("audit.Checkpoint:append_only"):
        Checkpoint.objects.filter(pk=second.pk).update(payload={**second.payload, "through": {}})
    assert f"checkpoint #{second.pk} was edited" in verify().chain_problem
    with pgtrigger.ignore("audit.Checkpoint:append_only"):
        Checkpoint.objects.filter(pk=second.pk).delete()
    report = verify()
    assert not report.ok
    assert "does not follow the one before it" in report.chain_problem
    assert verify(head=(first.pk, "0" * 64)).head_problem.startswith(f"checkpoint #{first.pk} has hash")


def test_a_row_committed_late_with_a_lower_id_is_sealed_not_reported(django_user_model: type[User]) -> None:
    """Another session takes an id and commits after a later id is visible: sealing waits for it."""
    user = django_user_model.objects.create_user("late", password="x" * 16)
    _log(user, "before")
    seal()
    seal()
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute(
            "INSERT INTO backoffice_accesslog (at, user_id, username, action, what, object_ref, outcome) "
            "VALUES (now(), %s, 'late', 'view', 'slow request', '', 'ok')",
            [user.pk],
        )
        after = _log(user, "after")  # committed, with a higher id than the open one
        seal()  # notes the horizon at `after`, with the other transaction open
        held = seal()  # that transaction is still open: nothing past the previous range
        assert held.tables.get("backoffice_accesslog", 0) == 0
        other.commit()
    seal()
    done = seal()
    assert done.checkpoint.payload["through"]["backoffice_accesslog"] >= after.pk
    report = verify()
    assert report.ok, [t.problem for t in report.tables if t.problem]
    assert next(t for t in report.tables if t.table == "backoffice_accesslog").sealed_rows == 3


def test_unsealed_rows_with_an_old_checkpoint_are_reported_as_stale(sealed: dict[str, object]) -> None:
    _log(sealed["user"], "unsealed")  # type: ignore[arg-type]
    assert verify().ok
    later = verify(now=timezone.now() + timedelta(minutes=10))
    assert "the worker is stopped, or checkpoints were deleted" in later.stale_problem
    assert "backoffice_accesslog 1" in later.stale_problem


def test_history_rows_are_sealed_too(django_user_model: type[User]) -> None:
    handoff = HandoffFactory()
    with pghistory.context(note="test"):
        handoff.clinical_note = "changed"
        handoff.save()
    seal()
    result = seal()
    assert result.tables["backoffice_handoffhistory"] >= 2
    assert result.tables["backoffice_patienthistory"] >= 1


def test_the_worker_task_seals_and_queues_its_successor() -> None:
    assert seal_append_only_rows.call() == 0
    assert Checkpoint.objects.count() == 1


def test_one_sealer_at_a_time() -> None:
    """A second sealer waits for the session lock, then chains onto the checkpoint written meanwhile."""
    first = seal().checkpoint
    done: list[Checkpoint] = []

    def sealer() -> None:
        try:
            done.append(seal().checkpoint)
        finally:
            connection.close()

    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [SEAL_LOCK_KEY])
        thread = threading.Thread(target=sealer)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive() and not done  # waiting for the lock
        other.execute("SELECT pg_advisory_unlock(%s)", [SEAL_LOCK_KEY])
        thread.join(timeout=30)
    assert done and done[0].prev_hash == first.hash


def test_a_long_backlog_is_sealed_a_span_at_a_time(
    django_user_model: type[User], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run on years of rows: at most MAX_SPAN ids of a table per checkpoint, none skipped."""
    monkeypatch.setattr("backoffice.audit.seal.MAX_SPAN", 2)
    user = django_user_model.objects.create_user("backlog", password="x" * 16)
    logs = [_log(user, f"page {n}") for n in range(5)]
    seal()
    spans = [seal().tables.get("backoffice_accesslog", 0) for _ in range(4)]
    assert spans[:3] == [2, 2, 1]
    report = verify()
    assert report.ok
    assert next(t for t in report.tables if t.table == "backoffice_accesslog").sealed_through == logs[-1].pk


# --- Retention (backoffice.audit.log_retention, manage.py audit_retention) ---------------------------

YEARS_AGO_7 = timedelta(days=7 * 366)


def _old_log(user: User, what: str, patient: object, at: object) -> AccessLog:
    log = AccessLog.objects.create(user=user, username=user.username, action="list", what=what, at=at)
    AccessLogPatient.objects.create(log=log, patient=patient, at=log.at)
    return log


@pytest.fixture
def years_of_log(django_user_model: type[User]) -> dict[str, object]:
    """Seven years ago: an access row (with its patient) and a handoff event sealed then; an access row
    of that time sealed only today (sealed late); today's rows, sealed."""
    now = timezone.now()
    old = now - YEARS_AGO_7
    user = django_user_model.objects.create_user("retainer", password="x" * 16)
    handoff = HandoffFactory()
    old_event = HandoffEvent.objects.create(
        handoff=handoff, actor=user, action="created", from_status="", to_status="waiting"
    )
    sealed_then = _old_log(user, "old queue", handoff.patient, old)
    seal(now=old + timedelta(minutes=1))
    seal(now=old + timedelta(minutes=2))
    sealed_late = _old_log(user, "old queue, sealed late", handoff.patient, old + timedelta(minutes=3))
    young = [_log(user, f"page {n}") for n in range(3)]
    seal()
    seal()
    assert verify().ok
    return {
        "user": user,
        "now": now,
        "old": [sealed_then, sealed_late],
        "young": young,
        "old_event": old_event,
        "old_checkpoints": Checkpoint.objects.filter(at__lt=now - timedelta(days=365)).count(),
    }


def _table(report: object, name: str) -> TableReport:
    return next(t for t in report.tables if t.table == name)  # type: ignore[attr-defined]


def test_retention_never_removes_anything_inside_the_window(settings: object) -> None:
    with pytest.raises(RetentionRefused, match="younger than 6 years"):
        cut_off(years=5)
    settings.ACCESS_LOG_RETENTION_YEARS = 8  # type: ignore[attr-defined]
    with pytest.raises(RetentionRefused, match=r"younger than 8 years .*asked for 7"):
        cut_off(years=7)
    with pytest.raises(CommandError, match="younger than 8 years"):
        call_command("audit_retention", years=6, stdout=StringIO())
    now = timezone.now()
    assert cut_off(now=now) == years_back(now, 8)
    leap = timezone.datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert years_back(leap, 6) == timezone.datetime(2022, 2, 28, 12, tzinfo=UTC)


def test_retention_removes_old_rows_and_checkpoints_and_audit_verify_stays_clean(
    years_of_log: dict[str, object],
) -> None:
    young = cast(list[AccessLog], years_of_log["young"])
    old = cast(list[AccessLog], years_of_log["old"])
    assert years_of_log["old_checkpoints"] == 2
    dry = retain(dry_run=True)
    assert dry.checkpoint is None and dry.removed["backoffice_accesslog"] == 2
    assert AccessLog.objects.filter(pk__in=[o.pk for o in old]).count() == 2

    out = StringIO()
    call_command("audit_retention", stdout=out)

    assert "Removed 2 backoffice_accesslog, 2 backoffice_accesslogpatient" in out.getvalue()
    assert "and 2 checkpoints" in out.getvalue()
    assert not AccessLog.objects.filter(pk__in=[o.pk for o in old]).exists()
    assert not AccessLogPatient.objects.filter(log_id__in=[o.pk for o in old]).exists()
    assert set(AccessLog.objects.values_list("pk", flat=True)) >= {y.pk for y in young}
    assert not Checkpoint.objects.filter(at__lt=timezone.now() - timedelta(days=365)).exists()
    retention = Checkpoint.objects.order_by("-id").first()
    assert retention is not None and retention.payload["retention"]["checkpoints"]["pruned"] == 2

    report = verify()
    assert report.ok, (report.chain_problem, [t.problem for t in report.tables])
    log = _table(report, "backoffice_accesslog")
    assert log.removed_rows == 1  # the one a kept checkpoint sealed; the other was sealed by a pruned one
    assert log.sealed_rows == 3
    # The handoff event the pruned checkpoints sealed is kept, older than the kept chain.
    assert _table(report, "backoffice_handoffevent").past_chain_rows == 1
    code, output = _verify_output()
    assert code == 0 and "1 removed by retention" in output and "1 older than the kept checkpoints" in output

    # The worker seals on from the retention checkpoint, and a later run has nothing to remove.
    _log(cast(User, years_of_log["user"]), "after retention")
    seal()
    assert seal().rows == 1
    assert verify().ok
    again = StringIO()
    call_command("audit_retention", stdout=again)
    assert "Nothing to remove" in again.getvalue()


def test_after_retention_a_row_deleted_any_other_way_is_still_reported(years_of_log: dict[str, object]) -> None:
    retain()
    victim = cast(list[AccessLog], years_of_log["young"])[1]
    with pgtrigger.ignore(*OWNER_BYPASS):
        AccessLog.objects.filter(pk=victim.pk).delete()
    problem = _table(verify(), "backoffice_accesslog").problem
    assert problem.startswith(f"row backoffice_accesslog id {victim.pk} was deleted")


def test_a_deleted_retention_checkpoint_breaks_the_chain(years_of_log: dict[str, object]) -> None:
    """Pruned checkpoints leave a chain that starts at the retention checkpoint's anchor: without it
    the oldest kept checkpoint follows nothing."""
    retention = retain().checkpoint
    assert retention is not None
    with pgtrigger.ignore("audit.Checkpoint:append_only"):
        Checkpoint.objects.filter(pk=retention.pk).delete()
    assert "does not follow the one before it" in verify().chain_problem


def test_old_rows_not_yet_sealed_stop_the_run(years_of_log: dict[str, object]) -> None:
    user = cast(User, years_of_log["user"])
    patient = cast(list[AccessLog], years_of_log["old"])[0].patients.get()
    _old_log(user, "old, never sealed", patient, timezone.now() - YEARS_AGO_7)
    with pytest.raises(RetentionRefused, match="that no checkpoint has sealed yet"):
        retain()
    assert AccessLog.objects.filter(what__startswith="old").count() == 3  # nothing removed
