"""The few pieces of HL7 v2 ER7 encoding (the pipes-and-hats text) that building and acknowledging need.

HL7 v2.5.1 chapter 2, 2.5 and 2.7: a message is segments ended by a carriage return; MSH-1 is the
field separator and MSH-2 the component, repetition, escape and subcomponent characters. We always
write the recommended ``|^~\\&``; what we read (the header of a message to acknowledge, the MSA of an
acknowledgement) may use others, so reading takes them from the message itself.

Escaping (2.7.4) is what keeps a text in its field: the escape character first (``\\`` becomes
``\\E\\``), then ``|`` ``^`` ``&`` ``~`` become ``\\F\\`` ``\\S\\`` ``\\T\\`` ``\\R\\``. Doing the escape
character first makes escaping lossless: a text that already contains ``\\F\\`` comes back as that
text, not as a pipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELD = "|"
COMPONENT = "^"
REPETITION = "~"
ESCAPE = "\\"
SUBCOMPONENT = "&"
ENCODING_CHARACTERS = COMPONENT + REPETITION + ESCAPE + SUBCOMPONENT
SEGMENT_END = "\r"

_LINE_BREAKS = re.compile(r"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True)
class Delimiters:
    """The five characters a message declares in MSH-1 and MSH-2."""

    field: str = FIELD
    component: str = COMPONENT
    repetition: str = REPETITION
    escape: str = ESCAPE
    subcomponent: str = SUBCOMPONENT


STANDARD = Delimiters()


def escape(text: str) -> str:
    """One text made safe for any ER7 position: delimiters escaped, line breaks and control characters
    turned into single spaces (a segment end can't sit inside a field, and ST allows no control
    characters). For line breaks that must survive, see ``escape_formatted``."""
    text = _CONTROL.sub(" ", _LINE_BREAKS.sub(" ", text.replace("\t", " ")))
    return _escape_delimiters(text)


def escape_formatted(text: str) -> str:
    """A text for an FT value: delimiters escaped and each line break written as ``\\.br\\`` (2.7.6)."""
    lines = [_escape_delimiters(_CONTROL.sub(" ", line.replace("\t", " "))) for line in _LINE_BREAKS.split(text)]
    return f"{ESCAPE}.br{ESCAPE}".join(lines)


def _escape_delimiters(text: str) -> str:
    return (
        text.replace(ESCAPE, f"{ESCAPE}E{ESCAPE}")
        .replace(FIELD, f"{ESCAPE}F{ESCAPE}")
        .replace(COMPONENT, f"{ESCAPE}S{ESCAPE}")
        .replace(SUBCOMPONENT, f"{ESCAPE}T{ESCAPE}")
        .replace(REPETITION, f"{ESCAPE}R{ESCAPE}")
    )


def unescape(text: str, delimiters: Delimiters = STANDARD) -> str:
    """The text an escaped value stands for: the delimiter escapes and ``\\Xhh..\\`` (hex, read as
    Latin-1 bytes unless they are UTF-8) decoded, ``\\.br\\`` read as a line break, highlighting and
    other formatting sequences dropped. An escape character with no closing one is kept as it is."""
    esc = delimiters.escape
    if esc not in text:
        return text
    simple = {
        "F": delimiters.field,
        "S": delimiters.component,
        "T": delimiters.subcomponent,
        "R": delimiters.repetition,
        "E": esc,
        ".br": "\n",
        "H": "",
        "N": "",
    }
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != esc:
            out.append(text[i])
            i += 1
            continue
        end = text.find(esc, i + 1)
        if end == -1:
            out.append(text[i:])
            break
        sequence = text[i + 1 : end]
        if sequence in simple:
            out.append(simple[sequence])
        elif sequence[:1] == "X" and re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", sequence[1:]):
            raw = bytes.fromhex(sequence[1:])
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.append(raw.decode("latin-1"))
        elif sequence[:1] in (".", "C", "M", "Z"):
            pass  # formatting (.sp, .in …), character set switches, locally defined: no text of their own
        else:
            out.append(text[i : end + 1])
        i = end + 1
    return "".join(out)


def components(*parts: str, separator: str = COMPONENT) -> str:
    """Already-escaped parts joined by ``separator`` with the empty trailing ones left off."""
    values = list(parts)
    while values and not values[-1]:
        values.pop()
    return separator.join(values)


def segment(name: str, *fields: str) -> str:
    """A segment's text (without its end): ``name|field 1|field 2…`` with empty trailing fields left off.

    For MSH, pass MSH-2 as the first field: MSH-1 is the separator right after the name.
    """
    values = list(fields)
    while values and not values[-1]:
        values.pop()
    return FIELD.join([name, *values])


def split_segments(text: str) -> list[str]:
    """The segments of a message read tolerantly: MLLP bytes and a byte-order mark dropped, CR, LF or CRLF
    segment ends, blank lines skipped."""
    text = text.replace("\x0b", "").replace("\x1c", "").lstrip("\ufeff")
    return [line.strip("\n") for line in _LINE_BREAKS.split(text) if line.strip()]


def delimiters_of(msh: str) -> Delimiters:
    """The delimiters an MSH (or FHS/BHS) segment declares; the standard ones where it is too short."""
    if len(msh) < 4:
        return STANDARD
    field = msh[3]
    declared = msh[4:].split(field, 1)[0]
    defaults = ENCODING_CHARACTERS
    chars = [declared[i] if i < len(declared) else defaults[i] for i in range(4)]
    return Delimiters(field=field, component=chars[0], repetition=chars[1], escape=chars[2], subcomponent=chars[3])


def fields_of(seg: str, delimiters: Delimiters) -> list[str]:
    """A segment's fields, numbered as HL7 numbers them: ``fields[1]`` is field 1.

    For MSH, ``fields[1]`` is the field separator itself and ``fields[2]`` the encoding characters.
    """
    parts = seg.split(delimiters.field)
    if parts[0] in ("MSH", "FHS", "BHS"):
        return [parts[0], delimiters.field, *parts[1:]]
    return parts


def first_component(value: str, delimiters: Delimiters) -> str:
    """A field's first repetition's first component, unescaped."""
    return unescape(value.split(delimiters.repetition, 1)[0].split(delimiters.component, 1)[0], delimiters)


def component(value: str, index: int, delimiters: Delimiters) -> str:
    """Component ``index`` (1-based) of a field's first repetition, still escaped; empty when absent."""
    parts = value.split(delimiters.repetition, 1)[0].split(delimiters.component)
    return parts[index - 1] if 0 < index <= len(parts) else ""
