"""The lab tests and specimen collection panel of the handoff page, so its view needs no lab context."""

from functools import partial
from typing import Any

from django import template
from django.db.models import Count

from backoffice.models import Handoff, User
from backoffice.transitions import offer
from lab.forms import CancelForm
from lab.inbox.selectors import attach_released_results
from lab.models import TestOrder
from lab.selectors import draws_for
from lab.services import check_cancel
from specimens.forms import ConfirmForm, HandOverForm, NotCollectedForm
from specimens.models import Specimen
from specimens.selectors import specimen_actions
from specimens.services import check_start_collection
from specimens.workflow import SpecimenStatus

register = template.Library()


@register.inclusion_tag("lab/partials/handoff_collection.html", takes_context=True)
def handoff_collection(context: template.Context) -> dict[str, Any]:
    """The handoff's tests, what to draw for them (in order of draw), and its specimens with their next step."""
    handoff: Handoff = context["handoff"]
    user: User = context["request"].user
    orders = list(
        TestOrder.objects.filter(handoff=handoff)
        .select_related("test__specimen_type", "test__container", "specimen", "cancelled_by")
        .order_by("id")
    )
    for order in orders:
        order.handoff = handoff  # the page's copy: the guards read its claim, clinician and status
    may_see_results = user.has_perm("lab.view_result")
    if may_see_results:
        attach_released_results(orders)  # shown as soon as released: a POC result before the patient leaves
    draws = draws_for(orders)
    # Every specimen labelled for the handoff: at the bedside, collected, rejected or not drawn.
    every = (
        list(
            Specimen.objects.filter(handoff=handoff)
            .select_related("container", "specimen_type")
            .annotate(print_count=Count("label_prints"))
            .order_by("container__draw_order", "id")
        )
        if orders
        else []
    )
    for specimen in every:
        specimen.handoff = handoff
    specimens = [s for s in every if s.status != SpecimenStatus.NOT_COLLECTED]
    labelled = [s for s in specimens if s.status == SpecimenStatus.LABELLED]
    return {
        "handoff": handoff,
        "orders": [(o, offer(partial(check_cancel, o, user))) for o in orders],
        "failed_draws": [s for s in every if s.status == SpecimenStatus.NOT_COLLECTED],
        "cancel_form": CancelForm(),
        "draws": draws,
        "collect": offer(lambda: check_start_collection(handoff, user)) if draws else None,
        "labelled": labelled,
        "unprinted": [s for s in labelled if not s.print_count],
        "rows": [(s, specimen_actions(s, user)) for s in specimens if s.status != SpecimenStatus.LABELLED],
        "confirm_form": ConfirmForm(),
        "hand_over_form": HandOverForm(),
        "not_collected_form": NotCollectedForm(),
        "results_link": may_see_results,
        "csrf_token": context.get("csrf_token"),
    }
