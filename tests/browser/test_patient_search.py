"""The new handoff's patient search in a real browser: unaccented, lower-case names, a date of birth and
part of an MRN find the patient, and Enter on a result picks it instead of sending the form."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from backoffice.models import Handoff
from tests.browser.conftest import Screen
from tests.factories import ExamRoomFactory, PatientFactory

pytestmark = pytest.mark.browser


def test_a_clinician_finds_the_patient_as_typed_and_picks_one_with_the_keyboard(
    screen: Screen,
    clinician,  # type: ignore[no-untyped-def]
) -> None:
    jose = PatientFactory(
        mrn="M200123",
        given_name="José",
        family_name="Gutiérrez",
        date_of_birth=dt.date(1980, 3, 14),
        allergies="Amoxicillin — rash",
    )
    PatientFactory(mrn="M300456", given_name="Ana", family_name="Gutierrez", date_of_birth=dt.date(1975, 1, 2))
    ExamRoomFactory(name="Exam 3")
    page = screen.page
    screen.login("doc")
    expect(page).to_have_url(f"{screen.base_url}/handoffs/new/")
    search = page.get_by_label("Scan the wristband or type MRN or name")
    results = page.locator("#patient-results")

    search.fill("jose gutierrez")  # no accents, no capitals
    expect(results.get_by_role("radio")).to_have_count(1)
    expect(results).to_contain_text("GUTIÉRREZ, José")
    screen.shot("ps01-search-without-accents")
    screen.assert_accessible()

    search.fill("03/14/1980")
    expect(results.get_by_role("radio")).to_have_count(1)
    expect(results).to_contain_text("DOB 03/14/1980")
    search.fill("1980-03-14")
    expect(results.get_by_role("radio")).to_have_count(1)
    expect(results).to_contain_text("GUTIÉRREZ, José")
    search.fill("0123")
    expect(results.get_by_role("radio")).to_have_count(1)
    expect(results).to_contain_text("M200123")
    screen.shot("ps02-search-by-mrn-part")

    # Two matches: down to the first, down again to the second, Enter picks it and the form waits.
    search.fill("gutierrez")
    expect(results.get_by_role("radio")).to_have_count(2)
    search.press("ArrowDown")
    first = results.get_by_role("radio").first
    expect(first).to_be_focused()
    page.keyboard.press("ArrowDown")
    second = results.get_by_role("radio").nth(1)
    expect(second).to_be_focused()
    page.keyboard.press("Enter")
    expect(second).to_be_checked()
    expect(page.get_by_label("Ordering clinician")).to_be_focused()
    expect(page).to_have_url(f"{screen.base_url}/handoffs/new/")
    expect(page.locator(".invalid-feedback, .alert-danger")).to_have_count(0)
    assert not Handoff.objects.exists()
    assert second.get_attribute("value") == str(jose.uuid)  # GUTIERREZ, Ana sorts before GUTIÉRREZ, José
    picked = results.locator(".list-group-item:has(input:checked)")
    expect(picked).to_contain_text("GUTIÉRREZ, José")
    expect(picked).to_have_css("background-color", "rgb(231, 241, 255)")
    screen.shot("ps03-enter-picks-the-patient")
    screen.assert_accessible()
    screen.assert_no_console_errors()
