"""Specimen labels: what the PDF and the ZPL carry, that nothing overflows, and the raw send to port 9100.

No database: the label module takes plain values. The PDF is read back with a small parser (the
pages' content streams, inflated), so the checks are on the bytes a printer gets.
"""

from __future__ import annotations

import base64
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from django.utils import timezone
from reportlab.graphics.barcode.code128 import Code128
from reportlab.pdfbase.pdfmetrics import stringWidth

from specimens import labels
from specimens.labels import (
    LabelData,
    LabelPrinterError,
    LabelSize,
    label_pdf,
    label_zpl,
    labels_zpl,
    send_zpl,
)

ROSA = LabelData(
    accession="S26-0000017-4",
    family_name="Martínez",
    given_name="Rosa",
    date_of_birth=date(1962, 3, 14),
    mrn="M100001",
    specimen="Venous blood · EDTA lavender 4 mL",
    collected_at=datetime(2026, 5, 6, 18, 5, tzinfo=UTC),  # 14:05 in New York (EDT)
    collector_initials="MA",
    tests=("CBC", "HbA1c"),
)

LONG = LabelData(
    accession="S26-0000018-2",
    family_name="Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh",
    given_name="Maximiliana Josephina Bartholomea",
    date_of_birth=date(1990, 12, 1),
    mrn="M99999999999",
    specimen="Random urine · sterile screw-cap cup, 90 mL, kept refrigerated until pickup by the courier",
    collected_at=datetime(2026, 5, 6, 18, 5, tzinfo=UTC),
    collector_initials="JLK",
    tests=tuple(f"PANEL{i}" for i in range(25)),
)

SIZES = [
    LabelSize(),
    LabelSize(dpi=300),
    LabelSize(3.0, 1.0),
    LabelSize(2.25, 1.25, 300),
    LabelSize(1.5, 1.0),
    LabelSize(4.0, 2.0, 300),
]


@pytest.fixture(autouse=True)
def _clinic_time_zone() -> Iterator[None]:
    with timezone.override("America/New_York"):
        yield


# A small PDF reader: enough for reportlab's output ---------------------------------------------


def _stream(pdf: bytes, number: int) -> bytes:
    """Object ``number``'s stream, decoded (ASCII85 and Flate, as reportlab writes them)."""
    start = pdf.index(b"\n%d 0 obj" % number)
    header = re.compile(rb"<<(.*?)>>\s*stream\r?\n", re.S).search(pdf, start)
    assert header is not None
    length = re.search(rb"/Length (\d+)", header[1])
    assert length is not None
    data = pdf[header.end() : header.end() + int(length[1])]
    for name in re.findall(rb"/(\w+)Decode", header[1]):
        if name == b"ASCII85":
            data = base64.a85decode(data.strip(), adobe=True)
        elif name == b"Flate":
            data = zlib.decompress(data)
        else:
            raise AssertionError(f"unexpected filter {name!r}")
    return data


def _pages(pdf: bytes) -> list[bytes]:
    """Each page's content stream, in page order."""
    kids = re.search(rb"/Kids \[([^\]]*)\]", pdf)
    assert kids is not None
    contents = []
    for page in re.findall(rb"(\d+) 0 R", kids[1]):
        ref = re.compile(rb"/Contents (\d+) 0 R").search(pdf, pdf.index(b"\n%s 0 obj" % page))
        assert ref is not None
        contents.append(_stream(pdf, int(ref[1])))
    return contents


def _unescape(literal: bytes) -> str:
    """A PDF string literal's text (reportlab's standard fonts use WinAnsi, i.e. cp1252)."""
    simple = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}

    def one(match: re.Match[bytes]) -> bytes:
        escape = match[1]
        if escape[:1].isdigit():
            return bytes([int(escape, 8)])
        return simple.get(escape, escape)

    return re.sub(rb"\\([0-7]{1,3}|.)", one, literal, flags=re.S).decode("cp1252")


def _texts(content: bytes) -> list[str]:
    """The text of each BT … ET block, the strings of all its Tj joined."""
    blocks = re.findall(rb"BT(.*?)ET", content, re.S)
    texts = ["".join(_unescape(s) for s in re.findall(rb"\(((?:\\.|[^\\()])*)\)\s*Tj", block)) for block in blocks]
    return [text for text in texts if text]


def _bars(content: bytes) -> list[tuple[float, float, float, float]]:
    """Filled rectangles (x, y, w, h) on the page, with the translation reportlab puts before them."""
    tx = ty = 0.0
    rects = []
    for line in content.decode("latin-1").splitlines():
        if line.endswith(" cm"):
            a, b, c, d, tx, ty = (float(v) for v in line.split()[:6])
            assert (a, b, c, d) == (1, 0, 0, 1)
        elif match := re.fullmatch(r"n (\S+) (\S+) (\S+) (\S+) re f\*?", line.strip()):
            x, y, w, h = (float(v) for v in match.groups())
            rects.append((tx + x, ty + y, w, h))
    return rects


def _media_box(pdf: bytes) -> list[float]:
    box = re.search(rb"/MediaBox \[([^\]]*)\]", pdf)
    assert box is not None
    return [float(v) for v in box[1].split()]


def _code128_pattern(value: str) -> str:
    """reportlab's Code 128 for ``value``: elements as letters, bars upper case, width a=A=1 module."""
    symbol = Code128(value)
    symbol._calculate()
    return str(symbol.decomposed)


def _modules(pattern: str) -> int:
    return sum(ord(ch.lower()) - ord("a") + 1 for ch in pattern)


# PDF -----------------------------------------------------------------------------------------------


def test_pdf_prints_patient_dob_mrn_accession_specimen_collection_and_tests() -> None:
    (page,) = _pages(label_pdf([ROSA]))
    texts = _texts(page)

    assert texts == [
        "MARTÍNEZ, Rosa",
        "DOB 03/14/1962   MRN M100001",
        "CBC, HbA1c",
        "Coll 05/06/2026 14:05 by MA",
        "Venous blood · EDTA lavender 4 mL",
        "S26-0000017-4",
    ]


def test_pdf_collection_time_is_the_clinics_local_time() -> None:
    with timezone.override("America/Los_Angeles"):
        (page,) = _pages(label_pdf([ROSA]))
    assert "Coll 05/06/2026 11:05 by MA" in _texts(page)


@pytest.mark.parametrize("size", [LabelSize(), LabelSize(dpi=300), LabelSize(3.0, 1.0)], ids=str)
def test_pdf_barcode_is_reportlabs_code128_of_the_accession_in_whole_dots(size: LabelSize) -> None:
    (page,) = _pages(label_pdf([ROSA], size=size))
    bars = sorted(_bars(page))
    expected = _code128_pattern(ROSA.accession)

    assert len(bars) == sum(ch.isupper() for ch in expected)
    # Read the drawing back into bar and space widths: it must be the same symbol, module for module.
    left, right = bars[0][0], bars[-1][0] + bars[-1][2]
    module = (right - left) / _modules(expected)
    drawn = []
    for i, (x, _y, w, _h) in enumerate(bars):
        if i:
            previous = bars[i - 1]
            drawn.append(chr(ord("a") - 1 + round((x - previous[0] - previous[2]) / module)))
        drawn.append(chr(ord("A") - 1 + round(w / module)))
    assert "".join(drawn) == expected
    # The narrowest bar is a whole number of printer dots, and the quiet zones (10 modules) are on the label.
    dots = module * size.dpi / 72
    assert dots == pytest.approx(round(dots)) and round(dots) >= 1
    assert left >= 10 * module - 1e-6
    assert right <= size.width_pt - 10 * module + 1e-6
    assert {(round(y, 3), round(h, 3)) for _x, y, _w, h in bars} == {(round(bars[0][1], 3), round(bars[0][3], 3))}


def test_two_labels_make_two_pages_each_the_size_of_the_label() -> None:
    pdf = label_pdf([ROSA, LONG])

    pages = _pages(pdf)
    assert len(pages) == 2
    assert len(re.findall(rb"/Type /Page\b(?!s)", pdf)) == 2
    assert "S26-0000017-4" in _texts(pages[0]) and "S26-0000018-2" in _texts(pages[1])
    assert "MARTÍNEZ, Rosa" in _texts(pages[0])
    assert not any("MARTÍNEZ" in text for text in _texts(pages[1]))
    assert _media_box(pdf) == [0, 0, 144, 72]
    assert _media_box(label_pdf([ROSA], size=LabelSize(3.0, 2.0))) == [0, 0, 216, 144]


def test_pdf_metadata_title_is_the_accessions_and_nothing_of_the_patient() -> None:
    pdf = label_pdf([ROSA, LONG])

    info = re.search(rb"<<[^<>]*/Title \(([^)]*)\)[^<>]*>>", pdf)
    assert info is not None
    assert info[1] == b"S26-0000017-4, S26-0000018-2"
    for phi in (b"Mart", b"MART", b"Rosa", b"M100001", b"1962", b"Wolfe"):
        assert phi not in info[0]


def test_pdf_survives_characters_helvetica_lacks() -> None:
    label = replace(ROSA, family_name="李", given_name="Zoë 😀", specimen="Σ serum")

    (page,) = _pages(label_pdf([label]))

    assert "S26-0000017-4" in _texts(page)
    assert any(text.startswith("DOB 03/14/1962") for text in _texts(page))


def test_no_labels_is_an_error() -> None:
    with pytest.raises(ValueError, match="no labels"):
        label_pdf([])
    with pytest.raises(ValueError, match="no labels"):
        labels_zpl([])


# Nothing overflows -------------------------------------------------------------------------------


def _box(line: labels._TextLine) -> tuple[float, float, float, float]:
    """Left, bottom, right, top of a drawn line (accented capitals reach 0.93 em, descenders 0.21)."""
    width = stringWidth(line.text, line.font, line.size)
    return line.x, line.y - 0.21 * line.size, line.x + width, line.y + 0.93 * line.size


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("label", [ROSA, LONG], ids=["short", "long"])
def test_every_line_stays_on_the_label_clear_of_the_others_and_the_bars(label: LabelData, size: LabelSize) -> None:
    lines = labels._pdf_lines(label, size)
    layout = labels._layout(label, size)
    margin = labels._H_MARGIN_IN * 72

    assert len(lines) == 6
    for line in lines:
        left, bottom, right, top = _box(line)
        assert left >= margin - 1e-6, line
        assert right <= size.width_pt - margin + 1e-6, line
        assert bottom >= 0 and top <= size.height_pt, line
        assert line.size >= 4.5 * labels._scale(size), line
        # Clear of the bars.
        assert top <= layout.bar_bottom or bottom >= layout.bar_bottom + layout.bar_height, line
    boxes = sorted(_box(line) for line in lines)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[3] <= b[1] or b[3] <= a[1] or a[2] <= b[0] or b[2] <= a[0], (a, b)
    assert layout.bar_bottom > 0 and layout.bar_bottom + layout.bar_height <= size.height_pt


def test_long_values_are_cut_with_an_ellipsis_and_tests_say_how_many_more() -> None:
    texts = [line.text for line in labels._pdf_lines(LONG)]

    name = next(text for text in texts if text.startswith("WOLFESCHLEGEL"))
    assert name.endswith("…")
    tests = next(text for text in texts if text.startswith("PANEL0"))
    shown = tests.split(" +")[0].split(", ")
    assert shown == [f"PANEL{i}" for i in range(len(shown))]
    assert tests.endswith(f" +{25 - len(shown)} more")
    # The accession is never cut.
    assert "S26-0000018-2" in texts


def test_short_values_print_whole() -> None:
    texts = [line.text for line in labels._pdf_lines(ROSA)]
    assert "MARTÍNEZ, Rosa" in texts
    assert "CBC, HbA1c" in texts


def test_an_accession_too_long_for_the_barcode_is_refused() -> None:
    label = replace(ROSA, accession="S26-" + "ABCDEFGHIJ" * 5)
    with pytest.raises(ValueError, match="too long for a Code 128 barcode"):
        label_pdf([label])
    with pytest.raises(ValueError, match="too long for a Code 128 barcode"):
        label_zpl(label)


def test_a_label_too_small_for_the_barcode_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        label_pdf([ROSA], size=LabelSize(2.0, 0.5))


def test_label_data_refuses_what_it_cannot_print() -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        replace(ROSA, accession="S26-000001é")
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(ROSA, collected_at=datetime(2026, 5, 6, 14, 5))
    assert replace(ROSA, tests=["CBC"]).tests == ("CBC",)  # type: ignore[arg-type]


# ZPL -----------------------------------------------------------------------------------------------


def _unhex(data: str) -> str:
    """Field data after ^FH: _XX hex escapes back to their bytes, read as UTF-8 (^CI28)."""
    raw = re.sub(rb"_([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), data.encode("utf-8"))
    return raw.decode("utf-8")


def _text_fields(zpl: str) -> list[str]:
    return [_unhex(data) for data in re.findall(r"\^FH\^FD(.*?)\^FS", zpl)]


def test_zpl_is_one_utf8_format_with_a_code128_of_the_accession_and_every_field() -> None:
    zpl = label_zpl(ROSA)

    assert zpl.startswith("^XA\n^CI28\n")
    assert zpl.rstrip().endswith("^XZ")
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    assert re.search(r"\^BCN,\d+,Y,N,N\^FDS26-0000017-4\^FS", zpl)
    assert _text_fields(zpl) == [
        "MARTÍNEZ, Rosa",
        "DOB 03/14/1962   MRN M100001",
        "CBC, HbA1c",
        "Coll 05/06/2026 14:05 by MA",
        "Venous blood · EDTA lavender 4 mL",
    ]
    assert "MARTÍNEZ, Rosa" in zpl  # UTF-8 as is, not escaped


def _numbers(zpl: str) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for command, args in re.findall(r"\^(PW|LL|FT|FO|A0N|BY|BCN),?([\d,]+)", zpl):
        found.setdefault(command, []).extend(int(v) for v in args.split(",") if v.isdigit())
    return found


def test_zpl_at_300_dpi_lays_out_larger_than_at_203_and_stays_on_the_label() -> None:
    low, high = _numbers(label_zpl(ROSA)), _numbers(label_zpl(ROSA, size=LabelSize(dpi=300)))

    assert low["PW"] == [406] and low["LL"] == [203]
    assert high["PW"] == [600] and high["LL"] == [300]
    for command in ("FT", "FO", "A0N", "BCN"):
        assert len(low[command]) == len(high[command])
        for a, b in zip(low[command], high[command], strict=True):
            assert b > a, command
    # Positions and sizes scale with the resolution; the barcode's x follows its whole-dot module instead.
    for command in ("FT", "A0N", "BCN"):
        for a, b in zip(low[command], high[command], strict=True):
            assert b == pytest.approx(a * 300 / 203, abs=2), command
    assert high["FO"][1] == pytest.approx(low["FO"][1] * 300 / 203, abs=2)
    for numbers in (low, high):
        xs, ys = numbers["FT"][0::2] + numbers["FO"][0::2], numbers["FT"][1::2] + numbers["FO"][1::2]
        assert all(0 < x < numbers["PW"][0] for x in xs)
        assert all(0 < y < numbers["LL"][0] for y in ys)


@pytest.mark.parametrize("size", SIZES, ids=str)
def test_zpl_barcode_fits_between_its_quiet_zones(size: LabelSize) -> None:
    zpl = label_zpl(ROSA, size=size)
    numbers = _numbers(zpl)
    module = numbers["BY"][0]
    x, y = numbers["FO"]
    height = numbers["BCN"][0]
    modules = 11 * (len(ROSA.accession) + 2) + 13  # ^BC mode N, subset B: start, data, check, stop

    assert module >= 1
    assert x >= 10 * module and x + modules * module <= numbers["PW"][0] - 10 * module
    assert height >= round(0.15 * size.dpi) and y + height < numbers["LL"][0]


def test_zpl_field_data_cannot_inject_commands() -> None:
    label = replace(
        ROSA,
        family_name="Evil^XZ^XA^FDowned",
        given_name="~JA_41",
        specimen="serum ^FS~DG",
        tests=("^PQ99", "~JR"),
        collector_initials="M_A",
    )

    zpl = label_zpl(label)

    assert "~" not in zpl
    assert zpl.count("^XA") == zpl.count("^XZ") == 1
    commands = set(re.findall(r"\^([A-Z0-9@]{2})", zpl))
    assert commands <= {"XA", "CI", "PW", "LL", "LH", "FT", "A0", "FH", "FD", "FS", "BY", "FO", "BC", "PQ", "XZ"}
    assert "_5EPQ99, _7EJR" in zpl
    fields = _text_fields(zpl)
    assert "EVIL^XZ^XA^FDOWNED, ~JA_41" in fields
    assert "serum ^FS~DG" in fields
    assert "Coll 05/06/2026 14:05 by M_A" in fields
    assert "_5EXZ_5EXA_5EFDOWNED, _7EJA_5F41" in zpl


def test_zpl_barcode_escapes_caret_tilde_and_greater_than_with_invocation_codes() -> None:
    label = replace(ROSA, accession="A>B^C~D_1")

    zpl = label_zpl(label)

    assert "^BCN," in zpl and ",Y,N,N^FDA>0B><C>=D_1^FS" in zpl
    assert "~" not in zpl
    assert zpl.count("^XZ") == 1


def test_zpl_non_latin_text_is_sent_as_utf8() -> None:
    label = replace(ROSA, family_name="Nguyễn", given_name="Thị")
    assert "NGUYỄN, Thị" in _text_fields(label_zpl(label))


def test_labels_zpl_concatenates_one_format_per_label() -> None:
    zpl = labels_zpl([ROSA, LONG])

    assert zpl == label_zpl(ROSA) + label_zpl(LONG)
    assert zpl.count("^XA") == zpl.count("^XZ") == 2
    assert "^FDS26-0000017-4^FS" in zpl and "^FDS26-0000018-2^FS" in zpl


# Sending ------------------------------------------------------------------------------------------


@pytest.fixture
def printer() -> Iterator[tuple[int, list[bytes]]]:
    """A one-shot raw listener on 127.0.0.1, like a Zebra's port 9100: what it received, once closed."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    received: list[bytes] = []

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.settimeout(5)
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
            received.append(b"".join(chunks))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], received
    finally:
        thread.join(timeout=5)
        server.close()


def test_send_zpl_delivers_exactly_the_bytes(printer: tuple[int, list[bytes]]) -> None:
    port, received = printer
    zpl = labels_zpl([ROSA, LONG] * 20)  # several kilobytes, non-ASCII included

    send_zpl(zpl, host="127.0.0.1", port=port, timeout=2)

    for _ in range(100):
        if received:
            break
        time.sleep(0.02)
    assert received == [zpl.encode("utf-8")]


def test_send_zpl_to_a_closed_port_fails_quickly_naming_the_printer() -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()

    started = time.monotonic()
    with pytest.raises(LabelPrinterError, match=rf"^The label printer at 127\.0\.0\.1:{port} did not answer: "):
        send_zpl(label_zpl(ROSA), host="127.0.0.1", port=port, timeout=0.5)
    assert time.monotonic() - started < 2


def test_send_zpl_timeout_is_a_label_printer_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_answer(address: tuple[str, int], timeout: float) -> socket.socket:
        raise TimeoutError("timed out")

    monkeypatch.setattr(labels.socket, "create_connection", no_answer)

    with pytest.raises(LabelPrinterError, match=r"printer at printer\.lab:9100 did not answer: timed out") as info:
        send_zpl("^XA^XZ", host="printer.lab", timeout=0.1)
    assert isinstance(info.value.__cause__, TimeoutError)
    assert issubclass(LabelPrinterError, Exception)
