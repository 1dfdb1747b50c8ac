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
