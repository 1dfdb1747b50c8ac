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
    """The code as stored, or ValidationError saying why it can't go on an order.

    The messages are fixed texts; what was typed goes in as a parameter (``%(code)s``), never into
    the text itself, so a ``{{``, ``{0}`` or ``%(x)s`` typed is shown as typed and never read as a
    placeholder by whatever formats the message (Django applies the parameters with ``%``).
    """
    codes = _codes()
    normal = normalize(code)
    if not normal or not codes.is_valid_item(normal):
        raise ValidationError(
            "%(code)s is not an ICD-10-CM code.", code="not_icd10", params={"code": code.strip() or "(empty)"}
        )
    if not codes.is_leaf(normal):
        first = _first_billable(normal)
        if not first:
            raise ValidationError(
                "%(code)s is a category, not a billable code: give the full code.",
                code="icd10_category",
                params={"code": normal},
            )
        raise ValidationError(
            "%(code)s is a category, not a billable code: give the full code, e.g. %(first)s (%(description)s).",
            code="icd10_category",
            params={"code": normal, "first": first, "description": describe(first)},
        )
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
    codes: list[str] = []
    errors: list[ValidationError] = []
    for part in typed:
        try:
            code = check(part)
        except ValidationError as exc:
            errors.extend(exc.error_list)  # kept with their parameters, formatted once where shown
        else:
            if code not in codes:
                codes.append(code)
    if errors:
        raise ValidationError(errors)
    return codes


def parse_list(text: str) -> list[str]:
    """Codes typed as a list (commas, spaces or semicolons), each checked as ``check_all`` does."""
    return check_all(part for part in text.replace(";", ",").replace(" ", ",").split(",") if part.strip())
