"""ICD-10-CM diagnosis codes, checked against the CMS code set (simple-icd-10-cm) and described.

An order carries billable codes only: a category such as E11 is refused with its first billable
code as the example. The code set loads on first use (a few seconds), not at start-up.
"""

from collections.abc import Iterable
from functools import cache
from types import ModuleType

from django.core.exceptions import ValidationError


@cache
def _codes() -> ModuleType:
    import simple_icd_10_cm  # a 3-second load, paid on first use

    return simple_icd_10_cm


def normalize(code: str) -> str:
    """``e119`` and ``E11.9 `` both read ``E11.9``: upper case, the dot after the category."""
    code = code.strip().upper().replace(" ", "")
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    return code


def check(code: str) -> str:
    """The code as stored, or ValidationError saying why it can't go on an order."""
    codes = _codes()
    normal = normalize(code)
    if not normal or not codes.is_valid_item(normal):
        raise ValidationError(f"{code.strip() or '(empty)'} is not an ICD-10-CM code.")
    if not codes.is_leaf(normal):
        first = _first_billable(normal)
        example = f", e.g. {first} ({describe(first)})" if first else ""
        raise ValidationError(f"{normal} is a category, not a billable code: give the full code{example}.")
    return normal


def _first_billable(code: str) -> str:
    codes = _codes()
    for child in codes.get_descendants(code):
        if codes.is_leaf(child):
            return normalize(child)
    return ""


def describe(code: str) -> str:
    """The code's description as CMS writes it, or "" for a code not in the set."""
    codes = _codes()
    normal = normalize(code)
    return str(codes.get_description(normal)) if codes.is_valid_item(normal) else ""


def check_all(typed: Iterable[str]) -> list[str]:
    """Each code checked and stored once, in the order given; ValidationError names every bad one."""
    codes, errors = [], []
    for part in typed:
        try:
            code = check(part)
        except ValidationError as exc:
            errors.extend(exc.messages)
        else:
            if code not in codes:
                codes.append(code)
    if errors:
        raise ValidationError(errors)
    return codes


def parse_list(text: str) -> list[str]:
    """Codes typed as a list (commas, spaces or semicolons), each checked as ``check_all`` does."""
    return check_all(part for part in text.replace(";", ",").replace(" ", ",").split(",") if part.strip())
