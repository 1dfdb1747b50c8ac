"""The send-out desk's prints: a shipment's manifest and one requisition page per order (reportlab).

Plain values in, PDF bytes out: nothing here knows about models (lab.sendouts.prints builds the
values and records each print). Tables are reportlab platypus tables whose cells wrap, so a long
name or address takes another line instead of running off the page. Times print in the clinic's
time zone. The PDF's metadata names the shipment or the placer numbers, never a patient.

The standard PDF fonts encode Windows-1252; a character outside it (a name in another script) is
printed as its closest Latin letters where Unicode has a decomposition, else as "?", and never
dropped silently.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.utils import timezone
from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.platypus import (
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

FONT = "Helvetica"
BOLD = "Helvetica-Bold"
MARGIN = 0.5 * inch

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=9.5, leading=12)
_SMALL = ParagraphStyle("small", fontName=FONT, fontSize=8, leading=10, textColor=colors.HexColor("#333333"))
_LABEL = ParagraphStyle("label", fontName=BOLD, fontSize=7.5, leading=9, textColor=colors.HexColor("#444444"))
_CELL = ParagraphStyle("cell", fontName=FONT, fontSize=9, leading=11)
_CELL_BOLD = ParagraphStyle("cellbold", fontName=BOLD, fontSize=9, leading=11)
_HEAD = ParagraphStyle("head", fontName=BOLD, fontSize=8.5, leading=10.5, textColor=colors.white)
_TITLE = ParagraphStyle("title", fontName=BOLD, fontSize=16, leading=19)
_BIG = ParagraphStyle("big", fontName=BOLD, fontSize=13, leading=16)
_RIGHT = ParagraphStyle("right", parent=_SMALL, alignment=TA_RIGHT)
_WARN = ParagraphStyle("warn", fontName=BOLD, fontSize=9.5, leading=12, textColor=colors.HexColor("#842029"))


def printable(text: str) -> str:
    """``text`` as the standard fonts can print it (Windows-1252), control characters dropped."""
    out = []
    for ch in str(text):
        if unicodedata.category(ch).startswith("C") and ch not in "\n\t":
            continue
        try:
            ch.encode("cp1252")
        except UnicodeEncodeError:
            base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
            try:
                base.encode("cp1252")
            except UnicodeEncodeError:
                base = ""
            ch = base or "?"
        out.append(ch)
    return "".join(out)


def _p(text: str, style: ParagraphStyle = _CELL) -> Paragraph:
    """A paragraph of plain text: escaped for reportlab's markup, line breaks kept."""
    safe = printable(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return Paragraph(safe.replace("\n", "<br/>"), style)


def _when(moment: datetime | None) -> str:
    return f"{timezone.localtime(moment):%m/%d/%Y %H:%M}" if moment else "-"


def _dob(born: date) -> str:
    return f"{born:%m/%d/%Y}"


@dataclass(frozen=True)
class LabInfo:
    name: str
    address: str
    clia: str
    phone: str = ""


@dataclass(frozen=True)
class Clinic:
    """Who sends: the name and the ids the lab knows us by (MSH-4 / our facility)."""

    name: str
    facility_id: str


@dataclass(frozen=True)
class ManifestRow:
    accession: str
    patient: str  # "FAMILY, Given"
    mrn: str
    date_of_birth: date
    tests: str  # "CMP (0002CM), Lipids (0003LI)"
    collected_at: datetime
    container: str
    stat: bool = False


@dataclass(frozen=True)
class Manifest:
    reference: str  # the shipment's short reference, e.g. "SH-3F2A9C"
    lab: LabInfo
    clinic: Clinic
    courier: str
    pickup_at: datetime
    handling: str  # "Refrigerated (2 to 8 °C)"
    rows: tuple[ManifestRow, ...]
    printed_at: datetime
    printed_by: str
    dispatched_at: datetime | None = None


@dataclass(frozen=True)
class Answer:
    question: str
    code: str  # LOINC
    answer: str  # "" when not answered
    required: bool = True


@dataclass(frozen=True)
class Requisition:
    lab: LabInfo
    clinic: Clinic
    placer: str
    accession: str
    stat: bool
    patient: str  # "FAMILY, Given"
    date_of_birth: date
    sex: str
    mrn: str
    patient_address: str
    patient_phone: str
    provider: str
    provider_npi: str
    provider_phone: str
    diagnoses: tuple[tuple[str, str], ...]  # (ICD-10-CM code, description)
    test_loinc: str
    test_name: str
    lab_code: str
    lab_test_name: str
    specimen: str  # "Serum (SNOMED CT 119364003)"
    container: str
    handling: str
    collected_at: datetime
    collector: str
    answers: tuple[Answer, ...]
    clinical_note: str
    printed_at: datetime
    printed_by: str


class _Barcode(Flowable):
    """A Code 128 symbol with its text under it, for the lab's scanner."""

    def __init__(self, value: str, *, height: float = 0.38 * inch, bar_width: float = 0.011 * inch) -> None:
        super().__init__()
        self.value = value
        self.symbol = Code128(value, barHeight=height, barWidth=bar_width, humanReadable=False, quiet=False)
        self.width = self.symbol.width
        self.height = height + 10

    def draw(self) -> None:
        self.symbol.drawOn(self.canv, 0, 10)
        self.canv.setFont(FONT, 8)
        self.canv.drawString(0, 1, self.value)


def _footer(text: str):  # type: ignore[no-untyped-def]
    def draw(canvas, doc) -> None:  # type: ignore[no-untyped-def]
        canvas.saveState()
        canvas.setFont(FONT, 7.5)
        canvas.setFillColor(colors.HexColor("#444444"))
        canvas.drawString(MARGIN, MARGIN / 2, printable(text))
        canvas.drawRightString(doc.pagesize[0] - MARGIN, MARGIN / 2, f"Page {doc.page}")
        canvas.restoreState()

    return draw


def _key_values(pairs: Sequence[tuple[str, str]], widths: Sequence[float]) -> Table:
    """Label above value, in columns: the header blocks of both prints."""
    table = Table([[_p(k, _LABEL) for k, _ in pairs], [_p(v, _BODY) for _, v in pairs]], colWidths=list(widths))
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return table


# --- Manifest ------------------------------------------------------------------------------------


def manifest_pdf(manifest: Manifest) -> bytes:
    """The manifest: who to, who picks up when, at what temperature, one row per tube, signatures."""
    buffer = io.BytesIO()
    page = landscape(letter)
    doc = SimpleDocTemplate(
        buffer,
        pagesize=page,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"Specimen manifest {manifest.reference}",
        author=printable(manifest.clinic.name),
        subject="Specimen manifest",
    )
    width = page[0] - 2 * MARGIN
    count = len(manifest.rows)
    story: list[Flowable] = [
        Table(
            [
                [
                    _p(f"Specimen manifest {manifest.reference}", _TITLE),
                    _p(f"{manifest.handling.upper()}", _BIG),
                ]
            ],
            colWidths=[width * 0.62, width * 0.38],
            style=TableStyle(
                [
                    ("BOX", (1, 0), (1, 0), 1.5, colors.black),
                    ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ("LEFTPADDING", (0, 0), (0, 0), 0),
                    ("ALIGN", (1, 0), (1, 0), "CENTER"),
                ]
            ),
        ),
        Spacer(1, 6),
        _key_values(
            [
                ("TO", f"{manifest.lab.name}\n{manifest.lab.address}"),
                ("CLIA", manifest.lab.clia + (f"\n{manifest.lab.phone}" if manifest.lab.phone else "")),
                ("FROM", f"{manifest.clinic.name} ({manifest.clinic.facility_id})"),
                ("COURIER", manifest.courier),
                ("PICKUP", _when(manifest.pickup_at)),
                ("SPECIMENS", str(count)),
            ],
            [width * 0.24, width * 0.12, width * 0.2, width * 0.18, width * 0.14, width * 0.12],
        ),
        Spacer(1, 8),
    ]
    head = ["#", "Accession", "Patient", "DOB", "MRN", "Tests (lab code)", "Collected", "Container", "Priority"]
    rows: list[list[Flowable | str]] = [[_p(h, _HEAD) for h in head]]
    for n, row in enumerate(manifest.rows, start=1):
        rows.append(
            [
                _p(str(n)),
                _p(row.accession, _CELL_BOLD),
                _p(row.patient),
                _p(_dob(row.date_of_birth)),
                _p(row.mrn),
                _p(row.tests),
                _p(_when(row.collected_at)),
                _p(row.container),
                _p("STAT" if row.stat else "Routine", _CELL_BOLD if row.stat else _CELL),
            ]
        )
    fractions = [0.035, 0.11, 0.17, 0.08, 0.08, 0.22, 0.11, 0.125, 0.07]
    table = Table(rows, colWidths=[width * f for f in fractions], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#1f3a5f")),
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#888888")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f0f2f5")]),
            ]
        )
    )
    story.append(table)
    story.append(Spacer(1, 14))
    signatures = Table(
        [
            [_p("Packed by", _LABEL), _p("Handed to the courier (name, signature)", _LABEL), _p("Time", _LABEL)],
            [_p(manifest.printed_by), "", _p(_when(manifest.dispatched_at) if manifest.dispatched_at else "")],
        ],
        colWidths=[width * 0.3, width * 0.5, width * 0.2],
        rowHeights=[None, 0.45 * inch],
    )
    signatures.setStyle(
        TableStyle([("BOX", (0, 0), (-1, -1), 0.75, colors.black), ("INNERGRID", (0, 0), (-1, -1), 0.5, colors.grey)])
    )
    story.append(KeepTogether([signatures]))
    footer = f"Manifest {manifest.reference} · {count} specimen{'s' if count != 1 else ''} · printed {_when(manifest.printed_at)} by {manifest.printed_by}"
    doc.build(story, onFirstPage=_footer(footer), onLaterPages=_footer(footer))
    return buffer.getvalue()


# --- Requisitions ----------------------------------------------------------------------------------


def _section(title: str, body: list[Flowable], width: float) -> Table:
    table = Table([[_p(title, _HEAD)], [body]], colWidths=[width])
    table.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (0, 0), colors.HexColor("#1f3a5f")),
                ("BOX", (0, 0), (-1, -1), 0.75, colors.HexColor("#1f3a5f")),
                ("TOPPADDING", (0, 1), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 1), (-1, -1), 6),
            ]
        )
    )
    return table


def _requisition(req: Requisition, width: float) -> list[Flowable]:
    inner = width - 12
    header = Table(
        [
            [
                [
                    _p("Laboratory requisition", _TITLE),
                    _p(f"To {req.lab.name}, {req.lab.address}", _SMALL),
                    _p(f"CLIA {req.lab.clia}" + (f" · {req.lab.phone}" if req.lab.phone else ""), _SMALL),
                    _p(f"From {req.clinic.name} ({req.clinic.facility_id})", _SMALL),
                ],
                [
                    _p("PLACER ORDER", _LABEL),
                    _Barcode(req.placer),
                    Spacer(1, 4),
                    _p("ACCESSION (SPECIMEN)", _LABEL),
                    _Barcode(req.accession),
                ],
            ]
        ],
        colWidths=[width * 0.6, width * 0.4],
    )
    header.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (0, 0), 0)]))
    priority = _p("STAT" if req.stat else "Routine", _BIG if req.stat else _BODY)
    patient = _key_values(
        [
            ("NAME", req.patient),
            ("DATE OF BIRTH", _dob(req.date_of_birth)),
            ("SEX", req.sex),
            ("MRN", req.mrn),
        ],
        [inner * 0.4, inner * 0.2, inner * 0.15, inner * 0.25],
    )
    contact = _key_values(
        [("ADDRESS", req.patient_address or "-"), ("PHONE", req.patient_phone or "-")], [inner * 0.6, inner * 0.4]
    )
    provider = _key_values(
        [
            ("ORDERING PROVIDER", req.provider),
            ("NPI", req.provider_npi or "NOT ON FILE"),
            ("CALLBACK", req.provider_phone or "-"),
        ],
        [inner * 0.45, inner * 0.25, inner * 0.3],
    )
    if req.diagnoses:
        diagnosis_rows = [
            [_p(code, _CELL_BOLD), _p(text or "(description not in the code set)")] for code, text in req.diagnoses
        ]
        diagnoses: Flowable = Table(diagnosis_rows, colWidths=[inner * 0.15, inner * 0.85])
    else:
        diagnoses = _p("No diagnosis given: ask the ordering provider before sending.", _WARN)
    test = Table(
        [
            [
                _p("LOINC", _LABEL),
                _p("TEST", _LABEL),
                _p("LAB CODE", _LABEL),
                _p("LAB'S NAME", _LABEL),
                _p("PRIORITY", _LABEL),
            ],
            [_p(req.test_loinc), _p(req.test_name), _p(req.lab_code, _CELL_BOLD), _p(req.lab_test_name), priority],
        ],
        colWidths=[inner * 0.12, inner * 0.32, inner * 0.14, inner * 0.28, inner * 0.14],
    )
    specimen = _key_values(
        [
            ("SPECIMEN", req.specimen),
            ("CONTAINER", req.container),
            ("HANDLING", req.handling),
            ("COLLECTED", _when(req.collected_at)),
            ("COLLECTED BY", req.collector),
        ],
        [inner * 0.24, inner * 0.2, inner * 0.2, inner * 0.16, inner * 0.2],
    )
    story: list[Flowable] = [
        header,
        Spacer(1, 6),
        _section("Patient", [patient, Spacer(1, 3), contact], width),
        Spacer(1, 5),
        _section("Ordering provider", [provider], width),
        Spacer(1, 5),
        _section("Diagnosis (ICD-10-CM)", [diagnoses], width),
        Spacer(1, 5),
        _section("Test", [test], width),
        Spacer(1, 5),
        _section("Specimen", [specimen], width),
    ]
    if req.answers:
        rows = [
            [
                _p(f"{a.question} (LOINC {a.code})"),
                _p(a.answer, _CELL_BOLD) if a.answer else _p("NOT ANSWERED" if a.required else "-", _WARN),
            ]
            for a in req.answers
        ]
        story += [
            Spacer(1, 5),
            _section("Ask at order entry", [Table(rows, colWidths=[inner * 0.6, inner * 0.4])], width),
        ]
    if req.clinical_note:
        story += [Spacer(1, 5), _section("Clinical information", [_p(req.clinical_note, _BODY)], width)]
    story += [Spacer(1, 6), _p(f"Printed {_when(req.printed_at)} by {req.printed_by}", _RIGHT)]
    return story


def requisitions_pdf(requisitions: Sequence[Requisition]) -> bytes:
    """One page per order (a long one runs on), in the order given."""
    if not requisitions:
        raise ValueError("no requisitions to print")
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=letter,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title="Requisitions " + ", ".join(r.placer for r in requisitions[:10]),
        author=printable(requisitions[0].clinic.name),
        subject="Laboratory requisitions",
    )
    width = letter[0] - 2 * MARGIN
    story: list[Flowable] = []
    for n, req in enumerate(requisitions):
        if n:
            story.append(PageBreak())
        story += _requisition(req, width)
    footer = f"{len(requisitions)} requisition{'s' if len(requisitions) != 1 else ''}"
    doc.build(story, onFirstPage=_footer(footer), onLaterPages=_footer(footer))
    return buffer.getvalue()
