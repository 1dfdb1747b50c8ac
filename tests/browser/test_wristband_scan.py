"""The identity step in a real browser: a scanned wristband is told from an MRN pasted from the banner.

The scanner sends WRISTBAND_SCAN_PREFIX before the MRN and Enter after it (Playwright types both);
the MRN copied from the patient banner arrives without the prefix and is refused until the patient's
full name and date of birth are given too. Each verification records which it was.
"""

import datetime as dt

import pytest
from playwright.sync_api import expect

from backoffice import services
from backoffice.identifiers import as_scanned
from backoffice.models import Handoff, HandoffEvent
from backoffice.workflow import HandoffStatus, IdentityMethod
from tests.browser.conftest import Screen
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory

pytestmark = pytest.mark.browser


def test_a_pasted_mrn_needs_name_and_birth_date_and_a_scan_does_not(
    screen: Screen,
    clinician,
    medical_assistant,  # type: ignore[no-untyped-def]
) -> None:
    rosa = PatientFactory(mrn="M314160", given_name="Rosa", family_name="Martínez", date_of_birth=dt.date(1961, 4, 12))
    grace = PatientFactory(mrn="M314161", given_name="Grace", family_name="Okafor", date_of_birth=dt.date(1979, 9, 3))
    room = ExamRoomFactory(name="Exam 3")
    StationFactory(code="phleb-1", name="Phlebotomy chair 1")
    StationFactory(code="phleb-2", name="Phlebotomy chair 2")
    first = HandoffFactory(patient=rosa, ordering_clinician=clinician, created_by=clinician, exam_room=room)
    second = HandoffFactory(patient=grace, ordering_clinician=clinician, created_by=clinician, exam_room=room)
    for handoff in (first, second):
        services.handoff_claim(handoff=handoff, by=medical_assistant)
    page = screen.page

    # Rosa: the MA copies the MRN from the banner into the wristband field. It is no scan.
    screen.login("ma")
    screen.goto(f"/handoffs/{first.uuid}/")
    page.get_by_role("combobox", name="Station").select_option(label="Phlebotomy chair 1")
    page.get_by_role("button", name="Assign station").click()
    expect(page.get_by_text("A typed or pasted MRN needs the full name and date of birth too.")).to_be_visible()
    page.get_by_label("Scan wristband (MRN)").fill("M314160")
    page.get_by_role("button", name="Verify identity").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "The MRN was typed or pasted, not scanned: ask the patient's full name and date of birth as well."
    )
    screen.shot("ws01-pasted-mrn-refused")
    screen.assert_accessible()
    assert Handoff.objects.get(pk=first.pk).status == HandoffStatus.CLAIMED

    # She states her name and date of birth: with the typed MRN, that is enough, recorded as typed.
    page.get_by_label("Scan wristband (MRN)").fill("M314160")
    page.get_by_label("Full name, as the patient says it").fill("Rosa Martinez")
    page.get_by_label("Date of birth, as the patient says it").fill("1961-04-12")
    page.get_by_role("button", name="Verify identity").click()
    expect(page.get_by_text("Identity verified for Rosa Martínez.")).to_be_visible()
    expect(page.get_by_text("(MRN typed, with full name and date of birth)")).to_be_visible()
    screen.shot("ws02-typed-mrn-verified")
    screen.assert_accessible()
    stored = Handoff.objects.get(pk=first.pk)
    assert stored.identity_method == IdentityMethod.TYPED_MRN
    assert stored.events.latest("id").note == "MRN typed (not scanned); name and date of birth confirmed"

    # Grace: the scanner reads her wristband and presses Enter. That alone verifies her.
    screen.goto(f"/handoffs/{second.uuid}/")
    page.get_by_role("combobox", name="Station").select_option(label="Phlebotomy chair 2")
    page.get_by_role("button", name="Assign station").click()
    field = page.get_by_label("Scan wristband (MRN)")
    field.click()
    page.keyboard.type(as_scanned("M314161"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Identity verified for Grace Okafor.")).to_be_visible()
    expect(page.get_by_text("(wristband scanned)")).to_be_visible()
    screen.shot("ws03-wristband-scanned")
    screen.assert_accessible()
    stored = Handoff.objects.get(pk=second.pk)
    assert stored.identity_method == IdentityMethod.SCANNED
    assert stored.events.filter(action=HandoffEvent.Action.IDENTITY_VERIFIED).get().note == "Wristband scanned"
    assert not HandoffEvent.objects.filter(action=HandoffEvent.Action.IDENTITY_MISMATCH).exists()
    screen.assert_no_console_errors()
