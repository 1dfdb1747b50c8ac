"""Tamper evidence: the worker's checkpoints chain the append-only rows, and audit_verify finds the
first edited, deleted or inserted row of each table, written as the owner would (past the trigger).

Transactional: sealing waits for the transactions that were open at the previous run to end, and a
test's own wrapping transaction would never end.
"""

import threading
from datetime import timedelta

import pghistory
import pgtrigger
import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from backoffice.audit.models import Checkpoint
from backoffice.audit.seal import SEAL_LOCK_KEY, seal, verify
from backoffice.audit.tasks import seal_append_only_rows
from backoffice.models import AccessLog, HandoffEvent, User
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
