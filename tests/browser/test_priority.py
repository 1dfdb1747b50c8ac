"""Priority in a real browser: STAT first on the procedure queue and the board's columns, and the
board's station strip on the first screen at the workstations' sizes; accessible, no CSP errors."""

import datetime as dt

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backoffice.models import Handoff
from backoffice.workflow import Priority
from procedures.models import ProcedureOrder
from tests.browser.conftest import ARTIFACTS, Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - the fixture
from tests.factories import HandoffFactory, PatientFactory, StationFactory
from tests.procedures.helpers import awaiting_cosign, new_ma, new_supervisor

pytestmark = pytest.mark.browser


def _stat(order: ProcedureOrder) -> None:
    Handoff.objects.filter(pk=order.handoff_id).update(priority=Priority.STAT)


def test_stat_comes_first_and_the_station_strip_is_on_the_first_screen(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
) -> None:
    new_supervisor(username="boss", first_name="Samira", last_name="Okafor")
    # A clinic's stations: three rooms, two chairs, a bay, a bench; some taken by the work below.
    for code, name in [
        ("proc-1", "Procedure room 1"),
        ("proc-2", "Procedure room 2"),
        ("proc-3", "Procedure room 3"),
        ("phleb-1", "Phlebotomy chair 1"),
        ("phleb-2", "Phlebotomy chair 2"),
        ("bay-1", "Treatment bay 1"),
    ]:
        StationFactory(code=code, name=name)
    routine = awaiting_cosign("96372", ma=new_ma(first_name="Jordan", last_name="Lee"))
    ProcedureOrder.objects.filter(pk=routine.pk).update(status_changed_at=timezone.now() - dt.timedelta(minutes=40))
    stat = awaiting_cosign("36415", ma=new_ma(first_name="Ana", last_name="Reyes"))
    _stat(stat)
    stat_patient = stat.handoff.patient
    # Waiting handoffs: routine ones older than a STAT one that just arrived.
    for minutes in (55, 45, 35, 25):
        waiting = HandoffFactory()
        Handoff.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - dt.timedelta(minutes=minutes))
    HandoffFactory(
        priority=Priority.STAT, patient=PatientFactory(given_name="José", family_name="Gutiérrez", mrn="M555001")
    )
    page = screen.page

    screen.login("boss")
    for width, height in ((1366, 768), (1920, 1080)):
        page.set_viewport_size({"width": width, "height": height})
        screen.goto("/board/")
        strip = page.locator(".board-stations")
        expect(strip).to_contain_text("Procedure room 3")
        box = strip.bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= height, (width, height, box)  # seen without scrolling
        waiting_column = page.locator("section[aria-labelledby=col-waiting] .board-card")
        expect(waiting_column.first).to_contain_text("GUTIÉRREZ, José")
        expect(waiting_column.first.locator(".priority-stat")).to_have_text("STAT")
        screen.shot(f"pr01-board-{width}x{height}")
        # What the supervisor sees before scrolling, as well as the whole page.
        page.screenshot(path=str(ARTIFACTS / f"pr01-board-{width}x{height}-first-screen.png"))
        screen.assert_accessible()

    page.set_viewport_size({"width": 1366, "height": 768})
    screen.goto("/procedures/queue/")
    rows = page.locator("table.procedure-queue tbody tr")
    expect(rows.first).to_contain_text(f"{stat_patient.family_name.upper()}, {stat_patient.given_name}")
    expect(rows.first.locator(".priority-stat")).to_have_text("STAT")
    expect(rows.nth(1).locator(".oldest-badge")).to_have_text("Oldest")
    expect(rows.nth(1).locator(".priority-stat")).to_have_count(0)
    expect(
        page.get_by_text("STAT first, then the longest-waiting patient, each patient's procedures as ordered")
    ).to_be_visible()
    screen.shot("pr02-procedure-queue-stat-first")
    screen.assert_accessible()
    screen.assert_no_console_errors()
