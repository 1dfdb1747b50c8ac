"""Queue rows and board cards, rendered once and reused while nothing they show has changed.

Every medical assistant's queue refreshes every 15 seconds and the supervisor board does too, yet
between two refreshes almost no row changes. Rendering fifty rows of templates was most of what
those pages cost, so each row's HTML is kept in this worker's memory (the "fragments" cache, never
shared between processes or machines) under a key made of everything the row shows:

- the handoff row and the patient row, by their Postgres row version (``xmin``, ``ctid``): every
  UPDATE writes a new version of the row, whatever code made it (a service, the admin, the overdue
  job, SQL). A version written by another transaction has another ``xmin``; two written by the same
  transaction sit in different places (``ctid``). So a changed status, claim, station, allergy or
  name is a different key, never a stale hit;
- the handoff's released results (how many, and when one last changed): a result shows on its row
  as soon as it is released, and a correction replaces it;
- the minutes waited, which the row prints and which decide when it turns overdue;
- today's date, for the patient's age;
- the viewer's variant (whether they may claim, for the queue's button).

Anything else a row prints comes from another table: the exam room's, the staff's and the
station's names and the ordered items' catalog names. Those entries expire after
``FRAGMENT_CACHE_SECONDS`` (60 by default), so a rename shows within a minute.
The page still logs every patient it lists (the keys query reads them) before it renders. Expired
entries leave memory when read again or when the cache culls at its size limit (5,000 rows, a few
MB per worker); they are never written anywhere else.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from django.core.cache import caches
from django.db.models import Expression, QuerySet
from django.db.models.expressions import RawSQL
from django.template.loader import get_template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from backoffice.models import Handoff, Patient, whole_minutes
from lab.selectors import released_results_version

CACHE_ALIAS = "fragments"

_HANDOFF = Handoff._meta.db_table
_PATIENT = Patient._meta.db_table
# The handoff's and its patient's row versions and its results' token: correlated subqueries, so no join, and
# they work under the board's window-function subquery too.
ROW_VERSION = RawSQL(  # noqa: S611 - table names from the models, no input
    f'"{_HANDOFF}".xmin::text || "{_HANDOFF}".ctid::text || \':\' || '  # noqa: S608
    f'(SELECT p.xmin::text || p.ctid::text FROM "{_PATIENT}" p WHERE p.id = "{_HANDOFF}".patient_id) || \':\' || '
    + released_results_version(f'"{_HANDOFF}".id'),
    [],
)


class RowKey(NamedTuple):
    pk: int
    patient_id: int
    status: str
    created_at: datetime
    version: str
    extra: tuple[Any, ...] = ()  # the values of row_keys' extra annotations, in their order


@dataclass(frozen=True)
class Row:
    """One rendered row: its handoff's id, patient id (for the access log) and status, and its HTML."""

    pk: int
    patient_id: int
    status: str
    html: SafeString


def row_keys(handoffs: QuerySet[Handoff], **extra: Expression) -> list[RowKey]:
    """What decides each handoff's row, in the queryset's order: one query, no model instances.

    ``extra`` annotations (window totals, say, so a page needs no separate count) come back on
    each key's ``extra``.
    """
    fields = ("pk", "patient_id", "status", "created_at", "row_version", *extra)
    rows = handoffs.annotate(row_version=ROW_VERSION, **extra).values_list(*fields)
    return [RowKey._make((*values[:5], tuple(values[5:]))) for values in rows]


def rendered_rows(
    keys: Sequence[RowKey],
    *,
    template_name: str,
    load: Callable[[list[int]], Sequence[Handoff]],
    variant: str = "",
    context: Mapping[str, Any] | None = None,
) -> list[Row]:
    """Each handoff's row HTML from the cache, rendering (and caching) only the missing ones.

    ``load`` reads the missing handoffs with everything the template prints, in a constant number
    of queries; it is not called when every row is cached.
    """
    now = timezone.now()
    today = timezone.localdate(now)
    cache = caches[CACHE_ALIAS]
    by_pk = {k.pk: k for k in keys}
    wanted = {k.pk: _key(template_name, k, whole_minutes(k.created_at, now), today, variant) for k in keys}
    found: dict[str, str] = cache.get_many(list(wanted.values())) if wanted else {}
    missing = [pk for pk, key in wanted.items() if key not in found]
    if missing:
        template = get_template(template_name)
        fresh: dict[int, str] = {}
        for handoff in load(missing):
            if handoff.patient_id != by_pk[handoff.pk].patient_id:
                continue  # not the patient the page logged: leave the row out rather than show it
            fresh[handoff.pk] = template.render({"handoff": handoff, "now": now, **(context or {})})
        found.update({wanted[pk]: html for pk, html in fresh.items()})
        # The templates read the clock again; a row rendered across a minute boundary may print the
        # next minute, so it is shown but not kept under this minute's key.
        after = timezone.now()
        if timezone.localdate(after) == today:
            cache.set_many(
                {
                    wanted[pk]: html
                    for pk, html in fresh.items()
                    if whole_minutes(by_pk[pk].created_at, after) == whole_minutes(by_pk[pk].created_at, now)
                }
            )
    # A handoff that stopped matching between the two reads (closed a moment ago) is left out.
    return [
        Row(pk=k.pk, patient_id=k.patient_id, status=k.status, html=mark_safe(found[wanted[k.pk]]))  # noqa: S308
        for k in keys
        if wanted[k.pk] in found
    ]


def _key(template_name: str, key: RowKey, minutes: int, today: date, variant: str) -> str:
    return f"{template_name}:{key.pk}:{key.version}:{minutes}:{today.isoformat()}:{variant}"
