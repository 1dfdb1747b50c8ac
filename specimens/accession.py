"""Accession numbers: unique, from a Postgres sequence, with a check digit a scanner typo can't pass.

An accession is ACCESSION_PREFIX, the sequence number zero-padded to ACCESSION_DIGITS, and a Damm
check digit over those digits (python-stdnum's ``stdnum.damm``). Damm catches every single-digit
error and every transposition of adjacent digits, which Luhn does not (09 ↔ 90). The sequence hands
out each number once, to any number of concurrent collections, without locks; the column is unique.
"""

from django.conf import settings
from django.db import connection
from stdnum import damm
from stdnum.exceptions import ValidationError

from backoffice.identifiers import without_scanner_marks

SEQUENCE = "specimens_accession_seq"


def format_accession(number: int, *, prefix: str | None = None, digits: int | None = None) -> str:
    """The accession for one sequence number, check digit included."""
    prefix = settings.ACCESSION_PREFIX if prefix is None else prefix
    digits = settings.ACCESSION_DIGITS if digits is None else digits
    body = f"{number:0{digits}d}"
    return f"{prefix}{body}{damm.calc_check_digit(body)}"


def next_accession() -> str:
    """A new accession number: the sequence's next value, formatted."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [SEQUENCE])
        row = cursor.fetchone()
    assert row is not None
    return format_accession(int(row[0]))


def normalise(scanned: str) -> str:
    """What a scanner or a keyboard gave, as stored: no scanner marks, spaces or dashes, upper case."""
    return "".join(without_scanner_marks(scanned).split()).replace("-", "").upper()


def is_valid(accession: str, *, prefix: str | None = None) -> bool:
    """Whether this looks like one of ours and its check digit is right (no database needed)."""
    prefix = (settings.ACCESSION_PREFIX if prefix is None else prefix).upper()
    value = normalise(accession)
    if not value.startswith(prefix):
        return False
    digits = value[len(prefix) :]
    if not digits.isdigit() or len(digits) < 2:
        return False
    try:
        damm.validate(digits)
    except ValidationError:
        return False
    return True
