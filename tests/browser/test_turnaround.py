"""The turnaround dashboard in a real browser: a supervisor reads two weeks of tests, charts and tables."""

import datetime as dt
import random

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice.workflow import Priority
from lab.workflow import TestOrderStatus
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.factories import StationFactory
from tests.lab.sendout_helpers import reference_lab
from tests.lab.test_turnaround import ordered_test, send_out

pytestmark = pytest.mark.browser


def two_weeks_of_tests(by) -> None:  # type: ignore[no-untyped-def]
    """About ten tests a day for fourteen days: STAT ones faster, a few not yet received, two send-outs."""
    rng = random.Random(15)
    stations = [StationFactory(name=f"Draw room {c}") for c in "AB"]
    lab = reference_lab("TSH", name="Quest Diagnostics West")
    today = timezone.localdate()
    for days_ago in range(14, 0, -1):
        day = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=days_ago), dt.time(8)))
        for n in range(rng.randint(6, 12)):
            stat = rng.random() < 0.2
            created = day + dt.timedelta(minutes=n * 40 + rng.randint(0, 30))
            collect = rng.uniform(3, 15 if stat else 35)
            receive = collect + rng.uniform(2, 10)
            result = receive + rng.uniform(8, 20 if stat else 45)
            release = result + rng.uniform(2, 10 if stat else 30)
            missing = rng.random() < 0.08
            ordered_test(
                rng.choice(["Hemoglobin", "Urine hCG", "Rapid strep", "POC glucose"]),
                created=created,
                by=by,
                collected=collect,
                received=None if missing else receive,
                resulted=None if missing else result,
                released=None if missing else release,
                priority=Priority.STAT if stat else Priority.ROUTINE,
                station=rng.choice(stations),
                status=TestOrderStatus.COLLECTED if missing else TestOrderStatus.RESULTED,
            )
        if days_ago in (10, 4):
            order = ordered_test("TSH", created=day, by=by, collected=10, received=20, resulted=1900, released=1900)
            send_out(order, lab=lab, sent=120, final=1900)


def test_a_supervisor_reads_turnaround_times_and_groups_them_by_priority(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    supervisor,  # type: ignore[no-untyped-def]
    lab_tech,  # type: ignore[no-untyped-def]
) -> None:
    two_weeks_of_tests(lab_tech)
    page = screen.page
    screen.login("sup")
    page.get_by_role("link", name="Turnaround", exact=True).click()
    expect(page.get_by_role("heading", name="Turnaround times")).to_be_visible()
    for chart in ("#turnaround-histogram", "#turnaround-trend"):
        expect(page.locator(chart)).to_be_visible()
        # Chart.js drew on the canvas: it keeps the chart it made there.
        assert page.evaluate(f"() => Boolean(Chart.getChart(document.querySelector('{chart}')))")
    overview = page.locator("table.turnaround-overview")
    expect(overview.locator("tr", has_text="Order → release")).to_be_visible()
    expect(overview.locator("tr", has_text="Critical result → read-back")).to_contain_text("n/a")
    expect(page.locator("table.turnaround-groups")).to_contain_text("Hemoglobin")
    screen.shot("t01-turnaround-by-test")
    screen.assert_accessible()

    page.get_by_label("Group by").select_option("priority")
    page.get_by_label("Trend by").select_option("week")
    page.get_by_label("Segment").select_option("receipt_result")
    page.get_by_role("button", name="Show").click()
    groups = page.locator("table.turnaround-groups")
    expect(groups.locator("thead")).to_contain_text("Priority")
    expect(groups.locator("tr.row-stat")).to_contain_text("STAT")
    expect(page.get_by_role("heading", name="Receipt → result")).to_be_visible()
    expect(page.locator("table.turnaround-buckets")).to_contain_text("Week of")
    assert page.evaluate("() => Boolean(Chart.getChart(document.querySelector('#turnaround-trend')))")
    screen.shot("t02-turnaround-by-priority-weekly")
    screen.assert_accessible()
    screen.assert_no_console_errors()
