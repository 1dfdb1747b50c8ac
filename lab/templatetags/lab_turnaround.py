"""Turnaround figures as people read them: minutes, hours or days; "n/a" when there is none."""

from django import template

register = template.Library()


@register.filter
def duration(minutes: float | None) -> str:
    """42 min, 3.4 h, 2.1 d; n/a for no figure."""
    if minutes is None:
        return "n/a"
    if abs(minutes) < 120:
        return f"{minutes:.0f} min"
    if abs(minutes) < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} d"
