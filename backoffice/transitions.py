"""The one way a status changes, in every app: lock the row, check the table, move, append the event.

Each app's services open the transaction; these functions work inside it:

- ``lock(obj)`` re-reads the row ``FOR NO KEY UPDATE`` into the caller's own instance, so the
  service decides on what is committed and the caller sees what was written, with no copy.
- ``move(obj, table=..., to=..., ...)`` checks the app's workflow table, writes the status (with
  ``update_fields``, stamping ``<status>_changed_at`` and bumping ``version`` where the model has
  them) and appends the event row.
- ``edit`` saves a change that is not a status move (a station assigned) with its event; ``record``
  and ``record_all`` append events that change no row (an identity mismatch, items ordered, the
  overdue flag).
- ``Batch`` queues the same moves and records for many rows and writes them together (``flush``):
  one statement per model and set of fields, one INSERT per event model. Bulk work (the HL7
  intake's hundreds of messages) uses it; the table is asked when a move is queued, as ``move`` does.
- ``hold(obj)`` locks a row FOR SHARE that a decision is read from but that is not changed (the
  kit lot a result is entered on, whose QC a failing run would change).
- ``require(user, perm, doing)`` is the one permission guard, ``offer(check)`` turns a guard into
  what a page may offer (see each app's ``*_actions`` selector).

An object's events are the rows of its ``events`` relation: each app's event model extends
``TransitionEvent`` with a foreign key to its object named with ``related_name="events"``.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pgtrigger
from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from backoffice import bulk
from backoffice.text import strip_bidi_rows
from backoffice.workflow import PermissionRefused, Table, TransitionNotAllowed

if TYPE_CHECKING:
    from backoffice.models import User

# Append-only: the application's database user can neither change nor delete these rows. A trigger
# refuses UPDATE and DELETE (TRUNCATE, which only a test flush or an operator uses, is not a row event).
APPEND_ONLY = pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)


class TransitionEvent(models.Model):
    """Something done to an object: who, when, from which status to which, and why. Append-only.

    A subclass adds the foreign key to its object (``related_name="events"``) and its own ``Action``
    choices; ``from_status`` / ``to_status`` hold the object's status before and after (equal when
    the event changed no status, empty ``from_status`` when it created the object).
    """

    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=30)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        abstract = True
        ordering = ["at", "id"]
        triggers = [APPEND_ONLY]

    def __str__(self) -> str:
        display = getattr(self, "get_action_display", None)
        return f"{display() if display else self.action} at {self.at:%Y-%m-%d %H:%M}"


def require(user: "User", perm: str, doing: str) -> None:
    """Refuse an inactive user or one whose role lacks ``perm``; ``doing`` completes the message."""
    if not user.is_active or not user.has_perm(perm):
        raise PermissionRefused(f"Your role doesn't allow you to {doing}.")


def lock[M: models.Model](obj: M, *, related: Sequence[str] = ()) -> M:
    """Re-read ``obj``'s row FOR NO KEY UPDATE into ``obj`` itself, with these relations joined.

    Inside the caller's transaction; the lock holds until it commits. NO KEY: rows that only point
    at this one (events, ordered items) can still be inserted meanwhile. Relations not in
    ``related`` are dropped from the instance's cache, so none answers with a row read before the lock.
    """
    queryset = type(obj)._base_manager.select_for_update(no_key=True, of=("self",))
    if related:
        queryset = queryset.select_related(*related)
    obj.refresh_from_db(from_queryset=queryset)
    obj._state.adding = False  # lock(Station(pk=...)) reads a row by its id alone
    return obj


def hold(obj: models.Model) -> None:
    """Lock ``obj``'s row FOR SHARE until the caller's transaction commits: a decision read from it stands.

    Many transactions may hold it at once (results entered on one kit lot side by side); a
    ``lock`` on it (a QC run on that lot) waits for them, and they wait for it, so neither decides
    on a state the other is about to change.
    """
    _require_transaction()
    table = connection.ops.quote_name(obj._meta.db_table)
    assert obj._meta.pk is not None and obj._meta.pk.column is not None
    column = connection.ops.quote_name(obj._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} WHERE {column} = %s FOR SHARE", [obj.pk])  # noqa: S608 - names quoted


def _events_of(model: type[models.Model]) -> tuple[type[TransitionEvent], str]:
    """The event model of ``model`` and the name of its foreign key to it."""
    relation = model._meta.get_field("events")
    event_model = cast(type[TransitionEvent], relation.related_model)
    return event_model, cast(Any, relation).field.name


def _note(event_model: type[TransitionEvent], note: str) -> str:
    limit = cast(models.CharField, event_model._meta.get_field("note")).max_length or 500
    return note[:limit]


def _event(
    obj: models.Model,
    *,
    by: "User",
    action: str,
    note: str,
    from_status: str,
    at: datetime | None,
    extra: Mapping[str, object] | None = None,
) -> TransitionEvent:
    event_model, fk = _events_of(type(obj))
    status = _status_field(type(obj))
    return bulk.build(
        event_model,
        **{fk: obj},
        at=at or timezone.now(),
        actor=by,
        action=action,
        from_status=from_status,
        to_status=getattr(obj, status),
        note=_note(event_model, note),
        **(extra or {}),
    )


def _status_field(model: type[models.Model]) -> str:
    """The field holding the status: ``status``, unless the model names another in STATUS_FIELD."""
    return cast(str, getattr(model, "STATUS_FIELD", "status"))


def _has_field(obj: models.Model, name: str) -> bool:
    return any(f.name == name for f in obj._meta.concrete_fields)


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("Transitions run inside the service's transaction.atomic().")


def move(
    obj: models.Model,
    *,
    table: Table,
    to: str,
    by: "User",
    action: str,
    note: str = "",
    fields: Iterable[str] = (),
    extra: Mapping[str, object] | None = None,
) -> TransitionEvent:
    """Move ``obj`` to status ``to`` if ``table`` allows it, save, and append the event.

    ``fields`` names the other fields the service set for this move; they are saved with it.
    ``extra`` fills the app's own event fields (a hand-over's from and to locations).
    """
    _require_transaction()
    status = _status_field(type(obj))
    current = getattr(obj, status)
    table.check(current, to)
    setattr(obj, status, to)
    changed = [status, *fields]
    now = timezone.now()  # the row's change time and its event's are one instant
    if _has_field(obj, f"{status}_changed_at"):
        setattr(obj, f"{status}_changed_at", now)
        changed.append(f"{status}_changed_at")
    if _has_field(obj, "version"):
        obj.version += 1  # type: ignore[attr-defined]
        changed.append("version")
    obj.save(update_fields=changed)
    event = _event(obj, by=by, action=action, note=note, from_status=current, at=now, extra=extra)
    event.save()
    return event


def edit(obj: models.Model, *, by: "User", action: str, fields: Iterable[str], note: str = "") -> TransitionEvent:
    """Save fields the service changed without moving the status (a station assigned), with its event."""
    _require_transaction()
    changed = list(fields)
    if _has_field(obj, "version"):
        obj.version += 1  # type: ignore[attr-defined]
        changed.append("version")
    obj.save(update_fields=changed)
    return record(obj, by=by, action=action, note=note)


def record(
    obj: models.Model, *, by: "User", action: str, note: str = "", created: bool = False, at: datetime | None = None
) -> TransitionEvent:
    """Append an event that changes no row of ``obj``: its status before and after are the same.

    ``created`` marks the event that brought ``obj`` into being (no status before).
    """
    _require_transaction()
    current = getattr(obj, _status_field(type(obj)))
    event = _event(obj, by=by, action=action, note=note, from_status="" if created else current, at=at)
    event.save()
    return event


def record_all(
    objs: Sequence[models.Model],
    *,
    by: "User",
    action: str,
    note: Callable[[Any], str] | str = "",
    created: bool = False,
    at: datetime | None = None,
) -> list[TransitionEvent]:
    """``record`` for many objects of one model, in one INSERT."""
    _require_transaction()
    if not objs:
        return []
    at = at or timezone.now()
    status = _status_field(type(objs[0]))
    events = [
        _event(
            obj,
            by=by,
            action=action,
            note=note(obj) if callable(note) else note,
            from_status="" if created else getattr(obj, status),
            at=at,
        )
        for obj in objs
    ]
    return list(bulk.insert(events))


class Batch:
    """``move``, ``edit`` and ``record`` for many rows, written together by ``flush``.

    ``move`` checks the workflow table and sets the status (and ``<status>_changed_at``,
    ``version``) on the instance at once, as the single ``move`` does, so a refused move raises
    before anything is written; ``flush`` then saves each model's queued rows in one UPDATE per set
    of fields and appends every event model's rows in one INSERT, in the order they
    were queued. The caller holds the rows' locks and queues a row once per flush.
    """

    def __init__(self) -> None:
        self._rows: dict[tuple[type[models.Model], tuple[str, ...]], list[models.Model]] = {}
        self._events: dict[type[TransitionEvent], list[TransitionEvent]] = {}

    def move(
        self,
        obj: models.Model,
        *,
        table: Table,
        to: str,
        by: "User",
        action: str,
        note: str = "",
        fields: Iterable[str] = (),
        extra: Mapping[str, object] | None = None,
    ) -> TransitionEvent:
        status = _status_field(type(obj))
        current = getattr(obj, status)
        table.check(current, to)
        setattr(obj, status, to)
        changed = [status, *fields]
        now = timezone.now()
        if _has_field(obj, f"{status}_changed_at"):
            setattr(obj, f"{status}_changed_at", now)
            changed.append(f"{status}_changed_at")
        self._save(obj, changed)
        return self._event(_event(obj, by=by, action=action, note=note, from_status=current, at=now, extra=extra))

    def edit(
        self, obj: models.Model, *, by: "User", action: str, fields: Iterable[str], note: str = ""
    ) -> TransitionEvent:
        self._save(obj, list(fields))
        return self.record(obj, by=by, action=action, note=note)

    def record(
        self,
        obj: models.Model,
        *,
        by: "User",
        action: str,
        note: str = "",
        created: bool = False,
        at: datetime | None = None,
    ) -> TransitionEvent:
        current = getattr(obj, _status_field(type(obj)))
        return self._event(_event(obj, by=by, action=action, note=note, from_status="" if created else current, at=at))

    def _save(self, obj: models.Model, changed: list[str]) -> None:
        if _has_field(obj, "version"):
            obj.version += 1  # type: ignore[attr-defined]
            changed.append("version")
        self._rows.setdefault((type(obj), tuple(changed)), []).append(obj)

    def _event(self, event: TransitionEvent) -> TransitionEvent:
        self._events.setdefault(type(event), []).append(event)
        return event

    def flush(self) -> None:
        """Write what is queued: the rows' changes, then their events (each pointing at its row)."""
        _require_transaction()
        rows, self._rows = self._rows, {}
        events, self._events = self._events, {}
        for (model, fields), objs in rows.items():
            _update_rows(model, strip_bidi_rows(objs), fields)
        for queued in events.values():
            bulk.insert(queued)


def _update_rows(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """``save(update_fields=fields)`` for each of ``objs``, in one ``UPDATE … FROM (VALUES …)`` (per
    32,000 parameters): each row's values, cast to its columns' types, joined on the primary key."""
    meta = model._meta
    assert meta.pk is not None
    columns = [cast(Any, meta.get_field(name)) for name in fields]
    pk = cast(Any, meta.pk)
    quote = connection.ops.quote_name
    casts = [f"%s::{pk.db_type(connection)}", *(f"%s::{f.db_type(connection)}" for f in columns)]
    row = f"({', '.join(casts)})"
    names = ", ".join(quote(n) for n in ["pk", *(f.column for f in columns)])
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in columns)
    per_statement = max(1, 32000 // len(casts))
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start : start + per_statement]
            params: list[Any] = []
            for obj in chunk:
                params.append(obj.pk)
                params.extend(f.get_db_prep_save(f.pre_save(obj, False), connection) for f in columns)
            sql = (
                f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 - names quoted, values bound
                f"FROM (VALUES {', '.join([row] * len(chunk))}) AS v({names}) WHERE t.{quote(pk.column)} = v.{quote('pk')}"
            )
            cursor.execute(sql, params)


@dataclass(frozen=True)
class Offer:
    """Whether a page may offer an action, and if not, the service's own words for why."""

    ok: bool
    why: str = ""

    def __bool__(self) -> bool:
        return self.ok


def offer(check: Callable[[], object]) -> Offer:
    """Run a service's guard without changing anything: an Offer it passes, or its refusal."""
    try:
        check()
    except TransitionNotAllowed as exc:
        return Offer(False, str(exc))
    return Offer(True)
