"""Allowed status moves for ordered procedures, as data.

Readable and testable without a database; procedures.services moves a status only through
backoffice.transitions.move with the PROCEDURE table, and nothing else assigns one.

    ordered ──► in_progress ──► performed ──► completed
       │             │              │
       │             │              └──► awaiting_cosign ──► completed
       │             │                        ▲    │
       │             │                        │    ▼
       │             │                        └─ returned   (corrected, then resubmitted)
       └─────────────┴──► not_done (with a reason)
"""

from django.db import models

from backoffice.workflow import Table


class ProcedureStatus(models.TextChoices):
    ORDERED = "ordered", "Ordered"
    IN_PROGRESS = "in_progress", "In progress"
    PERFORMED = "performed", "Performed"
    AWAITING_COSIGN = "awaiting_cosign", "Awaiting co-sign"
    RETURNED = "returned", "Returned for correction"
    COMPLETED = "completed", "Completed"
    NOT_DONE = "not_done", "Not done"


class Supervision(models.TextChoices):
    """How a performer who is not yet signed off as competent was supervised."""

    NONE = "none", "Not needed"
    PRESENT = "present", "Supervisor present"
    COSIGN = "cosign", "Co-sign afterwards"


class NotDoneReason(models.TextChoices):
    PATIENT_DECLINED = "patient_declined", "Patient declined"
    CONTRAINDICATED = "contraindicated", "Contraindicated"
    EQUIPMENT_UNAVAILABLE = "equipment_unavailable", "Equipment unavailable"
    DEFERRED = "deferred", "Deferred to another visit"
    # Set only by the handoff's cancellation (procedures.services.procedures_close_for_cancel), never chosen.
    HANDOFF_CANCELLED = "handoff_cancelled", "Handoff cancelled"


# The reasons a person chooses when closing a procedure as not done.
CHOSEN_NOT_DONE_REASONS: tuple[str, ...] = tuple(r for r in NotDoneReason if r != NotDoneReason.HANDOFF_CANCELLED)


S = ProcedureStatus

PROCEDURE_MOVES: dict[str, frozenset[str]] = {
    S.ORDERED: frozenset({S.IN_PROGRESS, S.NOT_DONE}),
    S.IN_PROGRESS: frozenset({S.PERFORMED, S.NOT_DONE}),
    S.PERFORMED: frozenset({S.COMPLETED, S.AWAITING_COSIGN}),
    S.AWAITING_COSIGN: frozenset({S.COMPLETED, S.RETURNED}),
    S.RETURNED: frozenset({S.AWAITING_COSIGN}),
    S.COMPLETED: frozenset(),
    S.NOT_DONE: frozenset(),
}

# Finished: the handoff no longer waits for these.
DONE_STATUSES: tuple[str, ...] = (S.COMPLETED, S.NOT_DONE)
# Still work for someone: the procedure queue lists these.
OPEN_STATUSES: tuple[str, ...] = tuple(s for s in S if s not in DONE_STATUSES)
# Still needing the patient: the handoff (and the station) waits for these. Work awaiting co-sign or
# returned for correction is between the performer and a supervisor, and goes on after the patient has
# left: it stays on the supervisors' queue, and the performer's queue says when it is reviewed.
AT_PATIENT_STATUSES: tuple[str, ...] = (S.ORDERED, S.IN_PROGRESS, S.PERFORMED)
# The performer may still change the documentation; after these it is corrected only by addendum.
EDITABLE_STATUSES: tuple[str, ...] = (S.IN_PROGRESS, S.RETURNED)
# Documented at least once: an addendum can be attached.
ADDENDUM_STATUSES: tuple[str, ...] = (S.PERFORMED, S.AWAITING_COSIGN, S.RETURNED, S.COMPLETED)


PROCEDURE = Table(label="procedure", states=ProcedureStatus, moves=PROCEDURE_MOVES)
