"""A patient's allergies: recorded, removed and asked about here, and compared with a drug's ingredients.

Every change rewrites the patient's one-line-per-allergy summary (Patient.allergies) in the same
transaction, so the banner, the queue's rows and their cache see it at once. The cross-check that
the procedures app runs at ordering and at administration is ``allergy_conflicts``: a drug whose
ingredient, or a class of one, matches an allergy is a conflict, and so is an allergy recorded as
text that names one of them (records brought from an earlier system are text).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from backoffice.models import Allergy, DrugClass, Ingredient, Patient, User
from backoffice.text import normal_name
from backoffice.transitions import lock, require
from backoffice.workflow import TransitionNotAllowed

Kind = Allergy.Kind


@dataclass(frozen=True)
class Conflict:
    """One allergy a drug runs into, and why."""

    allergy: str  # the banner's line, e.g. "Penicillins — anaphylaxis (severe)"
    because: str  # e.g. "amoxicillin is a penicillin"

    def __str__(self) -> str:
        return f"{self.allergy} ({self.because})"


def _refresh_summary(patient: Patient, *, by: User) -> None:
    active = list(Allergy.objects.filter(patient=patient, removed_at__isnull=True).order_by("recorded_at", "id"))
    patient.allergies = "\n".join(a.summary_line for a in active)
    fields = ["allergies"]
    if active and patient.no_known_allergies:
        patient.no_known_allergies = False
        fields.append("no_known_allergies")
    patient.allergies_reviewed_at, patient.allergies_reviewed_by = timezone.now(), by
    patient.save(update_fields=[*fields, "allergies_reviewed_at", "allergies_reviewed_by"])


def allergy_record(
    *,
    patient: Patient,
    by: User,
    kind: str,
    ingredient: Ingredient | None = None,
    drug_class: DrugClass | None = None,
    allergen: str = "",
    reaction: str = "",
    severity: str = Allergy.Severity.UNKNOWN,
) -> Allergy:
    """Record one allergy the patient reports; a drug or class is picked from the catalog."""
    require(by, "backoffice.add_allergy", "record allergies")
    allergen = allergen.strip()
    if kind == Kind.INGREDIENT:
        if ingredient is None:
            raise TransitionNotAllowed("Choose the drug the patient is allergic to.")
        allergen, drug_class = ingredient.name.capitalize(), None
    elif kind == Kind.DRUG_CLASS:
        if drug_class is None:
            raise TransitionNotAllowed("Choose the drug class the patient is allergic to.")
        allergen, ingredient = drug_class.name, None
    elif kind == Kind.LATEX:
        allergen, ingredient, drug_class = allergen or "Latex", None, None
    elif kind in (Kind.FOOD, Kind.OTHER):
        if not allergen:
            raise TransitionNotAllowed("Say what the patient is allergic to.")
        ingredient = drug_class = None
    else:
        raise TransitionNotAllowed("Choose what kind of allergy this is.")
    with transaction.atomic():
        lock(patient)
        duplicate = Allergy.objects.filter(patient=patient, removed_at__isnull=True, kind=kind)
        duplicate = (
            duplicate.filter(ingredient=ingredient)
            if ingredient
            else duplicate.filter(drug_class=drug_class)
            if drug_class
            else duplicate.filter(allergen__iexact=allergen)
        )
        if duplicate.exists():
            raise TransitionNotAllowed(f"{allergen} is already on {patient.full_name}'s allergies.")
        allergy = Allergy.objects.create(
            patient=patient,
            kind=kind,
            ingredient=ingredient,
            drug_class=drug_class,
            allergen=allergen[:120],
            reaction=reaction.strip()[:120],
            severity=severity,
            recorded_by=by,
        )
        _refresh_summary(patient, by=by)
    return allergy


def allergy_remove(*, allergy: Allergy, by: User, reason: str) -> Allergy:
    """Take an allergy off the list (entered in error, or no longer allergic); the record stays."""
    require(by, "backoffice.change_allergy", "change allergies")
    reason = reason.strip()
    if not reason:
        raise TransitionNotAllowed("Say why this allergy comes off the list.")
    with transaction.atomic():
        patient = lock(allergy.patient)
        lock(allergy)
        if allergy.removed_at is not None:
            raise TransitionNotAllowed(f"{allergy.allergen} was already taken off by {allergy.removed_by}.")
        allergy.removed_at, allergy.removed_by, allergy.removed_reason = timezone.now(), by, reason[:200]
        allergy.save(update_fields=["removed_at", "removed_by", "removed_reason"])
        _refresh_summary(patient, by=by)
    return allergy


def allergies_none_known(*, patient: Patient, by: User) -> Patient:
    """The patient was asked and has no known allergies (NKA): recorded with who asked and when."""
    require(by, "backoffice.change_allergy", "change allergies")
    with transaction.atomic():
        lock(patient)
        if Allergy.objects.filter(patient=patient, removed_at__isnull=True).exists() or patient.allergies.strip():
            raise TransitionNotAllowed(
                f"{patient.full_name} has allergies on record: take them off first if they were entered in error."
            )
        patient.no_known_allergies = True
        patient.allergies_reviewed_at, patient.allergies_reviewed_by = timezone.now(), by
        patient.save(update_fields=["no_known_allergies", "allergies_reviewed_at", "allergies_reviewed_by"])
    return patient


# --- The cross-check -------------------------------------------------------------------------------


def _words(text: str) -> str:
    return f" {' '.join(re.sub(r'[^\w]+', ' ', normal_name(text)).split())} "


def _names(text: str, term: str) -> bool:
    """Whether free text names a term as whole words, without minding accents, case or a plural s."""
    words, term = _words(text), normal_name(term).strip()
    return bool(term) and any(f" {form} " in words for form in {term, term.rstrip("s"), term + "s"})


def allergy_conflicts(patient: Patient, ingredients: Iterable[Ingredient]) -> list[Conflict]:
    """The patient's allergies a drug made of these ingredients runs into (empty: none)."""
    ingredients = list(ingredients)
    if not ingredients:
        return []
    classes: dict[int, tuple[DrugClass, Ingredient]] = {}
    for ingredient in ingredients:
        for drug_class in ingredient.classes.all():
            classes.setdefault(drug_class.pk, (drug_class, ingredient))
    conflicts: list[Conflict] = []
    recorded_lines: set[str] = set()
    for allergy in Allergy.objects.filter(patient=patient, removed_at__isnull=True):
        recorded_lines.add(allergy.summary_line)
        because = ""
        if allergy.kind == Kind.INGREDIENT:
            because = next((f"it contains {i.name}" for i in ingredients if i.pk == allergy.ingredient_id), "")
        elif allergy.kind == Kind.DRUG_CLASS and allergy.drug_class_id in classes:
            drug_class, ingredient = classes[allergy.drug_class_id]
            because = f"{ingredient.name} is in the class {drug_class.name}"
        else:
            because = _text_match(allergy.allergen, ingredients, classes)
        if because:
            conflicts.append(Conflict(allergy.summary_line, because))
    # Lines of the summary that no record stands behind: allergies brought over as text.
    for line in patient.allergy_list:
        if line not in recorded_lines:
            because = _text_match(line.split(" — ")[0], ingredients, classes)
            if because:
                conflicts.append(Conflict(line, because))
    return conflicts


def _text_match(text: str, ingredients: list[Ingredient], classes: dict[int, tuple[DrugClass, Ingredient]]) -> str:
    for ingredient in ingredients:
        if _names(text, ingredient.name):
            return f"it contains {ingredient.name}"
    for drug_class, ingredient in classes.values():
        if any(_names(text, term) for term in drug_class.terms):
            return f"{ingredient.name} is in the class {drug_class.name}"
    return ""


def records_from_text(patients: Iterable[Patient]) -> int:
    """A record for each allergy line these patients have as text and no record of (seeded or imported rows):
    linked to the ingredient or class the line names exactly, else kept as "other" (or latex). Returns how many."""
    ingredients = {normal_name(i.name): i for i in Ingredient.objects.all()}
    classes: dict[str, DrugClass] = {}
    for each in DrugClass.objects.all():
        for term in each.terms:
            classes.setdefault(normal_name(term), each)
            classes.setdefault(normal_name(term).rstrip("s"), each)
    rows = []
    for patient in patients:
        recorded = {a.summary_line for a in Allergy.objects.filter(patient=patient, removed_at__isnull=True)}
        for line in patient.allergy_list:
            if line in recorded:
                continue
            allergen, _, reaction = (part.strip() for part in line.partition(" — "))
            word = normal_name(allergen)
            ingredient = ingredients.get(word)
            drug_class = None if ingredient else classes.get(word) or classes.get(word.rstrip("s"))
            kind = (
                Kind.INGREDIENT
                if ingredient
                else Kind.DRUG_CLASS
                if drug_class
                else Kind.LATEX
                if word == "latex"
                else Kind.OTHER
            )
            rows.append(
                Allergy(
                    patient=patient,
                    kind=kind,
                    ingredient=ingredient,
                    drug_class=drug_class,
                    allergen=allergen[:120],
                    reaction=reaction[:120],
                    recorded_at=patient.created_at,
                )
            )
    Allergy.objects.bulk_create(rows)
    return len(rows)
