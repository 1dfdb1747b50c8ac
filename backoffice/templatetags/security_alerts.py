"""The supervisor board's panel of paused sign-ins and supervisor confirmations (backoffice.accounts.alerts)."""

from typing import Any

from django import template

from backoffice.accounts.alerts import recent_alerts

register = template.Library()


@register.inclusion_tag("backoffice/accounts/partials/security_alerts.html", takes_context=True)
def security_alerts_panel(context: template.Context) -> dict[str, Any]:
    """{% security_alerts_panel %}: the last SECURITY_ALERT_HOURS of pauses, for who may see them (one query)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("audit.view_securityalert"):
        return {"alerts": None}
    return {"alerts": list(recent_alerts())}
