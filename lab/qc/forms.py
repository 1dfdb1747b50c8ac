"""The QC board's one form: a control's value typed (or its button pressed) on a kit lot."""

from django import forms


class QCRunForm(forms.Form):
    control_lot = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    value = forms.CharField(max_length=40, strip=True, error_messages={"required": "Enter the control's value."})
    note = forms.CharField(max_length=300, required=False, strip=True)
