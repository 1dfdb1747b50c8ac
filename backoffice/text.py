"""Text as people and interfaces give it to us, made safe to show: no bidirectional control characters.

The Unicode embedding, override and isolate controls (U+202A-U+202E, U+2066-U+2069) reorder how
the text after them is drawn: a name or a note carrying U+202E ("right-to-left override") can make
"Dose 10 mg" display as something else, and a patient's name read off a banner can hide a different
one (the "Trojan Source" trick, CVE-2021-42574). None belongs in a name, an MRN or a note, so they
are stripped from every text field of the app's models before it is saved, whoever writes it: a
form, the admin, a service, an import or a lab's message. The left-to-right and right-to-left
marks (U+200E, U+200F), which real Arabic and Hebrew text uses and which reorder nothing after
them, are kept.

Left as received on purpose: the raw text of a message a lab sent (kept byte for byte as evidence)
and the order messages we built (escaped ER7 of text already stripped).
"""

import unicodedata
from collections.abc import Sequence
from functools import cache
from typing import Any

from django.db import models

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_TABLE = {ord(c): None for c in BIDI_CONTROLS}
# The apps whose models hold what people type and what labs send.
PROJECT_APPS = frozenset({"backoffice", "procedures", "specimens", "lab"})
# app_label.model: fields kept exactly as received (see the module's docstring).
VERBATIM = {"lab.inboundmessage": {"raw"}, "lab.outboundmessage": {"text", "ack_text"}}


def strip_bidi(text: str) -> str:
    """``text`` without bidirectional embedding, override and isolate controls."""
    if text.isascii():  # most text, and the quickest test there is
        return text
    return text.translate(_TABLE) if any(c in BIDI_CONTROLS for c in text) else text


@cache
def _text_fields(model: type[models.Model]) -> tuple[str, ...]:
    """The attnames of a project model's text fields that are stripped (none for other apps' models)."""
    meta = model._meta
    if meta.app_label not in PROJECT_APPS:
        return ()
    verbatim = VERBATIM.get(meta.label_lower, set())
    return tuple(
        f.attname
        for f in meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField) and f.attname not in verbatim
    )


def strip_bidi_controls(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """pre_save: strip the controls from every text field of a project model's row about to be saved."""
    for name in _text_fields(sender):
        value = getattr(instance, name)
        if isinstance(value, str) and not value.isascii():
            setattr(instance, name, strip_bidi(value))


def strip_bidi_rows[M: models.Model](rows: Sequence[M]) -> Sequence[M]:
    """The same for rows written with ``bulk_create`` (which sends no pre_save): call it on them first.
    New rows hold their columns in ``__dict__``; read there, thousands of rows cost a few milliseconds."""
    for row in rows:
        columns = row.__dict__
        for name in _text_fields(type(row)):
            value = columns.get(name)
            if isinstance(value, str) and not value.isascii():
                columns[name] = strip_bidi(value)
    return rows


# --- Names as people type them ---------------------------------------------------------------------

# Letters NFKD leaves whole (a stroke or a ligature is not an accent) but that people type without it.
_FOLD = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "\u0131": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def normal_name(text: str) -> str:
    """A name without accents, case, commas or hyphens: how the identity check and the search compare names.

    "GUTIÉRREZ, José" and "jose gutierrez" are the same words; "Łukasz" is "lukasz".
    """
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.replace(",", " ").replace("-", " ").casefold().translate(_FOLD).split())


def search_words(text: str) -> list[str]:
    """The words a patient search compares: normal_name's, apostrophes dropped, split on anything else.

    "O'Brien" is "obrien" (as most type it), and also "o" and "brien" (as some do).
    """
    words: list[str] = []
    for word in normal_name(text).split():
        joined = "".join(c for c in word if c.isalnum())
        parts = "".join(c if c.isalnum() else " " for c in word).split()
        for w in (joined, *parts):
            if w and w not in words:
                words.append(w)
    return words


# A part of an MRN is searched from three digits on: fewer would match most of the clinic.
MRN_PART_MIN = 3


def patient_search_text(*, given_name: str, family_name: str, mrn: str) -> str:
    """Patient.search_text: the names' search_words, then every ending of the MRN's digits of three or more.

    A word's start is what the search matches (a GIN index on the column's tsvector finds it), so the
    endings let "0123" or "2001" find M200123. Name words have no digits and MRN endings nothing else,
    so a typed name never matches an MRN, nor a typed number a name.
    """
    digits = "".join(c for c in mrn if c.isdigit())
    endings = [digits[i:] for i in range(len(digits) - MRN_PART_MIN + 1)]
    return " ".join([*search_words(f"{given_name} {family_name}"), *endings])
