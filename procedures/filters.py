"""Procedure queue filters: status, station, performer, procedure type and how long it has waited."""

from datetime import timedelta
from typing import Any

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from backoffice.models import User
from procedures.models import ProcedureOrder, ProcedureType
from procedures.selectors import performing_staff, stations_for_filter
from procedures.workflow import OPEN_STATUSES, ProcedureStatus

AGE_CHOICES = [("15", "Waiting 15 min or more"), ("30", "Waiting 30 min or more"), ("60", "Waiting 1 h or more")]


class ProcedureQueueFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=[(s, ProcedureStatus(s).label) for s in OPEN_STATUSES if s != ProcedureStatus.PERFORMED],
        empty_label="Any open status",
    )
    station = django_filters.ModelChoiceFilter(
        queryset=stations_for_filter(), to_field_name="code", empty_label="Any station", method="filter_station"
    )
    performer = django_filters.ModelChoiceFilter(queryset=performing_staff(), empty_label="Any performer")
    procedure_type = django_filters.ModelChoiceFilter(
        label="Procedure",
        queryset=ProcedureType.objects.filter(is_active=True).order_by("name"),
        to_field_name="code",
        empty_label="Any procedure",
    )
    age = django_filters.ChoiceFilter(label="Waiting", choices=AGE_CHOICES, empty_label="Any wait", method="filter_age")

    class Meta:
        model = ProcedureOrder
        fields = ["status", "station", "performer", "procedure_type", "age"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not user.has_perm("procedures.supervise_procedure"):
            # An MA's list holds only their own work.
            del self.filters["performer"]
        for field in self.form.fields.values():
            field.widget.attrs["class"] = "form-select form-select-sm"

    def filter_station(self, queryset: QuerySet[ProcedureOrder], name: str, value: Any) -> QuerySet[ProcedureOrder]:
        # Started work names its station; ordered work is wherever the patient sits.
        return (
            queryset.filter(Q(station=value) | Q(station__isnull=True, handoff__station=value)) if value else queryset
        )

    def filter_age(self, queryset: QuerySet[ProcedureOrder], name: str, value: Any) -> QuerySet[ProcedureOrder]:
        if not value:
            return queryset
        return queryset.filter(status_changed_at__lte=timezone.now() - timedelta(minutes=int(value)))
