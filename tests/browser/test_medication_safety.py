"""Medication safety in a real browser: allergies asked and recorded on the spot, the allergy stop shown before
anyone scans, a scanned package of the wrong drug stopped, the right one filled in from its barcode, an entry
marked entered in error, and the clinician's override with a reason."""

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from backoffice.identifiers import as_scanned
from backoffice.models import Handoff, Station
from procedures.models import AllergyOverride, MedicationAdministration, MedicationPackage
from procedures.services import procedure_orders_add
from tests.browser.conftest import Screen
from tests.browser.test_procedures_flow import seeded_by_migrations  # noqa: F401 (a fixture)
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, StationFactory, medication
from tests.procedures.helpers import credentialed, equipped, package_scan, procedure_type, signed_off

pytestmark = pytest.mark.browser


def test_allergies_are_asked_and_the_wrong_drug_is_stopped_at_the_vial(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    clinician,  # type: ignore[no-untyped-def]
    medical_assistant,
    supervisor,
) -> None:
    signed_off(credentialed(medical_assistant), "96372", by=credentialed(supervisor))
    injection = procedure_type("96372")
    for name, strength, ingredient, hcpcs, per, unit, ndc in (
        (
            "Penicillin G benzathine",
            "1,200,000 units/2 mL",
            "penicillin G benzathine",
            "J0561",
            100000,
            "units",
            "60793-700-10",
        ),
        ("Ceftriaxone", "1 g vial", "ceftriaxone", "J0696", 250, "mg", "0409-7338-01"),
    ):
        product = medication(
            name,
            strength,
            ingredients=(ingredient,),
            routes=["IM"],
            hcpcs_code=hcpcs,
            billing_unit_amount=Decimal(per),
            billing_unit=unit,
            administration_procedure=injection,
        )
        MedicationPackage.objects.get_or_create(medication=product, ndc=ndc)
    patient = PatientFactory(mrn="M271802", given_name="Ana", family_name="Souza", date_of_birth=dt.date(1988, 2, 9))
    equipped(StationFactory(code="inj-1", name="Injection room", kind=Station.Kind.PROCEDURE_ROOM))
    handoff = HandoffFactory(
        patient=patient,
        ordering_clinician=clinician,
        created_by=clinician,
        exam_room=ExamRoomFactory(name="Exam 5"),
        clinical_note="Syphilis, early latent: IM injection today.",
    )
    procedure_orders_add(handoff=handoff, procedure_types=[injection], by=clinician)
    page = screen.page

    # Allergies were never asked: the MA asks on the spot and records what the patient says.
    screen.login("ma")
    page.locator("tbody tr", has_text="SOUZA, Ana").get_by_role("button", name="Claim").click()
    expect(page.get_by_text("Allergies not recorded: ask")).to_be_visible()
    page.get_by_role("link", name="Ask and record allergies").click()
    page.get_by_label("Allergic to").select_option(label="Drug class")
    page.get_by_label("Drug class").select_option(label="Penicillins")
    page.get_by_label("Reaction").fill("throat swelling")
    page.get_by_label("Severity").select_option(label="Severe (anaphylaxis)")
    page.get_by_role("button", name="Record allergy").click()
    expect(page.get_by_text("Recorded for Ana Souza: Penicillins — throat swelling (severe).")).to_be_visible()
    expect(page.locator(".patient-banner")).to_contain_text("Penicillins — throat swelling (severe)")
    screen.shot("m01-allergies-recorded")
    screen.assert_accessible()

    # To the injection room; identity; start the injection.
    page.get_by_role("link", name="Back to the handoff").click()
    page.get_by_role("combobox", name="Station").select_option(label="Injection room")
    page.get_by_role("button", name="Assign station").click()
    page.get_by_label("Scan wristband (MRN)").fill(as_scanned("M271802"))
    page.get_by_role("button", name="Verify identity").click()
    page.locator("section.procedure-panel").get_by_role("link", name="Start Therapeutic injection, IM or SC").click()
    page.get_by_role("button", name="Start Therapeutic injection, IM or SC").click()
    stop = page.locator(".allergy-stop", has_text="Penicillin G benzathine")
    expect(stop).to_contain_text("Allergy stop: don't give Penicillin G benzathine")
    expect(stop).to_contain_text("Only a clinician can override it")
    screen.shot("m02-allergy-stop-before-scanning")
    screen.assert_accessible()

    # The penicillin vial is scanned anyway: stopped at once, nothing recorded.
    scan = page.get_by_label("Scan the package")
    scan.fill(package_scan(MedicationPackage.objects.get(ndc="60793-700-10").medication))
    scan.press("Enter")
    expect(page.locator(".scan-error")).to_contain_text("Stop: Penicillin G benzathine 1,200,000 units/2 mL runs into")
    screen.shot("m03-wrong-drug-scanned")
    screen.assert_accessible()
    assert not MedicationAdministration.objects.exists()

    # The ceftriaxone vial: the drug, lot and expiry come from its barcode; the MA gives the dose.
    ceftriaxone = MedicationPackage.objects.get(ndc="0409-7338-01").medication
    scan = page.get_by_label("Scan the package")
    scan.fill(package_scan(ceftriaxone, lot="CX9931", expiry="301130"))
    scan.press("Enter")
    expect(page.locator(".scan-read")).to_contain_text(
        "Scanned: Ceftriaxone 1 g vial, lot CX9931, expires Nov 30, 2030"
    )
    form = page.locator("form.med-form")
    expect(form.get_by_label("Lot number")).to_have_value("CX9931")
    form.get_by_label("Dose").fill("1")
    form.get_by_label("Unit").select_option("g")
    form.get_by_label("Site").fill("Left ventrogluteal")
    screen.shot("m04-scanned-package")
    screen.assert_accessible()
    form.get_by_role("button", name="Record medication").click()
    expect(page.get_by_text("Recorded: Ceftriaxone 1 g vial 1 g IM (lot CX9931).")).to_be_visible()
    expect(page.locator("table.meds-table")).to_contain_text("scanned")

    # Recorded twice by mistake: the second is marked entered in error, kept and struck through.
    page.get_by_text("Record another medication").click()
    form.get_by_label("Scan the package").fill(package_scan(ceftriaxone, lot="CX9931", expiry="301130"))
    form.get_by_role("button", name="Read the scan").click()
    page.locator("form.med-form").get_by_label("Dose").fill("1")
    page.locator("form.med-form").get_by_label("Unit").select_option("g")
    page.locator("form.med-form").get_by_role("button", name="Record medication").click()
    second = page.locator("table.meds-table tbody tr").nth(1)
    second.get_by_text("Entered in error…").click()
    second.get_by_label("Why it was entered in error").fill("Recorded twice; one dose given")
    second.get_by_role("button", name="Mark").click()
    expect(page.get_by_text("Marked entered in error")).to_be_visible()
    expect(page.locator("table.meds-table")).to_contain_text("Recorded twice; one dose given")
    expect(page.locator("tr.med-in-error del").first).to_have_text("Ceftriaxone 1 g vial")
    screen.shot("m05-entered-in-error")
    screen.assert_accessible()
    screen.logout()

    # The clinician decides the penicillin is still needed: the override, with a reason, recorded.
    screen.login("doc")
    page.goto(f"{screen.base_url}/procedures/{handoff.procedure_orders.get().uuid}/")
    stop = page.locator(".allergy-stop", has_text="Penicillin G benzathine")
    stop.get_by_label("Reason to give it despite the allergy").fill(
        "Desensitized this morning in clinic; monitor 60 min"
    )
    stop.get_by_role("button", name="Override, with this reason").click()
    expect(page.get_by_text("Allergy stop overridden for Penicillin G benzathine")).to_be_visible()
    expect(page.locator(".allergy-stop")).to_contain_text("Desensitized this morning in clinic")
    screen.shot("m06-clinician-override")
    screen.assert_accessible()
    assert AllergyOverride.objects.get().overridden_by == clinician
    screen.assert_no_console_errors()


def test_ordering_a_drug_the_patient_is_allergic_to_needs_the_clinicians_reason(
    screen: Screen,
    seeded_by_migrations: None,  # noqa: F811
    clinician,  # type: ignore[no-untyped-def]
) -> None:
    penicillin = medication(
        "Penicillin G benzathine",
        "1,200,000 units/2 mL",
        ingredients=("penicillin G benzathine",),
        routes=["IM"],
        hcpcs_code="J0561",
        billing_unit_amount=Decimal("100000"),
        billing_unit="units",
        administration_procedure=procedure_type("96372"),
    )
    PatientFactory(
        mrn="M271803",
        given_name="Lucas",
        family_name="Pereira",
        allergies="Penicillin — hives",
        date_of_birth=dt.date(1979, 6, 1),
    )
    ExamRoomFactory(name="Exam 2")
    page = screen.page
    screen.login("doc")
    page.get_by_label("Scan the wristband or type MRN or name").fill("pereira")
    page.get_by_role("radio", name="PEREIRA, Lucas").check()
    page.get_by_label("Exam room").select_option(label="Exam 2")
    page.get_by_label(str(penicillin)).check()
    page.get_by_role("button", name="Send to back office").click()
    alert = page.locator(".alert-danger", has_text="Allergy stop: nothing was ordered.")
    expect(
        page.get_by_text("Stop: Penicillin G benzathine 1,200,000 units/2 mL runs into Lucas Pereira's allergy")
    ).to_be_visible()
    expect(alert).to_be_visible()
    screen.shot("m07-ordering-allergy-stop")
    screen.assert_accessible()
    assert not Handoff.objects.filter(patient__mrn="M271803").exists()

    page.get_by_label(str(penicillin)).check()  # still ticked after the refusal; ticking again changes nothing
    alert.get_by_label("Reason to give it despite the allergy").fill("Mild rash as a child; tolerated amoxicillin 2024")
    page.get_by_role("button", name="Send to back office").click()
    expect(page.get_by_text("Lucas Pereira is on the back-office queue.")).to_be_visible()
    override = AllergyOverride.objects.get()
    assert (override.stage, override.overridden_by) == ("ordering", clinician)
    screen.assert_no_console_errors()
