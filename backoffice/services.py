"""Every change of a handoff's or a station's state, one function each.

Each function locks the row, checks the actor's permission and the workflow table,
writes the new state with update_fields and appends an event row, in one transaction.
Views, admin actions, commands and tests all call these; nothing else assigns a status.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from backoffice import hooks, icd10
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, Station, StationEvent, User
from backoffice.roles import ROLE_CLINICIAN
from backoffice.text import normal_name
from backoffice.transitions import edit, lock, move, record, record_all, require
from backoffice.workflow import (
    HANDOFF,
    IDENTIFIED_STATUSES,
    STATION,
    HandBack,
    HandBackReason,
    HandoffStatus,
    IdentityMethod,
    PermissionRefused,
    Priority,
    StationState,
    TransitionNotAllowed,
)

Action = HandoffEvent.Action


class AlreadyClaimed(TransitionNotAllowed):
    """Someone else won the race to claim this handoff."""


class IdentityMismatch(TransitionNotAllowed):
    """The identifiers given do not match the patient; the attempt is recorded."""


class IdentityNotVerified(TransitionNotAllowed):
    """Work for the patient was attempted before their identity was confirmed."""


class AlreadyOnTheQueue(TransitionNotAllowed):
    """A second open handoff for a patient was asked for without saying so; names the open one."""

    def __init__(self, message: str, *, open_handoff: Handoff) -> None:
        super().__init__(message)
        self.open_handoff = open_handoff


@dataclass(frozen=True)
class Needs:
    interpreter_needed: bool = False
    interpreter_language: str = ""
    companion: str = ""
    aide_needed: bool = False
    mobility: str = Handoff.Mobility.INDEPENDENT
    isolation: str = Handoff.Isolation.NONE


def works_handoff(handoff: Handoff, user: User) -> bool:
    """Whether this user works this handoff: its claimer does, and a supervisor may step in."""
    return handoff.claimed_by_id is not None and (
        handoff.claimed_by_id == user.pk or user.has_perm("backoffice.view_board")
    )


def require_works_handoff(handoff: Handoff, by: User) -> None:
    """Refuse work on an unclaimed or closed handoff, or on someone else's (unless a supervisor)."""
    if not handoff.is_open:
        raise TransitionNotAllowed(f"This handoff is {HANDOFF.name(handoff.status)}.")
    if handoff.claimed_by_id is None:
        # Nobody to name: without this the refusal below read "claimed by None".
        raise TransitionNotAllowed("Claim the patient first.")
    if not works_handoff(handoff, by):
        raise PermissionRefused(
            f"This patient is claimed by {handoff.claimed_by}; only they or a supervisor can do that."
        )


def require_identity_verified(handoff: Handoff) -> None:
    """Guard for every service that does something for the patient."""
    if handoff.status not in IDENTIFIED_STATUSES:
        raise IdentityNotVerified("Verify the patient's identity with two identifiers first.")


# --- Guards: each service checks one of these under its lock; handoff_actions asks the same ones. ---


def check_claim(handoff: Handoff, by: User) -> None:
    require(by, "backoffice.claim_handoff", "claim patients")
    if handoff.status != HandoffStatus.WAITING and handoff.claimed_by_id is not None and handoff.is_open:
        who = "you" if handoff.claimed_by_id == by.pk else handoff.claimed_by
        # Named, because the refusal is shown on the queue, where "Already claimed" alone doesn't say whom.
        at = timezone.localtime(handoff.claimed_at)
        raise AlreadyClaimed(f"Already claimed by {who} at {at:%H:%M}: {handoff.patient.full_name}")
    HANDOFF.check(handoff.status, HandoffStatus.CLAIMED)


def check_release(handoff: Handoff, by: User) -> None:
    require(by, "backoffice.claim_handoff", "release patients")
    require_works_handoff(handoff, by)
    HANDOFF.check(handoff.status, HandoffStatus.WAITING)


def check_assign_station(handoff: Handoff, by: User) -> None:
    require(by, "backoffice.claim_handoff", "assign stations")
    if handoff.status == HandoffStatus.WAITING:
        raise TransitionNotAllowed("Claim the patient before assigning a station.")
    require_works_handoff(handoff, by)


@dataclass(frozen=True)
class EquipmentNeed:
    """One kind of equipment the handoff's items still to be done need, and which items need it."""

    equipment_id: int
    name: str
    items: tuple[str, ...]


def equipment_needs(handoff: Handoff) -> list[EquipmentNeed]:
    """What a station must have for this handoff, asked of every app (hooks.equipment_needed), by name."""
    items: dict[int, list[str]] = {}
    names: dict[int, str] = {}
    for item, equipment_id, name in hooks.equipment_needed(handoff):
        names[equipment_id] = name
        if item not in items.setdefault(equipment_id, []):
            items[equipment_id].append(item)
    return sorted(
        (EquipmentNeed(pk, names[pk], tuple(found)) for pk, found in items.items()), key=lambda n: n.name.lower()
    )


def lacking(needs: Sequence[EquipmentNeed], has: set[int]) -> list[EquipmentNeed]:
    return [need for need in needs if need.equipment_id not in has]


def check_station_equipment(station: Station, needs: Sequence[EquipmentNeed], has: set[int]) -> None:
    """Refuse a station without the equipment the handoff's items need, naming what it lacks and for what."""
    missing = lacking(needs, has)
    if missing:
        names = [m.name.lower() for m in missing]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        items = list(dict.fromkeys(item for m in missing for item in m.items))
        raise TransitionNotAllowed(
            f"{station} has no {listed} (for {'; '.join(items)}); "
            f"choose a station that has {'it' if len(names) == 1 else 'them'}."
        )


def check_verify_identity(handoff: Handoff, by: User) -> None:
    require(by, "backoffice.claim_handoff", "verify patients")
    require_works_handoff(handoff, by)
    HANDOFF.check(handoff.status, HandoffStatus.IDENTITY_VERIFIED)


def check_start(handoff: Handoff, by: User) -> None:
    require(by, "backoffice.claim_handoff", "start work")
    require_works_handoff(handoff, by)
    require_identity_verified(handoff)
    HANDOFF.check(handoff.status, HandoffStatus.IN_PROGRESS)
    if handoff.station_id is None:
        raise TransitionNotAllowed("Assign a station before starting.")


def check_complete(handoff: Handoff, by: User) -> None:
    require(by, "backoffice.claim_handoff", "complete handoffs")
    require_works_handoff(handoff, by)
    HANDOFF.check(handoff.status, HandoffStatus.COMPLETED)
    items = hooks.open_items(handoff)
    if items:
        # Named and listed: the refusal is read on the patient's page, and said the same by the page's note.
        one = len(items) == 1
        raise TransitionNotAllowed(
            f"{handoff.patient.full_name} still has {len(items)} open item{'' if one else 's'}: {'; '.join(items)}. "
            f"Finish or close {'it' if one else 'each one'}, then complete the handoff."
        )


def check_cancel(handoff: Handoff, by: User) -> None:
    """Only the ordering clinician, or a supervisor (who oversees the floor), cancels a handoff."""
    require(by, "backoffice.cancel_handoff", "cancel handoffs")
    if handoff.ordering_clinician_id != by.pk and not by.has_perm("backoffice.view_board"):
        raise PermissionRefused(
            f"Only the ordering clinician ({handoff.ordering_clinician}) or a supervisor can cancel this handoff."
        )
    HANDOFF.check(handoff.status, HandoffStatus.CANCELLED)


def check_cancel_items(handoff: Handoff) -> None:
    """Whether every app would close the handoff's open items: the reasons their cancel handlers
    would refuse with (hooks.handoff_cancel_blockers, each app's own rule), read without locking.
    handoff_cancel doesn't call it: the handlers apply the same rule to the rows they lock."""
    refusals = hooks.handoff_cancel_blockers(handoff)
    if refusals:
        raise TransitionNotAllowed(" ".join(refusals))


def check_hand_back(handoff: Handoff, by: User) -> None:
    """Who works the patient (its claimer, or a supervisor) hands them back: returned to the ordering
    clinician, or cancelled, as the clinic's MA_HAND_BACK says. Nothing may be under way at the patient."""
    require(by, "backoffice.claim_handoff", "hand patients back")
    require_works_handoff(handoff, by)
    if settings.MA_HAND_BACK == HandBack.CANCEL:
        HANDOFF.check(handoff.status, HandoffStatus.CANCELLED)
        check_cancel_items(handoff)
        return
    HANDOFF.check(handoff.status, HandoffStatus.RETURNED)
    # Nothing is done to a patient before their identity is verified: no app need be asked before.
    under_way = hooks.under_way(handoff) if handoff.status in IDENTIFIED_STATUSES else []
    if under_way:
        one = len(under_way) == 1
        raise TransitionNotAllowed(
            f"{', '.join(under_way)} {'is' if one else 'are'} being performed; finish {'it' if one else 'them'} "
            f"or record {'it' if one else 'them'} as not done before handing the patient back."
        )


def check_resend(handoff: Handoff, by: User) -> None:
    """A handoff returned to its clinician goes back on the queue by the clinician's (or a supervisor's) say."""
    require(by, "backoffice.cancel_handoff", "send patients back to the queue")
    if handoff.status != HandoffStatus.RETURNED:
        raise TransitionNotAllowed(
            f"This handoff is {HANDOFF.name(handoff.status)}; only one returned to its clinician is sent back."
        )
    if handoff.ordering_clinician_id != by.pk and not by.has_perm("backoffice.view_board"):
        raise PermissionRefused(
            f"Only the ordering clinician ({handoff.ordering_clinician}) or a supervisor can send this patient back."
        )
    HANDOFF.check(handoff.status, HandoffStatus.WAITING)


@dataclass(frozen=True)
class LeftFacts:
    """What check_patient_left asks the apps (hooks.under_way, open_items, patient_left_pending), read by a
    list page for many handoffs at once with the apps' own batched selectors, so each row's offer costs
    no query. The service itself asks the hooks, under the lock."""

    under_way: Sequence[str]
    open_items: Sequence[str]
    pending: Sequence[str]


def check_patient_left(handoff: Handoff, by: User, *, facts: LeftFacts | None = None) -> str | None:
    """Whether ``by`` may record that the patient has left the clinic now; the handoff's status it moves to.

    MAs and supervisors record it (there is no front-desk role), whoever claimed the patient: it is a
    fact seen at the door, not work on the patient. A patient being worked moves on: completed when
    nothing ordered still needs them, otherwise handed back to the ordering clinician (as a hand-back
    with "Patient left"), who decides. A patient already out of the back office's hands (completed,
    or returned to the clinician) is recorded only while an app still has something pending for them.
    None: no status move, the event alone.
    """
    require(by, "backoffice.record_patient_left", "record that a patient left")
    name = handoff.patient.full_name
    if handoff.patient_left_at is not None:
        at = timezone.localtime(handoff.patient_left_at)
        raise TransitionNotAllowed(f"{name} was already recorded as gone at {at:%H:%M}.")
    if handoff.status == HandoffStatus.CANCELLED:
        raise TransitionNotAllowed(f"This handoff is {HANDOFF.name(handoff.status)}.")
    if handoff.status == HandoffStatus.WAITING:
        # Nobody has seen them: the table has no waiting → returned move; the clinician's cancel is the way.
        raise TransitionNotAllowed(
            f"{name} is still waiting unclaimed on the queue; if they have gone, "
            f"{handoff.ordering_clinician} or a supervisor cancels the handoff."
        )
    if handoff.is_open:
        under_way: Sequence[str] = []
        if handoff.status in IDENTIFIED_STATUSES:
            under_way = facts.under_way if facts else hooks.under_way(handoff)
        if under_way:
            one = len(under_way) == 1
            raise TransitionNotAllowed(
                f"{', '.join(under_way)} {'is' if one else 'are'} being performed; finish {'it' if one else 'them'} "
                f"or record {'it' if one else 'them'} as not done first."
            )
        if handoff.status != HandoffStatus.IN_PROGRESS:
            done = False
        else:
            done = not (facts.open_items if facts else hooks.open_items(handoff))
        target = HandoffStatus.COMPLETED if done else HandoffStatus.RETURNED
        HANDOFF.check(handoff.status, target)
        return target
    if not (facts.pending if facts else hooks.patient_left_pending(handoff)):
        raise TransitionNotAllowed(f"Nothing is pending for {name}: no result still running, nothing to collect again.")
    return None


def check_order_as(ordering_clinician: User, by: User) -> None:
    """A clinician orders as themselves; someone else (an MA at the exam room) enters on a named
    clinician's behalf, which the handoff's first event records."""
    if not ordering_clinician.groups.filter(name=ROLE_CLINICIAN).exists():
        raise TransitionNotAllowed(f"{ordering_clinician} is not a clinician and can't order for a patient.")
    if by.pk != ordering_clinician.pk and by.groups.filter(name=ROLE_CLINICIAN).exists():
        raise PermissionRefused(f"A clinician orders as themselves, not as {ordering_clinician}.")


def open_handoff_of(patient: Patient) -> Handoff | None:
    """The patient's first open handoff (on the back-office queue), with its clinician; None if none."""
    first = (
        Handoff.objects.open()
        .filter(patient=patient)
        .select_related("ordering_clinician")
        .order_by("created_at", "id")
        .first()
    )
    if first is not None:
        first.patient = patient  # named by the refusal and the page: no query for the row we have
    return first


def check_second_handoff(patient: Patient, *, confirmed: bool) -> Handoff | None:
    """Refuse a second open handoff for a patient unless it was confirmed; return the open one."""
    open_handoff = open_handoff_of(patient)
    if open_handoff is not None and not confirmed:
        at = timezone.localtime(open_handoff.created_at)
        raise AlreadyOnTheQueue(
            f"{patient.full_name} is already on the back-office queue: handed off at {at:%H:%M} by "
            f"{open_handoff.ordering_clinician}, {HANDOFF.name(open_handoff.status)}. "
            "Tick “Hand off again” to send a second handoff.",
            open_handoff=open_handoff,
        )
    return open_handoff


def check_add_items(handoff: Handoff, by: User) -> None:
    """Items are ordered on an open handoff by someone who may hand patients off."""
    require(by, "backoffice.add_handoff", "order for patients")
    if not handoff.is_open:
        raise TransitionNotAllowed(
            f"Items can only be ordered on an open handoff; this one is {HANDOFF.name(handoff.status)}."
        )


# --- Services --------------------------------------------------------------------------------------


def _diagnoses(codes: Sequence[str]) -> list[str]:
    try:
        return icd10.check_all(codes)
    except ValidationError as exc:
        raise TransitionNotAllowed(" ".join(exc.messages)) from None


def handoff_create(
    *,
    patient: Patient,
    ordering_clinician: User,
    exam_room: ExamRoom,
    priority: int = Priority.ROUTINE,
    clinical_note: str = "",
    diagnosis_codes: Sequence[str] = (),
    needs: Needs = Needs(),
    again: bool = False,
    by: User,
) -> Handoff:
    """Hand a patient off from the exam room to the back-office queue (ICD-10-CM codes checked).

    A patient already on the queue gets a second handoff only when ``again`` says so; it keeps the
    first one's isolation precautions when none are given (the patient still needs them).
    """
    require(by, "backoffice.add_handoff", "hand patients off")
    check_order_as(ordering_clinician, by)
    language = needs.interpreter_language.strip()
    if needs.interpreter_needed and not language:
        language = patient.preferred_language
    handoff = Handoff(
        patient=patient,
        ordering_clinician=ordering_clinician,
        exam_room=exam_room,
        priority=priority,
        clinical_note=clinical_note.strip(),
        diagnosis_codes=_diagnoses(diagnosis_codes),
        interpreter_needed=needs.interpreter_needed,
        interpreter_language=language if needs.interpreter_needed else "",
        companion=needs.companion.strip(),
        aide_needed=needs.aide_needed,
        mobility=needs.mobility,
        isolation=needs.isolation,
        created_by=by,
    )
    with transaction.atomic():
        # The patient's row locked: two handoffs sent at once for one patient are decided one after
        # the other, so the second sees the first.
        lock(patient)
        first = check_second_handoff(patient, confirmed=again)
        if first is not None and handoff.isolation == Handoff.Isolation.NONE:
            handoff.isolation = first.isolation
        handoff.full_clean()
        handoff.save()
        note = "" if by.pk == ordering_clinician.pk else f"On behalf of {ordering_clinician}"
        record(handoff, by=by, action=Action.CREATED, note=note, created=True)
    return handoff


def handoff_lock_for_items(*, handoff: Handoff, by: User, items: str) -> Handoff:
    """Lock an open handoff to order items on it, recording what was ordered.

    Each domain app's ``*_orders_add`` calls this inside its transaction before inserting its rows,
    so a handoff cancelled meanwhile gets nothing: the cancel waits for the lock, or this sees it.
    """
    lock(handoff)
    check_add_items(handoff, by)
    record(handoff, by=by, action=Action.ITEMS_ORDERED, note=items)
    return handoff


def handoff_claim(*, handoff: Handoff, by: User) -> Handoff:
    """Take a waiting handoff; exactly one of several racing claimers wins."""
    require(by, "backoffice.claim_handoff", "claim patients")
    with transaction.atomic():
        # A loser that waited on the lock reads the winner's committed row; the claimer's name is
        # loaded afterwards (lock() drops every cached relation), never the NULL seen first.
        lock(handoff)
        if handoff.claimed_by_id == by.pk and handoff.is_open:
            return handoff  # already yours: a double click, or a second tab
        check_claim(handoff, by)
        handoff.claimed_by = by
        handoff.claimed_at = timezone.now()
        move(
            handoff,
            table=HANDOFF,
            to=HandoffStatus.CLAIMED,
            by=by,
            action=Action.CLAIMED,
            fields=("claimed_by", "claimed_at"),
        )
    return handoff


def handoff_release(*, handoff: Handoff, by: User, reason: str = "") -> Handoff:
    """Put a claimed handoff back on the queue (before identity was verified)."""
    require(by, "backoffice.claim_handoff", "release patients")
    with transaction.atomic():
        lock(handoff, related=("patient",))
        check_release(handoff, by)
        station = _free_station(handoff, by=by)
        handoff.claimed_by = None
        handoff.claimed_at = None
        handoff.station = None
        move(
            handoff,
            table=HANDOFF,
            to=HandoffStatus.WAITING,
            by=by,
            action=Action.RELEASED,
            note=reason or (f"Left {station}" if station else ""),
            fields=("claimed_by", "claimed_at", "station"),
        )
    return handoff


def handoff_assign_station(*, handoff: Handoff, station: Station, by: User) -> Handoff:
    """Bring the patient to a ready station that has the equipment the handoff's open items need; the
    previous one, if any, needs turnover. A move after identity is verified keeps it verified (the
    status stays; the move is an event)."""
    require(by, "backoffice.claim_handoff", "assign stations")
    with transaction.atomic():
        lock(handoff, related=("patient",))
        check_assign_station(handoff, by)
        if handoff.station_id == station.pk:
            return handoff
        lock(station)
        if not station.is_active:
            raise TransitionNotAllowed(f"{station} is out of service.")
        if station.state != StationState.READY:
            raise TransitionNotAllowed(f"{station} is {STATION.name(station.state)}; pick a ready station.")
        # Here, not at Start: the patient isn't walked to a room where the procedure can't be done.
        needs = equipment_needs(handoff)
        if needs:
            check_station_equipment(station, needs, set(station.equipment.values_list("pk", flat=True)))
        _free_station(handoff, by=by)
        move(
            station,
            table=STATION,
            to=StationState.OCCUPIED,
            by=by,
            action=StationEvent.Action.OCCUPIED,
            extra={"patient_id": handoff.patient_id},  # who, by reference: no MRN in the note
        )
        handoff.station = station
        edit(handoff, by=by, action=Action.STATION_ASSIGNED, note=str(station), fields=("station",))
    return handoff


def _name_matches(patient: Patient, typed: str) -> bool:
    # The patient search compares names the same way (Patient.search_text), so whom it finds, this accepts.
    words = sorted(normal_name(typed).split())
    return bool(words) and words == sorted(normal_name(f"{patient.given_name} {patient.family_name}").split())


def handoff_verify_identity(
    *,
    handoff: Handoff,
    by: User,
    full_name: str = "",
    date_of_birth: date | None = None,
    scanned_mrn: str = "",
    typed_mrn: str = "",
) -> Handoff:
    """Confirm the patient with two identifiers: a scanned MRN wristband, or name and date of birth.

    ``scanned_mrn`` is what a wristband scanner read (the page tells it by the scanner's marks,
    backoffice.identifiers.read_entry); an MRN typed or pasted instead (``typed_mrn``) is not a
    wristband check, so it needs the full name and date of birth as well. The method is recorded.
    A mismatch is refused and recorded as an event before IdentityMismatch is raised.
    """
    require(by, "backoffice.claim_handoff", "verify patients")
    scanned_mrn, typed_mrn = scanned_mrn.strip(), typed_mrn.strip()
    said = bool(full_name.strip() and date_of_birth)
    if scanned_mrn:
        method = IdentityMethod.SCANNED
    elif typed_mrn and said:
        method = IdentityMethod.TYPED_MRN
    elif typed_mrn:
        raise TransitionNotAllowed(
            "The MRN was typed or pasted, not scanned: ask the patient's full name and date of birth as well."
        )
    elif said:
        method = IdentityMethod.NAME_DOB
    else:
        raise TransitionNotAllowed("Scan the wristband, or give both the patient's full name and date of birth.")
    failure = ""
    with transaction.atomic():
        lock(handoff, related=("patient",))
        check_verify_identity(handoff, by)
        patient = handoff.patient
        if method == IdentityMethod.SCANNED:
            if scanned_mrn.upper() != patient.mrn.upper():
                failure = "Scanned wristband does not match this patient's MRN."
        else:
            mismatched = []
            if method == IdentityMethod.TYPED_MRN and typed_mrn.upper() != patient.mrn.upper():
                mismatched.append("MRN")
            if not _name_matches(patient, full_name):
                mismatched.append("name")
            if date_of_birth != patient.date_of_birth:
                mismatched.append("date of birth")
            if mismatched:
                verb = "do" if len(mismatched) > 1 else "does"
                listed = ", ".join(mismatched[:-1]) + " and " + mismatched[-1] if len(mismatched) > 1 else mismatched[0]
                failure = f"The {listed} given {verb} not match this patient."
        if failure:
            # Recorded, not rolled back: repeated mismatches are a safety signal for supervisors.
            record(handoff, by=by, action=Action.IDENTITY_MISMATCH, note=f"{failure} ({IdentityMethod(method).label})")
        else:
            handoff.identity_verified_at = timezone.now()
            handoff.identity_verified_by = by
            handoff.identity_method = method
            move(
                handoff,
                table=HANDOFF,
                to=HandoffStatus.IDENTITY_VERIFIED,
                by=by,
                action=Action.IDENTITY_VERIFIED,
                note=_VERIFIED_NOTES[method],
                fields=("identity_verified_at", "identity_verified_by", "identity_method"),
            )
    if failure:
        raise IdentityMismatch(f"{failure} Check the wristband and ask the patient again.")
    return handoff


_VERIFIED_NOTES = {
    IdentityMethod.SCANNED: "Wristband scanned",
    IdentityMethod.TYPED_MRN: "MRN typed (not scanned); name and date of birth confirmed",
    IdentityMethod.NAME_DOB: "Name and date of birth confirmed",
}


def handoff_start(*, handoff: Handoff, by: User) -> Handoff:
    """Begin the ordered work at the station, once the patient is identified."""
    require(by, "backoffice.claim_handoff", "start work")
    with transaction.atomic():
        lock(handoff)
        if handoff.status == HandoffStatus.IN_PROGRESS and works_handoff(handoff, by):
            return handoff
        check_start(handoff, by)
        move(handoff, table=HANDOFF, to=HandoffStatus.IN_PROGRESS, by=by, action=Action.STARTED)
    return handoff


def handoff_complete(*, handoff: Handoff, by: User) -> Handoff:
    """Close a handoff whose every ordered item is done; its station needs turnover."""
    require(by, "backoffice.claim_handoff", "complete handoffs")
    with transaction.atomic():
        lock(handoff, related=("patient",))
        check_complete(handoff, by)
        _free_station(handoff, by=by)
        handoff.closed_at = timezone.now()
        move(handoff, table=HANDOFF, to=HandoffStatus.COMPLETED, by=by, action=Action.COMPLETED, fields=("closed_at",))
    return handoff


def handoff_cancel(*, handoff: Handoff, by: User, reason: str) -> Handoff:
    """Cancel an open handoff with a reason; an occupied station needs turnover.

    Its open items are closed by their own apps' services (hooks.handoff_cancelled), in this
    transaction: procedures not started are not done, labelled tubes not collected, tests and
    send-outs cancelled (a lab that may have the order is sent ORC-1 CA). An item that can't be
    closed so (a procedure being performed, a test on the bench) refuses, and nothing changes.
    """
    require(by, "backoffice.cancel_handoff", "cancel handoffs")
    reason = reason.strip()
    if not reason:
        raise TransitionNotAllowed("Give a reason for cancelling.")
    with transaction.atomic():
        lock(handoff, related=("patient",))
        check_cancel(handoff, by)
        _cancel(handoff, by=by, reason=reason)
    return handoff


def _cancel(handoff: Handoff, *, by: User, reason: str, note: str = "", fields: Sequence[str] = ()) -> None:
    """The cancel itself, under the handoff's lock: every app closes its items, the station is freed."""
    hooks.handoff_cancelled(handoff, by, reason[:200])
    _free_station(handoff, by=by)
    handoff.closed_at = timezone.now()
    handoff.cancel_reason = reason[:200]
    move(
        handoff,
        table=HANDOFF,
        to=HandoffStatus.CANCELLED,
        by=by,
        action=Action.CANCELLED,
        note=note or reason,
        fields=("closed_at", "cancel_reason", *fields),
    )


def handoff_hand_back(*, handoff: Handoff, by: User, reason: str) -> Handoff:
    """The back office hands the patient back with a reason from the fixed list (HandBackReason).

    As the clinic's MA_HAND_BACK says: "return" sends the handoff to its ordering clinician (the claim
    and the station let go, every item as it was), who sends it back to the queue or cancels it;
    "cancel" cancels it, its items closed as a clinician's cancel closes them. Recorded either way.
    """
    require(by, "backoffice.claim_handoff", "hand patients back")
    if reason not in HandBackReason.values:
        raise TransitionNotAllowed("Choose why the patient is handed back.")
    label = HandBackReason(reason).label
    with transaction.atomic():
        lock(handoff, related=("patient", "ordering_clinician"))
        check_hand_back(handoff, by)  # the procedures under way are read under this lock: none can start
        handoff.hand_back_reason = reason
        cancel = settings.MA_HAND_BACK == HandBack.CANCEL
        if reason == HandBackReason.PATIENT_LEFT and handoff.patient_left_at is None:
            # The same fact as the door's "patient left": recorded, and (returned, the items kept) what is
            # pending goes to the clinician as calls. A cancel closes those items, so it hands none over.
            _record_patient_left(handoff, by, hand_over=not cancel)
        if cancel:
            _cancel(handoff, by=by, reason=label, note=f"Handed back: {label}", fields=("hand_back_reason",))
            return handoff
        station = _free_station(handoff, by=by)
        handoff.claimed_by, handoff.claimed_at, handoff.station = None, None, None
        move(
            handoff,
            table=HANDOFF,
            to=HandoffStatus.RETURNED,
            by=by,
            action=Action.HANDED_BACK,
            note=f"{label}; returned to {handoff.ordering_clinician}" + (f" from {station}" if station else ""),
            fields=("hand_back_reason", "claimed_by", "claimed_at", "station"),
        )
    return handoff


def _record_patient_left(handoff: Handoff, by: User, *, hand_over: bool = True) -> None:
    """The patient is gone (the caller holds the handoff's lock): each app hands what was pending for them
    to the clinician (hooks.patient_left), and the time is recorded as the handoff's PATIENT_LEFT event."""
    handed_over: list[str] = []
    if hand_over:
        handed_over = hooks.patient_left_pending(handoff)
        hooks.patient_left(handoff, by)
    handoff.patient_left_at = timezone.now()
    note = "Patient left" + (f"; to {handoff.ordering_clinician}: {'; '.join(handed_over)}" if handed_over else "")
    edit(handoff, by=by, action=Action.PATIENT_LEFT, note=note, fields=("patient_left_at",))


def handoff_patient_left(*, handoff: Handoff, by: User) -> Handoff:
    """Record that the patient has left the clinic; what was still pending for them goes to the clinician.

    Each app hands over its pending items (hooks.patient_left: lab turns a point-of-care result still
    running into a "call the patient" for the ordering clinician, and a recollection into a call-back),
    then the handoff moves as check_patient_left says (completed, or returned to the clinician with
    "Patient left", the claim and station let go) or, out of the back office's hands already, records
    the event alone. One transaction; off the clinic-now board from then on.
    """
    require(by, "backoffice.record_patient_left", "record that a patient left")
    with transaction.atomic():
        lock(handoff, related=("patient", "ordering_clinician"))
        target = check_patient_left(handoff, by)
        # The fact first, as its own event; then what it does to the handoff, as that move is always
        # recorded (completed, or handed back), so whoever reads those events finds every one.
        _record_patient_left(handoff, by)
        if target is None:
            return handoff
        station = _free_station(handoff, by=by)
        if target == HandoffStatus.COMPLETED:
            handoff.closed_at = handoff.patient_left_at
            move(
                handoff,
                table=HANDOFF,
                to=target,
                by=by,
                action=Action.COMPLETED,
                note="Patient left; nothing else needed them",
                fields=("closed_at",),
            )
            return handoff
        handoff.hand_back_reason = HandBackReason.PATIENT_LEFT
        handoff.claimed_by, handoff.claimed_at, handoff.station = None, None, None
        move(
            handoff,
            table=HANDOFF,
            to=target,
            by=by,
            action=Action.HANDED_BACK,
            note=f"{HandBackReason.PATIENT_LEFT.label}; returned to {handoff.ordering_clinician}"
            + (f" from {station}" if station else ""),
            fields=("hand_back_reason", "claimed_by", "claimed_at", "station"),
        )
    return handoff


def handoff_resend(*, handoff: Handoff, by: User) -> Handoff:
    """The clinician sends a handoff returned to them back to the queue, to be claimed and identified afresh."""
    require(by, "backoffice.cancel_handoff", "send patients back to the queue")
    with transaction.atomic():
        lock(handoff, related=("patient", "ordering_clinician"))
        check_resend(handoff, by)
        handoff.hand_back_reason = ""
        # Sent back to the queue, the patient is here again (their PATIENT_LEFT event stays in the history).
        handoff.patient_left_at = None
        move(
            handoff,
            table=HANDOFF,
            to=HandoffStatus.WAITING,
            by=by,
            action=Action.RESENT,
            fields=("hand_back_reason", "patient_left_at"),
        )
    return handoff


def _free_station(handoff: Handoff, *, by: User) -> Station | None:
    """Send the station the patient leaves to turnover."""
    if handoff.station_id is None:
        return None
    station = lock(Station(pk=handoff.station_id))
    if station.state == StationState.OCCUPIED:
        # No occupied → ready edge: a room a patient sat in is always checked before the next one.
        move(
            station,
            table=STATION,
            to=StationState.NEEDS_TURNOVER,
            by=by,
            action=StationEvent.Action.VACATED,
            extra={"patient_id": handoff.patient_id},
        )
    return station


def station_turnover(*, station: Station, by: User, note: str = "Cleaned and restocked") -> Station:
    """Record that a station was cleaned and restocked; it is ready again."""
    require(by, "backoffice.manage_station", "turn over stations")
    with transaction.atomic():
        lock(station)
        move(station, table=STATION, to=StationState.READY, by=by, action=StationEvent.Action.TURNED_OVER, note=note)
    return station


SYSTEM_USERNAME = "system"


def system_user() -> User:
    """The actor of events the back office writes by itself (the overdue check).

    Inactive with an unusable password: nobody can sign in as it, and it holds no role. Event rows
    need an actor (PROTECT, not null), so it is created on first use and never deleted.
    """
    user, created = User.objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"first_name": "System", "is_active": False}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def handoffs_flag_overdue(*, now: datetime | None = None) -> int:
    """Flag waiting handoffs past their threshold and unflag the rest; return how many were newly flagged.

    Overdue means status "waiting" (nobody has claimed the patient) for at least
    QUEUE_OVERDUE_MINUTES_STAT (STAT) or QUEUE_OVERDUE_MINUTES_ROUTINE (routine) since the handoff was
    created. A claimed handoff is not overdue: it has an owner, who is fetching the patient. A
    released handoff keeps its created_at, so it is flagged again on the next run if it is past.

    overdue_since is set to when the threshold passed (created_at + threshold), and each newly
    flagged handoff gets a "flagged_overdue" event by the system user. Rows are taken with
    FOR UPDATE SKIP LOCKED, so any number of workers can run this at once without flagging a handoff
    twice, and none waits behind a member of staff who is claiming a patient (that row is skipped;
    the next run sees it). The version is not bumped: flagging is not an edit by anyone.
    """
    now = now or timezone.now()
    routine_cutoff = now - timedelta(minutes=settings.QUEUE_OVERDUE_MINUTES_ROUTINE)
    stat_cutoff = now - timedelta(minutes=settings.QUEUE_OVERDUE_MINUTES_STAT)
    past = models.Q(priority=Priority.STAT, created_at__lte=stat_cutoff) | (
        ~models.Q(priority=Priority.STAT) & models.Q(created_at__lte=routine_cutoff)
    )
    waiting_past = models.Q(status=HandoffStatus.WAITING) & past
    with transaction.atomic():
        stale = list(
            Handoff.objects.select_for_update(skip_locked=True)
            .filter(overdue_since__isnull=False)
            .exclude(waiting_past)
            .values_list("pk", flat=True)
        )
        if stale:
            Handoff.objects.filter(pk__in=stale).update(overdue_since=None)
        due = list(
            Handoff.objects.select_for_update(skip_locked=True)
            .filter(waiting_past, overdue_since__isnull=True)
            .order_by()
        )
        if not due:
            return 0
        for handoff in due:
            handoff.overdue_since = handoff.created_at + timedelta(minutes=handoff.overdue_minutes)
        # Not an edit by anyone: the version stays, so nobody's open form turns stale.
        Handoff.objects.bulk_update(due, ["overdue_since"])
        record_all(
            due,
            by=system_user(),
            action=Action.FLAGGED_OVERDUE,
            at=now,
            note=lambda h: f"Waiting {h.waiting_minutes(now)} min; the limit is {h.overdue_minutes} min.",
        )
    return len(due)
