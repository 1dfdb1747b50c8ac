"""The dashboard's filter: a date range (default the last 30 days), the segment, group and bucket."""

import datetime as dt

from django import forms
from django.utils import timezone

from lab.turnaround.selectors import DEFAULT_DAYS, DEFAULT_SEGMENT, SEGMENTS, Bucket, GroupBy


class TurnaroundForm(forms.Form):
    since = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}), required=False)
    until = forms.DateField(label="to", widget=forms.DateInput(attrs={"type": "date"}), required=False)
    segment = forms.ChoiceField(label="Segment", choices=[(s.key, s.label) for s in SEGMENTS], required=False)
    group = forms.ChoiceField(label="Group by", choices=GroupBy.choices, required=False)
    bucket = forms.ChoiceField(label="Trend by", choices=Bucket.choices, required=False)

    # A year at most: the trend draws one point per day.
    MAX_DAYS = 366

    def choices(self) -> dict[str, object]:
        """What was asked for, or the defaults; a reversed range is put the right way round."""
        today = timezone.localdate()
        data = self.cleaned_data if self.is_valid() else {}
        until = data.get("until") or today
        since = data.get("since") or until - dt.timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            since, until = until, since
        since = max(since, until - dt.timedelta(days=self.MAX_DAYS - 1))
        return {
            "since": since,
            "until": until,
            "segment": data.get("segment") or DEFAULT_SEGMENT,
            "group": data.get("group") or GroupBy.TEST,
            "bucket": data.get("bucket") or Bucket.DAY,
        }
