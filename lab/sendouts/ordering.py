"""Our rows as the ORM^O01 a reference lab receives: send-outs mapped to lab.hl7.build's dataclasses.

lab.hl7.build writes the text (every field's rule is in its docstring); this module decides what
goes in it from the send-out, its test order, handoff, patient, specimen and the lab's settings, and
queues the message (an OutboundMessage row and its send task, in the caller's transaction). The
sending itself is lab.sendouts.sending.

- Our MRN goes in PID-3 typed MR with our assigning authority (``CLINIC`` and its OID); a 2.5.1 lab
  also gets our namespace on ORC-2/ORC-4/OBR-2 (EI: ``00001234^CLINICBO^<OID>^ISO``), a 2.3 lab the
  bare ids its older interface expects.
- MSH-10 comes from a Postgres sequence (``ORM`` and nine digits): unique, never reused, 12 of the
  20 characters MSH-10 holds.
- The ordering provider is the handoff's ordering clinician by NPI; the diagnoses are the handoff's
  ICD-10-CM codes with their CMS descriptions; the ask-at-order-entry answers are the send-out's.
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.utils import timezone

from backoffice import icd10
from backoffice.models import User
from backoffice.workflow import TransitionNotAllowed
from lab.hl7 import build
from lab.hl7.profiles import CLINIC_AUTHORITY, CLINIC_OID
from lab.models import AskAtOrderEntry, OutboundMessage, ReferenceLab, SendOut
from lab.workflow import MessageStatus

ASSIGNING_AUTHORITY = build.HD.iso(CLINIC_AUTHORITY, CLINIC_OID)
CONTROL_ID_PREFIX = "ORM"
CONTROL_ID_DIGITS = 9
# A DG1 text is an ST; CMS descriptions fit, but a code set update must never stop an order.
_DIAGNOSIS_TEXT = 150

# What a send-out's ORM needs from its rows, joined in one query.
ORDER_RELATED = (
    "reference_lab",
    "orderable",
    "order__test",
    "order__handoff__patient",
    "order__handoff__ordering_clinician",
    "order__specimen__specimen_type",
    "order__specimen__collected_by",
    "order__specimen__labelled_by",
)


class OrderNotBuildable(TransitionNotAllowed):
    """The rows can't make a valid order (a missing NPI, a name too long for HL7): the message says which."""


def next_control_id() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval('lab_hl7_control_id_seq')")
        (number,) = cursor.fetchone()
    return f"{CONTROL_ID_PREFIX}{number:0{CONTROL_ID_DIGITS}d}"


def endpoints(lab: ReferenceLab) -> tuple[build.Endpoint, build.Endpoint]:
    """MSH-3/4 (us, as this lab knows us) and MSH-5/6 (the lab)."""
    sender = build.Endpoint(build.HD(lab.our_application), build.HD(lab.our_facility))
    receiver = build.Endpoint(build.HD(lab.receiving_application), build.HD(lab.receiving_facility))
    return sender, receiver


def provider(clinician: User) -> build.Provider:
    """The ordering clinician by NPI; OrderNotBuildable names what is missing."""
    if not clinician.npi:
        raise OrderNotBuildable(
            f"{clinician} has no NPI on file: an admin adds it to their staff record (Admin → Users)."
        )
    try:
        return build.Provider(npi=clinician.npi, family=clinician.last_name, given=clinician.first_name)
    except ValueError as exc:
        raise OrderNotBuildable(f"{clinician}'s staff record can't go on an order: {exc}.") from None


def diagnoses(codes: list[str], *, describe: bool = True) -> tuple[build.Diagnosis, ...]:
    """DG1s: each code with its CMS description (``describe=False`` for a check that sends nothing)."""
    return tuple(
        build.Diagnosis(code=code, text=icd10.describe(code)[:_DIAGNOSIS_TEXT] if describe else "") for code in codes
    )


def answers(send_out: SendOut) -> tuple[build.AskAtOrderEntry, ...]:
    """The answers given, in the lab's question order (OBX with OBX-11 O); unanswered ones are left out."""
    given = send_out.answers or {}
    out = []
    for question in sorted(send_out.orderable.questions.all(), key=lambda q: (q.position, q.pk)):
        value = str(given.get(question.loinc_code, "")).strip()
        if not value:
            continue
        if question.value_type == AskAtOrderEntry.ValueType.CODED:
            code, text, system = next((c for c in question.choices if c[0] == value), (value, value, "L"))
            out.append(
                build.AskAtOrderEntry(
                    question_code=question.loinc_code,
                    question=question.question,
                    value_type="CWE",
                    value=text,
                    code=code,
                    coding_system=system,
                )
            )
        else:
            out.append(
                build.AskAtOrderEntry(
                    question_code=question.loinc_code,
                    question=question.question,
                    value_type=question.value_type,
                    value=value,
                )
            )
    return tuple(out)


def orm_order(send_out: SendOut, *, action: str = "NW", describe: bool = True) -> build.OrmOrder:
    """The order as lab.hl7.build takes it; OrderNotBuildable says what in our rows stops it."""
    order = send_out.order
    handoff = order.handoff
    patient = handoff.patient
    specimen = order.specimen
    if specimen is None or specimen.collected_at is None:
        raise OrderNotBuildable(f"{order.test.short_name} has no collected specimen to send.")
    collector = specimen.collected_by or specimen.labelled_by
    lab = send_out.reference_lab
    try:
        return build.OrmOrder(
            action=action,
            placer_order_number=send_out.placer_number,
            accession=specimen.accession,
            patient=build.PatientIds(
                mrn=patient.mrn,
                assigning_authority=ASSIGNING_AUTHORITY,
                family=patient.family_name,
                given=patient.given_name,
                birth_date=patient.date_of_birth,
                sex=patient.sex,
            ),
            ordering_provider=provider(handoff.ordering_clinician),
            test_loinc=order.test.loinc_code,
            test_name=order.test.name,
            lab_test_code=send_out.orderable.lab_code,
            lab_test_name=send_out.orderable.lab_name,
            stat=handoff.is_stat,
            collected_at=timezone.localtime(specimen.collected_at),
            collector=build.Collector(id=collector.username, family=collector.last_name, given=collector.first_name),
            clinical_information=handoff.clinical_note,
            specimen_source=build.SpecimenSource(
                code=specimen.specimen_type.snomed_code, text=specimen.specimen_type.name
            ),
            diagnoses=diagnoses(list(handoff.diagnosis_codes), describe=describe),
            answers=answers(send_out),
            id_authority=build.HD.iso(lab.our_application, CLINIC_OID)
            if lab.hl7_version == ReferenceLab.Version.V251
            else None,
        )
    except ValueError as exc:
        raise OrderNotBuildable(
            f"The order for {order.test.short_name} ({send_out.placer_number}) can't be written: {exc}."
        ) from None


def orm_text(send_out: SendOut, *, action: str, control_id: str, now: datetime) -> str:
    lab = send_out.reference_lab
    sender, receiver = endpoints(lab)
    try:
        return build.build_orm(
            orm_order(send_out, action=action),
            sender=sender,
            receiver=receiver,
            version="2.3" if lab.hl7_version == ReferenceLab.Version.V23 else "2.5.1",
            processing_id=lab.processing_id,
            control_id=control_id,
            now=timezone.localtime(now),
        )
    except ValueError as exc:
        raise OrderNotBuildable(f"The order for {send_out.placer_number} can't be written: {exc}.") from None


def queue_message(send_out: SendOut, *, kind: str, now: datetime | None = None) -> OutboundMessage:
    """Write the ORM (NW or CA) for ``send_out`` and queue it for the worker, in the caller's transaction.

    The task row is written in the same transaction as the message: both commit, or neither does. The
    caller's event names the message (its MSH-10). OrderNotBuildable when the rows can't make one.
    """
    from lab.sendouts.tasks import enqueue_send

    now = now or timezone.now()
    control_id = next_control_id()
    text = orm_text(send_out, action=kind, control_id=control_id, now=now)
    message = OutboundMessage.objects.create(
        send_out=send_out,
        kind=kind,
        control_id=control_id,
        text=text,
        status=MessageStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    enqueue_send(message)
    return message
