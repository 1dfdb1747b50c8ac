"""Writing thousands of new rows of one model at once: ``insert(objs)``, a ``bulk_create`` for hot
paths, and ``build(model, **values)``, the instances for it made without Model.__init__'s keyword path.

The HL7 intake files a result row and its event per observation, hundreds of messages at a time.
``bulk_create`` compiles an INSERT value by value in Python, which costs more than the database's
own work on the rows; ``insert`` sends them with PostgreSQL's COPY through psycopg (its C dumpers)
instead, with the same result for the caller: every row gets its id (drawn from the table's
sequence first, in one statement), the instances are marked saved, and text is stripped of bidi
controls as every save is (backoffice.text).

Same rows, same triggers: COPY fires the tables' row triggers (pghistory's history, the
append-only guards) as an INSERT does. The id draw is a statement pghistory adds its context to,
so history rows written by the COPY after it carry the request's or the intake's context. Each
COPY is counted as a query where Django counts them (tests' ``assertNumQueries``, DEBUG's log).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cache
from operator import itemgetter
from typing import Any, cast

from django.db import connection, models, transaction
from django.db.models import signals
from django.db.models.base import ModelState

from backoffice.text import strip_bidi_rows

# Field types whose Python value psycopg writes as Django would have (no get_db_prep_save needed).
_NATIVE = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
        "SmallIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "PositiveBigIntegerField",
        "CharField",
        "TextField",
        "EmailField",
        "SlugField",
        "URLField",
        "BooleanField",
        "DateTimeField",
        "DateField",
        "UUIDField",
        "ForeignKey",
        "OneToOneField",
        "DecimalField",
        "FloatField",
    }
)


@cache
def _columns(model: type[models.Model]) -> tuple[tuple[str, ...], Any, tuple[tuple[int, Any], ...]]:
    """The model's concrete columns; a getter of their values from a new instance's ``__dict__`` (one
    C call a row, not a getattr a column); and, by position, the fields whose value needs Django's
    preparation (``get_db_prep_save`` after ``pre_save``)."""
    fields = [cast(Any, f) for f in model._meta.concrete_fields]
    prepared = tuple(
        (n, f)
        for n, f in enumerate(fields)
        if f.get_internal_type() not in _NATIVE or getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    )
    return tuple(f.column for f in fields), itemgetter(*(f.attname for f in fields)), prepared


@cache
def _build_plan(model: type[models.Model]) -> tuple[tuple[str, str, Any, Any], ...]:
    """Per concrete field, in ``__init__``'s positional order: attname, name, the related field (or
    None) and the callable giving its default (Field._get_default, as ``get_default`` calls it)."""
    return tuple(
        (f.attname, f.name, f if f.is_relation else None, f._get_default)
        for f in (cast(Any, f) for f in model._meta.concrete_fields)
    )


def build[M: models.Model](model: type[M], /, **values: Any) -> M:
    """``model(**values)`` for a row about to be inserted, the same instance made the quicker way.

    Model.__init__ reads every field's keyword or default and sets each column and related instance
    through its descriptor, with a signal before and after: most of the HL7 intake's Python time at
    10,000 messages (a result and an event per observation). Here the columns go straight into the
    new instance's ``__dict__`` (defaults called as __init__ calls them) and a related instance given
    by name is cached as its descriptor would cache it. A model something listens to pre_init or
    post_init for is made by __init__; a name that is not a field is refused, as __init__ refuses it.
    """
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return model(**values)
    obj = model.__new__(model)
    obj._state = ModelState()
    columns = obj.__dict__
    related: list[tuple[Any, models.Model]] = []
    for attname, name, field, default in _build_plan(model):
        if name in values:
            value = values.pop(name)
            if field is not None and attname != name:  # an instance (or None) for a foreign key
                if value is not None:
                    related.append((field, value))
                value = value.pk if value is not None else None
        elif attname in values:
            value = values.pop(attname)
        else:
            value = default()
        columns[attname] = value
    if values:
        raise TypeError(f"{model.__name__}() got unexpected keyword arguments: {', '.join(values)}")
    for field, instance in related:
        field.set_cached_value(obj, instance)
        if not field.remote_field.multiple:  # one-to-one: the other side's cache too, as the descriptor sets it
            field.remote_field.set_cached_value(instance, obj)
    return obj


# Fewer rows than this go by bulk_create's one INSERT: COPY's two statements pay off from here.
COPY_FROM = 50


def insert[M: models.Model](objs: Sequence[M]) -> Sequence[M]:
    """Save these new instances of one model in two statements (ids, then COPY); returns them, saved."""
    if len(objs) < COPY_FROM:
        return type(objs[0])._default_manager.bulk_create(strip_bidi_rows(objs)) if objs else objs
    if not transaction.get_connection().in_atomic_block:
        raise transaction.TransactionManagementError("bulk.insert runs inside the caller's transaction.atomic().")
    model = type(objs[0])
    meta = model._meta
    assert meta.pk is not None
    quote = connection.ops.quote_name
    strip_bidi_rows(objs)
    with connection.cursor() as cursor:
        # A CTE, not a bare SELECT: pghistory sets its context (the GUCs its triggers read) on this one.
        cursor.execute(
            "WITH ids AS (SELECT nextval(pg_get_serial_sequence(%s, %s)) AS id FROM generate_series(1, %s)) "
            "SELECT id FROM ids ORDER BY id",
            [quote(meta.db_table), meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
        names, values_of, prepared = _columns(model)
        sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
        started = time.monotonic()
        with cursor.cursor.copy(sql) as copy:
            for obj in objs:
                row = values_of(obj.__dict__)
                if prepared:
                    row = list(row)
                    for n, f in prepared:
                        row[n] = f.get_db_prep_save(f.pre_save(obj, True), connection)
                copy.write_row(row)
        if connection.queries_logged:
            took = time.monotonic() - started
            connection.queries_log.append({"sql": f"{sql} -- {len(objs)} rows", "time": f"{took:.3f}"})
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs
