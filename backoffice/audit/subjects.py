"""Which patient an object in a URL belongs to, so a refused attempt on it names the patient.

Each app registers, in its AppConfig.ready(), how to find the patient of each kind of object its
URLs carry by opaque id (the core: "handoff"; procedures: "procedure"; ...). The access log asks
here when it records a refusal, whichever app's page refused.
"""

from collections.abc import Callable

from django.core.exceptions import ValidationError

PatientOf = Callable[[str], int | None]

_patient_of: dict[str, PatientOf] = {}


def register_subject(kind: str, patient_of: PatientOf) -> None:
    """Say how to find the patient of a ``kind`` of object from its id in a URL."""
    _patient_of[kind] = patient_of


def registered_subjects() -> set[str]:
    return set(_patient_of)


def patient_of(kind: str, ref: str) -> int | None:
    """The patient id behind ``ref``, or None for an unknown or malformed id."""
    if not ref:
        return None
    try:
        lookup = _patient_of[kind]
    except KeyError:
        raise LookupError(f"No app registered how to find the patient of a {kind!r}.") from None
    try:
        return lookup(ref)
    except (ValidationError, ValueError):
        return None
