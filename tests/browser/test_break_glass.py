"""Break-glass in a real browser: a lab tech opens a patient's record in an emergency, an auditor sees it reported."""

import pytest
from playwright.sync_api import expect

from backoffice.models import BreakGlass, BreakGlassAccess, Handoff, User
from procedures.models import ProcedureType
from procedures.services import procedure_orders_add
from tests.browser.conftest import Screen

pytestmark = pytest.mark.browser

REASON = "Fainted at the draw station; need her allergies and today's orders"


def test_a_lab_tech_breaks_the_glass_and_an_auditor_sees_it(
    screen: Screen,
    lab_tech: User,
    auditor: User,
    handoff: Handoff,  # type: ignore[no-untyped-def]
) -> None:
    ptype = ProcedureType.objects.filter(is_active=True).order_by("name").first()
    assert ptype is not None
    procedure_orders_add(handoff=handoff, procedure_types=[ptype], by=handoff.ordering_clinician)
    page = screen.page

    screen.login(lab_tech.username)
    page.get_by_role("link", name="Emergency access").click()
    expect(page.get_by_role("heading", name="Emergency access to a patient's record")).to_be_visible()
    page.get_by_label("Patient MRN").fill(handoff.patient.mrn)
    page.get_by_label("Why you need this record now").fill("urgent")
    page.get_by_role("button", name="Break the glass and open the record").click()
    # Too short a reason is refused, said beside the field.
    expect(page.locator(".invalid-feedback")).to_contain_text("at least 15 characters")
    screen.shot("bg01-reason-required")
    screen.assert_accessible()
    page.get_by_label("Why you need this record now").fill(REASON)
    page.get_by_role("button", name="Break the glass and open the record").click()
    expect(page.get_by_role("heading", name="MARTÍNEZ, Rosa")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Break-glass access")
    expect(page.get_by_role("status")).to_contain_text(REASON)
    expect(page.locator(".allergy, .allergies, [class*=allerg]").first).to_contain_text("Penicillin")
    expect(page.get_by_role("table").first).to_contain_text(ptype.name)
    screen.shot("bg02-record")
    screen.assert_accessible()
    screen.assert_no_console_errors()
    grant = BreakGlass.objects.get()
    assert BreakGlassAccess.objects.filter(grant=grant).count() == 1
    screen.logout()

    screen.login(auditor.username)
    page.get_by_role("link", name="Break-glass").click()
    expect(page.get_by_role("heading", name="Break-glass report")).to_be_visible()
    row = page.locator("table.audit-table tbody tr").first
    expect(row).to_contain_text("Lee Chen")
    expect(row).to_contain_text(handoff.patient.mrn)
    expect(row).to_contain_text(REASON)
    expect(row).to_contain_text("break-glass record")
    expect(row).to_contain_text("open")
    screen.shot("bg03-report")
    screen.assert_accessible()
    screen.assert_no_console_errors()
