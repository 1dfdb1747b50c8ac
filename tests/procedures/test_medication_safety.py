"""Medication safety: the allergy cross-check at ordering and at administration, the clinician's override,
the package scan (GS1, read with biip), the wrong or expired drug refused, entries marked entered in error,
and the drug's HCPCS line beside the administration code."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from backoffice import roles
from backoffice.allergies import allergy_conflicts, allergy_record, allergy_remove
from backoffice.models import AccessLog, DrugClass, Handoff, Ingredient, Patient, User
from backoffice.pages.ordering import handoff_order
from backoffice.services import Needs
from backoffice.workflow import PermissionRefused, Priority, TransitionNotAllowed
from procedures import drugs, services
from procedures.models import (
    AllergyOverride,
    DrugChargeLine,
    MedicationAdministration,
    MedicationError,
    MedicationPackage,
    OrderedMedication,
    ProcedureDocumentation,
    ProcedureEvent,
    ProcedureOrder,
    gtin_for_ndc,
)
from procedures.workflow import ProcedureStatus
from tests.factories import ExamRoomFactory, HandoffFactory, PatientFactory, UserFactory, medication
from tests.procedures.helpers import (
    finished,
    full_documentation,
    good_lot,
    new_ma,
    new_supervisor,
    package_scan,
    penicillin_g,
    procedure_type,
    ready_handoff,
    start,
    version,
)

pytestmark = pytest.mark.django_db


def ceftriaxone():  # type: ignore[no-untyped-def]
    """J0696 is billed per 250 mg."""
    product = medication(
        "Ceftriaxone",
        "1 g vial",
        ingredients=("ceftriaxone",),
        form="powder",
        routes=["IM", "IV"],
        hcpcs_code="J0696",
        billing_unit_amount=Decimal("250"),
        billing_unit="mg",
        administration_procedure=procedure_type("96372"),
    )
    MedicationPackage.objects.get_or_create(medication=product, ndc="0409-7338-01")
    return product


def penicillin_allergic(**fields: object) -> Patient:
    patient = PatientFactory(**fields)
    allergy_record(
        patient=patient,
        by=UserFactory(role=roles.ROLE_CLINICIAN),
        kind="drug_class",
        drug_class=DrugClass.objects.get(name="Penicillins"),
        reaction="anaphylaxis",
        severity="severe",
    )
    patient.refresh_from_db()
    return patient


@pytest.fixture
def ma() -> User:
    return new_ma(username="trainee", first_name="Jordan", last_name="Lee")


@pytest.fixture
def sup() -> User:
    return new_supervisor(username="boss", first_name="Samira", last_name="Okafor")


@pytest.fixture
def doc() -> User:
    return UserFactory(role=roles.ROLE_CLINICIAN, first_name="Priya", last_name="Shah")


def _order(*, patient: Patient, by: User, clinician: User, medications: list, reason: str = "") -> Handoff:  # type: ignore[type-arg]
    return handoff_order(
        patient=patient,
        ordering_clinician=clinician,
        exam_room=ExamRoomFactory(),
        priority=Priority.ROUTINE,
        clinical_note="",
        needs=Needs(),
        procedure_types=[],
        tests=[],
        medications=medications,
        allergy_override_reason=reason,
        by=by,
    )


# --- The catalog's numbers -------------------------------------------------------------------------


def test_billing_units_are_computed_from_the_dose_in_the_billing_unit_rounded_up() -> None:
    product = ceftriaxone()
    assert product.billing_units(Decimal("1"), "g") == 4  # 1 g of J0696 (per 250 mg)
    assert product.billing_units(Decimal("500"), "mg") == 2
    assert product.billing_units(Decimal("300"), "mg") == 2
    assert product.billing_units(Decimal("100"), "mg") == 1
    assert product.billing_units(Decimal("2"), "mL") is None  # a volume can't be billed per mg
    assert penicillin_g().billing_units(Decimal("1200000"), "units") == 12  # J0561 per 100,000 units


def test_a_package_gtin_comes_from_its_ndc_and_billing_reads_the_11_digit_ndc() -> None:
    package = ceftriaxone().packages.get()
    assert package.gtin == gtin_for_ndc("0409-7338-01") == "00304097338016"
    assert package.ndc11 == "00409733801"


# --- Reading the package barcode -------------------------------------------------------------------


def test_a_scanned_gs1_code_gives_the_drug_lot_and_expiry() -> None:
    product = ceftriaxone()
    gtin = product.packages.get().gtin
    for scanned in (f"01{gtin}17301231\x1d10AB12c", f"]d201{gtin}1730123110ab12C", f"(01){gtin}(17)301231(10)AB12C"):
        scan = drugs.read_package_barcode(scanned)
        assert (scan.medication, scan.lot_number, scan.expiry_date) == (product, "AB12C", dt.date(2030, 12, 31))


def test_a_scan_without_a_lot_or_of_an_unknown_package_is_refused_with_what_to_do() -> None:
    gtin = ceftriaxone().packages.get().gtin
    with pytest.raises(drugs.UnreadableBarcode, match="no lot"):
        drugs.read_package_barcode(f"01{gtin}17301231")
    with pytest.raises(drugs.UnreadableBarcode, match="isn't a drug package's barcode"):
        drugs.read_package_barcode("hello")
    with pytest.raises(drugs.UnknownPackage, match="not in the medication catalog"):
        drugs.read_package_barcode("01" + gtin_for_ndc("1234-5678-90") + "17301231\x1d10X1")


# --- The cross-check -------------------------------------------------------------------------------


def test_a_drug_conflicts_with_an_allergy_to_its_ingredient_its_class_or_a_text_line_naming_either() -> None:
    patient = penicillin_allergic()
    assert [c.because for c in allergy_conflicts(patient, penicillin_g().ingredients.all())] == [
        "penicillin G benzathine is in the class Penicillins"
    ]
    assert allergy_conflicts(patient, ceftriaxone().ingredients.all()) == []
    # Brought over as text (no record behind the line): read all the same.
    legacy = PatientFactory(allergies="Penicillin — hives\nLatex")
    amoxicillin = Ingredient.objects.filter(name="amoxicillin")
    assert [str(c) for c in allergy_conflicts(legacy, amoxicillin)] == [
        "Penicillin — hives (amoxicillin is in the class Penicillins)"
    ]
    ingredient = PatientFactory()
    allergy_record(
        patient=ingredient,
        by=UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT),
        kind="ingredient",
        ingredient=Ingredient.objects.get(name="ceftriaxone"),
    )
    assert [c.because for c in allergy_conflicts(ingredient, ceftriaxone().ingredients.all())] == [
        "it contains ceftriaxone"
    ]


def test_an_allergy_taken_off_the_list_no_longer_stops_the_drug() -> None:
    patient = penicillin_allergic()
    allergy = patient.allergy_records.get()
    allergy_remove(allergy=allergy, by=UserFactory(role=roles.ROLE_CLINICIAN), reason="Entered in error")
    patient.refresh_from_db()
    assert allergy_conflicts(patient, penicillin_g().ingredients.all()) == []
    assert patient.allergies == ""


# --- At ordering -----------------------------------------------------------------------------------


def test_ordering_a_drug_the_patient_is_allergic_to_stops_the_whole_order(doc: User) -> None:
    patient = penicillin_allergic(given_name="Rosa", family_name="Martínez")
    with pytest.raises(
        services.AllergyStop, match=r"Stop: Penicillin G benzathine .* runs into Rosa Martínez's allergy"
    ):
        _order(patient=patient, by=doc, clinician=doc, medications=[penicillin_g()])
    assert not Handoff.objects.filter(patient=patient).exists()  # nothing half-written


def test_only_a_clinician_overrides_at_ordering_and_the_override_is_recorded(doc: User) -> None:
    patient = penicillin_allergic()
    ma = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    with pytest.raises(PermissionRefused):
        _order(patient=patient, by=ma, clinician=doc, medications=[penicillin_g()], reason="Asked to")
    assert not Handoff.objects.filter(patient=patient).exists()

    handoff = _order(patient=patient, by=doc, clinician=doc, medications=[penicillin_g()], reason="Desensitized")
    order = ProcedureOrder.objects.get(handoff=handoff)
    assert order.procedure_type.code == "96372"  # the drug ordered the procedure that gives it
    assert [o.medication for o in OrderedMedication.objects.filter(order=order)] == [penicillin_g()]
    override = AllergyOverride.objects.get(order=order)
    assert (override.stage, override.reason, override.overridden_by) == ("ordering", "Desensitized", doc)
    assert "Penicillins — anaphylaxis (severe)" in override.conflicts
    assert ProcedureEvent.objects.filter(order=order, action="allergy_override").exists()


# --- At administration -----------------------------------------------------------------------------


def _at_administration(ma: User, *, patient: Patient | None = None, ordered: list | None = None):  # type: ignore[no-untyped-def,type-arg]
    handoff = HandoffFactory(patient=patient or PatientFactory())
    _, orders = ready_handoff("96372", ma=ma, handoff=handoff)
    order = orders["96372"]
    if ordered:
        services.medications_order(order=order, medications=ordered, by=handoff.ordering_clinician)
    return start(order, ma, cosign=True)


def test_giving_a_drug_the_patient_is_allergic_to_is_a_hard_stop_until_a_clinician_overrides(
    ma: User, doc: User
) -> None:
    order = _at_administration(ma, patient=penicillin_allergic())
    given = good_lot(product=penicillin_g(), unit="units", dose=Decimal("1200000"))
    with pytest.raises(services.AllergyStop, match="Don't give it unless a clinician overrides"):
        services.procedure_add_medication(order=order, by=ma, version=1, medication=given)
    assert not MedicationAdministration.objects.exists()

    with pytest.raises(PermissionRefused):
        services.allergy_override(order=order, medication=penicillin_g(), by=ma, reason="x", stage="administration")
    with pytest.raises(TransitionNotAllowed, match="Give the reason"):
        services.allergy_override(order=order, medication=penicillin_g(), by=doc, reason=" ", stage="administration")
    services.allergy_override(
        order=order, medication=penicillin_g(), by=doc, reason="Benefit outweighs risk", stage="administration"
    )
    services.procedure_add_medication(order=order, by=ma, version=1, medication=given)
    assert MedicationAdministration.objects.get().medication == penicillin_g()


def test_a_scanned_package_of_another_drug_than_ordered_is_refused(ma: User) -> None:
    order = _at_administration(ma, ordered=[penicillin_g()])
    scan = drugs.read_package_barcode(package_scan(ceftriaxone()))
    with pytest.raises(services.WrongDrug, match=r"Wrong drug: you scanned Ceftriaxone 1 g vial, but Penicillin G"):
        services.check_drug(
            order, scan.medication, lot_number=scan.lot_number, expiry_date=scan.expiry_date, scanned=True
        )


def test_an_expired_package_a_wrong_route_or_an_unbillable_dose_is_refused(ma: User) -> None:
    order = _at_administration(ma)
    expired = drugs.read_package_barcode(package_scan(ceftriaxone(), expiry="200101"))
    with pytest.raises(services.ExpiredLot, match="expired on 01/01/2020"):
        services.check_drug(order, expired.medication, lot_number="L", expiry_date=expired.expiry_date, scanned=True)
    with pytest.raises(services.WrongDrug, match="is given IM, IV, not SC"):
        services.procedure_add_medication(
            order=order, by=ma, version=1, medication=good_lot(product=ceftriaxone(), route="SC")
        )
    with pytest.raises(services.WrongDrug, match="in mg"):
        services.procedure_add_medication(
            order=order, by=ma, version=1, medication=good_lot(product=ceftriaxone(), unit="mL", dose=Decimal("2"))
        )
    assert not MedicationAdministration.objects.exists()


def test_a_scanned_entry_records_its_gtin_and_a_typed_one_says_so(ma: User) -> None:
    order = _at_administration(ma)
    scan = drugs.read_package_barcode(package_scan(ceftriaxone()))
    services.procedure_add_medication(
        order=order,
        by=ma,
        version=1,
        medication=good_lot(
            product=scan.medication,
            dose=Decimal("1"),
            unit="g",
            lot_number=scan.lot_number,
            expiry_date=scan.expiry_date,
            entry="scanned",
            gtin=scan.gtin,
        ),
    )
    services.procedure_add_medication(order=order, by=ma, version=2, medication=good_lot(product=ceftriaxone()))
    assert list(MedicationAdministration.objects.values_list("entry", "gtin")) == [
        ("scanned", scan.gtin),
        ("typed", ""),
    ]


# --- Entered in error and the charge -----------------------------------------------------------------


def test_an_entry_marked_in_error_stays_is_not_counted_and_is_not_billed(ma: User, sup: User) -> None:
    order = _at_administration(ma)
    wrong = services.procedure_add_medication(
        order=order, by=ma, version=1, medication=good_lot(product=ceftriaxone(), dose=Decimal("2"), unit="g")
    )
    with pytest.raises(TransitionNotAllowed, match="Say why"):
        services.medication_mark_error(administration=wrong, by=ma, reason="  ")
    services.medication_mark_error(administration=wrong, by=ma, reason="Wrong dose typed")
    gaps = services.documentation_gaps(order, ProcedureDocumentation.objects.get(order=order))
    assert "record the medication given" in gaps  # the entry in error doesn't count
    with pytest.raises(TransitionNotAllowed, match="already marked"):
        services.medication_mark_error(administration=wrong, by=ma, reason="again")

    services.procedure_add_medication(
        order=order,
        by=ma,
        version=version(order),
        medication=good_lot(product=ceftriaxone(), dose=Decimal("1"), unit="g"),
    )
    services.procedure_document(order=order, by=ma, version=version(order), data=full_documentation(order))
    finished(order, ma)
    services.procedure_cosign(order=order, by=sup)
    order.refresh_from_db()
    assert order.status == ProcedureStatus.COMPLETED
    assert MedicationAdministration.objects.count() == 2  # the wrong one is kept
    assert MedicationError.objects.get().administration == wrong
    [drug] = DrugChargeLine.objects.all()
    assert (drug.charge.code, drug.code, drug.units, drug.ndc) == ("96372", "J0696", 4, "")  # 1 g: 4 units of 250 mg
    with pytest.raises(TransitionNotAllowed, match="Add an addendum"):
        services.medication_mark_error(administration=drug.administration, by=ma, reason="late")


def test_the_charge_list_and_its_export_carry_the_drug_line_with_its_ndc(client: Client, ma: User, sup: User) -> None:
    from tests.procedures.helpers import medication_records

    medication_records(ma=new_ma(), supervisor=sup)
    client.force_login(sup)
    content = client.get(reverse("procedures:charges")).content.decode()
    assert "J0561" in content and "NDC 60793070010" in content
    rows = list(csv.reader(io.StringIO(client.get(reverse("procedures:charges_csv")).content.decode())))
    assert rows[0][-1] == "NDC"
    assert [(r[4], r[6], r[-1]) for r in rows[1:]] == [("96372", "1", ""), ("J0561", "12", "60793070010")]


# --- The procedure page ------------------------------------------------------------------------------


def _page(order: ProcedureOrder, action: str = "detail") -> str:
    return reverse(f"procedures:{action}", args=[order.uuid])


def test_the_page_shows_the_allergy_stop_before_anyone_scans_and_offers_the_override_to_clinicians(
    client: Client, ma: User, doc: User
) -> None:
    order = _at_administration(ma, patient=penicillin_allergic(), ordered=[])
    penicillin_g()
    client.force_login(ma)
    content = client.get(_page(order)).content.decode()
    assert "Allergy stop: don't give Penicillin G benzathine" in content
    assert "Only a clinician can override it" in content
    assert _page(order, "allergy_override") not in content

    client.force_login(doc)
    content = client.get(_page(order)).content.decode()
    assert _page(order, "allergy_override") in content
    response = client.post(
        _page(order, "allergy_override"), {"medication": penicillin_g().pk, "reason": "Desensitized today"}
    )
    assert response.status_code == 302
    client.force_login(ma)
    content = client.get(_page(order)).content.decode()
    assert "Allergy stop overridden:" in content and "Desensitized today" in content

    client.force_login(ma)
    assert (
        client.post(_page(order, "allergy_override"), {"medication": penicillin_g().pk, "reason": "x"}).status_code
        == 403
    )


def test_reading_a_scan_fills_the_drug_lot_and_expiry_and_refuses_a_wrong_one_at_once(client: Client, ma: User) -> None:
    order = _at_administration(ma, ordered=[ceftriaxone()])
    client.force_login(ma)
    response = client.post(
        _page(order, "medication"), {"read_scan": "1", "med-version": "1", "med-scan": package_scan(ceftriaxone())}
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert 'Scanned: <strong>Ceftriaxone 1 g vial</strong>, lot <span class="font-monospace">PG2291</span>' in content
    form = response.context["med_form"]
    assert (form.initial["product"], form.initial["lot_number"]) == (ceftriaxone().pk, "PG2291")

    response = client.post(
        _page(order, "medication"), {"read_scan": "1", "med-version": "1", "med-scan": package_scan(penicillin_g())}
    )
    assert response.status_code == 422
    assert "Wrong drug: you scanned Penicillin G benzathine" in response.content.decode()
    shown = AccessLog.objects.filter(what="procedure").latest("pk")  # the page shown again names the patient
    assert list(shown.patients.all()) == [order.handoff.patient]

    # Recording with the scan: the drug, lot and expiry come from the package, whatever was typed.
    response = client.post(
        _page(order, "medication"),
        {
            "med-version": "1",
            "med-scan": package_scan(ceftriaxone()),
            "med-lot_number": "TYPED",
            "med-dose": "1",
            "med-unit": "g",
            "med-route": "IM",
        },
    )
    assert response.status_code == 302
    given = MedicationAdministration.objects.get()
    assert (given.entry, given.lot_number, given.medication) == ("scanned", "PG2291", ceftriaxone())


def test_an_entry_in_error_is_struck_through_with_its_reason(client: Client, ma: User) -> None:
    order = _at_administration(ma)
    given = services.procedure_add_medication(
        order=order, by=ma, version=1, medication=good_lot(product=ceftriaxone(), dose=Decimal("1"), unit="g")
    )
    client.force_login(ma)
    assert (
        client.post(reverse("procedures:medication_error", args=[order.uuid, given.pk]), {"reason": ""}).status_code
        == 302
    )
    assert not MedicationError.objects.exists()
    client.post(reverse("procedures:medication_error", args=[order.uuid, given.pk]), {"reason": "Wrong patient's vial"})
    content = client.get(_page(order)).content.decode()
    assert "<del>Ceftriaxone 1 g vial</del>" in content
    assert "Wrong patient&#x27;s vial" in content


def test_the_dose_unit_and_typed_entry_need_a_catalog_drug(client: Client, ma: User) -> None:
    order = _at_administration(ma)
    client.force_login(ma)
    response = client.post(
        _page(order, "medication"),
        {"med-version": "1", "med-dose": "1", "med-unit": "g", "med-route": "IM", "med-lot_number": "L1"},
    )
    assert response.status_code == 422
    content = response.content.decode()
    assert "Choose the drug, or scan the package." in content
    assert "Give the lot&#x27;s expiry date, or scan the package." in content
    assert not MedicationAdministration.objects.exists()


def test_the_cosign_queue_shows_the_lot_expiry_by_month_name_and_strikes_an_entry_in_error(
    client: Client, ma: User, sup: User
) -> None:
    order = _at_administration(ma)
    wrong = services.procedure_add_medication(
        order=order, by=ma, version=1, medication=good_lot(product=ceftriaxone(), dose=Decimal("2"), unit="g")
    )
    services.medication_mark_error(administration=wrong, by=ma, reason="Wrong dose typed")
    services.procedure_add_medication(
        order=order,
        by=ma,
        version=version(order),
        medication=good_lot(
            product=ceftriaxone(), dose=Decimal("1"), unit="g", lot_number="CX1", expiry_date=dt.date(2030, 12, 31)
        ),
    )
    services.procedure_document(order=order, by=ma, version=version(order), data=full_documentation(order))
    finished(order, ma)
    client.force_login(sup)
    content = client.get(reverse("procedures:queue")).content.decode()
    assert '<del>Ceftriaxone 1 g vial 2 g</del> <span class="small">entered in error</span>' in content
    assert 'lot <span class="font-monospace">CX1</span> exp Dec 2030' in content
