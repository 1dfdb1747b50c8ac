"""Forms of the lab pages."""

from django import forms

from lab.workflow import CancelReason


class CallDoneForm(forms.Form):
    outcome = forms.CharField(label="What came of the call", max_length=300)


class CancelForm(forms.Form):
    prefix = "cancel"
    reason = forms.ChoiceField(label="Why", choices=CancelReason.choices)
    note = forms.CharField(label="Note", max_length=300, required=False)
