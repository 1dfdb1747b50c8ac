"""Every change of a specimen: labelling at the bedside, the positive-ID check, custody, rejection.

Each function locks what it changes, checks the actor's permission, the patient's state and the
SPECIMEN table, moves the status through backoffice.transitions and appends the event, in one
transaction. The apps whose orders a specimen serves hear of it through specimens.hooks. Views,
admin, commands and tests call these; nothing else assigns a specimen's status or custody.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from backoffice.models import Handoff, HandoffEvent, User
from backoffice.services import handoff_start, require_identity_verified, require_works_handoff
from backoffice.transitions import lock, move, record, record_all, require
from backoffice.workflow import HandoffStatus, TransitionNotAllowed
from specimens import hooks
from specimens.accession import next_accession, normalise
from specimens.models import Container, LabelPrint, LabelPrinter, RejectionReason, Specimen, SpecimenEvent, SpecimenType
from specimens.workflow import (
    BODY_SITES_BY_KEY,
    RECEIVING_LOCATIONS,
    SPECIMEN,
    BodySite,
    FailedDrawReason,
    Location,
    SpecimenStatus,
)

Action = SpecimenEvent.Action
S = SpecimenStatus

# A draw happens at the bedside around the labelling; an earlier "actual draw time" is a typo.
EARLIEST_DRAW_BEFORE_LABEL = timedelta(hours=2)


class LabelOfAnotherPatient(TransitionNotAllowed):
    """The scanned label belongs to another patient's specimen: the tube must not be used."""


class WristbandMismatch(TransitionNotAllowed):
    """The wristband scanned at the bedside is not the patient's whose label is on the tube."""


@dataclass(frozen=True)
class Draw:
    """One container to fill for one patient: what goes in it and the tests it serves."""

    specimen_type: SpecimenType
    container: Container
    tests_label: str  # the short names of the tests, comma-separated ("CBC, HbA1c"), for the label
    recollection_of: Specimen | None = None  # the rejected specimen this one replaces


# --- Guards ------------------------------------------------------------------------------------


def check_start_collection(handoff: Handoff, by: User) -> None:
    """Labels are printed only at the bedside, for a patient whose identity was just verified."""
    require(by, "specimens.collect_specimen", "collect specimens")
    require_works_handoff(handoff, by)
    require_identity_verified(handoff)
    if handoff.station_id is None:
        raise TransitionNotAllowed("Bring the patient to a station before collecting.")


def check_confirm(specimen: Specimen, by: User) -> None:
    require(by, "specimens.collect_specimen", "collect specimens")
    require_works_handoff(specimen.handoff, by)
    SPECIMEN.check(specimen.status, S.COLLECTED)


def check_not_collected(specimen: Specimen, by: User) -> None:
    require(by, "specimens.collect_specimen", "collect specimens")
    require_works_handoff(specimen.handoff, by)
    SPECIMEN.check(specimen.status, S.NOT_COLLECTED)


def check_hand_over(specimen: Specimen, by: User) -> None:
    require(by, "specimens.collect_specimen", "hand specimens over")
    SPECIMEN.check(specimen.status, S.IN_TRANSIT)


def check_receive(specimen: Specimen, by: User) -> None:
    require(by, "specimens.receive_specimen", "receive specimens")
    if specimen.received_at is not None:
        raise TransitionNotAllowed(
            f"{specimen.accession} was received by {specimen.received_by} at "
            f"{timezone.localtime(specimen.received_at):%H:%M}; a receipt is recorded once."
        )
    SPECIMEN.check(specimen.status, S.RECEIVED)


def check_reject(specimen: Specimen, by: User) -> None:
    require(by, "specimens.reject_specimen", "reject specimens")
    SPECIMEN.check(specimen.status, S.REJECTED)


def check_start_testing(specimen: Specimen, by: User) -> None:
    """Testing happens at the in-house bench; a stored specimen comes back to it for an add-on or a repeat."""
    require(by, "specimens.receive_specimen", "test specimens")
    if specimen.location not in (Location.IN_HOUSE_BENCH, Location.STORAGE):
        raise TransitionNotAllowed(
            f"{specimen.accession} is at the {Location(specimen.location).label.lower()}; "
            "it is tested at the in-house bench."
        )
    SPECIMEN.check(specimen.status, S.IN_TESTING)


def check_testing_done(specimen: Specimen, by: User) -> None:
    """Done by hand only once nothing it was collected for still waits for a result (the apps above say)."""
    require(by, "specimens.receive_specimen", "test specimens")
    SPECIMEN.check(specimen.status, S.DONE)
    why = hooks.specimen_testing_pending(specimen)
    if why:
        raise TransitionNotAllowed(why)


def check_store(specimen: Specimen, by: User) -> None:
    require(by, "specimens.store_specimen", "store specimens")
    SPECIMEN.check(specimen.status, S.STORED)


def check_dispose(specimen: Specimen, by: User) -> None:
    require(by, "specimens.store_specimen", "dispose of specimens")
    SPECIMEN.check(specimen.status, S.DISPOSED)


def check_ship(specimen: Specimen, by: User) -> None:
    """A send-out specimen leaves with the courier from the send-out desk, once received there."""
    require(by, "specimens.receive_specimen", "ship specimens")
    SPECIMEN.check(specimen.status, S.SHIPPED)
    if specimen.location != Location.SEND_OUT_DESK:
        raise TransitionNotAllowed(
            f"{specimen.accession} is at the {Location(specimen.location).label.lower()}; "
            "it is shipped from the send-out desk."
        )


def check_reprint(specimen: Specimen, by: User) -> None:
    """Who may print a specimen's label again: its collectors, and the bench that relabels a tube."""
    if not (by.has_perm("specimens.collect_specimen") or by.has_perm("specimens.receive_specimen")):
        require(by, "specimens.collect_specimen", "print specimen labels")
    if specimen.status in (S.DISPOSED, S.NOT_COLLECTED):
        raise TransitionNotAllowed(f"This specimen is {SPECIMEN.name(specimen.status)}: it needs no label.")


def check_print(specimen: Specimen, by: User, *, reason: str) -> None:
    """A label is printed first at the bedside; every print after that says why."""
    check_reprint(specimen, by)
    if not reason.strip() and specimen.label_prints.exists():
        raise TransitionNotAllowed(f"Say why {specimen.accession}'s label is printed again.")


# --- Collecting at the bedside -----------------------------------------------------------------


def specimens_start_collection(*, handoff: Handoff, draws: Sequence[Draw], by: User) -> list[Specimen]:
    """Give each container to fill an accession number and a specimen, labelled at the bedside.

    Starting to collect starts the handoff's work, as starting a procedure does. The labels are
    printed next (specimens_print_labels); none can be printed before this.
    """
    if not draws:
        raise TransitionNotAllowed("Nothing is waiting to be collected for this patient.")
    require(by, "specimens.collect_specimen", "collect specimens")
    with transaction.atomic():
        lock(handoff, related=("patient", "station"))
        check_start_collection(handoff, by)
        now = timezone.now()
        specimens = [
            Specimen(
                accession=next_accession(),
                handoff=handoff,
                patient_id=handoff.patient_id,
                specimen_type=draw.specimen_type,
                container=draw.container,
                collection_method=draw.specimen_type.collection_method,
                tests_label=draw.tests_label[:120],
                recollection_of=draw.recollection_of,
                labelled_at=now,
                labelled_by=by,
                status_changed_at=now,
            )
            for draw in draws
        ]
        for specimen in specimens:
            specimen.full_clean(exclude=["accession"])
        Specimen.objects.bulk_create(specimens)
        record_all(
            specimens,
            by=by,
            action=Action.LABELLED,
            created=True,
            note=lambda s: (
                f"{s.container} for {s.tests_label} at {handoff.station}"
                + (f", recollecting {s.recollection_of.accession}" if s.recollection_of else "")
            ),
        )
        if handoff.status == HandoffStatus.IDENTITY_VERIFIED:
            handoff_start(handoff=handoff, by=by)
    return specimens


def specimen_confirm(
    *,
    handoff: Handoff,
    scanned_label: str,
    scanned_wristband: str,
    by: User,
    method: str = "scanned",
    collected_at: datetime | None = None,
    volume_ml: Decimal | None = None,
    body_site: str = "",
) -> Specimen:
    """The bedside check: the tube's label and the patient's wristband, read together, then collected.

    A label of another patient, or a wristband that isn't this patient's, is refused and recorded
    (the attempt stays on record) before LabelOfAnotherPatient / WristbandMismatch is raised.
    """
    require(by, "specimens.collect_specimen", "collect specimens")
    if method not in ("scanned", "typed"):
        raise TransitionNotAllowed("Say whether the label and wristband were scanned or typed.")
    accession, wristband = normalise(scanned_label), normalise(scanned_wristband)
    if not accession or not wristband:
        raise TransitionNotAllowed("Scan the tube's label and the patient's wristband.")
    now = timezone.now()
    failure: TransitionNotAllowed | None = None
    with transaction.atomic():
        lock(handoff, related=("patient",))
        require_works_handoff(handoff, by)
        specimen = Specimen.objects.filter(accession=accession).select_related("patient").first()
        if specimen is None:
            raise TransitionNotAllowed(f"No specimen has the label {accession}. Scan the label on the tube.")
        if specimen.handoff_id != handoff.pk:
            whose = "another patient" if specimen.patient_id != handoff.patient_id else "another visit of this patient"
            failure = LabelOfAnotherPatient(
                f"STOP: label {accession} belongs to {whose}. Don't use this tube; label a new one for this patient."
            )
            record(
                handoff,
                by=by,
                action=HandoffEvent.Action.IDENTITY_MISMATCH,
                note=f"Specimen label {accession} of {whose} scanned at the bedside; refused",
            )
        else:
            lock(specimen, related=("patient", "handoff", "container"))
            check_confirm(specimen, by)
            if wristband != specimen.patient.mrn.upper():
                failure = WristbandMismatch(
                    f"STOP: the wristband {wristband} is not {specimen.patient.full_name}'s ({specimen.patient.mrn}). "
                    "Check the patient and the tube before drawing."
                )
                record(
                    specimen,
                    by=by,
                    action=Action.ID_MISMATCH,
                    note=f"Wristband {wristband} scanned with label {accession}",
                )
            else:
                drawn = collected_at or now
                if drawn > now:
                    raise TransitionNotAllowed("The collection time can't be in the future.")
                if drawn < specimen.labelled_at - EARLIEST_DRAW_BEFORE_LABEL:
                    raise TransitionNotAllowed("The collection time is long before the label was printed; check it.")
                if volume_ml is not None and volume_ml < specimen.container.min_volume_ml:
                    raise TransitionNotAllowed(
                        f"{volume_ml} mL is below the {specimen.container.min_volume_ml} mL the "
                        f"{specimen.container} needs; draw again or record the draw as not collected."
                    )
                specimen.verified_at, specimen.verified_by, specimen.verify_method = now, by, method
                record(specimen, by=by, action=Action.VERIFIED, note=f"Label and wristband {method}")
                specimen.collected_at, specimen.collected_by = drawn, by
                specimen.volume_ml = volume_ml
                site = _body_site(body_site, specimen)
                specimen.body_site, specimen.body_site_snomed = (site.label, site.snomed_code) if site else ("", "")
                move(
                    specimen,
                    table=SPECIMEN,
                    to=S.COLLECTED,
                    by=by,
                    action=Action.COLLECTED,
                    note=f"Drawn at {timezone.localtime(drawn):%H:%M}",
                    fields=(
                        "verified_at",
                        "verified_by",
                        "verify_method",
                        "collected_at",
                        "collected_by",
                        "volume_ml",
                        "body_site",
                        "body_site_snomed",
                    ),
                )
                hooks.specimen_collected(specimen, by)
    if failure is not None:
        raise failure
    return specimen


def _body_site(key: str, specimen: Specimen) -> BodySite | None:
    """The coded site the MA chose, if any; one that doesn't fit how the specimen is taken is refused."""
    if not key:
        return None
    site = BODY_SITES_BY_KEY.get(key)
    if site is None:
        raise TransitionNotAllowed("Choose the site from the list.")
    if specimen.collection_method not in site.methods:
        raise TransitionNotAllowed(
            f"{site.label} is not where a {specimen.get_collection_method_display().lower()} is taken; "
            "choose another site."
        )
    return site


def specimen_not_collected(*, specimen: Specimen, by: User, reason: str, note: str = "") -> Specimen:
    """Record a failed draw; what the specimen was for still needs collecting (or cancelling)."""
    require(by, "specimens.collect_specimen", "collect specimens")
    if reason not in FailedDrawReason.values:
        raise TransitionNotAllowed("Choose why the specimen couldn't be collected.")
    note = note.strip()
    if reason == FailedDrawReason.OTHER and not note:
        raise TransitionNotAllowed("Say what happened.")
    with transaction.atomic():
        lock(specimen, related=("handoff",))
        check_not_collected(specimen, by)
        specimen.failed_draw_reason, specimen.failed_draw_note = reason, note[:300]
        text = FailedDrawReason(reason).label + (f": {note}" if note else "")
        move(
            specimen,
            table=SPECIMEN,
            to=S.NOT_COLLECTED,
            by=by,
            action=Action.NOT_COLLECTED,
            note=text,
            fields=("failed_draw_reason", "failed_draw_note"),
        )
        hooks.specimen_not_collected(specimen, by)
    return specimen


def specimens_close_for_cancel(handoff: Handoff, by: User, reason: str) -> None:
    """The handoff is being cancelled (handoff_cancel checked who may, and holds its lock): each tube
    labelled but not drawn is recorded as not collected, and the apps it served hear of it (lab then
    cancels the tests), in that transaction. Drawn specimens keep their custody: the lab disposes of
    them once nothing is to be tested on them."""
    labelled = list(
        Specimen.objects.select_for_update(of=("self",), no_key=True)
        .filter(handoff=handoff, status=S.LABELLED)
        .order_by("id")
    )
    note = f"Handoff cancelled: {reason}"[:300]
    for specimen in labelled:
        specimen.failed_draw_reason, specimen.failed_draw_note = FailedDrawReason.OTHER, note
        move(
            specimen,
            table=SPECIMEN,
            to=S.NOT_COLLECTED,
            by=by,
            action=Action.NOT_COLLECTED,
            note=note,
            fields=("failed_draw_reason", "failed_draw_note"),
        )
        hooks.specimen_not_collected(specimen, by)


# --- Custody -----------------------------------------------------------------------------------


def _move_to(
    specimen: Specimen, *, to: str, where: str, by: User, action: str, note: str = "", fields: Sequence[str] = ()
) -> None:
    """A status move that is also a hand-over: the event says from where to where."""
    locations = {"from_location": specimen.location, "to_location": where}
    specimen.location = where
    move(
        specimen, table=SPECIMEN, to=to, by=by, action=action, note=note, fields=("location", *fields), extra=locations
    )


def specimen_hand_over(*, specimen: Specimen, to: str, by: User) -> Specimen:
    """Send a collected specimen from the bedside to the in-house bench or the send-out desk."""
    require(by, "specimens.collect_specimen", "hand specimens over")
    if to not in RECEIVING_LOCATIONS:
        raise TransitionNotAllowed("Hand the specimen to the in-house bench or the send-out desk.")
    with transaction.atomic():
        lock(specimen)
        check_hand_over(specimen, by)
        _move_to(specimen, to=S.IN_TRANSIT, where=to, by=by, action=Action.HANDED_OVER, note=f"To {Location(to).label}")
    return specimen


def specimen_receive(
    *,
    specimen: Specimen,
    at: str,
    by: User,
    acceptable: bool = True,
    reason: RejectionReason | None = None,
    note: str = "",
) -> Specimen:
    """Receive a specimen at the bench or the send-out desk by scanning it; the receipt time is now.

    The receipt (who, when, condition) is written once and never edited (CLIA 493.1242(b)). A specimen
    received in unacceptable condition is rejected in the same step, with its reason.
    """
    require(by, "specimens.receive_specimen", "receive specimens")
    if at not in RECEIVING_LOCATIONS:
        raise TransitionNotAllowed("Specimens are received at the in-house bench or the send-out desk.")
    if not acceptable and reason is None:
        raise TransitionNotAllowed("Give the reason it can't be accepted.")
    with transaction.atomic():
        # The handoff first, then the specimen, as everywhere: a rejection here records on the handoff.
        lock(Handoff(pk=specimen.handoff_id))
        lock(specimen)
        check_receive(specimen, by)
        specimen.received_at, specimen.received_by, specimen.received_acceptable = timezone.now(), by, acceptable
        _move_to(
            specimen,
            to=S.RECEIVED,
            where=at,
            by=by,
            action=Action.RECEIVED,
            note="Condition acceptable" if acceptable else "Condition not acceptable",
            fields=("received_at", "received_by", "received_acceptable"),
        )
        if not acceptable:
            assert reason is not None
            _reject(specimen, reason=reason, note=note, by=by)
    return specimen


def specimen_reject(*, specimen: Specimen, reason: RejectionReason, by: User, note: str = "") -> Specimen:
    """Reject a specimen with its coded reason: it is kept on record, and what it was for is collected again."""
    require(by, "specimens.reject_specimen", "reject specimens")
    if not reason.is_active:
        raise TransitionNotAllowed(f"{reason} is no longer used; choose another reason.")
    with transaction.atomic():
        lock(Handoff(pk=specimen.handoff_id))  # the handoff first, then the specimen, as everywhere
        lock(specimen)
        _reject(specimen, reason=reason, note=note, by=by)
    return specimen


def _reject(specimen: Specimen, *, reason: RejectionReason, note: str, by: User) -> None:
    check_reject(specimen, by)
    note = note.strip()
    specimen.rejection_reason, specimen.rejection_note = reason, note[:300]
    specimen.rejected_at, specimen.rejected_by = timezone.now(), by
    move(
        specimen,
        table=SPECIMEN,
        to=S.REJECTED,
        by=by,
        action=Action.REJECTED,
        note=f"{reason}" + (f": {note}" if note else ""),
        fields=("rejection_reason", "rejection_note", "rejected_at", "rejected_by"),
    )
    hooks.specimen_rejected(specimen, by)


# --- At the bench, in storage, disposed of ---------------------------------------------------------


def specimen_start_testing(*, specimen: Specimen, by: User) -> Specimen:
    """The bench starts on a received specimen (or one brought back from storage); its tests are in progress."""
    with transaction.atomic():
        lock(specimen)
        check_start_testing(specimen, by)
        note = f"Taken from storage ({specimen.storage_place})" if specimen.status == S.STORED else ""
        _move_to(specimen, to=S.IN_TESTING, where=Location.IN_HOUSE_BENCH, by=by, action=Action.TESTING, note=note)
        hooks.specimen_testing_started(specimen, by)
    return specimen


def specimen_testing_done(*, specimen: Specimen, by: User) -> Specimen:
    """Every test the bench runs on it is done; it waits to be stored or disposed of."""
    with transaction.atomic():
        lock(specimen)
        check_testing_done(specimen, by)
        move(specimen, table=SPECIMEN, to=S.DONE, by=by, action=Action.DONE)
    return specimen


def specimen_store(*, specimen: Specimen, place: str, by: User) -> Specimen:
    """Keep a specimen for add-on or repeat testing, in a named place (e.g. "Fridge 2, rack B")."""
    place = " ".join(place.split())
    if not place:
        raise TransitionNotAllowed('Say where it is kept, e.g. "Fridge 2, rack B".')
    with transaction.atomic():
        lock(specimen, related=("container",))
        check_store(specimen, by)
        specimen.storage_place, specimen.stored_at = place[:80], timezone.now()
        _move_to(
            specimen,
            to=S.STORED,
            where=Location.STORAGE,
            by=by,
            action=Action.STORED,
            note=f"{specimen.storage_place} ({specimen.container.get_handling_display().lower()})",
            fields=("storage_place", "stored_at"),
        )
    return specimen


def specimen_dispose(*, specimen: Specimen, by: User, note: str = "") -> Specimen:
    """Record a specimen's disposal; the row, its events and any rejection stay on record (CLIA 493.1283)."""
    note = " ".join(note.split())
    with transaction.atomic():
        lock(specimen)
        check_dispose(specimen, by)
        specimen.disposed_at, specimen.disposed_by, specimen.disposal_note = timezone.now(), by, note[:200]
        _move_to(
            specimen,
            to=S.DISPOSED,
            where=Location.DISPOSED,
            by=by,
            action=Action.DISPOSED,
            note=note,
            fields=("disposed_at", "disposed_by", "disposal_note"),
        )
    return specimen


def specimen_ship(*, specimen: Specimen, by: User, note: str) -> Specimen:
    """Hand a specimen received at the send-out desk to the courier: the reference lab has it now.

    Inside the caller's transaction when it ships a whole shipment (``note`` names the lab and the
    courier); the apps whose orders it serves move those orders themselves.
    """
    with transaction.atomic():
        lock(specimen)
        check_ship(specimen, by)
        _move_to(specimen, to=S.SHIPPED, where=Location.REFERENCE_LAB, by=by, action=Action.SHIPPED, note=note)
    return specimen


# --- Labels ------------------------------------------------------------------------------------


def specimen_labels_printed(
    *, specimens: Sequence[Specimen], by: User, output: str, printer: LabelPrinter | None = None, reason: str = ""
) -> list[LabelPrint]:
    """Record that these specimens' labels were printed; every print after the first needs a reason."""
    reason = reason.strip()
    with transaction.atomic():
        prints = []
        for specimen in specimens:
            lock(specimen)
            check_print(specimen, by, reason=reason)
            first = not specimen.label_prints.exists()
            prints.append(
                LabelPrint(
                    specimen=specimen,
                    printed_by=by,
                    reason="" if first else reason[:200],
                    printer=printer,
                    output=output,
                )
            )
            record(
                specimen,
                by=by,
                action=Action.LABEL_PRINTED if first else Action.LABEL_REPRINTED,
                note=(f"On {printer}" if printer else "PDF") + ("" if first else f": {reason}"),
            )
        return list(LabelPrint.objects.bulk_create(prints))
