"""Access-log search: patient, staff, action, outcome, dates."""

from datetime import date, datetime, time, timedelta
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils import timezone

from backoffice.hooks import patient_for_scanned_id
from backoffice.identifiers import without_scanner_marks
from backoffice.models import AccessAction, AccessLog, AccessLogPatient, AccessOutcome, Patient, User


def _day_start(day: date) -> datetime:
    """Midnight at the clinic, as an aware time: rows are stored in UTC, dates are asked locally."""
    return timezone.make_aware(datetime.combine(day, time.min))


class AccessLogFilter(django_filters.FilterSet):
    """Search the access log. Sent by POST: an MRN identifies a patient and stays out of URLs."""

    patient = django_filters.CharFilter(
        label="Patient MRN or specimen label",
        method="filter_nothing",
        widget=forms.TextInput(attrs={"autocomplete": "off", "data-scan-field": "", "class": "font-monospace"}),
    )
    username = django_filters.CharFilter(label="Staff username", method="filter_nothing")
    action = django_filters.ChoiceFilter(choices=AccessAction.choices, empty_label="Any action")
    outcome = django_filters.ChoiceFilter(choices=AccessOutcome.choices, empty_label="Any outcome")
    date_from = django_filters.DateFilter(
        label="From", method="filter_nothing", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label="To (inclusive)", method="filter_nothing", widget=forms.DateInput(attrs={"type": "date"})
    )
    # Read by the page (backoffice.audit.views), which folds the rows; the export lists every row.
    collapse = django_filters.BooleanFilter(
        label="One row per person and hour for lists that refresh themselves",
        method="filter_nothing",
        widget=forms.CheckboxInput,
    )

    class Meta:
        model = AccessLog
        fields = ["patient", "username", "action", "outcome", "date_from", "date_to", "collapse"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The patient the search names, when the MRN is known: the search is logged as concerning them.
        self.searched_patient: Patient | None = None
        for field in self.form.fields.values():
            if isinstance(field.widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(field.widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            field.widget.attrs["class"] = f"{css} {field.widget.attrs.get('class', '')}".strip()

    def filter_nothing(self, queryset: QuerySet[AccessLog], name: str, value: Any) -> QuerySet[AccessLog]:
        # Patient, user and dates are combined in filter_queryset, where they can share one index.
        return queryset

    def filter_queryset(self, queryset: QuerySet[AccessLog]) -> QuerySet[AccessLog]:
        queryset = super().filter_queryset(queryset)
        data = self.form.cleaned_data
        start = _day_start(data["date_from"]) if data.get("date_from") else None
        end = _day_start(data["date_to"] + timedelta(days=1)) if data.get("date_to") else None
        mrn = without_scanner_marks(data.get("patient") or "")  # a scanned wristband or label: what it read
        if mrn:
            # Exact MRN (as typed or upper-cased, as wristbands print it): a unique-index lookup.
            self.searched_patient = Patient.objects.filter(mrn__in={mrn, mrn.upper()}).first()
            if self.searched_patient is None:
                # No MRN matched: a specimen label scanned into the field names its patient.
                patient_id = patient_for_scanned_id(mrn)
                self.searched_patient = Patient.objects.filter(pk=patient_id).first() if patient_id else None
            if self.searched_patient is None:
                return queryset.none()
            # Through the (patient, at) index: this patient's rows in the date range, newest first.
            shown = AccessLogPatient.objects.filter(patient=self.searched_patient)
            if start:
                shown = shown.filter(at__gte=start)
            if end:
                shown = shown.filter(at__lt=end)
            queryset = queryset.filter(pk__in=shown.values("log_id"))
        username = (data.get("username") or "").strip()
        if username:
            # The account, through the (user, at) index, so a later rename doesn't hide its rows.
            queryset = queryset.filter(user__in=User.objects.filter(username__iexact=username).values("pk"))
        if start:
            queryset = queryset.filter(at__gte=start)
        if end:
            queryset = queryset.filter(at__lt=end)
        return queryset
