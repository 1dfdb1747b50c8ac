"""The procedure panel other apps' pages include, so their views need no procedure context."""

from typing import Any

from django import template

from backoffice.models import Handoff, User
from backoffice.workflow import IDENTIFIED_STATUSES, StationState
from procedures.selectors import procedures_for_handoff

register = template.Library()


@register.inclusion_tag("procedures/partials/handoff_procedures_panel.html", takes_context=True)
def handoff_procedures(context: template.Context) -> dict[str, Any]:
    """The handoff's procedures with what the signed-in user can do next for each (one query)."""
    handoff: Handoff = context["handoff"]
    user: User = context["request"].user
    orders = procedures_for_handoff(handoff) if user.has_perm("procedures.view_procedureorder") else []
    works = handoff.is_open and (handoff.claimed_by_id == user.pk or user.has_perm("procedures.supervise_procedure"))
    station = handoff.station
    return {
        "handoff": handoff,
        "orders": orders,
        "may_start": works and user.has_perm("procedures.perform_procedure") and handoff.status in IDENTIFIED_STATUSES,
        "user_id": user.pk,
        "turnover_station": station
        if station is not None
        and not handoff.is_open
        and station.state == StationState.NEEDS_TURNOVER
        and user.has_perm("backoffice.manage_station")
        else None,
        "csrf_token": context.get("csrf_token"),
    }
