"""Forms of the send-out desk: a new shipment, a scanned tube, the lab's questions, cancelling."""

from typing import Any

from django import forms
from django.utils import timezone

from lab.models import AskAtOrderEntry, ReferenceLab, SendOut
from lab.sendouts.services import questions_of
from lab.workflow import CancelReason
from specimens.workflow import Handling

# A scanner types the label and presses Enter: Enter packs the tube (no data-scan-field, which
# turns Enter into a search elsewhere).
_SCAN = {"autocomplete": "off", "class": "form-control font-monospace", "spellcheck": "false"}


class ShipmentForm(forms.Form):
    prefix = "shipment"
    reference_lab = forms.ModelChoiceField(
        label="Reference lab",
        queryset=ReferenceLab.objects.none(),
        empty_label="Choose the lab",
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    handling = forms.ChoiceField(
        label="Temperature",
        choices=[("", "Choose the temperature"), *Handling.choices],
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )
    courier = forms.CharField(
        label="Courier",
        max_length=80,
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm", "placeholder": "Lab courier, route 12"}),
    )
    pickup_at = forms.DateTimeField(
        label="Pickup at",
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local", "class": "form-control form-control-sm"}, format="%Y-%m-%dT%H:%M"
        ),
    )

    def __init__(self, *args: Any, labs: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reference_lab"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = labs

    def clean_pickup_at(self) -> Any:
        value = self.cleaned_data["pickup_at"]
        return timezone.make_aware(value) if timezone.is_naive(value) else value


class PackForm(forms.Form):
    accession = forms.CharField(
        label="Scan a tube to pack it", max_length=40, widget=forms.TextInput(attrs={**_SCAN, "autofocus": True})
    )


class TubeForm(forms.Form):
    """A tube picked from a list (its specimen's opaque id), to pack or take out."""

    specimen = forms.UUIDField(widget=forms.HiddenInput)


class AnswersForm(forms.Form):
    """The lab's ask-at-order-entry questions for one send-out; an empty answer clears it."""

    def __init__(self, *args: Any, send_out: SendOut, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", f"q{send_out.pk}")
        super().__init__(*args, **kwargs)
        self.send_out = send_out
        given = send_out.answers or {}
        self.questions = questions_of(send_out)
        for question in self.questions:
            name = self.field_name(question)
            label = question.question
            initial = given.get(question.loinc_code, "")
            if question.value_type == AskAtOrderEntry.ValueType.CODED:
                choices = [("", "Not answered"), *((code, text) for code, text, _ in question.choices)]
                self.fields[name] = forms.ChoiceField(
                    label=label,
                    choices=choices,
                    required=False,
                    initial=initial,
                    widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
                )
            else:
                self.fields[name] = forms.CharField(
                    label=label,
                    max_length=120,
                    required=False,
                    initial=initial,
                    widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}),
                )

    @staticmethod
    def field_name(question: AskAtOrderEntry) -> str:
        return "a_" + question.loinc_code.replace("-", "_")

    def answers(self) -> dict[str, str]:
        return {q.loinc_code: self.cleaned_data.get(self.field_name(q), "") or "" for q in self.questions}


class CancelForm(forms.Form):
    prefix = "cancel"
    reason = forms.ChoiceField(
        label="Why", choices=CancelReason.choices, widget=forms.Select(attrs={"class": "form-select form-select-sm"})
    )
    note = forms.CharField(
        label="Note",
        max_length=300,
        required=False,
        widget=forms.TextInput(attrs={"class": "form-control form-control-sm"}),
    )


class CancelShipmentForm(forms.Form):
    prefix = "call_off"
    reason = forms.CharField(
        label="Why is the pickup called off",
        max_length=200,
        widget=forms.TextInput(
            attrs={"class": "form-control form-control-sm", "placeholder": "Courier didn't come; rebooked for tomorrow"}
        ),
    )
