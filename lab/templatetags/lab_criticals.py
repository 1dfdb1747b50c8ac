"""The critical-calls panel for the supervisor board and the bench, so their views need no lab context.

The tag renders only the slot: the panel itself is fetched from lab:criticals:panel, which reads the
calls, logs the access and refreshes every 30 seconds. The page that includes it runs no extra
query, and a role that may not see critical calls gets nothing.
"""

from typing import Any

from django import template

register = template.Library()


@register.inclusion_tag("lab/criticals/partials/panel_slot.html", takes_context=True)
def critical_calls_panel(context: template.Context) -> dict[str, Any]:
    """{% critical_calls_panel %}: the open and overdue critical calls, for a user who may see them."""
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"show": bool(user and user.has_perm("lab.view_criticalcall"))}
