"""Whose data a row is: the way from any model to its patient, read from the models themselves.

A row belongs to a patient when a chain of foreign keys leads from it to ``backoffice.Patient``: a
handoff event through its handoff, a vital sign through its documentation, order and handoff, a
history snapshot through the copy of its record's keys. ``patient_path`` finds the shortest such
chain once per model, so a model added later is covered without anyone declaring it; admin's pages
(``backoffice.admin_access``) log the patients of every row they show this way.

Reading the patients costs no query when the rows already carry the way there (the list's
``list_select_related``), and one query otherwise, whatever the number of rows or models.
"""

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any, cast

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import QuerySet

# Longer chains than this are not a record of the patient but a neighbour's (none is longer than 5 today).
MAX_HOPS = 6

PatientPath = tuple[models.ForeignKey, ...]


def _patient_model() -> type[models.Model]:
    return apps.get_model("backoffice", "Patient")


@cache
def patient_path(model: type[models.Model]) -> PatientPath | None:
    """The foreign keys from ``model`` to its patient (``()`` for Patient itself), or None if it has none.

    Breadth first over forward many-to-one and one-to-one fields, so the shortest chain wins and a
    record's own patient key comes before one reached through another record.
    """
    model = model._meta.concrete_model or model
    patient = _patient_model()
    if model is patient:
        return ()
    seen: set[type[models.Model]] = {model}
    queue: deque[tuple[type[models.Model], PatientPath]] = deque([(model, ())])
    while queue:
        current, path = queue.popleft()
        for field in current._meta.concrete_fields:
            if not (field.many_to_one or field.one_to_one) or field.related_model is None:
                continue
            target = cast(type[models.Model], field.related_model)._meta.concrete_model
            step = (*path, cast(models.ForeignKey, field))
            if target is patient:
                return step
            if target is not None and target not in seen and len(step) < MAX_HOPS:
                seen.add(target)
                queue.append((target, step))
    return None


def has_patient(model: type[models.Model]) -> bool:
    return patient_path(model) is not None


def _lookup(path: PatientPath) -> str:
    """The ORM lookup of the patient's id: ``order__handoff__patient`` (or ``pk`` for a patient)."""
    return "__".join(field.name for field in path) or "pk"


_MISSING = object()


def _follow(row: models.Model, path: PatientPath) -> Any:
    """The patient id the row already carries, None for a row without one, or _MISSING if not loaded."""
    obj: Any = row
    for field in path[:-1]:
        if getattr(obj, field.attname) is None:
            return None
        if not field.is_cached(obj):
            return _MISSING
        obj = field.get_cached_value(obj)
    return getattr(obj, path[-1].attname) if path else obj.pk


def patients_of_rows(model: type[models.Model], rows: Sequence[models.Model]) -> list[int]:
    """The patients of these rows of ``model``: read from the rows, or in one query when they don't carry it."""
    path = patient_path(model)
    if path is None or not rows:
        return []
    found: list[int] = []
    for row in rows:
        patient_id = _follow(row, path)
        if patient_id is _MISSING:
            return patients_of([(model, item.pk) for item in rows])
        if patient_id is not None:
            found.append(patient_id)
    return found


def patients_of(refs: Iterable[tuple[type[models.Model], Any]]) -> list[int]:
    """The patients of the rows named by (model, primary key), across models, in one query.

    Rows that no longer exist, and models without a patient, name none.
    """
    by_model: dict[type[models.Model], list[Any]] = defaultdict(list)
    for model, pk in refs:
        concrete = model._meta.concrete_model or model
        if pk is None or not has_patient(concrete):
            continue
        try:
            by_model[concrete].append(concrete._meta.pk.to_python(pk))
        except (ValidationError, ValueError, TypeError):
            continue  # an id that can't be one of this model's (a hand-typed ?obj=), so names no row
    queries: list[QuerySet[Any, Any]] = []
    for model, pks in by_model.items():
        lookup = _lookup(cast(PatientPath, patient_path(model)))
        queries.append(
            model._base_manager.filter(pk__in=pks, **{f"{lookup}__isnull": False})
            .order_by()
            .values_list(lookup, flat=True)
        )
    if not queries:
        return []
    first, *rest = queries
    # One statement for every model: SELECT … UNION ALL SELECT …
    return list(first.union(*rest, all=True).order_by()) if rest else list(first)
