"""The drug classes and ingredients allergies name, and a record for each allergy line patients already had.

Allergies were one text field; each line becomes an allergy record (recorded by no one: brought over),
linked to the ingredient or class it names exactly, so the cross-check compares it structurally. Lines
that name neither stay text, which the cross-check still reads (backoffice.allergies).
"""

import re
import unicodedata

from django.db import migrations

# Class: words a typed allergy may use for it.
CLASSES = {
    "Penicillins": "penicillin, PCN",
    "Cephalosporins": "cephalosporin",
    "Sulfonamide antibiotics": "sulfa, sulfonamide, sulfa drugs",
    "Macrolides": "macrolide",
    "Fluoroquinolones": "fluoroquinolone, quinolone",
    "Tetracyclines": "tetracycline",
    "NSAIDs": "NSAID, nonsteroidal anti-inflammatory",
    "Opioids": "opioid, opiate, narcotic",
    "Amide local anesthetics": "local anesthetic, caine",
    "Corticosteroids": "steroid",
    "Vaccines containing egg protein": "egg",
}
# Ingredient: RxNorm ingredient code, classes.
INGREDIENTS = {
    "amoxicillin": ("723", ["Penicillins"]),
    "ampicillin": ("733", ["Penicillins"]),
    "penicillin G benzathine": ("", ["Penicillins"]),
    "penicillin V": ("", ["Penicillins"]),
    "ceftriaxone": ("2193", ["Cephalosporins"]),
    "cephalexin": ("2231", ["Cephalosporins"]),
    "sulfamethoxazole": ("10180", ["Sulfonamide antibiotics"]),
    "azithromycin": ("18631", ["Macrolides"]),
    "ciprofloxacin": ("2551", ["Fluoroquinolones"]),
    "doxycycline": ("3640", ["Tetracyclines"]),
    "ibuprofen": ("5640", ["NSAIDs"]),
    "ketorolac": ("35827", ["NSAIDs"]),
    "naproxen": ("7258", ["NSAIDs"]),
    "aspirin": ("1191", ["NSAIDs"]),
    "codeine": ("2670", ["Opioids"]),
    "morphine": ("7052", ["Opioids"]),
    "lidocaine": ("6387", ["Amide local anesthetics"]),
    "methylprednisolone": ("6902", ["Corticosteroids"]),
    "triamcinolone": ("10759", ["Corticosteroids"]),
    "cyanocobalamin": ("11248", []),
    "albuterol": ("435", []),
    "testosterone": ("10379", []),
    "tuberculin purified protein derivative": ("", []),
    "influenza vaccine": ("", ["Vaccines containing egg protein"]),
    "tetanus toxoid": ("", []),
}


def _normal(text):
    letters = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", letters.casefold()).split())


def forwards(apps, schema_editor):
    DrugClass = apps.get_model("backoffice", "DrugClass")
    Ingredient = apps.get_model("backoffice", "Ingredient")
    Allergy = apps.get_model("backoffice", "Allergy")
    Patient = apps.get_model("backoffice", "Patient")
    classes = {}
    for name, also in CLASSES.items():
        classes[name], _ = DrugClass.objects.update_or_create(name=name, defaults={"also_matches": also})
    ingredients = {}
    for name, (rxnorm, class_names) in INGREDIENTS.items():
        ingredients[name], _ = Ingredient.objects.update_or_create(name=name, defaults={"rxnorm_code": rxnorm})
        ingredients[name].classes.set([classes[c] for c in class_names])
    by_name = {_normal(i.name): i for i in ingredients.values()}
    by_class = {}
    for drug_class in classes.values():
        for term in [drug_class.name, *drug_class.also_matches.split(",")]:
            for form in {_normal(term), _normal(term).rstrip("s")}:
                if form:
                    by_class[form] = drug_class
    rows = []
    for patient in Patient.objects.exclude(allergies="").only("id", "allergies", "created_at").iterator():
        for line in (part.strip() for part in patient.allergies.splitlines()):
            if not line:
                continue
            allergen, _, reaction = (part.strip() for part in line.partition(" — "))
            word = _normal(allergen)
            ingredient = by_name.get(word)
            drug_class = None if ingredient else by_class.get(word) or by_class.get(word.rstrip("s"))
            kind = (
                "ingredient" if ingredient else "drug_class" if drug_class else "latex" if word == "latex" else "other"
            )
            rows.append(
                Allergy(
                    patient_id=patient.id,
                    kind=kind,
                    ingredient=ingredient,
                    drug_class=drug_class,
                    allergen=allergen[:120],  # as it was written: the banner shows the same line
                    reaction=reaction[:120],
                    recorded_at=patient.created_at,
                )
            )
    Allergy.objects.bulk_create(rows, batch_size=2000)


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0020_allergies")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
