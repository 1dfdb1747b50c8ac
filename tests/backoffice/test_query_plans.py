"""The open-work queries read only open rows, however much history piles up."""

import re

import pytest
from django.core.management import call_command
from django.db import connection

from backoffice import selectors
from backoffice.models import Handoff, User
from backoffice.workflow import OPEN_STATUSES

pytestmark = pytest.mark.django_db


def test_queue_and_board_queries_use_the_open_work_index_not_a_scan_of_history() -> None:
    # Enough closed handoffs that the planner would choose a sequential scan if no index fitted.
    call_command("seed_demo", "--scale", "--patients", "2000", "--handoffs", "30000", "--open", "40", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE backoffice_handoff")
    assert Handoff.objects.exclude(status__in=OPEN_STATUSES).count() == 30000

    queue_plan = selectors.queue_handoffs(user=User.objects.get(username="ma")).explain()
    assert "handoff_open_queue_idx" in queue_plan, queue_plan
    assert not re.search(r"Seq Scan on backoffice_handoff\b", queue_plan), queue_plan

    board_plan = selectors.board_handoffs(user=User.objects.get(username="supervisor")).explain()
    assert "handoff_open_queue_idx" in board_plan, board_plan
    assert not re.search(r"Seq Scan on backoffice_handoff\b", board_plan), board_plan
