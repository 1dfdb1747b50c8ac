"""QC at the bench in a real browser: a new strep kit lot is locked until its controls pass, a failed
control keeps it locked and says why, and a quantitative control's Levey-Jennings chart.
"""

import datetime as dt
from unittest import mock

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from lab.models import QCRun
from lab.qc.services import qc_run_record
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 - a fixture
from tests.lab.helpers import kit_lot, qualitative_qc, quantitative_qc

pytestmark = pytest.mark.browser

# Twelve days of level 1 glucose QC (52 ± 3 mg/dL): a 1-2s warning, then 2-2s on two days in a row.
GLUCOSE_HISTORY = ("52", "53", "50", "55", "49", "51", "58.5", "52", "54", "58.4", "58.8", "51")


def test_a_lab_tech_unlocks_a_new_strep_lot_and_reads_a_levey_jennings_chart(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811 - the fixture imported above
    lab_tech,  # type: ignore[no-untyped-def]
) -> None:
    qualitative_qc("Rapid strep")
    strep = kit_lot("Rapid strep", lot="STA-24117", received_days_ago=0)
    low, _high = quantitative_qc("POC glucose", levels=(("52", "3"), ("305", "12")))
    glucose = kit_lot("POC glucose", lot="GL-497212", received_days_ago=20)
    start = timezone.now() - dt.timedelta(days=len(GLUCOSE_HISTORY))
    for day, value in enumerate(GLUCOSE_HISTORY):
        with mock.patch("django.utils.timezone.now", return_value=start + dt.timedelta(days=day)):
            qc_run_record(kit_lot=glucose, control_lot=low, value=value, by=lab_tech)
    page = screen.page

    screen.login("lab")
    page.get_by_role("link", name="QC", exact=True).click()
    lot = page.locator(f"#lot-{strep.pk}")
    expect(lot).to_contain_text("Locked")
    expect(lot).to_contain_text("Run the negative control on Acme Diagnostics Rapid strep kit lot STA-24117 first")
    screen.shot("q01-new-lot-locked")
    screen.assert_accessible()

    lot.locator("tr", has_text="lot N-1").get_by_role("button", name="Negative").click()
    expect(page.get_by_text("read Negative on lot STA-24117: passed. Still locked")).to_be_visible()
    # The positive control reads negative: a failure, and the lot stays locked with the reason.
    lot.locator("tr", has_text="lot P-1").get_by_label("Note for Rapid strep Positive control").fill("No test line")
    lot.locator("tr", has_text="lot P-1").get_by_role("button", name="Negative").click()
    expect(page.locator(".alert-danger", has_text="FAILED")).to_be_visible()
    expect(lot).to_contain_text("The positive control failed on Acme Diagnostics Rapid strep kit lot STA-24117")
    screen.shot("q02-positive-control-failed")
    screen.assert_accessible()

    lot.locator("tr", has_text="lot P-1").get_by_role("button", name="Positive").click()
    expect(page.get_by_text("read Positive on lot STA-24117: passed. Patient testing is unlocked.")).to_be_visible()
    expect(lot.locator(".badge")).to_have_text("Unlocked")
    screen.shot("q03-lot-unlocked")
    screen.assert_accessible()
    assert list(QCRun.objects.filter(kit_lot=strep).values_list("passed", flat=True)) == [True, False, True]

    # Keyboard first: the first control due has the focus; type its value and press Enter.
    due = page.get_by_role("textbox", name="POC glucose Level 1 (low) lot C1-1 value on lot GL-497212 (mg/dL)")
    expect(due).to_be_focused()
    page.keyboard.type("52")
    page.keyboard.press("Enter")
    expect(
        page.get_by_text("read 52 mg/dL on lot GL-497212: passed. Still locked: Run the level 2 (high)")
    ).to_be_visible()

    page.get_by_role("link", name="Level 1 (low) lot C1-1").click()
    expect(page.get_by_role("heading", name="POC glucose Level 1 (low) · lot C1-1")).to_be_visible()
    chart = page.get_by_role("img", name="Levey-Jennings chart of POC glucose Level 1 (low) lot C1-1")
    expect(chart).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(len(GLUCOSE_HISTORY) + 1)
    expect(page.locator("tbody tr.table-danger")).to_have_count(3)
    expect(page.locator("tbody tr", has_text="58.8")).to_contain_text("2-2s two in a row beyond 2 SD on the same side")
    screen.shot("q04-levey-jennings")
    screen.assert_accessible()
    screen.assert_no_console_errors()
