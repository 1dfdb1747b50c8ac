"""The supervisor board's panel of overdue send-outs, so the board's view needs no lab context."""

from typing import Any

from django import template
from django.utils import timezone

from backoffice.audit.log import log_access
from backoffice.models import AccessAction
from lab.sendouts.selectors import overdue_for_board
from lab.sendouts.services import DESK_PERM

register = template.Library()


@register.inclusion_tag("lab/sendouts/partials/board_panel.html", takes_context=True)
def overdue_send_outs_panel(context: template.Context) -> dict[str, Any]:
    """{% overdue_send_outs_panel %}: send-outs past expected-by without final results, most overdue first.

    One query; when it lists any, their patients are logged as shown (one more), before they render.
    """
    request = context.get("request")
    user = getattr(request, "user", None)
    if request is None or user is None or not user.has_perm(DESK_PERM):
        return {"overdue": None}
    now = timezone.now()
    overdue = overdue_for_board(user=user, now=now)
    if overdue.send_outs:
        log_access(
            request=request,
            action=AccessAction.LIST,
            what="board: overdue send-outs",
            patients=[s.order.handoff.patient_id for s in overdue.send_outs],
        )
    return {"overdue": overdue, "now": now}
