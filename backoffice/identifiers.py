"""Patient identifiers as people type them, scanners read them and other systems send them.

- The MRN's format (``MRN_PATTERN``, a regular expression the whole MRN must match): a patient is
  saved (admin, imports) only with an MRN in it, and an MRN from outside that isn't in it names none
  of our patients.
- What a barcode scanner sent: scanners are set up to send ``WRISTBAND_SCAN_PREFIX`` before what
  they read (and ``WRISTBAND_SCAN_SUFFIX`` after it), so the app tells a scanned wristband from an
  MRN typed or pasted from the patient banner, and strips those marks wherever a scan is taken.

The system check below refuses to start with an MRN pattern that isn't a regular expression, or with
no scanner mark (then a typed MRN would count as a scanned wristband).
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError

# The clinic's MRNs: one to three capital letters, then 6 to 11 digits (M500035, the seed's S0000001).
DEFAULT_MRN_PATTERN = r"[A-Z]{1,3}[0-9]{6,11}"
# The AIM symbology identifier of Code 128 (ISO/IEC 15424), which every wristband scanner sends before
# what it read with one setting ("transmit AIM code ID"). It is not on the patient banner, so an MRN
# copied from the screen reads as typed.
DEFAULT_WRISTBAND_SCAN_PREFIX = "]C0"


@lru_cache(maxsize=4)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def mrn_pattern() -> re.Pattern[str]:
    return _compiled(settings.MRN_PATTERN)


def is_mrn(value: str) -> bool:
    """Whether the whole value is an MRN in this clinic's format."""
    return mrn_pattern().fullmatch(value) is not None


def validate_mrn(value: str) -> None:
    if not is_mrn(value):
        raise ValidationError(
            "%(value)s is not an MRN in this clinic's format (MRN_PATTERN %(pattern)s, e.g. M500035).",
            code="mrn_format",
            params={"value": value, "pattern": settings.MRN_PATTERN},
        )


@dataclass(frozen=True)
class Entry:
    """What was in a field that takes a scan: the text without the scanner's marks, and whether it had them."""

    text: str
    scanned: bool


def read_entry(value: str) -> Entry:
    """A scanned value carries the scanner's prefix and suffix around it; anything else was typed (or pasted)."""
    prefix, suffix = settings.WRISTBAND_SCAN_PREFIX, settings.WRISTBAND_SCAN_SUFFIX
    value = value.strip()
    marks = len(prefix) + len(suffix)
    if marks and len(value) > marks and value.startswith(prefix) and value.endswith(suffix):
        return Entry(text=value[len(prefix) : len(value) - len(suffix)].strip(), scanned=True)
    return Entry(text=value, scanned=False)


def without_scanner_marks(value: str) -> str:
    """A scan's text, for fields where it doesn't matter whether it was scanned (a search, an accession)."""
    return read_entry(value).text


def as_scanned(text: str) -> str:
    """What a scanner set up for this clinic sends for a barcode holding ``text`` (for tests and demos)."""
    return f"{settings.WRISTBAND_SCAN_PREFIX}{text}{settings.WRISTBAND_SCAN_SUFFIX}"


@checks.register(checks.Tags.security)
def check_identifier_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    problems: list[checks.CheckMessage] = []
    try:
        pattern = re.compile(settings.MRN_PATTERN)
    except re.error as exc:
        problems.append(
            checks.Error(
                f"MRN_PATTERN {settings.MRN_PATTERN!r} is not a regular expression: {exc}.",
                hint=f"Set it to the whole MRN's format, e.g. {DEFAULT_MRN_PATTERN}.",
                id="backoffice.E110",
            )
        )
    else:
        if pattern.fullmatch(""):
            problems.append(
                checks.Error(
                    f"MRN_PATTERN {settings.MRN_PATTERN!r} accepts an empty MRN.",
                    hint=f"Set it to the whole MRN's format, e.g. {DEFAULT_MRN_PATTERN}.",
                    id="backoffice.E111",
                )
            )
    prefix, suffix = settings.WRISTBAND_SCAN_PREFIX, settings.WRISTBAND_SCAN_SUFFIX
    if not prefix and not suffix:
        problems.append(
            checks.Error(
                "WRISTBAND_SCAN_PREFIX and WRISTBAND_SCAN_SUFFIX are both empty: an MRN typed or pasted "
                "from the screen would count as a scanned wristband.",
                hint=f"Set the prefix your scanners send, e.g. {DEFAULT_WRISTBAND_SCAN_PREFIX} (their AIM code ID).",
                id="backoffice.E112",
            )
        )
    for name, mark in (("WRISTBAND_SCAN_PREFIX", prefix), ("WRISTBAND_SCAN_SUFFIX", suffix)):
        if mark != mark.strip():
            problems.append(
                checks.Error(
                    f"{name} begins or ends with a space: form fields trim it, so no scan would be recognised.",
                    id="backoffice.E113",
                )
            )
    return problems
