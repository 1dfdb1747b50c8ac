"""Every change of a handoff's or a station's state, one function each.

Each function locks the row, checks the actor's permission and the workflow table,
writes the new state with update_fields and appends an event row, in one transaction.
Views, admin actions, commands and tests all call these; nothing else assigns a status.
"""

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from backoffice import hooks
from backoffice.models import ExamRoom, Handoff, HandoffEvent, Patient, Station, StationEvent, User
from backoffice.roles import ROLE_CLINICIAN
from backoffice.workflow import (
    HANDOFF_MOVES,
    IDENTIFIED_STATUSES,
    STATION_MOVES,
    HandoffStatus,
    Priority,
    StationState,
    TransitionNotAllowed,
    check_move,
)

Action = HandoffEvent.Action


class PermissionRefused(TransitionNotAllowed):
    """The actor's role does not allow this action."""


class AlreadyClaimed(TransitionNotAllowed):
    """Someone else won the race to claim this handoff."""


class IdentityMismatch(TransitionNotAllowed):
    """The identifiers given do not match the patient; the attempt is recorded."""


class IdentityNotVerified(TransitionNotAllowed):
    """Work for the patient was attempted before their identity was confirmed."""


@dataclass(frozen=True)
class Needs:
    interpreter_needed: bool = False
    interpreter_language: str = ""
    companion: str = ""
    aide_needed: bool = False
    mobility: str = Handoff.Mobility.INDEPENDENT
    isolation: str = Handoff.Isolation.NONE


def _require(user: User, perm: str, doing: str) -> None:
    if not user.is_active or not user.has_perm(perm):
        raise PermissionRefused(f"Your role doesn't allow you to {doing}.")


def _lock(handoff: Handoff) -> Handoff:
    return Handoff.objects.select_for_update().get(pk=handoff.pk)


def _event(handoff: Handoff, *, by: User, action: str, from_status: str = "", note: str = "") -> HandoffEvent:
    return HandoffEvent.objects.create(
        handoff=handoff, actor=by, action=action, from_status=from_status, to_status=handoff.status, note=note[:300]
    )


def _move(
    handoff: Handoff, target: str, *, by: User, action: str, note: str = "", fields: tuple[str, ...] = ()
) -> None:
    current = handoff.status
    check_move(HANDOFF_MOVES, current, target, label="handoff")
    handoff.status = target
    handoff.version += 1
    handoff.save(update_fields=["status", "version", *fields])
    _event(handoff, by=by, action=action, from_status=current, note=note)


def _copy_back(target: Handoff, source: Handoff) -> Handoff:
    """Refresh the caller's instance so it sees what was written under the lock."""
    target.__dict__.update({k: v for k, v in source.__dict__.items() if not k.startswith("_")})
    # __dict__.update bypasses the FK descriptors, so a relation the caller had loaded (claimed_by,
    # station) would still answer with the old row; drop each cached relation whose id changed.
    for field in target._meta.concrete_fields:
        if isinstance(field, models.ForeignKey) and field.is_cached(target):
            cached = field.get_cached_value(target)
            if getattr(cached, "pk", None) != getattr(target, field.attname):
                field.delete_cached_value(target)
    return target


def handoff_create(
    *,
    patient: Patient,
    ordering_clinician: User,
    exam_room: ExamRoom,
    priority: int = Priority.ROUTINE,
    clinical_note: str = "",
    needs: Needs = Needs(),
    by: User,
) -> Handoff:
    """Hand a patient off from the exam room to the back-office queue."""
    _require(by, "backoffice.add_handoff", "hand patients off")
    if not ordering_clinician.groups.filter(name=ROLE_CLINICIAN).exists():
        raise TransitionNotAllowed(f"{ordering_clinician} is not a clinician and can't order for a patient.")
    language = needs.interpreter_language.strip()
    if needs.interpreter_needed and not language:
        language = patient.preferred_language
    handoff = Handoff(
        patient=patient,
        ordering_clinician=ordering_clinician,
        exam_room=exam_room,
        priority=priority,
        clinical_note=clinical_note.strip(),
        interpreter_needed=needs.interpreter_needed,
        interpreter_language=language if needs.interpreter_needed else "",
        companion=needs.companion.strip(),
        aide_needed=needs.aide_needed,
        mobility=needs.mobility,
        isolation=needs.isolation,
        created_by=by,
    )
    handoff.full_clean()
    with transaction.atomic():
        handoff.save()
        note = "" if by.pk == ordering_clinician.pk else f"On behalf of {ordering_clinician}"
        _event(handoff, by=by, action=Action.CREATED, note=note)
    return handoff


def handoff_claim(*, handoff: Handoff, by: User) -> Handoff:
    """Take a waiting handoff; exactly one of several racing claimers wins."""
    _require(by, "backoffice.claim_handoff", "claim patients")
    with transaction.atomic():
        # No select_related here: a loser that waited on the lock gets the winner's row re-checked by
        # Postgres, but the joined claimer stays the NULL it saw first. Load the claimer after locking.
        locked = _lock(handoff)
        if locked.status != HandoffStatus.WAITING:
            if locked.claimed_by_id == by.pk and locked.is_open:
                return _copy_back(handoff, locked)
            if locked.claimed_by is not None and locked.is_open:
                raise AlreadyClaimed(
                    f"Already claimed by {locked.claimed_by} at {timezone.localtime(locked.claimed_at):%H:%M}."
                )
        locked.claimed_by = by
        locked.claimed_at = timezone.now()
        _move(locked, HandoffStatus.CLAIMED, by=by, action=Action.CLAIMED, fields=("claimed_by", "claimed_at"))
    return _copy_back(handoff, locked)


def _require_owner(handoff: Handoff, by: User) -> None:
    """Only the claimer works a handoff; a supervisor may step in."""
    if handoff.claimed_by_id is None:
        # Nobody to name: without this the refusal below read "claimed by None".
        raise TransitionNotAllowed(
            "Claim the patient first."
            if handoff.is_open
            else f"This handoff is {handoff.get_status_display().lower()}."
        )
    if handoff.claimed_by_id != by.pk and not by.has_perm("backoffice.view_board"):
        raise PermissionRefused(
            f"This patient is claimed by {handoff.claimed_by}; only they or a supervisor can do that."
        )


def handoff_release(*, handoff: Handoff, by: User, reason: str = "") -> Handoff:
    """Put a claimed handoff back on the queue (before identity was verified)."""
    _require(by, "backoffice.claim_handoff", "release patients")
    with transaction.atomic():
        locked = _lock(handoff)
        _require_owner(locked, by)
        check_move(HANDOFF_MOVES, locked.status, HandoffStatus.WAITING, label="handoff")
        station = _free_station(locked, by=by)
        locked.claimed_by = None
        locked.claimed_at = None
        locked.station = None
        _move(
            locked,
            HandoffStatus.WAITING,
            by=by,
            action=Action.RELEASED,
            note=reason or (f"Left {station}" if station else ""),
            fields=("claimed_by", "claimed_at", "station"),
        )
    return _copy_back(handoff, locked)


def handoff_assign_station(*, handoff: Handoff, station: Station, by: User) -> Handoff:
    """Bring the patient to a ready station; the previous one, if any, needs turnover."""
    _require(by, "backoffice.claim_handoff", "assign stations")
    with transaction.atomic():
        locked = _lock(handoff)
        _require_owner(locked, by)
        if not locked.is_open or locked.status == HandoffStatus.WAITING:
            raise TransitionNotAllowed("Claim the patient before assigning a station.")
        if locked.station_id == station.pk:
            return _copy_back(handoff, locked)
        new_station = Station.objects.select_for_update().get(pk=station.pk)
        if not new_station.is_active:
            raise TransitionNotAllowed(f"{new_station} is out of service.")
        if new_station.state != StationState.READY:
            raise TransitionNotAllowed(
                f"{new_station} is {new_station.get_state_display().lower()}; pick a ready station."
            )
        _free_station(locked, by=by)
        _station_move(new_station, StationState.OCCUPIED, by=by, note=f"Patient {locked.patient.mrn}")
        locked.station = new_station
        locked.version += 1
        locked.save(update_fields=["station", "version"])
        _event(locked, by=by, action=Action.STATION_ASSIGNED, from_status=locked.status, note=str(new_station))
    return _copy_back(handoff, locked)


def _normalise(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.replace(",", " ").replace("-", " ").casefold().split())


def _name_matches(patient: Patient, typed: str) -> bool:
    words = sorted(_normalise(typed).split())
    return bool(words) and words == sorted(_normalise(f"{patient.given_name} {patient.family_name}").split())


def handoff_verify_identity(
    *,
    handoff: Handoff,
    by: User,
    full_name: str = "",
    date_of_birth: date | None = None,
    scanned_mrn: str = "",
) -> Handoff:
    """Confirm the patient with two identifiers: name and date of birth, or a scanned MRN wristband.

    A mismatch is refused and recorded as an event before IdentityMismatch is raised.
    """
    _require(by, "backoffice.claim_handoff", "verify patients")
    scanned_mrn = scanned_mrn.strip()
    if scanned_mrn:
        method = "wristband"
    elif full_name.strip() and date_of_birth:
        method = "name+dob"
    else:
        raise TransitionNotAllowed("Scan the wristband, or give both the patient's full name and date of birth.")
    failure = ""
    with transaction.atomic():
        locked = Handoff.objects.select_for_update(of=("self",)).select_related("patient").get(pk=handoff.pk)
        _require_owner(locked, by)
        check_move(HANDOFF_MOVES, locked.status, HandoffStatus.IDENTITY_VERIFIED, label="handoff")
        patient = locked.patient
        if method == "wristband":
            if scanned_mrn.upper() != patient.mrn.upper():
                failure = "Scanned wristband does not match this patient's MRN."
        else:
            mismatched = []
            if not _name_matches(patient, full_name):
                mismatched.append("name")
            if date_of_birth != patient.date_of_birth:
                mismatched.append("date of birth")
            if mismatched:
                verb = "do" if len(mismatched) > 1 else "does"
                failure = f"The {' and '.join(mismatched)} given {verb} not match this patient."
        if failure:
            # Recorded, not rolled back: repeated mismatches are a safety signal for supervisors.
            _event(locked, by=by, action=Action.IDENTITY_MISMATCH, from_status=locked.status, note=failure)
        else:
            locked.identity_verified_at = timezone.now()
            locked.identity_verified_by = by
            locked.identity_method = method
            _move(
                locked,
                HandoffStatus.IDENTITY_VERIFIED,
                by=by,
                action=Action.IDENTITY_VERIFIED,
                note="Wristband scanned" if method == "wristband" else "Name and date of birth confirmed",
                fields=("identity_verified_at", "identity_verified_by", "identity_method"),
            )
    if failure:
        raise IdentityMismatch(f"{failure} Check the wristband and ask the patient again.")
    return _copy_back(handoff, locked)


def require_identity_verified(handoff: Handoff) -> None:
    """Guard for every service that does something for the patient."""
    if handoff.status not in IDENTIFIED_STATUSES:
        raise IdentityNotVerified("Verify the patient's identity with two identifiers first.")


def handoff_start(*, handoff: Handoff, by: User) -> Handoff:
    """Begin the ordered work at the station, once the patient is identified."""
    _require(by, "backoffice.claim_handoff", "start work")
    with transaction.atomic():
        locked = _lock(handoff)
        _require_owner(locked, by)
        if locked.status == HandoffStatus.IN_PROGRESS:
            return _copy_back(handoff, locked)
        require_identity_verified(locked)
        if locked.station_id is None:
            raise TransitionNotAllowed("Assign a station before starting.")
        _move(locked, HandoffStatus.IN_PROGRESS, by=by, action=Action.STARTED)
    return _copy_back(handoff, locked)


def handoff_complete(*, handoff: Handoff, by: User) -> Handoff:
    """Close a handoff whose every ordered item is done; its station needs turnover."""
    _require(by, "backoffice.claim_handoff", "complete handoffs")
    with transaction.atomic():
        locked = _lock(handoff)
        _require_owner(locked, by)
        check_move(HANDOFF_MOVES, locked.status, HandoffStatus.COMPLETED, label="handoff")
        remaining = hooks.open_item_count(locked)
        if remaining:
            raise TransitionNotAllowed(f"{remaining} ordered item(s) are still open.")
        _free_station(locked, by=by)
        locked.closed_at = timezone.now()
        _move(locked, HandoffStatus.COMPLETED, by=by, action=Action.COMPLETED, fields=("closed_at",))
    return _copy_back(handoff, locked)


def handoff_cancel(*, handoff: Handoff, by: User, reason: str) -> Handoff:
    """Cancel an open handoff with a reason; an occupied station needs turnover."""
    _require(by, "backoffice.cancel_handoff", "cancel handoffs")
    reason = reason.strip()
    if not reason:
        raise TransitionNotAllowed("Give a reason for cancelling.")
    with transaction.atomic():
        locked = _lock(handoff)
        check_move(HANDOFF_MOVES, locked.status, HandoffStatus.CANCELLED, label="handoff")
        _free_station(locked, by=by)
        locked.closed_at = timezone.now()
        locked.cancel_reason = reason[:200]
        _move(
            locked,
            HandoffStatus.CANCELLED,
            by=by,
            action=Action.CANCELLED,
            note=reason,
            fields=("closed_at", "cancel_reason"),
        )
    return _copy_back(handoff, locked)


def _free_station(handoff: Handoff, *, by: User) -> Station | None:
    """Send the station the patient leaves to turnover."""
    if handoff.station_id is None:
        return None
    station = Station.objects.select_for_update().get(pk=handoff.station_id)
    if station.state == StationState.OCCUPIED:
        # No occupied → ready edge: a room a patient sat in is always checked before the next one.
        _station_move(station, StationState.NEEDS_TURNOVER, by=by, note=f"Patient {handoff.patient.mrn} left")
    return station


def _station_move(station: Station, target: str, *, by: User, note: str = "") -> None:
    current = station.state
    check_move(STATION_MOVES, current, target, label="station")
    station.state = target
    station.state_changed_at = timezone.now()
    station.save(update_fields=["state", "state_changed_at"])
    StationEvent.objects.create(station=station, actor=by, from_state=current, to_state=target, note=note[:200])


def station_turnover(*, station: Station, by: User, note: str = "Cleaned and restocked") -> Station:
    """Record that a station was cleaned and restocked; it is ready again."""
    _require(by, "backoffice.manage_station", "turn over stations")
    with transaction.atomic():
        locked = Station.objects.select_for_update().get(pk=station.pk)
        _station_move(locked, StationState.READY, by=by, note=note)
    station.state, station.state_changed_at = locked.state, locked.state_changed_at
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
        actor = system_user()
        events = []
        for handoff in due:
            limit = handoff.overdue_minutes
            handoff.overdue_since = handoff.created_at + timedelta(minutes=limit)
            events.append(
                HandoffEvent(
                    handoff=handoff,
                    at=now,
                    actor=actor,
                    action=Action.FLAGGED_OVERDUE,
                    from_status=handoff.status,
                    to_status=handoff.status,
                    note=f"Waiting {handoff.waiting_minutes(now)} min; the limit is {limit} min.",
                )
            )
        Handoff.objects.bulk_update(due, ["overdue_since"])
        HandoffEvent.objects.bulk_create(events)
    return len(due)
