"""Our rows as FHIR R4B resources, each built through fhir.resources' models (so validated).

Builders read only what the caller loaded: backoffice.fhir.search fetches each type with the
select_related / prefetch_related its builder needs (named beside each one). No HTTP here.

Ids are the rows' UUIDs, never their primary keys; the in-house lab, no row of ours, is IN_HOUSE_LAB_ID.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.procedure import Procedure
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.specimen import Specimen as FhirSpecimen
from fhir.resources.R4B.task import Task

from backoffice.fhir import codes
from backoffice.models import Handoff, Patient, User
from backoffice.workflow import Priority
from lab.models import ReferenceLab, Result, SendOut, TestOrder
from lab.workflow import Flag, SendOutStatus, TestOrderStatus
from procedures.models import ProcedureOrder
from procedures.workflow import NotDoneReason, ProcedureStatus, Supervision
from specimens.models import Specimen
from specimens.workflow import SpecimenStatus

Json = dict[str, Any]
P, T, SO, SP = ProcedureStatus, TestOrderStatus, SendOutStatus, SpecimenStatus


def ref(resource_type: str, resource_id: object, display: str = "") -> Json:
    reference: Json = {"reference": f"{resource_type}/{resource_id}"}
    if display:
        reference["display"] = display
    return reference


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _clean(data: Json) -> Json:
    """Drop the keys whose value is None or empty: FHIR has no empty elements."""
    return {key: value for key, value in data.items() if value not in (None, "", [], {})}


def _practitioner_ref(user: User | None) -> Json | None:
    return ref("Practitioner", user.uuid, str(user)) if user is not None else None


def _lab_ref(lab: ReferenceLab | None) -> Json:
    if lab is None:
        return ref("Organization", codes.IN_HOUSE_LAB_ID, settings.CLINIC_NAME)
    return ref("Organization", lab.uuid, lab.name)


def _patient_ref(patient: Patient) -> Json:
    return ref("Patient", patient.uuid)


# --- Patient, Practitioner, Organization ---------------------------------------------------------

GENDER: dict[str, str] = {Patient.Sex.FEMALE: "female", Patient.Sex.MALE: "male", Patient.Sex.OTHER: "other"}


def patient(row: Patient) -> FhirPatient:
    return FhirPatient(
        **_clean(
            {
                "id": str(row.uuid),
                "identifier": [{"use": "usual", "type": _v2_0203("MR"), "system": codes.MRN, "value": row.mrn}],
                "name": [{"use": "official", "family": row.family_name, "given": [row.given_name]}],
                "gender": GENDER.get(row.sex, "unknown"),
                "birthDate": row.date_of_birth.isoformat(),
                "telecom": [{"system": "phone", "value": row.phone}] if row.phone else None,
                "communication": [{"language": {"text": row.preferred_language}, "preferred": True}],
            }
        )
    )


def practitioner(user: User) -> Practitioner:
    return Practitioner(
        **_clean(
            {
                "id": str(user.uuid),
                "active": user.is_active,
                "identifier": [{"system": codes.NPI, "value": user.npi}] if user.npi else None,
                "name": [
                    _clean(
                        {
                            "text": str(user),
                            "family": user.last_name,
                            "given": [user.first_name] if user.first_name else None,
                        }
                    )
                ],
            }
        )
    )


def organization(lab: ReferenceLab | None) -> Organization:
    """A reference lab, or (None) the clinic's own in-house lab."""
    if lab is None:
        return Organization.model_validate(
            {
                "id": codes.IN_HOUSE_LAB_ID,
                "active": True,
                "name": settings.CLINIC_NAME,
                "type": [{"text": "In-house laboratory"}],
            }
        )
    return Organization(
        **_clean(
            {
                "id": str(lab.uuid),
                "active": lab.is_active,
                "identifier": [{"system": codes.CLIA, "value": lab.clia_number}],
                "type": [{"text": "Reference laboratory"}],
                "name": lab.name,
                "telecom": [{"system": "phone", "value": lab.phone}] if lab.phone else None,
                "address": [{"text": lab.address}] if lab.address else None,
            }
        )
    )


def _v2_0203(code: str) -> Json:
    return {"coding": [{"system": codes.IDENTIFIER_TYPE, "code": code}]}


# --- ServiceRequest: what was ordered ------------------------------------------------------------

PROCEDURE_REQUEST_STATUS: dict[str, str] = {
    P.ORDERED: "active",
    P.IN_PROGRESS: "active",
    P.PERFORMED: "active",
    P.AWAITING_COSIGN: "active",
    P.RETURNED: "active",
    P.COMPLETED: "completed",
    P.NOT_DONE: "revoked",
}
TEST_REQUEST_STATUS: dict[str, str] = {
    T.ORDERED: "active",
    T.COLLECTED: "active",
    T.IN_PROGRESS: "active",
    T.SENT_OUT: "active",
    T.RESULTED: "completed",
    T.CANCELLED: "revoked",
}


def _priority(handoff: Handoff) -> str:
    return "stat" if handoff.priority == Priority.STAT else "routine"


def _requisition(handoff: Handoff) -> Json:
    return {"system": codes.HANDOFF, "value": str(handoff.uuid)}


def procedure_request(order: ProcedureOrder) -> ServiceRequest:
    """Needs handoff (its patient and ordering clinician) and procedure_type loaded."""
    handoff, ptype = order.handoff, order.procedure_type
    return ServiceRequest(
        **_clean(
            {
                "id": str(order.uuid),
                "status": PROCEDURE_REQUEST_STATUS[order.status],
                "intent": "order",
                "category": [{"text": "Procedure"}],
                "priority": _priority(handoff),
                "code": {
                    "coding": [
                        {"system": codes.procedure_code_system(ptype.code), "code": ptype.code, "display": ptype.name}
                    ],
                    "text": ptype.name,
                },
                "subject": _patient_ref(handoff.patient),
                "authoredOn": _when(order.created_at),
                "requester": _practitioner_ref(handoff.ordering_clinician),
                "requisition": _requisition(handoff),
                "note": [{"text": order.instructions}] if order.instructions else None,
            }
        )
    )


def test_request(order: TestOrder) -> ServiceRequest:
    """Needs handoff (its patient, ordering clinician), test, specimen and send_out loaded."""
    handoff, test = order.handoff, order.test
    send_out = _send_out_of(order)
    identifiers = []
    if send_out is not None:
        identifiers.append({"type": _v2_0203("PLAC"), "system": codes.PLACER, "value": send_out.placer_number})
    return ServiceRequest(
        **_clean(
            {
                "id": str(order.uuid),
                "identifier": identifiers,
                "status": TEST_REQUEST_STATUS[order.status],
                "intent": "order",
                "category": [
                    {"coding": [{"system": codes.SNOMED, "code": "108252007", "display": "Laboratory procedure"}]}
                ],
                "priority": _priority(handoff),
                "code": {
                    "coding": [{"system": codes.LOINC, "code": test.loinc_code, "display": test.name}],
                    "text": test.name,
                },
                "subject": _patient_ref(handoff.patient),
                "authoredOn": _when(order.created_at),
                "requester": _practitioner_ref(handoff.ordering_clinician),
                "performer": [_lab_ref(send_out.reference_lab if send_out else None)],
                "specimen": [ref("Specimen", order.specimen.uuid)] if order.specimen is not None else None,
                "requisition": _requisition(handoff),
            }
        )
    )


def _send_out_of(order: TestOrder) -> SendOut | None:
    try:
        return order.send_out
    except SendOut.DoesNotExist:
        return None


# --- Task: where each order and send-out stands in our workflow ----------------------------------

PROCEDURE_FAILED_REASONS = (NotDoneReason.CONTRAINDICATED, NotDoneReason.EQUIPMENT_UNAVAILABLE)
TEST_FAILED_REASONS = ("not_collected",)
SEND_OUT_TASK_STATUS: dict[str, str] = {
    SO.WAITING: "requested",
    SO.PACKED: "accepted",
    SO.SENT: "in-progress",
    SO.PRELIMINARY: "in-progress",
    SO.FINAL: "completed",
    SO.CANCELLED: "cancelled",
}


def procedure_task_status(order: ProcedureOrder) -> str:
    """From the procedure's workflow (procedures.workflow); needs handoff loaded."""
    if order.status == P.ORDERED:
        return "accepted" if order.handoff.claimed_by_id is not None else "requested"
    if order.status in (P.IN_PROGRESS, P.PERFORMED, P.RETURNED):
        return "in-progress"
    if order.status == P.AWAITING_COSIGN:
        return "on-hold"  # done at the patient, waiting for a supervisor's co-sign
    if order.status == P.COMPLETED:
        return "completed"
    return "failed" if order.not_done_reason in PROCEDURE_FAILED_REASONS else "cancelled"


def test_task_status(order: TestOrder) -> str:
    """From the test order's workflow (lab.workflow)."""
    if order.status == T.ORDERED:
        return "on-hold" if order.needs_recollection else "requested"
    if order.status == T.COLLECTED:
        return "accepted"
    if order.status in (T.IN_PROGRESS, T.SENT_OUT):
        return "in-progress"
    if order.status == T.RESULTED:
        return "completed"
    return "failed" if order.cancel_reason in TEST_FAILED_REASONS else "cancelled"


def _task(**fields: Any) -> Task:
    return Task(**_clean({"intent": "order", **fields}))


def procedure_task(order: ProcedureOrder) -> Task:
    """Needs handoff (patient, claimed_by), procedure_type and performer loaded."""
    owner = order.performer or order.handoff.claimed_by
    return _task(
        id=str(order.uuid),
        status=procedure_task_status(order),
        businessStatus={"text": order.get_status_display()},
        statusReason={"text": order.get_not_done_reason_display()} if order.not_done_reason else None,
        code={"text": f"Perform {order.procedure_type.name}"},
        focus=ref("ServiceRequest", order.uuid),
        basedOn=[ref("ServiceRequest", order.uuid)],
        groupIdentifier=_requisition(order.handoff),
        priority=_priority(order.handoff),
        **{"for": _patient_ref(order.handoff.patient)},
        authoredOn=_when(order.created_at),
        lastModified=_when(order.status_changed_at),
        owner=_practitioner_ref(owner),
    )


def test_task(order: TestOrder) -> Task:
    """Needs handoff (its patient), test and send_out (its reference lab) loaded."""
    send_out = _send_out_of(order)
    return _task(
        id=str(order.uuid),
        status=test_task_status(order),
        businessStatus={"text": "To be collected again" if order.needs_recollection else order.get_status_display()},
        statusReason={"text": order.get_cancel_reason_display()} if order.cancel_reason else None,
        code={"text": f"Test {order.test.name}"},
        focus=ref("ServiceRequest", order.uuid),
        basedOn=[ref("ServiceRequest", order.uuid)],
        groupIdentifier=_requisition(order.handoff),
        priority=_priority(order.handoff),
        **{"for": _patient_ref(order.handoff.patient)},
        authoredOn=_when(order.created_at),
        lastModified=_when(order.status_changed_at),
        owner=_lab_ref(send_out.reference_lab if send_out else None),
    )


def send_out_task(send_out: SendOut) -> Task:
    """The send-out to a reference lab, part of its test order's task.

    Needs order (its handoff and patient, test) and reference_lab loaded.
    """
    order = send_out.order
    return _task(
        id=str(send_out.uuid),
        identifier=[{"type": _v2_0203("PLAC"), "system": codes.PLACER, "value": send_out.placer_number}],
        status=SEND_OUT_TASK_STATUS[send_out.status],
        businessStatus={"text": send_out.get_status_display()},
        code={"text": f"Send {order.test.name} to {send_out.reference_lab.name}"},
        focus=ref("ServiceRequest", order.uuid),
        basedOn=[ref("ServiceRequest", order.uuid)],
        partOf=[ref("Task", order.uuid)],
        groupIdentifier=_requisition(order.handoff),
        priority=_priority(order.handoff),
        **{"for": _patient_ref(order.handoff.patient)},
        authoredOn=_when(send_out.created_at),
        lastModified=_when(send_out.status_changed_at),
        owner=_lab_ref(send_out.reference_lab),
        executionPeriod=_clean({"start": _when(send_out.sent_at), "end": _when(send_out.final_at)}) or None,
    )


# --- Specimen ------------------------------------------------------------------------------------

SPECIMEN_STATUS: dict[str, str] = {
    SP.LABELLED: "unavailable",  # labelled at the bedside, not yet collected
    SP.COLLECTED: "available",
    SP.IN_TRANSIT: "available",
    SP.RECEIVED: "available",
    SP.IN_TESTING: "available",
    SP.DONE: "available",
    SP.STORED: "available",
    SP.DISPOSED: "unavailable",
    SP.REJECTED: "unsatisfactory",
    SP.SHIPPED: "unavailable",  # at the reference lab
    SP.NOT_COLLECTED: "unavailable",
}


def specimen(row: Specimen) -> FhirSpecimen:
    """Needs patient, specimen_type, container, collected_by, rejection_reason loaded, test_orders prefetched."""
    condition = None
    if row.rejection_reason is not None:
        reason = row.rejection_reason
        system = codes.REJECT_REASON if reason.hl7_table_0490 else codes.REJECTION_LOCAL
        condition = [{"coding": [{"system": system, "code": reason.code, "display": reason.name}], "text": reason.name}]
    body_site = None
    if row.body_site or row.body_site_snomed:
        coding = [{"system": codes.SNOMED, "code": row.body_site_snomed}] if row.body_site_snomed else None
        body_site = _clean({"coding": coding, "text": row.body_site})
    notes = [text for text in (row.rejection_note, row.failed_draw_note) if text]
    stype = row.specimen_type
    return FhirSpecimen(
        **_clean(
            {
                "id": str(row.uuid),
                "accessionIdentifier": {"system": codes.ACCESSION, "value": row.accession},
                "status": SPECIMEN_STATUS[row.status],
                "type": {
                    "coding": [{"system": codes.SNOMED, "code": stype.snomed_code, "display": stype.name}],
                    "text": stype.name,
                },
                "subject": _patient_ref(row.patient),
                "receivedTime": _when(row.received_at),
                "request": [ref("ServiceRequest", order.uuid) for order in row.test_orders.all()],
                "collection": _clean(
                    {
                        "collector": _practitioner_ref(row.collected_by),
                        "collectedDateTime": _when(row.collected_at),
                        "quantity": {"value": row.volume_ml, "unit": "mL", "system": codes.UCUM, "code": "mL"}
                        if row.volume_ml is not None
                        else None,
                        "method": {"text": row.get_collection_method_display()},
                        "bodySite": body_site,
                    }
                ),
                "container": [{"description": row.container.name}],
                "condition": condition,
                "parent": [ref("Specimen", row.recollection_of.uuid)] if row.recollection_of is not None else None,
                "note": [{"text": text} for text in notes],
            }
        )
    )


# --- Procedure -----------------------------------------------------------------------------------

PROCEDURE_STATUS: dict[str, str] = {
    P.ORDERED: "preparation",
    P.IN_PROGRESS: "in-progress",
    P.PERFORMED: "completed",
    P.AWAITING_COSIGN: "completed",
    P.RETURNED: "completed",
    P.COMPLETED: "completed",
    P.NOT_DONE: "not-done",
}


def _documentation(order: ProcedureOrder) -> Any:
    try:
        return order.documentation
    except ProcedureOrder.documentation.RelatedObjectDoesNotExist:
        return None


def procedure(order: ProcedureOrder) -> Procedure:
    """Needs handoff (its patient), procedure_type, performer, supervisor, cosigned_by, documentation loaded."""
    performers = []
    if order.performer is not None:
        performers.append({"function": {"text": "performer"}, "actor": _practitioner_ref(order.performer)})
    supervisors = []
    if order.supervision == Supervision.PRESENT and order.supervisor is not None:
        supervisors.append(order.supervisor)
    if order.cosigned_by is not None and order.cosigned_by not in supervisors:
        supervisors.append(order.cosigned_by)
    performers += [{"function": {"text": "supervisor"}, "actor": _practitioner_ref(user)} for user in supervisors]
    doc = _documentation(order)
    body_site, notes = None, []
    if doc is not None:
        site = " ".join(part for part in (doc.get_laterality_display() if doc.laterality else "", doc.site) if part)
        body_site = [{"text": site}] if site else None
        notes = [
            f"{label}: {text}"
            for label, text in (
                ("Findings", doc.findings),
                ("Complications", doc.complications),
                ("Tolerance", doc.get_tolerance_display() if doc.tolerance else ""),
            )
            if text
        ]
    ptype = order.procedure_type
    return Procedure(
        **_clean(
            {
                "id": str(order.uuid),
                "basedOn": [ref("ServiceRequest", order.uuid)],
                "status": PROCEDURE_STATUS[order.status],
                "statusReason": {"text": order.get_not_done_reason_display()} if order.not_done_reason else None,
                "code": {
                    "coding": [
                        {"system": codes.procedure_code_system(ptype.code), "code": ptype.code, "display": ptype.name}
                    ],
                    "text": ptype.name,
                },
                "subject": _patient_ref(order.handoff.patient),
                "performedPeriod": _clean({"start": _when(order.started_at), "end": _when(order.performed_at)}) or None,
                "performer": performers,
                "bodySite": body_site,
                "note": [{"text": text} for text in notes],
            }
        )
    )


# --- Observation and DiagnosticReport: results ---------------------------------------------------

INTERPRETATION = {
    Flag.NORMAL: "Normal",
    Flag.LOW: "Low",
    Flag.HIGH: "High",
    Flag.CRITICAL_LOW: "Critical low",
    Flag.CRITICAL_HIGH: "Critical high",
    Flag.ABNORMAL: "Abnormal",
}
QUANTITY_COMPARATORS = ("<", "<=", ">=", ">")


def observation_status(result: Result) -> str:
    if result.report_status == Result.ReportStatus.PRELIMINARY:
        return "preliminary"
    if result.report_status == Result.ReportStatus.CORRECTED:
        return "corrected"
    return "amended" if result.amends_id is not None else "final"


def _quantity(value: Decimal, unit: str, comparator: str = "") -> Json:
    return _clean(
        {"value": value, "comparator": comparator, "unit": unit, "system": codes.UCUM if unit else None, "code": unit}
    )


def _value(result: Result) -> Json:
    if result.value_numeric is not None:
        if result.value_separator or (result.comparator and result.comparator not in QUANTITY_COMPARATORS):
            return {"valueString": result.display_value}  # a ratio (1:160), a range, or "<>"
        return {"valueQuantity": _quantity(result.value_numeric, result.unit, result.comparator)}
    if result.value_code:
        system = codes.V2_SYSTEMS.get(result.value_code_system.upper())
        coding = _clean({"system": system, "code": result.value_code, "display": result.value_text})
        return {"valueCodeableConcept": _clean({"coding": [coding], "text": result.value_text})}
    text = result.value_text or result.narrative
    return {"valueString": text} if text else {}


def _reference_range(result: Result) -> list[Json] | None:
    ranges = result.reference_range
    if ranges is not None and (ranges.low is not None or ranges.high is not None):
        unit = result.analyte.unit
        return [
            _clean(
                {
                    "low": _quantity(ranges.low, unit) if ranges.low is not None else None,
                    "high": _quantity(ranges.high, unit) if ranges.high is not None else None,
                    "text": ranges.label,
                }
            )
        ]
    return [{"text": result.reference_text}] if result.reference_text else None


def observation(result: Result) -> Observation:
    """Needs patient, analyte, specimen, order, reference_lab, reference_range loaded."""
    analyte = result.analyte
    if analyte.loinc_code:
        coding = {"system": codes.LOINC, "code": analyte.loinc_code, "display": analyte.name}
    else:
        coding = {"code": analyte.lab_code, "display": result.lab_name or analyte.name}
    interpretation = None
    if result.flag in INTERPRETATION:
        interpretation = [
            {
                "coding": [
                    {"system": codes.INTERPRETATION, "code": result.flag, "display": INTERPRETATION[Flag(result.flag)]}
                ]
            }
        ]
    notes = [
        text
        for text in (result.comment, result.notes, result.amend_reason and f"Corrected: {result.amend_reason}")
        if text
    ]
    return Observation(
        **_clean(
            {
                "id": str(result.uuid),
                "basedOn": [ref("ServiceRequest", result.order.uuid)],
                "status": observation_status(result),
                "category": [{"coding": [{"system": codes.OBSERVATION_CATEGORY, "code": "laboratory"}]}],
                "code": {"coding": [_clean(coding)], "text": analyte.name},
                "subject": _patient_ref(result.patient),
                "effectiveDateTime": _when(result.specimen.collected_at or result.observed_at),
                "issued": _when(result.released_at),
                "performer": [_lab_ref(result.reference_lab)],
                **_value(result),
                "interpretation": interpretation,
                "referenceRange": _reference_range(result),
                "specimen": ref("Specimen", result.specimen.uuid),
                "note": [{"text": text} for text in notes],
            }
        )
    )


def diagnostic_report_status(order: TestOrder, results: list[Result]) -> str:
    """From the order's workflow and its released results (the current ones, prefetched)."""
    if order.status == T.CANCELLED:
        return "cancelled"
    if order.status == T.RESULTED:
        statuses = {observation_status(result) for result in results}
        return "corrected" if "corrected" in statuses else "amended" if "amended" in statuses else "final"
    if results:
        send_out = _send_out_of(order)
        return "preliminary" if send_out is not None and send_out.status == SO.PRELIMINARY else "partial"
    return "registered"


def diagnostic_report(order: TestOrder) -> DiagnosticReport:
    """Needs handoff (its patient), test, specimen, send_out (its lab) loaded and ``released`` prefetched."""
    results: list[Result] = list(order.released)  # type: ignore[attr-defined]
    send_out = _send_out_of(order)
    issued = max((r.released_at for r in results if r.released_at is not None), default=None)
    return DiagnosticReport(
        **_clean(
            {
                "id": str(order.uuid),
                "basedOn": [ref("ServiceRequest", order.uuid)],
                "status": diagnostic_report_status(order, results),
                "category": [
                    {"coding": [{"system": codes.DIAGNOSTIC_SERVICE, "code": "LAB", "display": "Laboratory"}]}
                ],
                "code": {
                    "coding": [{"system": codes.LOINC, "code": order.test.loinc_code, "display": order.test.name}],
                    "text": order.test.name,
                },
                "subject": _patient_ref(order.handoff.patient),
                "effectiveDateTime": _when(order.specimen.collected_at) if order.specimen is not None else None,
                "issued": _when(issued),
                "performer": [_lab_ref(send_out.reference_lab if send_out else None)],
                "specimen": [ref("Specimen", order.specimen.uuid)] if order.specimen is not None else None,
                "result": [ref("Observation", r.uuid, r.analyte.short_name) for r in results],
            }
        )
    )


def as_json(resource: Resource) -> Json:
    data: Json = resource.model_dump(mode="json", exclude_none=True)
    return data
