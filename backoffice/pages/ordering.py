"""Top floor: hand a patient off with the items ordered from each domain app.

This module composes apps (it calls procedures and lab services), so it sits above them
like the pages do; the core modules below it never import a domain app.
"""

from collections.abc import Sequence

from django.db import transaction

from backoffice.models import ExamRoom, Handoff, Patient, User
from backoffice.services import Needs, handoff_create
from backoffice.workflow import TransitionNotAllowed
from lab.models import TestDefinition
from lab.services import test_orders_add
from procedures.models import Medication, ProcedureType
from procedures.services import medications_order, procedure_orders_add


def handoff_order(
    *,
    patient: Patient,
    ordering_clinician: User,
    exam_room: ExamRoom,
    priority: int,
    clinical_note: str,
    needs: Needs,
    diagnosis_codes: Sequence[str] = (),
    procedure_types: Sequence[ProcedureType],
    tests: Sequence[TestDefinition],
    again: bool = False,
    by: User,
    medications: Sequence[Medication] = (),
    allergy_override_reason: str = "",
) -> Handoff:
    """Create the handoff and its ordered items in one transaction: all of it or nothing.

    A drug orders the procedure that gives it (its catalog entry says which) and is checked against
    the patient's allergies: a match stops the whole order unless a clinician gives a reason.
    """
    procedure_types = list(procedure_types)
    for medication in medications:
        procedure = medication.administration_procedure
        if procedure is None:
            raise TransitionNotAllowed(f"{medication} has no procedure to give it: ask an admin to set one.")
        if procedure.pk not in {p.pk for p in procedure_types}:
            procedure_types.append(procedure)
    if not procedure_types and not tests:
        raise TransitionNotAllowed("Order at least one procedure or lab test.")
    with transaction.atomic():
        handoff = handoff_create(
            patient=patient,
            ordering_clinician=ordering_clinician,
            exam_room=exam_room,
            priority=priority,
            clinical_note=clinical_note,
            diagnosis_codes=diagnosis_codes,
            needs=needs,
            again=again,
            by=by,
        )
        orders = {
            o.procedure_type_id: o
            for o in procedure_orders_add(handoff=handoff, procedure_types=procedure_types, by=by)
        }
        for order in orders.values():
            given_here = [m for m in medications if m.administration_procedure_id == order.procedure_type_id]
            medications_order(order=order, medications=given_here, by=by, override_reason=allergy_override_reason)
        test_orders_add(handoff=handoff, tests=tests, by=by)
    return handoff
