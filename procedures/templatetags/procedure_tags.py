"""The procedure panel other apps' pages include, so their views need no procedure context."""

from typing import Any

from django import template

from backoffice.models import Handoff, User
from backoffice.workflow import StationState
from procedures.selectors import procedure_actions, procedures_for_handoff

register = template.Library()


@register.inclusion_tag("procedures/partials/handoff_procedures_panel.html", takes_context=True)
def handoff_procedures(context: template.Context) -> dict[str, Any]:
    """The handoff's procedures, each with what the signed-in user can do next (procedure_actions)."""
    handoff: Handoff = context["handoff"]
    user: User = context["request"].user
    orders = procedures_for_handoff(handoff) if user.has_perm("procedures.view_procedureorder") else []
    for order in orders:
        order.handoff = handoff  # the page's copy: the guards read its claim, status and station
    station = handoff.station
    return {
        "handoff": handoff,
        "rows": [(order, procedure_actions(order, user)) for order in orders],
        "turnover_station": station
        if station is not None
        and not handoff.is_open
        and station.state == StationState.NEEDS_TURNOVER
        and user.has_perm("backoffice.manage_station")
        else None,
        "csrf_token": context.get("csrf_token"),
    }
