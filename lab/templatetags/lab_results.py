"""Released results as badges ("Hgb 6.8 g/dL LL"), for the handoff's lab panel and the queue and board.

Rendered inside the queue's cached rows too (backoffice.pages.fragments), so it reads nothing but
the results it is given: no request, no query.
"""

from collections.abc import Sequence
from typing import Any

from django import template

from lab.models import Result
from lab.workflow import ABNORMAL_FLAGS, Flag

register = template.Library()

# A test reporting this many values or fewer shows them all, even compact (a hemoglobin, a strep).
COMPACT_UP_TO = 3


@register.inclusion_tag("lab/inbox/partials/result_badges.html")
def result_badges(results: Sequence[Result], compact: bool = False) -> dict[str, Any]:
    """{% result_badges item.released_results %}: criticals first and loud; ``compact`` counts the normal ones.

    A queue row has no room for a urine dipstick's ten values: it names those not flagged normal
    and counts the rest; a test of a few values shows them all.
    """
    ordered = sorted(results, key=lambda r: (not r.is_critical, r.flag not in ABNORMAL_FLAGS))
    if not compact or len(ordered) <= COMPACT_UP_TO:
        return {"shown": ordered, "normal_count": 0}
    shown = [r for r in ordered if r.flag != Flag.NORMAL]
    return {"shown": shown, "normal_count": len(ordered) - len(shown)}
