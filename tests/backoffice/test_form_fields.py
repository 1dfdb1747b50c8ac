"""The form_field tag lays a field out exactly as crispy-forms' bootstrap5 pack did, for less."""

import re
from typing import Any

import pytest
from crispy_forms.templatetags.crispy_forms_filters import as_crispy_field
from django import forms
from django.template import Context, Template

from backoffice.pages.forms import CancelForm, StationForm, VerifyIdentityForm
from tests.factories import StationFactory

pytestmark = pytest.mark.django_db


class HelpForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "class": "note"}), help_text="Say <em>why</em>.")
    count = forms.IntegerField(required=False)


def squeeze(html: str) -> str:
    """Markup with the whitespace between and around tags removed, which the browser ignores."""
    return re.sub(r"\s*(<|>)\s*", r"\1", re.sub(r"\s+", " ", str(html))).strip()


def tag(field: forms.BoundField) -> str:
    return Template("{% load form_fields %}{% form_field field %}").render(Context({"field": field}))


def crispy(form_class: type[forms.Form], name: str, data: dict[str, Any] | None) -> str:
    """Rendered by crispy from a form of its own: crispy adds its classes to the widget it renders."""
    form = form_class(data)
    form.is_valid()
    return as_crispy_field(form[name])


@pytest.mark.parametrize(
    ("form_class", "name", "data"),
    [
        (StationForm, "station", None),
        (StationForm, "station", {"station": ""}),
        (StationForm, "station", {"station": "gone"}),
        (VerifyIdentityForm, "scanned_mrn", None),
        (VerifyIdentityForm, "scanned_mrn", {"scanned_mrn": "M" * 40}),
        (VerifyIdentityForm, "full_name", {"full_name": "<b>Rosa</b>"}),
        (VerifyIdentityForm, "date_of_birth", {"date_of_birth": "not a date"}),
        (CancelForm, "reason", None),
        (CancelForm, "reason", {"reason": " "}),
        (HelpForm, "note", None),
        (HelpForm, "note", {"note": ""}),
        (HelpForm, "count", {"note": "x", "count": "many"}),
    ],
)
def test_it_matches_crispy(form_class: type[forms.Form], name: str, data: dict[str, Any] | None) -> None:
    StationFactory(code="proc-1", name="Procedure room 1")
    form = form_class(data)
    form.is_valid()
    assert squeeze(tag(form[name])) == squeeze(crispy(form_class, name, data))


def test_it_marks_an_invalid_field_for_assistive_technology() -> None:
    form = CancelForm({"reason": ""})
    form.is_valid()
    html = tag(form["reason"])
    assert 'class="textinput form-control is-invalid"' in html
    assert 'aria-invalid="true" aria-describedby="id_reason_error"' in html
    assert '<div id="id_reason_error" class="invalid-feedback">' in html


@pytest.mark.parametrize("widget", [forms.CheckboxInput, forms.RadioSelect, forms.HiddenInput, forms.FileInput])
def test_it_refuses_widgets_it_would_lay_out_differently(widget: type[forms.Widget]) -> None:
    class OddForm(forms.Form):
        odd = forms.CharField(widget=widget)

    with pytest.raises(TypeError):
        tag(OddForm()["odd"])
