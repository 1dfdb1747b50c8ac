"""Printing the desk's papers: the rows as lab.sendouts.pdf's values, rendered, and each print recorded.

Rendering happens first and outside any transaction; the print is recorded afterwards (a
ShipmentEvent for a manifest, a SendOutEvent per requisition), so a failed render leaves no
"printed" record. The view writes the access-log row naming every patient on the paper.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from backoffice import icd10
from backoffice.models import Patient, User
from backoffice.workflow import TransitionNotAllowed
from lab.models import ReferenceLab, SendOut, Shipment
from lab.sendouts import pdf, shipments
from lab.sendouts.selectors import Tube, questions
from specimens.workflow import Handling


@dataclass(frozen=True)
class Printed:
    pdf: bytes
    patient_ids: list[int]
    name: str  # the file name: a shipment reference or a placer number, never a patient


def reference(shipment: Shipment) -> str:
    """A shipment's short reference, as people read it off the box: SH- and the start of its uuid."""
    return f"SH-{shipment.uuid.hex[:6].upper()}"


def lab_info(lab: ReferenceLab) -> pdf.LabInfo:
    return pdf.LabInfo(name=lab.name, address=" ".join(lab.address.split()), clia=lab.clia_number, phone=lab.phone)


def clinic(lab: ReferenceLab) -> pdf.Clinic:
    return pdf.Clinic(name=settings.CLINIC_NAME, facility_id=lab.our_facility)


def _patient(patient: Patient) -> str:
    return f"{patient.family_name.upper()}, {patient.given_name}"


def _name(user: User) -> str:
    return user.get_full_name() or user.username


def manifest(shipment: Shipment, tubes: Sequence[Tube], *, by: User) -> pdf.Manifest:
    rows = tuple(
        pdf.ManifestRow(
            accession=t.specimen.accession,
            patient=_patient(t.patient),
            mrn=t.patient.mrn,
            date_of_birth=t.patient.date_of_birth,
            tests=", ".join(f"{s.order.test.short_name} ({s.orderable.lab_code})" for s in t.send_outs),
            collected_at=t.specimen.collected_at or t.specimen.labelled_at,
            container=f"{t.specimen.container.name} · {t.specimen.specimen_type.name}",
            stat=t.is_stat,
        )
        for t in tubes
    )
    return pdf.Manifest(
        reference=reference(shipment),
        lab=lab_info(shipment.reference_lab),
        clinic=clinic(shipment.reference_lab),
        courier=shipment.courier,
        pickup_at=shipment.pickup_at,
        handling=Handling(shipment.handling).label,
        rows=rows,
        printed_at=timezone.now(),
        printed_by=_name(by),
        dispatched_at=shipment.dispatched_at,
    )


def requisition(send_out: SendOut, *, by: User) -> pdf.Requisition:
    order = send_out.order
    handoff = order.handoff
    patient = handoff.patient
    specimen = order.specimen
    assert specimen is not None  # a send-out is opened when its specimen is collected
    clinician = handoff.ordering_clinician
    collector = specimen.collected_by or specimen.labelled_by
    return pdf.Requisition(
        lab=lab_info(send_out.reference_lab),
        clinic=clinic(send_out.reference_lab),
        placer=send_out.placer_number,
        accession=specimen.accession,
        stat=handoff.is_stat,
        patient=_patient(patient),
        date_of_birth=patient.date_of_birth,
        sex=patient.get_sex_display(),
        mrn=patient.mrn,
        patient_address=patient.address,
        patient_phone=patient.phone,
        provider=_name(clinician),
        provider_npi=clinician.npi,
        provider_phone=clinician.phone,
        diagnoses=tuple((code, icd10.describe(code)) for code in handoff.diagnosis_codes),
        test_loinc=order.test.loinc_code,
        test_name=order.test.name,
        lab_code=send_out.orderable.lab_code,
        lab_test_name=send_out.orderable.lab_name,
        specimen=f"{specimen.specimen_type.name} (SNOMED CT {specimen.specimen_type.snomed_code})",
        container=specimen.container.name,
        handling=specimen.container.get_handling_display(),
        collected_at=specimen.collected_at or specimen.labelled_at,
        collector=_name(collector),
        answers=tuple(
            pdf.Answer(
                question=q.question.question, code=q.question.loinc_code, answer=q.shown, required=q.question.required
            )
            for q in questions(send_out)
        ),
        clinical_note=handoff.clinical_note,
        printed_at=timezone.now(),
        printed_by=_name(by),
    )


def print_manifest(*, shipment: Shipment, tubes: Sequence[Tube], by: User) -> Printed:
    """The manifest of the tubes in the shipment, recorded as printed."""
    shipments.check_print_shipment(shipment, by)
    data = manifest(shipment, tubes, by=by)
    rendered = pdf.manifest_pdf(data)
    shipments.manifest_printed(shipment=shipment, by=by, specimens=len(tubes))
    return Printed(rendered, [t.patient.pk for t in tubes], f"manifest-{reference(shipment)}")


def print_requisitions(*, send_outs: Sequence[SendOut], by: User, name: str) -> Printed:
    """One requisition page per send-out, recorded as printed for each."""
    shipments.check_print(by)
    if not send_outs:
        raise TransitionNotAllowed("There is no order to print a requisition for.")
    rendered = pdf.requisitions_pdf([requisition(s, by=by) for s in send_outs])
    shipments.requisitions_printed(send_outs=send_outs, by=by)
    return Printed(rendered, [s.order.handoff.patient_id for s in send_outs], name)
