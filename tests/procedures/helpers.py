"""Reaching procedure states the way the app does: through the services, in order.

Plain rows (credentials, sign-offs, equipment) are written directly, like the factories do.
"""

import datetime as dt
from decimal import Decimal

from django.test import RequestFactory
from django.utils import timezone

from backoffice import roles
from backoffice.allergies import allergy_record
from backoffice.models import DrugClass, Equipment, Handoff, Station, User
from backoffice.services import handoff_assign_station, handoff_claim, handoff_verify_identity
from procedures import services
from procedures.drugs import read_package_barcode
from procedures.models import Competency, MedicationPackage, ProcedureDocumentation, ProcedureOrder, ProcedureType
from procedures.services import Documentation, Medication, Vitals
from tests.factories import CredentialFactory, HandoffFactory, StationFactory, UserFactory, medication


def credentialed(user: User, *, expires_in_days: int = 365) -> User:
    CredentialFactory(user=user, expires_on=timezone.localdate() + dt.timedelta(days=expires_in_days))
    return user


def procedure_type(code: str) -> ProcedureType:
    return ProcedureType.objects.get(code=code)


def signed_off(user: User, *codes: str, by: User | None = None, expires_on: dt.date | None = None) -> User:
    """Sign a user off for these procedure types (all active ones when none are named)."""
    signer = by or UserFactory(role=roles.ROLE_SUPERVISOR)
    types = [procedure_type(c) for c in codes] if codes else list(ProcedureType.objects.filter(is_active=True))
    for ptype in types:
        Competency.objects.update_or_create(
            user=user,
            procedure_type=ptype,
            defaults={
                "signed_off_by": signer,
                "signed_off_at": timezone.now(),
                "expires_on": expires_on or timezone.localdate() + dt.timedelta(days=365),
            },
        )
    return user


def new_supervisor(**kwargs: object) -> User:
    """A supervisor with a current credential, signed off for the whole catalog."""
    user = UserFactory(role=roles.ROLE_SUPERVISOR, **kwargs)
    return signed_off(credentialed(user))


def new_ma(**kwargs: object) -> User:
    return credentialed(UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT, **kwargs))


def equipped(station: Station) -> Station:
    """A station that has every kind of equipment, so any procedure can be done there."""
    station.equipment.set(Equipment.objects.all())
    return station


def ready_handoff(
    *codes: str, ma: User, station: Station | None = None, handoff: Handoff | None = None
) -> tuple[Handoff, dict[str, ProcedureOrder]]:
    """A handoff with these procedures, claimed by the MA, at an equipped station, identity verified."""
    handoff = handoff or HandoffFactory()
    station = equipped(station or StationFactory())
    orders = services.procedure_orders_add(
        handoff=handoff, procedure_types=[procedure_type(c) for c in codes], by=handoff.ordering_clinician
    )
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=station, by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=handoff.patient.mrn)
    return handoff, {o.procedure_type.code: o for o in orders}


def web_request(user: User | None = None):  # type: ignore[no-untyped-def]
    """A request for services that re-authenticate (the login lockout needs to see one)."""
    request = RequestFactory().post("/procedures/")
    if user is not None:
        request.user = user
    return request


def start(order: ProcedureOrder, by: User, *, cosign: bool = False, supervisor: User | None = None) -> ProcedureOrder:
    if supervisor is not None:
        return services.procedure_start(
            order=order,
            by=by,
            supervision="present",
            supervisor=supervisor,
            supervisor_password="correct-horse-battery-staple",
            request=web_request(),
        )
    return services.procedure_start(order=order, by=by, supervision="cosign" if cosign else "none")


# The drugs the tests give, by the name they were typed as before the catalog: (name, strength, ingredient).
CATALOG = {
    "Ceftriaxone 250 mg/mL": ("Ceftriaxone", "250 mg/mL", "ceftriaxone"),
    "Lidocaine 1%": ("Lidocaine", "1%", "lidocaine"),
}


def good_lot(**overrides: object) -> Medication:
    drug = str(overrides.pop("drug", "Ceftriaxone 250 mg/mL"))
    name, strength, ingredient = CATALOG.get(drug, (drug, "", drug.split()[0].lower()))
    values: dict[str, object] = {
        "product": overrides.pop("product", None) or medication(name, strength, ingredients=(ingredient,)),
        "dose": Decimal("250"),
        "unit": "mg",
        "route": "IM",
        "site": "Left ventrogluteal",
        "lot_number": "CX4471B",
        "expiry_date": timezone.localdate() + dt.timedelta(days=200),
    }
    values.update(overrides)
    return Medication(**values)  # type: ignore[arg-type]


def full_documentation(order: ProcedureOrder, **overrides: object) -> Documentation:
    """Everything any procedure type can ask for, ticked and filled in."""
    ptype = order.procedure_type
    values: dict[str, object] = {
        "site": "Left antecubital fossa",
        "laterality": "left",
        "findings": "Canal clear after irrigation; tympanic membrane intact.",
        "tolerance": "well",
        "specimen_note": "1 lavender, 1 gold SST",
        "consent_obtained": True,
        "consent_from": "Patient",
        "timeout_done": True,
        "steps_done": frozenset(ptype.steps.values_list("pk", flat=True)),
        "vitals_before": Vitals(systolic=128, diastolic=82, pulse=76, spo2=97),
        "vitals_after": Vitals(systolic=124, diastolic=80, pulse=72, spo2=98),
    }
    values.update(overrides)
    return Documentation(**values)  # type: ignore[arg-type]


def version(order: ProcedureOrder) -> int:
    return ProcedureDocumentation.objects.get(order=order).version


def documented(order: ProcedureOrder, by: User, **overrides: object) -> ProcedureOrder:
    if order.procedure_type.documents_medication:
        services.procedure_add_medication(order=order, by=by, version=version(order), medication=good_lot())
    services.procedure_document(order=order, by=by, version=version(order), data=full_documentation(order, **overrides))
    return order


def finished(order: ProcedureOrder, by: User) -> ProcedureOrder:
    return services.procedure_finish(order=order, by=by, version=version(order))


def awaiting_cosign(code: str, *, ma: User, station: Station | None = None) -> ProcedureOrder:
    """A not-yet-competent MA's procedure, documented and waiting for a supervisor."""
    _, orders = ready_handoff(code, ma=ma, station=station)
    order = start(orders[code], ma, cosign=True)
    return finished(documented(order, ma), ma)


def one_of_everything() -> ProcedureOrder:
    """A procedure that has every kind of record: checklist, vitals, medication, co-sign, addendum, charge.

    The ultrasound-guided aspiration asks for all of them.
    """
    ma = new_ma()
    supervisor = new_supervisor()
    order = awaiting_cosign("10005", ma=ma)
    services.procedure_cosign(order=order, by=supervisor)
    services.procedure_add_addendum(order=order, by=ma, reason="late_entry", text="Two passes; slides to cytology.")
    medication_records(ma=ma, supervisor=supervisor)
    return order


def penicillin_g():  # type: ignore[no-untyped-def]
    """Bicillin L-A as the catalog has it: J0561 per 100,000 units, one package with its NDC and GTIN."""
    product = medication(
        "Penicillin G benzathine",
        "1,200,000 units/2 mL",
        ingredients=("penicillin G benzathine",),
        form="suspension",
        routes=["IM"],
        hcpcs_code="J0561",
        billing_unit_amount=Decimal("100000"),
        billing_unit="units",
        administration_procedure=procedure_type("96372"),
    )
    MedicationPackage.objects.get_or_create(medication=product, ndc="60793-700-10")
    return product


def package_scan(product, *, lot: str = "PG2291", expiry: str = "301231") -> str:  # type: ignore[no-untyped-def]
    """What a scanner reads off the package's GS1 DataMatrix: GTIN, expiry, then lot (FNC1 as GS)."""
    return f"01{product.packages.get().gtin}17{expiry}10{lot}"


def medication_records(*, ma: User, supervisor: User) -> ProcedureOrder:
    """A penicillin given to a penicillin-allergic patient after a clinician's override, scanned from its package,
    with a typed entry marked entered in error, co-signed and charged with its drug line."""
    product = penicillin_g()
    handoff = HandoffFactory()
    allergy_record(
        patient=handoff.patient,
        by=handoff.ordering_clinician,
        kind="drug_class",
        drug_class=DrugClass.objects.get(name="Penicillins"),
        reaction="hives",
    )
    _, orders = ready_handoff("96372", ma=ma, handoff=handoff)
    order = orders["96372"]
    services.medications_order(
        order=order, medications=[product], by=handoff.ordering_clinician, override_reason="Syphilis; desensitized"
    )
    start(order, ma, cosign=True)
    typed = services.procedure_add_medication(
        order=order,
        by=ma,
        version=version(order),
        medication=good_lot(product=product, unit="units", dose=Decimal("1200000"), lot_number="TYPO"),
    )
    services.medication_mark_error(administration=typed, by=ma, reason="Lot typed wrong; scanned instead")
    scan = read_package_barcode(package_scan(product))
    services.procedure_add_medication(
        order=order,
        by=ma,
        version=version(order),
        medication=good_lot(
            product=product,
            unit="units",
            dose=Decimal("1200000"),
            lot_number=scan.lot_number,
            expiry_date=scan.expiry_date,
            entry="scanned",
            gtin=scan.gtin,
        ),
    )
    services.procedure_document(order=order, by=ma, version=version(order), data=full_documentation(order))
    finished(order, ma)
    services.procedure_cosign(order=order, by=supervisor)
    return order
