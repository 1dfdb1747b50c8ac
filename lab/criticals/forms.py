"""Forms of the critical-call pages: they validate and lay out; the services record."""

import datetime as dt

from django import forms
from django.utils import timezone

from lab.workflow import CallOutcome


class AttemptForm(forms.Form):
    contact_name = forms.CharField(label="Whom you called", max_length=120)
    contact_role = forms.CharField(label="Their role", max_length=60)
    outcome = forms.ChoiceField(label="How it went", choices=CallOutcome.choices, widget=forms.RadioSelect)
    read_back_identifiers = forms.CharField(
        label="Identifiers they read back",
        max_length=200,
        required=False,
        help_text="Two of: full name, date of birth, MRN — as the clinician repeated them.",
    )
    read_back_value = forms.CharField(
        label="Value they read back", max_length=100, required=False, help_text="The value and unit they repeated."
    )
    note = forms.CharField(label="Note", max_length=300, required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("outcome") == CallOutcome.READ_BACK:
            if not (data.get("read_back_identifiers") or "").strip():
                self.add_error("read_back_identifiers", "A read-back needs the two patient identifiers they repeated.")
            if not (data.get("read_back_value") or "").strip():
                self.add_error("read_back_value", "A read-back needs the value they repeated.")
        return data


class ReportFilterForm(forms.Form):
    since = forms.DateField(label="Released from", widget=forms.DateInput(attrs={"type": "date"}), required=False)
    until = forms.DateField(label="to", widget=forms.DateInput(attrs={"type": "date"}), required=False)

    DEFAULT_DAYS = 7

    def dates(self) -> tuple[dt.date, dt.date]:
        """The range asked for, or the last week; a reversed range is put the right way round."""
        today = timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        until = data.get("until") or today
        since = data.get("since") or until - dt.timedelta(days=self.DEFAULT_DAYS - 1)
        return (since, until) if since <= until else (until, since)
