"""Dialect profiles: where one family of reference-lab interfaces puts what we need in its results.

Every lab speaks its own HL7. A profile says, for one family of interfaces:

- where **our MRN** is: an ordered list of places, each a field (PID-3, PID-2 or PID-4) with an
  optional identifier type code (CX-5, e.g. ``MR``, ``PI``) and an optional assigning authority
  (CX-4: its namespace id or its universal id). The first place that holds a non-empty id wins.
  Hospital labs put their own MRN in PID-3 typed MR, so ours is then in PID-4 or in PID-3 with
  another type or authority;
- where the **keys** come back, each an ordered list of places (``SEG-field`` or
  ``SEG-field.component``, in ORC, OBR or SPM): the placer order number, our accession, the lab's
  own (filler) order number. The first place that holds a non-empty id wins.

A profile is plain data: ``to_dict()`` gives JSON an admin can store and edit, ``from_dict()`` reads
it back and refuses anything it can't use with a message that says what is wrong. See
docs/hl7-profiles.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

__all__ = [
    "BUILTIN_PROFILES",
    "KEY_SEGMENTS",
    "MRN_FIELDS",
    "DialectProfile",
    "MrnPlace",
]

#: The fields our MRN can be read from; each holds CX identifiers (PID-2 and PID-4 since v2.3).
MRN_FIELDS = ("PID-3", "PID-2", "PID-4")
#: The segments of an order group that keys can be read from.
KEY_SEGMENTS = ("ORC", "OBR", "SPM")

_PLACE = re.compile(r"^(?P<segment>[A-Z]{3})-(?P<field>[1-9]\d?)(?:\.(?P<component>[1-9]\d?))?$")
# Characters that can't be part of an id we compare with (HL7 delimiters and line ends).
_DELIMITERS = re.compile(r"[|^~\\&\r\n]")

# Our own assigning authority in the shipped examples: a namespace id and the HL7 example OID.
CLINIC_AUTHORITY = "CLINIC"
CLINIC_OID = "2.16.840.1.113883.19.5"


@dataclass(frozen=True, slots=True)
class MrnPlace:
    """One place our MRN may be: a CX field, optionally narrowed by type code and authority.

    ``type_code`` is compared with CX-5 and ``authority`` with CX-4's namespace id or universal
    id, both ignoring case; empty means "any". Without either, the first non-empty repetition wins.
    """

    field: str
    type_code: str = ""
    authority: str = ""

    def __post_init__(self) -> None:
        if self.field not in MRN_FIELDS:
            raise ValueError(f"our MRN can be in {', '.join(MRN_FIELDS)}, not {self.field!r}")
        for name in ("type_code", "authority"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise ValueError(f"the MRN place's {name} must be text, not {type(value).__name__}")
            if value != value.strip() or _DELIMITERS.search(value):
                raise ValueError(
                    f"the MRN place's {name} {value!r} can't hold spaces around it, HL7 delimiters or line breaks"
                )

    def describe(self) -> str:
        """``PID-3 typed MR from CLINIC``: for pages and messages."""
        parts = [self.field]
        if self.type_code:
            parts.append(f"typed {self.type_code}")
        if self.authority:
            parts.append(f"from {self.authority}")
        return " ".join(parts)

    def to_dict(self) -> dict[str, str]:
        data = {"field": self.field}
        if self.type_code:
            data["type"] = self.type_code
        if self.authority:
            data["authority"] = self.authority
        return data

    @classmethod
    def from_dict(cls, data: object, *, where: str = "mrn") -> MrnPlace:
        if isinstance(data, str):
            data = {"field": data}
        if not isinstance(data, Mapping):
            raise ValueError(f'{where} must be an object like {{"field": "PID-3", "type": "MR"}}')
        unknown = sorted(set(data) - {"field", "type", "authority"})
        if unknown:
            raise ValueError(f"{where} has unknown keys {unknown}: an MRN place has field, type and authority")
        if "field" not in data:
            raise ValueError(f"{where} needs a field: one of {', '.join(MRN_FIELDS)}")
        values = {"field": data["field"], "type_code": data.get("type", ""), "authority": data.get("authority", "")}
        for name, value in values.items():
            if not isinstance(value, str):
                raise ValueError(f"{where}: {name} must be text, not {type(value).__name__}")
        try:
            return cls(**values)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None


def _check_place(place: object, key: str) -> str:
    if not isinstance(place, str):
        raise ValueError(f"{key}: each place must be text like 'OBR-18', not {type(place).__name__}")
    match = _PLACE.match(place)
    if not match:
        raise ValueError(f"{key}: {place!r} is not a place like 'ORC-2', 'OBR-18' or 'SPM-2.1'")
    if match["segment"] not in KEY_SEGMENTS:
        raise ValueError(f"{key}: {place!r}: keys are read from {', '.join(KEY_SEGMENTS)}, not {match['segment']}")
    return place


@dataclass(frozen=True, slots=True)
class DialectProfile:
    """Where one family of lab interfaces carries our MRN and the order keys in its ORU^R01.

    Places are tried in order; the first non-empty value wins. ``SPM-2`` is SPM-2.1, the specimen
    id we assigned (EIP placer part); ``SPM-2.2`` is the lab's.
    """

    name: str
    mrn: tuple[MrnPlace, ...] = (MrnPlace("PID-3", "MR"),)
    placer: tuple[str, ...] = ("ORC-2", "OBR-2")
    accession: tuple[str, ...] = ("ORC-4", "OBR-18", "SPM-2")
    filler: tuple[str, ...] = ("ORC-3", "OBR-3")
    description: str = ""
    # Parsed places, for the reader: (segment, field number, component number).
    _parsed: dict[str, tuple[tuple[str, int, int], ...]] = dataclass_field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a profile needs a name")
        if not isinstance(self.description, str):
            raise ValueError("a profile's description must be text")
        if not self.mrn:
            raise ValueError("a profile needs at least one place for our MRN")
        for place in self.mrn:
            if not isinstance(place, MrnPlace):
                raise ValueError(f"mrn: {place!r} is not an MrnPlace")
        if len(set(self.mrn)) != len(self.mrn):
            raise ValueError("mrn: the same place is listed twice")
        for key in ("placer", "accession", "filler"):
            places = getattr(self, key)
            if not isinstance(places, tuple):
                raise ValueError(f"{key} must be a tuple of places")
            for place in places:
                _check_place(place, key)
            if len(set(places)) != len(places):
                raise ValueError(f"{key}: the same place is listed twice")
            parsed = []
            for place in places:
                match = _PLACE.match(place)
                assert match is not None  # checked above
                parsed.append((match["segment"], int(match["field"]), int(match["component"] or 1)))
            self._parsed[key] = tuple(parsed)
        if not self.placer and not self.accession:
            raise ValueError("a profile needs at least one place for the placer order number or our accession")

    def places(self, key: str) -> tuple[tuple[str, int, int], ...]:
        """The places of ``placer``, ``accession`` or ``filler`` as (segment, field, component)."""
        return self._parsed[key]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; ``from_dict(p.to_dict()) == p``."""
        data: dict[str, Any] = {"name": self.name}
        if self.description:
            data["description"] = self.description
        data["mrn"] = [place.to_dict() for place in self.mrn]
        data["placer"] = list(self.placer)
        data["accession"] = list(self.accession)
        data["filler"] = list(self.filler)
        return data

    @classmethod
    def from_dict(cls, data: object) -> DialectProfile:
        """A profile from JSON data (as ``to_dict`` writes it), checked; ValueError says what is wrong.

        Place lists may also be given as one comma-separated string (``"ORC-4, OBR-18, SPM-2"``) and
        ``mrn`` as a single object or a field name; missing key lists take the defaults.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a profile must be a JSON object, not {type(data).__name__}")
        known = {"name", "description", "mrn", "placer", "accession", "filler"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"a profile has no keys {unknown}; it has {', '.join(sorted(known))}")
        if "name" not in data:
            raise ValueError("a profile needs a name")
        kwargs: dict[str, Any] = {"name": data["name"]}
        if not isinstance(data["name"], str):
            raise ValueError("a profile's name must be text")
        if "description" in data:
            kwargs["description"] = data["description"]
        if "mrn" in data:
            mrn = data["mrn"]
            if isinstance(mrn, (str, Mapping)):
                mrn = [mrn]
            if not isinstance(mrn, list):
                raise ValueError('mrn must be a list of places like [{"field": "PID-3", "type": "MR"}]')
            kwargs["mrn"] = tuple(MrnPlace.from_dict(place, where=f"mrn[{i}]") for i, place in enumerate(mrn))
        for key in ("placer", "accession", "filler"):
            if key not in data:
                continue
            places = data[key]
            if isinstance(places, str):
                places = [part.strip() for part in places.split(",") if part.strip()]
            if not isinstance(places, list):
                raise ValueError(f'{key} must be a list of places like ["ORC-2", "OBR-2"]')
            kwargs[key] = tuple(_check_place(place, key) for place in places)
        return cls(**kwargs)


NATIONAL_LRI_251 = DialectProfile(
    name="National reference lab, HL7 2.5.1 LRI",
    description=(
        "A national reference lab following the HL7 2.5.1 Laboratory Results Interface (LRI): our MRN "
        "echoed in PID-3 typed MR with our assigning authority, the placer order number in ORC-2/OBR-2, "
        "our accession as the placer group number ORC-4, else as the placer specimen id in SPM-2."
    ),
    mrn=(MrnPlace("PID-3", "MR", CLINIC_AUTHORITY),),
    placer=("ORC-2", "OBR-2"),
    accession=("ORC-4", "SPM-2"),
    filler=("ORC-3", "OBR-3"),
)

LEGACY_23 = DialectProfile(
    name="Legacy HL7 2.3 interface",
    description=(
        "An older 2.3 interface without ORC: the placer order number in OBR-2 and our accession in "
        "OBR-18 (placer field 1), the lab's number in OBR-3; our MRN in PID-2 (external id), else in "
        "the first repetition of PID-3."
    ),
    mrn=(MrnPlace("PID-2"), MrnPlace("PID-3")),
    placer=("OBR-2",),
    accession=("OBR-18",),
    filler=("OBR-3",),
)

HOSPITAL_OUTREACH_231 = DialectProfile(
    name="Hospital outreach LIS, HL7 2.3.1",
    description=(
        "A hospital lab's outreach LIS on 2.3.1: PID-3 carries the hospital's own MRN typed MR with the "
        "hospital's authority, so ours is read from PID-4 (alternate patient id), else from the PID-3 "
        "repetition typed PI with our authority. Placer in ORC-2/OBR-2, our accession in OBR-18."
    ),
    mrn=(MrnPlace("PID-4"), MrnPlace("PID-3", "PI", CLINIC_AUTHORITY)),
    placer=("ORC-2", "OBR-2"),
    accession=("OBR-18",),
    filler=("ORC-3", "OBR-3"),
)

#: The shipped examples, by a short key an admin or a data migration can refer to.
BUILTIN_PROFILES: dict[str, DialectProfile] = {
    "national-lri-251": NATIONAL_LRI_251,
    "legacy-23": LEGACY_23,
    "hospital-outreach-231": HOSPITAL_OUTREACH_231,
}
