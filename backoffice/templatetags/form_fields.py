"""One form field in Bootstrap 5 markup, as crispy-forms' bootstrap5 pack lays it out, for much less.

`{{ form.field|as_crispy_field }}` renders a nest of templates (field.html with its includes and
filters) for every field; the handoff page showed four or five of them on every request. This tag
gives the same markup (wrapper, label, control classes, errors, help text) from one small template.
It covers the plain controls those pages use (text, date, select, textarea); anything else is
refused rather than rendered differently.
"""

from typing import Any

from django import forms, template

register = template.Library()

# Widgets crispy lays out differently (checkbox layouts, file inputs, hidden fields, multi-widgets).
UNSUPPORTED = (
    forms.CheckboxInput,
    forms.CheckboxSelectMultiple,
    forms.RadioSelect,
    forms.FileInput,
    forms.HiddenInput,
    forms.MultiWidget,
)


def control_class(field: forms.BoundField) -> str:
    """The control's classes as crispy gives them: the widget's own, its name, the Bootstrap class."""
    widget = field.field.widget
    classes = widget.attrs.get("class", "").split()
    wanted = [type(widget).__name__.lower(), "form-select" if isinstance(widget, forms.Select) else "form-control"]
    if field.errors:
        wanted.append("is-invalid")
    return " ".join(classes + [name for name in wanted if name not in classes])


@register.inclusion_tag("partials/field.html")
def form_field(field: forms.BoundField) -> dict[str, Any]:
    """{% form_field form.name %}: label, control, errors and help text of one field."""
    if isinstance(field.field.widget, UNSUPPORTED):
        raise TypeError(f"form_field renders plain controls only, not {type(field.field.widget).__name__}")
    return {"field": field, "control": field.as_widget(attrs={"class": control_class(field)})}
