"""Reading a drug package's barcode, and what a drug runs into on a patient's allergy list.

No state changes here: procedures.services asks these under its locks, and the procedure page asks
the same ones to show the hard stop before anyone tries.
"""

from dataclasses import dataclass
from datetime import date

import biip
from biip.gs1_messages import GS1Message

from backoffice.allergies import Conflict, allergy_conflicts
from backoffice.models import Patient
from backoffice.workflow import TransitionNotAllowed
from procedures.models import AllergyOverride, Medication, MedicationPackage, ProcedureOrder


class UnreadableBarcode(TransitionNotAllowed):
    """What was scanned isn't a drug package's GS1 barcode with a GTIN, lot and expiry."""


class UnknownPackage(TransitionNotAllowed):
    """The package's GTIN is not in the medication catalog."""


@dataclass(frozen=True)
class PackageScan:
    """What a package's GS1 DataMatrix or GS1-128 says: which drug, its lot and its expiry."""

    package: MedicationPackage
    gtin: str
    lot_number: str
    expiry_date: date

    @property
    def medication(self) -> Medication:
        return self.package.medication


def _element(message: GS1Message, ai: str) -> str:
    found = message.element_strings.get(ai=ai)
    return found.value if found is not None else ""


def read_package_barcode(scanned: str) -> PackageScan:
    """Parse a scanned GS1 element string (with its FNC1 separators, or as printed in brackets).

    A scan without a GTIN, lot or expiry is refused: typing them stays possible, and is recorded so.
    """
    text = scanned.strip()
    if not text:
        raise UnreadableBarcode("Scan the barcode on the package, or type the drug, lot and expiry.")
    message: GS1Message | None
    if text.startswith("("):  # as printed under the code, typed or read by a scanner set to send it so
        try:
            message = GS1Message.parse_hri(text)
        except biip.ParseError:
            message = None
    else:
        message = biip.parse(text).gs1_message
    if message is None:
        raise UnreadableBarcode(
            "That isn't a drug package's barcode (GS1 DataMatrix or GS1-128 with GTIN, lot and expiry). "
            "Scan the 2D code on the vial or carton, or type the drug, lot and expiry."
        )
    gtin = _element(message, "01")
    lot = _element(message, "10")
    expiry = message.element_strings.get(ai="17")
    missing = [name for name, value in (("GTIN", gtin), ("lot", lot), ("expiry", expiry)) if not value]
    if missing:
        raise UnreadableBarcode(
            f"The barcode has no {' or '.join(missing)}: scan the 2D code that carries them, or type them."
        )
    assert expiry is not None and expiry.date is not None
    package = MedicationPackage.objects.select_related("medication").filter(gtin=gtin).first()
    if package is None:
        raise UnknownPackage(
            f"GTIN {gtin} is not in the medication catalog: check the drug, or ask an admin to add the package."
        )
    return PackageScan(package=package, gtin=gtin, lot_number=lot.upper(), expiry_date=expiry.date)


def medication_conflicts(patient: Patient, medication: Medication) -> list[Conflict]:
    """The patient's allergies this drug runs into."""
    return allergy_conflicts(patient, medication.ingredients.prefetch_related("classes"))


def is_overridden(order: ProcedureOrder, medication: Medication) -> bool:
    return AllergyOverride.objects.filter(order=order, medication=medication).exists()


def conflict_message(patient: Patient, medication: Medication, conflicts: list[Conflict]) -> str:
    listed = "; ".join(str(c) for c in conflicts)
    return (
        f"Stop: {medication} runs into {patient.full_name}'s allergy: {listed}. "
        "Don't give it unless a clinician overrides this with a reason."
    )
