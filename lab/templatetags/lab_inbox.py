"""The supervisor board's panel of results left unsigned too long, so the board's view needs no lab context."""

from typing import Any

from django import template

from backoffice.audit.log import log_access
from backoffice.models import AccessAction
from lab.inbox.selectors import stale_results
from lab.inbox.services import SUPERVISOR_PERM

register = template.Library()


@register.inclusion_tag("lab/inbox/partials/stale_panel.html", takes_context=True)
def stale_results_panel(context: template.Context) -> dict[str, Any]:
    """{% stale_results_panel %}: released results unsigned past LAB_INBOX_STALE_MINUTES, oldest first.

    One query; when it lists any, their patients are logged as shown (one more), before they render.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.has_perm(SUPERVISOR_PERM):
        return {"stale": None}
    stale = stale_results(user=user)
    if stale.results:
        log_access(
            request=request,
            action=AccessAction.LIST,
            what="board: unsigned results",
            patients=[r.patient_id for r in stale.results],
        )
    return {"stale": stale}
