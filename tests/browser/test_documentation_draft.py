"""Nothing typed is lost, in a real browser: the documentation is kept as a draft as the MA types, so
recording the medication (a form of its own) or reloading the page brings back every ticked step and
every word of the findings; each step shows, and keeps, the time it was ticked."""

import datetime as dt
import re

import pytest
from playwright.sync_api import expect

from backoffice.models import Station
from procedures.models import DocumentationDraft, StepCompletion
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 (a fixture)
from tests.factories import HandoffFactory, PatientFactory, StationFactory, medication
from tests.procedures.helpers import credentialed, ready_handoff, signed_off, start

pytestmark = pytest.mark.browser


def test_ticked_steps_and_findings_survive_the_medication_form_and_a_reload(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    medical_assistant,  # type: ignore[no-untyped-def]
    supervisor,
) -> None:
    ma = signed_off(credentialed(medical_assistant), "12001", by=credentialed(supervisor))
    medication("Lidocaine", "1%", ingredients=("lidocaine",), routes=["LOCAL"])
    patient = PatientFactory(given_name="José", family_name="Gutiérrez", date_of_birth=dt.date(1979, 6, 2))
    station = StationFactory(code="proc-2", name="Procedure room 2", kind=Station.Kind.PROCEDURE_ROOM)
    _, orders = ready_handoff("12001", ma=ma, station=station, handoff=HandoffFactory(patient=patient))
    order = start(orders["12001"], ma)
    page = screen.page
    screen.login("ma")
    screen.goto(f"/procedures/{order.uuid}/")

    doc = page.locator("section.doc-card")
    checklist = doc.locator("fieldset.checklist")
    checklist.get_by_role("checkbox").nth(0).check()
    checklist.get_by_role("checkbox").nth(1).check()
    findings = doc.get_by_label("Findings")
    findings.fill("2 cm laceration of the left forearm, clean edges")
    expect(doc.locator("#draft-status")).to_contain_text("Draft kept at")
    expect(checklist.locator(".tick-at").nth(0)).to_have_text(re.compile(r"ticked \d\d:\d\d"))
    expect(checklist.locator(".tick-at").nth(2)).to_have_text("")
    screen.shot("d01-documentation-kept-as-typed")
    screen.assert_accessible()
    first_ticked = DocumentationDraft.objects.get().ticked_at()

    # The medication filled in, more findings typed, and Record medication at once, before the
    # draft's pause has passed: what was typed is sent first.
    med = page.locator("form.med-form")
    med.get_by_label("Drug").select_option(label="Lidocaine 1%")
    med.get_by_label("Dose").fill("3")
    med.get_by_label("Unit").select_option("mL")
    med.get_by_label("Route").select_option("LOCAL")
    med.get_by_label("Lot number").fill("LD2291")
    med.get_by_label("Lot expiry").fill("2030-11-30")
    findings.press_sequentially("; no foreign body")
    med.get_by_role("button", name="Record medication").click()
    expect(page.get_by_text("Recorded: Lidocaine 1%")).to_be_visible()

    doc = page.locator("section.doc-card")
    expect(doc.locator(".draft-restored")).to_contain_text("Your unsaved typing from")
    expect(doc.get_by_label("Findings")).to_have_value(
        "2 cm laceration of the left forearm, clean edges; no foreign body"
    )
    boxes = doc.locator("fieldset.checklist").get_by_role("checkbox")
    expect(boxes.nth(0)).to_be_checked()
    expect(boxes.nth(1)).to_be_checked()
    expect(boxes.nth(2)).not_to_be_checked()
    screen.shot("d02-back-after-the-medication")
    screen.assert_accessible()

    # A reload (or signing back in) brings it back too.
    page.reload()
    doc = page.locator("section.doc-card")
    expect(doc.get_by_label("Findings")).to_have_value(
        "2 cm laceration of the left forearm, clean edges; no foreign body"
    )
    expect(doc.locator("fieldset.checklist").get_by_role("checkbox").nth(1)).to_be_checked()

    # Saved: the record holds each step with the time it was ticked, and the draft is gone.
    doc.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Documentation saved.")).to_be_visible()
    expect(page.locator(".draft-restored")).to_have_count(0)
    done = dict(StepCompletion.objects.filter(documentation__order=order).values_list("step_id", "done_at"))
    assert done == first_ticked
    assert not DocumentationDraft.objects.exists()
    screen.assert_no_console_errors()
