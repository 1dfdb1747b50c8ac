"""Printing specimen labels: render them (specimens.labels), send or hand them over, and record it.

Rendering and the printer's network round trip happen outside any transaction; the print is recorded
afterwards (specimens.services.specimen_labels_printed), so a printer that doesn't answer leaves no
"printed" record and no held locks.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from backoffice.models import Station, User
from specimens import services
from specimens.labels import LabelData, LabelSize, label_pdf, labels_zpl, send_zpl
from specimens.models import LabelPrinter, Specimen


@dataclass(frozen=True)
class Printed:
    """What a print produced: the PDF to download, or nothing (it went to the station's Zebra)."""

    pdf: bytes | None
    printer: LabelPrinter | None


def station_printer(station: Station | None) -> LabelPrinter | None:
    """The station's active label printer, a Zebra first; None means "download a PDF"."""
    if station is None:
        return None
    printers = LabelPrinter.objects.filter(station=station, is_active=True).order_by("-transport", "name")
    return printers.first()


def label_data(specimen: Specimen) -> LabelData:
    patient = specimen.patient
    collector = specimen.collected_by or specimen.labelled_by
    initials = (
        "".join(part[:1] for part in (collector.first_name, collector.last_name)).upper() or collector.username[:3]
    )
    container = specimen.container
    return LabelData(
        accession=specimen.accession,
        family_name=patient.family_name,
        given_name=patient.given_name,
        date_of_birth=patient.date_of_birth,
        mrn=patient.mrn,
        specimen=f"{specimen.specimen_type.name} · {container.name} {container.volume_ml:g} mL",
        collected_at=specimen.collected_at or specimen.labelled_at,
        collector_initials=initials,
        # Short names may hold spaces ("Urine dipstick"): the label is comma-separated (lab.selectors).
        tests=tuple(name.strip() for name in specimen.tests_label.split(",") if name.strip()),
    )


def print_labels(*, specimens: Sequence[Specimen], by: User, printer: LabelPrinter | None, reason: str = "") -> Printed:
    """Print these specimens' labels on the printer (a Zebra), or as one PDF; then record the print."""
    for specimen in specimens:
        services.check_print(specimen, by, reason=reason)
    labels = [label_data(s) for s in specimens]
    if printer is not None and printer.transport == LabelPrinter.Transport.ZPL_TCP:
        size = LabelSize(width_in=float(printer.width_in), height_in=float(printer.height_in), dpi=printer.dpi)
        send_zpl(labels_zpl(labels, size=size), host=printer.host, port=printer.port)
        output, pdf = LabelPrinter.Transport.ZPL_TCP, None
    else:
        size = (
            LabelSize(width_in=float(printer.width_in), height_in=float(printer.height_in), dpi=printer.dpi)
            if printer is not None
            else LabelSize()
        )
        output, pdf = LabelPrinter.Transport.PDF, label_pdf(labels, size=size)
    services.specimen_labels_printed(specimens=specimens, by=by, output=output, printer=printer, reason=reason)
    return Printed(pdf=pdf, printer=printer if pdf is None else None)
