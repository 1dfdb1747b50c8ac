"""Forms of the lab pages."""

from django import forms


class CallDoneForm(forms.Form):
    outcome = forms.CharField(label="What came of the call", max_length=300)
