"""The demo clinic's medication catalog (drugs, their packages' NDCs and GTINs, billing codes), the patients'
allergies as records, and the drugs ordered with the day's injections, vaccines and nebulizers."""

from decimal import Decimal

from django.core.management.base import OutputWrapper

from backoffice.allergies import records_from_text
from backoffice.models import Ingredient, Patient
from procedures.models import Medication, MedicationPackage, ProcedureType

# name, strength, form, routes, ingredients, procedure, RxNorm (SCD), HCPCS, per amount, unit, CVX, MVX, NDCs
CATALOG = [
    (
        "Ceftriaxone",
        "1 g vial",
        "powder",
        ["IM", "IV"],
        ["ceftriaxone"],
        "96372",
        "1665021",
        "J0696",
        "250",
        "mg",
        "",
        "",
        ["0409-7338-01"],
    ),
    (
        "Cyanocobalamin",
        "1000 mcg/mL",
        "solution",
        ["IM", "SC"],
        ["cyanocobalamin"],
        "96372",
        "1869529",
        "J3420",
        "1000",
        "mcg",
        "",
        "",
        ["0517-0031-25"],
    ),
    (
        "Ketorolac",
        "30 mg/mL",
        "solution",
        ["IM", "IV"],
        ["ketorolac"],
        "96372",
        "",
        "J1885",
        "15",
        "mg",
        "",
        "",
        ["0409-3795-01"],
    ),
    (
        "Penicillin G benzathine",
        "1,200,000 units/2 mL",
        "suspension",
        ["IM"],
        ["penicillin G benzathine"],
        "96372",
        "",
        "J0561",
        "100000",
        "units",
        "",
        "",
        ["60793-700-10"],
    ),
    (
        "Methylprednisolone acetate",
        "40 mg/mL",
        "suspension",
        ["IM"],
        ["methylprednisolone"],
        "96372",
        "",
        "J1030",
        "40",
        "mg",
        "",
        "",
        ["0009-3073-01"],
    ),
    (
        "Albuterol",
        "2.5 mg/3 mL",
        "inhalation",
        ["INH"],
        ["albuterol"],
        "94640",
        "",
        "J7613",
        "1",
        "mg",
        "",
        "",
        ["0487-9501-25"],
    ),
    (
        "Influenza vaccine (IIV4)",
        "0.5 mL prefilled syringe",
        "vaccine",
        ["IM"],
        ["influenza vaccine"],
        "90471",
        "",
        "90686",
        None,
        "",
        "150",
        "SKB",
        ["58160-909-52"],
    ),
    (
        "Tdap vaccine",
        "0.5 mL",
        "vaccine",
        ["IM"],
        ["tetanus toxoid"],
        "90471",
        "",
        "90715",
        None,
        "",
        "115",
        "PMC",
        ["49281-400-10"],
    ),
    (
        "Tuberculin PPD",
        "5 TU/0.1 mL",
        "solution",
        ["ID"],
        ["tuberculin purified protein derivative"],
        "86580",
        "",
        "",
        None,
        "",
        "",
        "",
        ["49281-752-21"],
    ),
    (
        "Lidocaine",
        "1% (10 mg/mL)",
        "solution",
        ["LOCAL"],
        ["lidocaine"],
        "12001",
        "",
        "",
        None,
        "",
        "",
        "",
        ["0409-4276-01"],
    ),
]
# What each demo order template gives with its procedure (clinic_day's templates by procedure code).
ORDERED_WITH = {
    "96372": "Cyanocobalamin",
    "90471": "Influenza vaccine (IIV4)",
    "94640": "Albuterol",
    "86580": "Tuberculin PPD",
}


def seed_medications(stdout: OutputWrapper) -> dict[str, Medication]:
    procedures = {p.code: p for p in ProcedureType.objects.all()}
    ingredients = {i.name: i for i in Ingredient.objects.all()}
    made: dict[str, Medication] = {}
    for name, strength, form, routes, parts, code, rxnorm, hcpcs, per, unit, cvx, mvx, ndcs in CATALOG:
        product, _ = Medication.objects.update_or_create(
            name=name,
            strength=strength,
            form=form,
            defaults={
                "routes": routes,
                "rxnorm_code": rxnorm,
                "hcpcs_code": hcpcs,
                "billing_unit_amount": Decimal(per) if per else None,
                "billing_unit": unit,
                "cvx_code": cvx,
                "mvx_code": mvx,
                "administration_procedure": procedures.get(code),
            },
        )
        product.ingredients.set([ingredients[p] for p in parts])
        for ndc in ndcs:
            MedicationPackage.objects.get_or_create(ndc=ndc, defaults={"medication": product, "description": "demo"})
        made[name] = product
    stdout.write(f"Medication catalog: {len(made)} drugs with their packages.")
    return made


def seed_allergy_records(stdout: OutputWrapper, patients: list[Patient]) -> None:
    count = records_from_text(patients)
    stdout.write(f"Allergies: {count} recorded from the patients' allergy lines.")
