"""Validating what we send with hl7apy in strict mode, with the one workaround hl7apy 1.3.5 needs.

crs4/hl7apy #151: hl7apy's Validator handles a ``choice`` group like a ``sequence``, so it demands
every member of ORM_O01's OBR|RQD|RQ1|RXO|ODS|ODT choice (``ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP`` in
2.5.1, ``ORM_O01_CHOICE`` in 2.3), each with cardinality 1..1. A valid order (one OBR) therefore
gets five errors: "Missing required child <group>.RQD", ".RQ1", ".RXO", ".ODS", ".ODT".

The workaround, and all of it: we let hl7apy validate the whole message and write every error to a
report (``report_file``, its public way of listing them all rather than raising the first), then
for each instance of that choice group we (1) check the choice rule ourselves, correctly: exactly
one member present, and it is one of the six, and (2) strike from the errors exactly the "Missing
required child <group>.<member>" lines for the members that are absent, once per group instance.
Any other error, or the same error for any other group, or one more than the group instances
explain, fails the test. Nothing is patched and no other rule is relaxed.

Warnings (which strict validation itself never raises) are checked too, stricter than hl7apy: the
only ones allowed are table-membership warnings for codes that hl7apy's 2007 snapshot of the 2.5.1
tables lacks but HL7's externally maintained tables define (see ``KNOWN_TABLE_GAPS``); a length or
any other warning fails.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections import Counter
from pathlib import Path

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Element, Message
from hl7apy.exceptions import ValidationError
from hl7apy.parser import get_message_info, parse_message, parse_segments

CHOICE_GROUPS = {"2.5.1": "ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP", "2.3": "ORM_O01_CHOICE"}
CHOICE_MEMBERS = ("OBR", "RQD", "RQ1", "RXO", "ODS", "ODT")

# (value, table): each is in HL7's current table but not in the copy hl7apy 1.3.5 ships for 2.5.1.
KNOWN_TABLE_GAPS = {
    ("SCT", "HL70396"),  # SNOMED CT, in table 0396 (externally maintained) since v2.5 era; used by LOI/LRI
    ("I10C", "HL70396"),  # ICD-10-CM, the name ONC's 2015 Edition and LOI 2.5.1 require for DG1-3
    ("CWE", "HL70125"),  # OBX-2 CWE, the value type LOI/LRI 2.5.1 send ask-at-order-entry answers as
}
# Table 0396's "99zzz" row is a pattern (a local coding system named 99 and up to three characters),
# which hl7apy compares as a literal.
_LOCAL_CODING_SYSTEM = re.compile(r"99[A-Za-z0-9]{1,3}")
_TABLE_WARNING = re.compile(r"Value (?P<value>.*) not in table (?P<table>HL7\d{4}) in element .*")


class StrictValidationFailed(AssertionError):
    pass


def _known_gap(value: str, table: str) -> bool:
    if table == "HL70396" and _LOCAL_CODING_SYSTEM.fullmatch(value):
        return True
    return (value, table) in KNOWN_TABLE_GAPS


def parse_strict(text: str, structure: str | None = None) -> Message:
    """``text`` parsed by hl7apy in strict mode.

    ``structure`` names the message structure where MSH-9 can't: v2.3's MSH-9 has no third
    component, and hl7apy builds ``ACK^O01`` into a structure ``ACK_O01`` that doesn't exist.
    Then we do what ``parse_message`` does, with the name given: still strict, still find_groups.
    """
    if structure is None:
        return parse_message(text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    encoding_chars, _, version = get_message_info(text)
    message = Message(
        structure, version=version, validation_level=VALIDATION_LEVEL.STRICT, encoding_chars=encoding_chars
    )
    message.children = parse_segments(text, version, encoding_chars, VALIDATION_LEVEL.STRICT, message.reference, True)
    return message


def report(message: Message) -> tuple[list[str], list[str]]:
    """Every error and warning hl7apy's strict validator finds in ``message``."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.txt"
        with contextlib.suppress(ValidationError):  # raised for the first error; the report has them all
            message.validate(report_file=str(path))
        lines = path.read_text().splitlines() if path.exists() else []
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
    warnings = [line.removeprefix("Warning: ") for line in lines if line.startswith("Warning: ")]
    return errors, warnings


def groups_named(element: Element, name: str) -> list[Element]:
    found = []
    for child in element.children:
        if child.classname == "Group":
            if child.name == name:
                found.append(child)
            found.extend(groups_named(child, name))
    return found


def assert_strictly_valid(text: str, structure: str | None = None) -> Message:
    """Parse ``text`` strictly and validate it, with the #151 workaround only; return the message."""
    message = parse_strict(text, structure)
    errors, warnings = report(message)
    explained: Counter[str] = Counter()
    choice = CHOICE_GROUPS.get(message.version)
    if choice is not None and message.name == "ORM_O01":
        for group in groups_named(message, choice):
            present = [child.name for child in group.children]
            if len(present) != 1 or present[0] not in CHOICE_MEMBERS:
                raise StrictValidationFailed(f"{choice} must hold exactly one of {CHOICE_MEMBERS}, holds {present}")
            for member in CHOICE_MEMBERS:
                if member not in present:
                    explained[f"Missing required child {choice}.{member}"] += 1
    unexplained = Counter(errors) - explained
    if unexplained:
        raise StrictValidationFailed(f"hl7apy strict validation errors: {sorted(unexplained.elements())}")
    for warning in warnings:
        match = _TABLE_WARNING.fullmatch(warning)
        if match is None or not _known_gap(match["value"], match["table"]):
            raise StrictValidationFailed(f"hl7apy warning: {warning}")
    return message
