"""Django admin's patient search in a real browser: it finds the patient, and no address or tab title
the browser keeps (history, the back button) holds the name or the MRN."""

import re

import pytest
from playwright.sync_api import expect

from backoffice.models import User
from tests.browser.conftest import Screen
from tests.conftest import PASSWORD
from tests.factories import PatientFactory

pytestmark = pytest.mark.browser


def test_a_superuser_searches_patients_in_admin_and_the_browser_keeps_no_name(screen: Screen) -> None:
    User.objects.create_superuser("root", "root@clinic.test", PASSWORD)
    patient = PatientFactory(family_name="Gutierrez", given_name="Ximena", mrn="M770001")
    PatientFactory(family_name="Okonkwo", given_name="Chidi", mrn="M770002")
    page = screen.page
    screen.login("root")
    screen.goto("/admin/backoffice/patient/")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)

    def nothing_identifying() -> None:
        for text in (page.url, page.title()):
            assert not re.search(r"gutierrez|ximena|m770001", text, re.IGNORECASE), text

    # By name, submitted with Enter as a scanner or a person would.
    page.get_by_role("textbox").first.fill("Gutierrez")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"[?&]_s="))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("M770001")
    expect(page.locator("#searchbar")).to_have_value("Gutierrez")  # what was typed stays on the page
    nothing_identifying()
    screen.shot("admin-patient-search")
    screen.assert_accessible()

    # Sorting the searched list keeps the search, still without the name in the address.
    page.locator("#result_list thead th.sortable a").first.click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    nothing_identifying()

    # The patient's page and its way back to the list: neither names them in the address or tab title.
    page.locator("#result_list tbody tr th a").first.click()
    page.wait_for_url(re.compile(rf"/admin/backoffice/patient/{patient.pk}/change/"))
    expect(page.locator("#content h2").first).to_contain_text("Gutierrez")  # the heading still says who
    nothing_identifying()
    page.go_back()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)

    # By MRN, as a wristband scan types it.
    page.locator("#searchbar").fill("M770002")
    page.locator("#searchbar").press("Enter")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list tbody tr").first).to_contain_text("Okonkwo")
    assert "m770002" not in page.url.lower()
    nothing_identifying()
    screen.assert_no_console_errors()
