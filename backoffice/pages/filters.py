"""Queue filters: priority, status, station, 'mine' for those who claim, 'lab work' for the lab."""

from typing import Any

import django_filters
from django.db.models import Exists, OuterRef, QuerySet

from backoffice.models import Handoff, Station, User
from backoffice.workflow import OPEN_STATUSES, HandoffStatus, Priority
from lab.models import TestOrder
from lab.workflow import TestOrderStatus

# A test still ahead of the lab: to draw, collected and on its way, on the bench, or at a reference lab.
LAB_WORK_DONE = (TestOrderStatus.RESULTED, TestOrderStatus.CANCELLED)


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
    lab = django_filters.BooleanFilter(
        method="filter_lab", label="Lab work only", widget=django_filters.widgets.BooleanWidget
    )

    class Meta:
        model = Handoff
        fields = ["priority", "status", "station", "mine", "lab"]

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        # "Mine" is what one has claimed: nothing, for a role that never claims (a lab technician's
        # ticked box emptied the queue). The lab's filter is for those who receive specimens.
        if not user.has_perm("backoffice.claim_handoff"):
            del self.filters["mine"]
        if not user.has_perm("specimens.receive_specimen"):
            del self.filters["lab"]

    def filter_mine(self, queryset: QuerySet[Handoff], name: str, value: bool | None) -> QuerySet[Handoff]:
        return queryset.filter(claimed_by=self.user) if value else queryset

    def filter_lab(self, queryset: QuerySet[Handoff], name: str, value: bool | None) -> QuerySet[Handoff]:
        """Handoffs with a lab test not yet resulted or cancelled, in the queue's one query."""
        if not value:
            return queryset
        tests = TestOrder.objects.filter(handoff=OuterRef("pk")).exclude(status__in=LAB_WORK_DONE)
        return queryset.filter(Exists(tests))
