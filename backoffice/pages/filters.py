"""Queue filters: priority, status, station, 'mine'."""

from typing import Any

import django_filters
from django.db.models import QuerySet

from backoffice.models import Handoff, Station, User
from backoffice.workflow import OPEN_STATUSES, HandoffStatus, Priority


class QueueFilter(django_filters.FilterSet):
    priority = django_filters.ChoiceFilter(choices=Priority.choices, empty_label="Any priority")
    status = django_filters.ChoiceFilter(
        choices=[(s, HandoffStatus(s).label) for s in OPEN_STATUSES], empty_label="Any open status"
    )
    station = django_filters.ModelChoiceFilter(
        queryset=Station.objects.filter(is_active=True).order_by("name"),
        to_field_name="code",
        empty_label="Any station",
    )
    mine = django_filters.BooleanFilter(
        method="filter_mine", label="Only mine", widget=django_filters.widgets.BooleanWidget
    )

    class Meta:
        model = Handoff
        fields = ["priority", "status", "station", "mine"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def filter_mine(self, queryset: QuerySet[Handoff], name: str, value: bool | None) -> QuerySet[Handoff]:
        return queryset.filter(claimed_by=self.user) if value else queryset
