"""Specimen labels: a PDF (one page per label) and ZPL for Zebra printers, sent raw to port 9100.

Pure Python and reportlab: nothing here knows about models, so services call it with plain
values and it can be benchmarked alone. The only Django piece is ``timezone.localtime``, which
prints the collection time in the clinic's (current) time zone.

One layout serves both outputs. It is computed in points (1/72 in, PDF coordinates: origin at the
bottom left) and scaled from the label's size in inches; ZPL converts it to dots with the label's
dpi. Every text line is measured with reportlab's ``stringWidth`` in Helvetica and shrunk, then
truncated, until it fits between the margins. The ZPL uses the same lines in the printer's font 0
(a condensed face, narrower than Helvetica at the same height), so what fits the PDF fits the
label.

File names are the caller's choice; nothing here names a file, and the PDF's metadata carries
only the accession numbers, never the patient.
"""

from __future__ import annotations

import io
import math
import socket
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple

from django.utils import timezone
from reportlab.graphics.barcode.code128 import Code128
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

__all__ = [
    "LabelData",
    "LabelPrinterError",
    "LabelSize",
    "label_pdf",
    "label_zpl",
    "labels_zpl",
    "send_zpl",
]

POINTS_PER_INCH = 72.0

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
ELLIPSIS = "…"  # in WinAnsi (Helvetica) and in code page 1252 (the Zebra's font 0)

# Margins keep text clear of the edge when the printer's registration drifts by a millimetre.
_H_MARGIN_IN = 0.06
_V_MARGIN_IN = 0.05
# Code 128 wants a quiet zone of ten modules each side; the widest module we use is 15 mil.
_QUIET_MODULES = 10
_MAX_MODULE_IN = 0.015
_MIN_BAR_HEIGHT_IN = 0.15
_MAX_BAR_HEIGHT_IN = 0.5
# Helvetica: capitals and digits reach 0.72 em, accented capitals (Í, Ñ) about 0.93 em; descenders
# 0.21 em. Lines from people's typing get room for accents; the accession is ASCII.
_ASCENT = 0.75
_ACCENTED_ASCENT = 0.93
_DESCENT = 0.21


class LabelPrinterError(Exception):
    """The label printer could not be reached, or did not take the whole label."""


@dataclass(frozen=True)
class LabelData:
    accession: str  # e.g. "S26-0000017-4" (any printable ASCII; Code 128 encodes it)
    family_name: str
    given_name: str
    date_of_birth: date
    mrn: str
    specimen: str  # e.g. "Venous blood · EDTA lavender 4 mL"
    collected_at: datetime  # timezone-aware; printed in the clinic's local time
    collector_initials: str  # e.g. "MA"
    tests: tuple[str, ...]  # test short names, e.g. ("CBC", "HbA1c")

    def __post_init__(self) -> None:
        if not self.accession or not all(" " <= ch <= "~" for ch in self.accession):
            raise ValueError(
                f"The accession {self.accession!r} must be printable ASCII, the characters Code 128 can encode."
            )
        if timezone.is_naive(self.collected_at):
            raise ValueError("collected_at must be timezone-aware, so the label can show the clinic's local time.")
        # A list passed for tests would make the frozen label unhashable and mutable behind our back.
        object.__setattr__(self, "tests", tuple(self.tests))


@dataclass(frozen=True)
class LabelSize:
    width_in: float = 2.0
    height_in: float = 1.0
    dpi: int = 203  # 203 or 300 (Zebra); any positive resolution lays out

    def __post_init__(self) -> None:
        if self.width_in <= 0 or self.height_in <= 0:
            raise ValueError(f"A label must have a positive size, not {self.width_in} x {self.height_in} in.")
        if self.dpi <= 0:
            raise ValueError(f"A printer's resolution must be positive, not {self.dpi} dpi.")

    @property
    def width_pt(self) -> float:
        return self.width_in * POINTS_PER_INCH

    @property
    def height_pt(self) -> float:
        return self.height_in * POINTS_PER_INCH

    @property
    def dot_pt(self) -> float:
        """One printer dot, in points."""
        return POINTS_PER_INCH / self.dpi

    def dots(self, points: float) -> int:
        return round(points * self.dpi / POINTS_PER_INCH)

    def describe(self) -> str:
        return f"{self.width_in:g} x {self.height_in:g} in"


class _TextLine(NamedTuple):
    """One line of text as drawn: left x and baseline y in points (PDF coordinates)."""

    x: float
    y: float
    text: str
    font: str
    size: float


@dataclass(frozen=True)
class _Layout:
    lines: tuple[_TextLine, ...]  # every line but the accession under the barcode
    accession: _TextLine  # the human-readable accession, centred under the bars
    bar_bottom: float
    bar_height: float


@dataclass(frozen=True)
class _Barcode:
    module_dots: int  # the narrowest bar, in printer dots
    modules: int  # the symbol's width in modules, without quiet zones


# Text normalisation and fitting ------------------------------------------------------------------


def _clean(text: str) -> str:
    """One line of printable text: whitespace runs become one space, control characters go."""
    kept = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C") or ch.isspace())
    return " ".join(kept.split())


def _width(text: str, font: str, size: float) -> float:
    return float(stringWidth(text, font, size))


def _truncate(text: str, font: str, size: float, max_width: float) -> str:
    """The longest start of ``text`` that fits with an ellipsis after it ("" if not even that fits)."""
    if _width(text, font, size) <= max_width:
        return text
    lo, hi = 0, len(text)  # text[:lo] + ellipsis fits; text[:hi] + ellipsis does not (or hi = len)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _width(text[:mid].rstrip(" ,;·-") + ELLIPSIS, font, size) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    head = text[:lo].rstrip(" ,;·-")
    if head:
        return head + ELLIPSIS
    return ELLIPSIS if _width(ELLIPSIS, font, size) <= max_width else ""


def _shrink(text: str, font: str, size: float, min_size: float, max_width: float) -> float:
    """The size at which ``text`` fits, no smaller than ``min_size`` (it may still be too wide there)."""
    width = _width(text, font, size)
    if width <= max_width:
        return size
    # Round down to a tenth of a point so the rounding never pushes it over.
    return max(min_size, math.floor(size * max_width / width * 10) / 10)


def _fit(text: str, font: str, size: float, min_size: float, max_width: float) -> tuple[str, float]:
    """Shrink to ``min_size`` at most, then truncate with an ellipsis."""
    size = _shrink(text, font, size, min_size, max_width)
    return _truncate(text, font, size, max_width), size


def _fit_tests(tests: Sequence[str], font: str, size: float, min_size: float, max_width: float) -> tuple[str, float]:
    """The tests joined by commas; when they don't all fit, the first few and "+N more"."""
    names = [name for name in (_clean(t) for t in tests) if name]
    full = ", ".join(names)
    size = _shrink(full, font, size, min_size, max_width)
    if _width(full, font, size) <= max_width:
        return full, size
    for shown in range(len(names) - 1, 0, -1):
        text = ", ".join(names[:shown]) + f" +{len(names) - shown} more"
        if _width(text, font, size) <= max_width:
            return text, size
    rest = f" +{len(names) - 1} more" if len(names) > 1 else ""
    return _truncate(names[0], font, size, max_width - _width(rest, font, size)) + rest, size


# What the label says --------------------------------------------------------------------------------


def _mdy(value: date) -> str:
    return f"{value.month:02d}/{value.day:02d}/{value.year:04d}"


def _patient_line(label: LabelData) -> str:
    """ "LAST, First", the family name upper-cased."""
    family = _clean(label.family_name).upper()
    given = _clean(label.given_name)
    return f"{family}, {given}" if family and given else family or given


def _identity_line(label: LabelData) -> str:
    return f"DOB {_mdy(label.date_of_birth)}   MRN {_clean(label.mrn)}"


def _collected_line(label: LabelData) -> str:
    local = timezone.localtime(label.collected_at)
    text = f"Coll {_mdy(local)} {local:%H:%M}"
    initials = _clean(label.collector_initials)
    return f"{text} by {initials}" if initials else text


# Layout -------------------------------------------------------------------------------------------


def _scale(size: LabelSize) -> float:
    """Type and bars grow with the label; 1.0 is the 2" x 1" label the layout was drawn for."""
    return min(size.width_in / 2.0, size.height_in / 1.0)


def _code128_modules(value: str) -> int:
    """The width of reportlab's Code 128 symbol for ``value``, in modules, without quiet zones."""
    return round(Code128(value, barWidth=1, quiet=0).width)


def _zpl_code128_modules(value: str) -> int:
    """The width of the printer's symbol for ``value`` with ^BC mode N: subset B throughout.

    Start, one symbol a character (the escapes for > ^ ~ are one symbol each), check, stop.
    """
    return 11 * (len(value) + 2) + 13


def _choose_module(modules: int, size: LabelSize) -> _Barcode:
    """The widest whole-dot module (up to 15 mil) whose symbol fits between margins and quiet zones."""
    margin = _H_MARGIN_IN * POINTS_PER_INCH
    widest = max(1, math.floor(_MAX_MODULE_IN * size.dpi + 1e-9))
    for dots in range(widest, 0, -1):
        module = dots * size.dot_pt
        if modules * module <= size.width_pt - 2 * max(margin, _QUIET_MODULES * module):
            return _Barcode(module_dots=dots, modules=modules)
    raise ValueError(f"The accession is too long for a Code 128 barcode on a {size.describe()} label.")


def _pdf_barcode(label: LabelData, size: LabelSize) -> _Barcode:
    return _choose_module(_code128_modules(label.accession), size)


def _zpl_barcode(label: LabelData, size: LabelSize) -> _Barcode:
    return _choose_module(_zpl_code128_modules(label.accession), size)


def _layout(label: LabelData, size: LabelSize) -> _Layout:
    """Where everything goes, in points.

    Top down: the patient (bold), DOB and MRN; the barcode with the accession under it; at the
    bottom the specimen, the collection, and the tests (bold). The barcode takes the height left.
    """
    s = _scale(size)
    width, height = size.width_pt, size.height_pt
    margin_x = _H_MARGIN_IN * POINTS_PER_INCH
    margin_y = _V_MARGIN_IN * POINTS_PER_INCH
    text_width = width - 2 * margin_x
    gap = 1.0 * s
    bar_gap = 1.5 * s

    lines: list[_TextLine] = []

    def place(text: str, font: str, size_pt: float, y: float) -> None:
        if text:
            lines.append(_TextLine(margin_x, y, text, font, size_pt))

    # Top block, from the top edge down.
    name_size = 8.0 * s
    name, fitted = _fit(_patient_line(label), FONT_BOLD, name_size, 6.5 * s, text_width)
    y = height - margin_y - _ACCENTED_ASCENT * name_size
    place(name, FONT_BOLD, fitted, y)
    top_limit = y - _DESCENT * name_size - gap

    ident_size = 6.5 * s
    ident, fitted = _fit(_identity_line(label), FONT, ident_size, 5.5 * s, text_width)
    y = top_limit - _ACCENTED_ASCENT * ident_size
    place(ident, FONT, fitted, y)
    top_limit = y - _DESCENT * ident_size

    # Bottom block, from the bottom edge up: tests, collection, specimen.
    tests_size = 6.5 * s
    tests, fitted = _fit_tests(label.tests, FONT_BOLD, tests_size, 5.5 * s, text_width)
    y = margin_y + _DESCENT * tests_size
    place(tests, FONT_BOLD, fitted, y)
    bottom_limit = y + _ACCENTED_ASCENT * tests_size + gap

    for text, nominal in ((_collected_line(label), 6.0 * s), (_clean(label.specimen), 6.0 * s)):
        fitted_text, fitted = _fit(text, FONT, nominal, 5.0 * s, text_width)
        y = bottom_limit + _DESCENT * nominal
        place(fitted_text, FONT, fitted, y)
        bottom_limit = y + _ACCENTED_ASCENT * nominal + gap

    # The middle: bars, then the accession under them, centred in the room left.
    accession_size = 7.0 * s
    accession_size = _shrink(label.accession, FONT_BOLD, accession_size, 0.0, text_width)
    accession_room = bar_gap + (_ASCENT + _DESCENT) * accession_size
    room = top_limit - gap - bottom_limit
    bar_height = min(room - accession_room, _MAX_BAR_HEIGHT_IN * POINTS_PER_INCH * s)
    if bar_height < _MIN_BAR_HEIGHT_IN * POINTS_PER_INCH:
        raise ValueError(f"A {size.describe()} label is too small for this layout: no room for the barcode.")
    group_bottom = bottom_limit + (room - accession_room - bar_height) / 2
    accession_y = group_bottom + _DESCENT * accession_size
    accession_x = (width - _width(label.accession, FONT_BOLD, accession_size)) / 2
    return _Layout(
        lines=tuple(lines),
        accession=_TextLine(accession_x, accession_y, label.accession, FONT_BOLD, accession_size),
        bar_bottom=accession_y + _ASCENT * accession_size + bar_gap,
        bar_height=bar_height,
    )


def _pdf_lines(label: LabelData, size: LabelSize = LabelSize()) -> list[_TextLine]:
    """Every text line the PDF draws, the accession included: (x, y, text, font, size)."""
    layout = _layout(label, size)
    return [*layout.lines, layout.accession]


# PDF -----------------------------------------------------------------------------------------------


def _draw_label(canvas: Canvas, label: LabelData, size: LabelSize) -> None:
    layout = _layout(label, size)
    for line in (*layout.lines, layout.accession):
        canvas.setFont(line.font, line.size)
        canvas.drawString(line.x, line.y, line.text)
    barcode = _pdf_barcode(label, size)
    module = barcode.module_dots * size.dot_pt
    symbol = Code128(label.accession, barWidth=module, barHeight=layout.bar_height, quiet=0, humanReadable=0)
    symbol.drawOn(canvas, (size.width_pt - barcode.modules * module) / 2, layout.bar_bottom)


def label_pdf(labels: Sequence[LabelData], *, size: LabelSize = LabelSize()) -> bytes:
    """A PDF with one page per label, each page the size of the label."""
    if not labels:
        raise ValueError("There are no labels to print.")
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=(size.width_pt, size.height_pt))
    canvas.setTitle(", ".join(label.accession for label in labels))
    canvas.setSubject("Specimen labels")
    canvas.setCreator("clinic-backoffice")
    canvas.setAuthor("")
    for label in labels:
        _draw_label(canvas, label, size)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# ZPL -----------------------------------------------------------------------------------------------

# Text fields go through ^FH (hex indicator "_"): the command prefixes ^ and ~, and the indicator
# itself, become hex escapes, so field data can never end the field or start a command.
_ZPL_HEX_ESCAPED = frozenset("^~_")
# Barcode fields in ^BC mode N use Zebra's invocation codes instead: >0 is ">", >< is "^" (symbol
# value 62), >= is "~" (value 94). A bare ">" would start an invocation code.
_ZPL_CODE128_ESCAPES = {">": ">0", "^": "><", "~": ">="}


def _zpl_text(text: str) -> str:
    """Field data for ^FH^FD: UTF-8 (^CI28) except the characters that would break the format."""
    return "".join(
        f"_{ord(ch):02X}" if ch in _ZPL_HEX_ESCAPED or ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text
    )


def _zpl_code128(value: str) -> str:
    return "".join(_ZPL_CODE128_ESCAPES.get(ch, ch) for ch in value)


def label_zpl(label: LabelData, *, size: LabelSize = LabelSize()) -> str:
    """One label as a ZPL format, ^XA … ^XZ, laid out for the size and dpi given."""
    layout = _layout(label, size)
    barcode = _zpl_barcode(label, size)
    height = size.height_pt
    commands = [
        "^XA",
        "^CI28",  # field data is UTF-8
        f"^PW{size.dots(size.width_pt)}",
        f"^LL{size.dots(height)}",
        "^LH0,0",
    ]
    for line in layout.lines:
        dots = max(1, size.dots(line.size))
        # ^FT places the text's baseline, as the PDF does; y counts down from the top.
        commands.append(
            f"^FT{size.dots(line.x)},{size.dots(height - line.y)}^A0N,{dots},{dots}^FH^FD{_zpl_text(line.text)}^FS"
        )
    bar_dots = max(1, size.dots(layout.bar_height))
    bar_x = round((size.dots(size.width_pt) - barcode.modules * barcode.module_dots) / 2)
    bar_y = size.dots(height - layout.bar_bottom - layout.bar_height)
    hri = max(1, size.dots(layout.accession.size))  # the interpretation line prints in the font set before ^BC
    commands += [
        f"^BY{barcode.module_dots}",
        f"^FO{bar_x},{bar_y}^A0N,{hri},{hri}^BCN,{bar_dots},Y,N,N^FD{_zpl_code128(label.accession)}^FS",
        "^PQ1",
        "^XZ",
    ]
    return "\n".join(commands) + "\n"


def labels_zpl(labels: Sequence[LabelData], *, size: LabelSize = LabelSize()) -> str:
    """Several labels, one ^XA … ^XZ format each, to send in one go."""
    if not labels:
        raise ValueError("There are no labels to print.")
    return "".join(label_zpl(label, size=size) for label in labels)


def send_zpl(zpl: str, *, host: str, port: int = 9100, timeout: float = 5.0) -> None:
    """Send ZPL to a printer's raw port (a Zebra listens on 9100), encoded as UTF-8 for ^CI28.

    Raises LabelPrinterError when the printer can't be reached or stops taking data within ``timeout``.
    """
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    payload = zpl.encode("utf-8")
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.sendall(payload)
            connection.shutdown(socket.SHUT_WR)  # a clean end of data, not a reset
    except OSError as exc:  # refused, unreachable, unknown host, timed out (TimeoutError is an OSError)
        raise LabelPrinterError(f"The label printer at {address} did not answer: {exc}") from exc
