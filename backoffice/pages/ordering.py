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
from procedures.models import ProcedureType
from procedures.services import procedure_orders_add


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
    by: User,
) -> Handoff:
    """Create the handoff and its ordered items in one transaction: all of it or nothing."""
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
            by=by,
        )
        procedure_orders_add(handoff=handoff, procedure_types=procedure_types, by=by)
        test_orders_add(handoff=handoff, tests=tests, by=by)
    return handoff
