"""The open-work queries read only open rows, however much history piles up."""

import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from backoffice.models import Handoff, User
from backoffice.workflow import OPEN_STATUSES

pytestmark = pytest.mark.django_db


def _plan_of_row_keys_query(client: Client, username: str, url: str) -> str:
    """EXPLAIN of the query the page really runs for its rows (the one reading row versions)."""
    client.force_login(User.objects.get(username=username))
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    [sql] = [q["sql"] for q in queries.captured_queries if "xmin" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_queue_and_board_queries_use_the_open_work_index_not_a_scan_of_history(client: Client) -> None:
    # Enough closed handoffs that the planner would choose a sequential scan if no index fitted.
    call_command("seed_demo", "--scale", "--patients", "2000", "--handoffs", "30000", "--open", "40", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE backoffice_handoff")
    assert Handoff.objects.exclude(status__in=OPEN_STATUSES).count() == 30000

    for username, url in (("ma", "/queue/"), ("supervisor", "/board/")):
        plan = _plan_of_row_keys_query(client, username, url)
        assert "handoff_open_queue_idx" in plan, plan
        assert not re.search(r"Seq Scan on backoffice_handoff\b", plan), plan
