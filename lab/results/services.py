"""Patient results at the in-house bench: entry, correction, second-person verification, release, amendment.

Each function locks what it changes (the specimen first, then its orders, then their results, as
specimens' and lab's own services do), checks the actor and the RESULT table, and appends the
events, in one transaction (backoffice.transitions). Flags are computed here from the patient's sex
and age in days at collection (lab.results.flags), never typed. A released result is never edited:
a correction is a new result that ``amends`` it; the original is superseded once that is released
(CLIA 493.1291(k)), and the clinician sees the corrected one as new in their inbox.
"""

from collections.abc import Mapping, Sequence

from django.db import transaction
from django.utils import timezone

from backoffice import bulk
from backoffice.models import User
from backoffice.text import strip_bidi_rows
from backoffice.transitions import edit, hold, lock, move, record, record_all, require
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.criticals.services import critical_call_open
from lab.models import Analyte, KitLot, Result, ResultEvent, TestDefinition, TestOrder, TestOrderEvent
from lab.qc.lockout import qc_block
from lab.results.flags import Interpreted, ResultValueError, age_in_days, interpret
from lab.selectors import pending_bench_orders
from lab.workflow import RESULT, TEST_ORDER, ResultStatus, TestOrderStatus
from specimens.models import Specimen
from specimens.services import specimen_start_testing, specimen_testing_done
from specimens.workflow import Location, SpecimenStatus

Action = ResultEvent.Action
R = ResultStatus
O = TestOrderStatus  # noqa: E741 - the order's statuses, as S is the specimen's elsewhere

# A specimen tested at the bench: received there, or already in testing.
BENCH_SPECIMEN_STATUSES: tuple[str, ...] = (SpecimenStatus.RECEIVED, SpecimenStatus.IN_TESTING)
ENTERABLE_ORDER_STATUSES: tuple[str, ...] = (O.COLLECTED, O.IN_PROGRESS)
UNRELEASED: tuple[str, ...] = (R.ENTERED, R.VERIFIED)


class QCLockout(TransitionNotAllowed):
    """The kit lot may not be used for patient testing now: the message says why and what to run."""


class InvalidValues(TransitionNotAllowed):
    """Some typed values can't be results of their analytes: ``errors`` maps analyte id to what is wrong."""

    def __init__(self, errors: Mapping[int, str]) -> None:
        self.errors = dict(errors)
        super().__init__(" ".join(self.errors.values()))


# --- Guards ------------------------------------------------------------------------------------


def check_enter(order: TestOrder, by: User) -> None:
    """A panel is entered once, for an in-house test whose specimen is at the bench, received or in testing."""
    require(by, "lab.enter_result", "enter results")
    test = order.test
    if test.performed != TestDefinition.Performed.IN_HOUSE:
        raise TransitionNotAllowed(f"{test.short_name} is sent out; its results come back from the reference lab.")
    if order.status not in ENTERABLE_ORDER_STATUSES:
        raise TransitionNotAllowed(f"{test.short_name} is {TEST_ORDER.name(order.status)}; no result is entered now.")
    specimen = order.specimen
    if specimen is None:
        raise TransitionNotAllowed(f"{test.short_name} has no specimen yet.")
    if specimen.status not in BENCH_SPECIMEN_STATUSES or specimen.location != Location.IN_HOUSE_BENCH:
        raise TransitionNotAllowed(
            f"{specimen.accession} is {specimen.get_status_display().lower()} "
            f"({Location(specimen.location).label.lower()}); results are entered once the bench has received it."
        )
    if order.results.exists():
        raise TransitionNotAllowed(f"{test.short_name} is already entered; correct or amend its results instead.")


def check_lot(test: TestDefinition, kit_lot: KitLot) -> None:
    """Fail-closed QC lockout: an expired, withdrawn or QC-less lot is refused, saying what to run."""
    why = qc_block(test, kit_lot)
    if why is not None:
        raise QCLockout(why)


def check_correct(result: Result, by: User) -> None:
    """Before release, the value is corrected in place (its history kept); after, it is amended.

    A result held by a failed QC is corrected only once the lot's QC passes again: the correction is
    the repeat that lets it go on to verification.
    """
    require(by, "lab.enter_result", "correct results")
    if result.status not in UNRELEASED:
        raise TransitionNotAllowed(
            f"This result is {RESULT.name(result.status)}; a released result is amended with a reason, not edited."
        )
    if result.needs_review:
        _check_requalified(result, "Held by a failed QC")


def _check_requalified(result: Result, why_held: str) -> None:
    """A result a failed QC put up for review is repeated only once its lot's QC passes again."""
    assert result.kit_lot is not None, "only a result run on a kit lot is put up for review by its QC"
    block = qc_block(result.order.test, result.kit_lot)
    if block is not None:
        raise QCLockout(f"{why_held}: repeat the test once it passes. {block}")


def check_held(panel: Sequence[Result]) -> None:
    """No result of the panel that a failed QC holds back (until repeated) is verified or released."""
    held = next((r for r in panel if r.needs_review and r.status in UNRELEASED), None)
    if held is not None:
        lot = held.kit_lot.lot_number if held.kit_lot else "its lot"
        raise QCLockout(
            f"{held.analyte.short_name} is held: a control failed on lot {lot} after it was run. "
            "Repeat it once the lot's QC passes and correct the value; then it can be released."
        )


def _panel(result: Result) -> list[Result]:
    """The order's results waiting for release with this one: a panel is verified and released as one report."""
    return [r for r in result.order.results.all() if r.status in UNRELEASED] or [result]


def check_verify(result: Result, by: User) -> None:
    """Someone other than the person who entered each result of the panel verifies it."""
    require(by, "lab.verify_result", "verify results")
    RESULT.check(result.status, R.VERIFIED)
    panel = _panel(result)
    if any(r.entered_by_id == by.pk for r in panel):
        raise PermissionRefused("You entered this result; a second person verifies it before release.")
    check_held(panel)


def check_release(result: Result, by: User) -> None:
    """Without verification, only a test whose clinic policy lets its performer release it (never a correction)."""
    require(by, "lab.enter_result", "release results")
    RESULT.check(result.status, R.RELEASED)
    test = result.order.test
    if result.amends_id is not None and result.status != R.VERIFIED:
        raise TransitionNotAllowed("A correction of a released result is verified by a second person before release.")
    if test.requires_verification and result.status != R.VERIFIED:
        raise TransitionNotAllowed(
            f"{test.short_name} needs a second person's verification before release; ask a colleague to verify it."
        )
    check_held(_panel(result))


def check_send_back(result: Result, by: User) -> None:
    """The verifier returns a result to its performer for a correction, saying why."""
    require(by, "lab.verify_result", "send results back")
    if result.status not in UNRELEASED:
        raise TransitionNotAllowed(f"This result is {RESULT.name(result.status)}; only an unreleased one goes back.")
    if result.entered_by_id == by.pk:
        raise TransitionNotAllowed("You entered this result: correct it yourself instead of sending it back.")


def check_amend(result: Result, by: User) -> None:
    """Only a released result is amended, and one correction waits at a time.

    One under review after a failed QC is amended (with the repeat's value) once the lot passes again.
    """
    require(by, "lab.enter_result", "amend results")
    if result.status != R.RELEASED:
        raise TransitionNotAllowed(
            f"This result is {RESULT.name(result.status)}; "
            + ("correct it before release." if result.status in UNRELEASED else "amend the current result.")
        )
    if Result.objects.filter(amends=result).exists():
        raise TransitionNotAllowed("A correction of this result is already waiting for verification.")
    if result.needs_review:
        _check_requalified(result, "Under review after a failed QC")


def check_close_review(result: Result, by: User) -> None:
    """A released result a failed QC put up for review is closed by a verifier once it is checked."""
    require(by, "lab.verify_result", "close a result's review")
    if result.status != R.RELEASED or not result.needs_review:
        raise TransitionNotAllowed("This result is not under review.")


# --- Reading the values -----------------------------------------------------------------------------


def interpret_for(analyte: Analyte, typed: str, *, specimen: Specimen) -> Interpreted:
    """The value and its flag for this patient's sex and age in days when the specimen was collected."""
    patient = specimen.patient
    collected = timezone.localdate(specimen.collected_at) if specimen.collected_at else timezone.localdate()
    return interpret(
        analyte,
        typed,
        sex=patient.sex,
        age_days=age_in_days(patient.date_of_birth, collected),
        ranges=analyte.ranges.all(),
    )


def _read(analyte: Analyte, typed: str, *, specimen: Specimen) -> Interpreted:
    try:
        return interpret_for(analyte, typed, specimen=specimen)
    except ResultValueError as exc:
        raise InvalidValues({analyte.pk: str(exc)}) from None


def results_preview(*, order: TestOrder, values: Mapping[int, str]) -> dict[int, Interpreted]:
    """Every analyte of the test read and flagged, without saving; InvalidValues names each one wrong."""
    assert order.specimen is not None
    read: dict[int, Interpreted] = {}
    errors: dict[int, str] = {}
    for analyte in order.test.analytes.prefetch_related("ranges"):
        try:
            read[analyte.pk] = interpret_for(analyte, values.get(analyte.pk, ""), specimen=order.specimen)
        except ResultValueError as exc:
            errors[analyte.pk] = str(exc)
    if errors:
        raise InvalidValues(errors)
    return read


def _apply(result: Result, value: Interpreted) -> list[str]:
    result.value_numeric, result.comparator, result.value_text = value.value_numeric, value.comparator, value.value_text
    result.flag, result.is_critical, result.reference_range = value.flag, value.is_critical, value.reference_range
    result.reference_text = value.reference_range.label if value.reference_range else ""
    return ["value_numeric", "comparator", "value_text", "flag", "is_critical", "reference_range", "reference_text"]


# --- Entry and correction ---------------------------------------------------------------------------


def results_enter(
    *, order: TestOrder, values: Mapping[int, str], kit_lot: KitLot, by: User, comment: str = ""
) -> list[Result]:
    """Enter one test's panel at once, on a kit lot that passes QC; nothing is written if any value is wrong.

    The specimen starts testing if it was only received; its collected tests are then in progress.
    """
    require(by, "lab.enter_result", "enter results")
    comment = " ".join(comment.split())[:300]
    with transaction.atomic():
        assert order.specimen_id is not None, "a test with no specimen is refused by check_enter"
        specimen = lock(Specimen(pk=order.specimen_id), related=("patient",))
        lock(order, related=("test",))
        order.specimen = specimen
        check_enter(order, by)
        hold(kit_lot)  # a QC run on the lot waits, so a failure can't miss these results
        kit_lot.refresh_from_db()
        check_lot(order.test, kit_lot)
        read = results_preview(order=order, values=values)
        if specimen.status == SpecimenStatus.RECEIVED:
            specimen_start_testing(specimen=specimen, by=by)
            lock(order, related=("test",))
            order.specimen = specimen
        if order.status == O.COLLECTED:
            # Added to a specimen already in testing: this test starts now too.
            move(order, table=TEST_ORDER, to=O.IN_PROGRESS, by=by, action=TestOrderEvent.Action.IN_PROGRESS)
        now = timezone.now()
        analytes = {a.pk: a for a in order.test.analytes.all()}
        results = []
        for analyte_id, value in read.items():
            result = Result(
                order=order,
                analyte=analytes[analyte_id],
                patient_id=specimen.patient_id,
                specimen=specimen,
                kit_lot=kit_lot,
                unit=analytes[analyte_id].unit,
                comment=comment,
                entered_at=now,
                entered_by=by,
                status_changed_at=now,
            )
            _apply(result, value)
            results.append(result)
        Result.objects.bulk_create(strip_bidi_rows(results))
        record_all(
            results,
            by=by,
            action=Action.ENTERED,
            created=True,
            note=lambda r: f"{r.display_value}{f' ({r.flag})' if r.flag else ''} on lot {kit_lot.lot_number}",
        )
        if order.resulted_at is None:
            # The test's first results, for its turnaround (lab.turnaround): a correction keeps this time.
            order.resulted_at = now
            order.save(update_fields=["resulted_at"])
    return results


def result_correct(*, result: Result, value: str, by: User, comment: str | None = None) -> Result:
    """Correct an unreleased value (its history kept); the flag is recomputed and verification starts over.

    Whoever types the new value is its performer: a second person verifies it.
    """
    require(by, "lab.enter_result", "correct results")
    with transaction.atomic():
        lock(Specimen(pk=result.specimen_id))
        lock(result, related=("order__test", "analyte", "specimen__patient", "kit_lot__kit"))
        check_correct(result, by)
        before = result.display_value
        fields = _apply(result, _read(result.analyte, value, specimen=result.specimen))
        if comment is not None:
            result.comment = " ".join(comment.split())[:300]
            fields.append("comment")
        result.entered_by, result.entered_at = by, timezone.now()
        result.verified_by, result.verified_at = None, None
        fields += ["entered_by", "entered_at", "verified_by", "verified_at"]
        note = f"{before} → {result.display_value}" + (f" ({result.flag})" if result.flag else "")
        if result.needs_review:
            # check_correct saw the lot's QC pass again: this value is the repeat.
            result.needs_review, result.review_reason = False, ""
            fields += ["needs_review", "review_reason"]
            note += ", repeated after QC passed"
        if result.status == R.VERIFIED:
            move(result, table=RESULT, to=R.ENTERED, by=by, action=Action.CORRECTED, note=note, fields=fields)
        else:
            edit(result, by=by, action=Action.CORRECTED, note=note, fields=fields)
    return result


def result_send_back(*, result: Result, by: User, reason: str) -> Result:
    """Return an unreleased result to its performer for a correction, with the verifier's reason."""
    reason = " ".join(reason.split())
    if not reason:
        raise TransitionNotAllowed("Say what to check, e.g. “Repeat: the strip was read late”.")
    require(by, "lab.verify_result", "send results back")
    with transaction.atomic():
        lock(result)
        check_send_back(result, by)
        if result.status == R.VERIFIED:
            result.verified_by, result.verified_at = None, None
            fields = ("verified_by", "verified_at")
            move(result, table=RESULT, to=R.ENTERED, by=by, action=Action.SENT_BACK, note=reason, fields=fields)
        else:
            record(result, by=by, action=Action.SENT_BACK, note=reason)
    return result


# --- Verification and release ---------------------------------------------------------------------


def _lock_panel(result: Result) -> tuple[Specimen, TestOrder, list[Result]]:
    specimen = lock(Specimen(pk=result.specimen_id))
    order = lock(TestOrder(pk=result.order_id), related=("test", "handoff"))
    lock(result, related=("order__test",))
    panel = list(
        Result.objects.select_for_update(no_key=True, of=("self",))
        .filter(order=order, status__in=UNRELEASED)
        .select_related("analyte", "amends")
        .order_by("analyte__position", "id")
    )
    for r in panel:
        r.order = order
    result.order = order
    return specimen, order, panel or [result]


def result_verify(*, result: Result, by: User) -> list[Result]:
    """A second person verifies the result's panel, which is released with it (see _release)."""
    require(by, "lab.verify_result", "verify results")
    with transaction.atomic():
        specimen, order, panel = _lock_panel(result)
        check_verify(result, by)
        now = timezone.now()
        for r in panel:
            r.verified_by, r.verified_at = by, now
            move(r, table=RESULT, to=R.VERIFIED, by=by, action=Action.VERIFIED, fields=("verified_by", "verified_at"))
        _release(panel, specimen=specimen, order=order, by=by)
    return panel


def result_release(*, result: Result, by: User) -> list[Result]:
    """The performer releases a waived test's panel where clinic policy lets them (no second person)."""
    require(by, "lab.enter_result", "release results")
    with transaction.atomic():
        specimen, order, panel = _lock_panel(result)
        check_release(result, by)
        _release(panel, specimen=specimen, order=order, by=by)
    return panel


def _release(panel: Sequence[Result], *, specimen: Specimen, order: TestOrder, by: User) -> None:
    """Release; an amendment supersedes its original; a critical opens its call; a test all released is resulted."""
    now = timezone.now()
    for r in panel:
        r.released_by, r.released_at = by, now
        move(r, table=RESULT, to=R.RELEASED, by=by, action=Action.RELEASED, fields=("released_by", "released_at"))
        _released(r, order=order, by=by)
    if order.status == O.IN_PROGRESS and _all_released(order):
        order.released_at = now
        order.resulted_at = order.resulted_at or now
        move(
            order,
            table=TEST_ORDER,
            to=O.RESULTED,
            by=by,
            action=TestOrderEvent.Action.RESULTED,
            note=specimen.accession,
            fields=("released_at", "resulted_at"),
        )
        if specimen.status == SpecimenStatus.IN_TESTING and not pending_bench_orders(specimen.pk).exists():
            specimen_testing_done(specimen=specimen, by=by)


def _released(result: Result, *, order: TestOrder, by: User) -> None:
    """What a release sets off, in-house or reported: an amendment supersedes its original, a critical opens its call."""
    if result.amends is not None:
        original = lock(result.amends)
        move(
            original,
            table=RESULT,
            to=R.SUPERSEDED,
            by=by,
            action=Action.SUPERSEDED,
            note=f"Corrected to {result.display_value}: {result.amend_reason}",
        )
    if result.is_critical:
        result.order = order
        critical_call_open(result=result, by=by)


def _all_released(order: TestOrder) -> bool:
    released = set(order.results.filter(status=R.RELEASED).values_list("analyte_id", flat=True))
    return set(order.test.analytes.values_list("id", flat=True)) <= released


# --- Amendment ------------------------------------------------------------------------------------


def result_amend(*, result: Result, value: str, reason: str, by: User) -> Result:
    """Correct a released result: a new result amends it, verified like any other; the original stays.

    Once the correction is released the original is superseded, and the clinician sees the new one
    unacknowledged (the inbox tells them again).
    """
    reason = " ".join(reason.split())
    if not reason:
        raise TransitionNotAllowed("Give the reason for the correction; it is printed with the amended result.")
    require(by, "lab.enter_result", "amend results")
    with transaction.atomic():
        lock(Specimen(pk=result.specimen_id))
        lock(result, related=("order__test", "analyte", "specimen__patient", "kit_lot"))
        check_amend(result, by)
        now = timezone.now()
        amended = Result(
            order=result.order,
            analyte=result.analyte,
            patient_id=result.patient_id,
            specimen=result.specimen,
            kit_lot=result.kit_lot,
            unit=result.analyte.unit,
            amends=result,
            amend_reason=reason[:300],
            entered_at=now,
            entered_by=by,
            status_changed_at=now,
        )
        _apply(amended, _read(result.analyte, value, specimen=result.specimen))
        amended.save()
        record(
            amended,
            by=by,
            action=Action.AMENDED,
            created=True,
            note=f"{result.display_value} → {amended.display_value}: {amended.amend_reason}",
        )
        record(result, by=by, action=Action.AMENDED, note=f"Correction to {amended.display_value} entered: {reason}")
    return amended


# --- Review after a failed QC ----------------------------------------------------------------------


def result_close_review(*, result: Result, by: User, note: str) -> Result:
    """The review a failed QC opened on a released result is done and the result stands, saying why.

    A result the review finds wrong is amended instead (result_amend), which supersedes it.
    """
    note = " ".join(note.split())
    if not note:
        raise TransitionNotAllowed("Say what the review found, e.g. “Repeated after QC passed: same result”.")
    require(by, "lab.verify_result", "close a result's review")
    with transaction.atomic():
        lock(result)
        check_close_review(result, by)
        result.needs_review, result.review_reason = False, ""
        edit(result, by=by, action=Action.REVIEW_CLOSED, fields=["needs_review", "review_reason"], note=note[:300])
    return result


# --- Reported by a reference lab ---------------------------------------------------------------------


def results_report(*, results: Sequence[Result], by: User) -> list[Result]:
    """File what a reference lab reported for send-out tests, released as it came (lab.sendouts.filing):
    the rows of many orders (each result's ``order``, locked with its results by the caller) at once.

    The lab verified them, so there is no kit lot and no second person here: each row is created
    released with a "reported" event. Then the release's own consequences, as in-house
    (``_released``): a correction that ``amends`` a released result supersedes it and the clinician
    sees the new one unacknowledged; a critical value (the lab's HH/LL/AA or our own limits) opens
    its call-back. A final that ``replaces`` a preliminary supersedes it first, without being an
    amendment. Runs inside the caller's transaction, with the order and its results locked.
    """
    assert transaction.get_connection().in_atomic_block, "called inside the intake's transaction"
    if not results:
        return []
    now = timezone.now()
    for previous in {r.replaces_id: r for r in results if r.replaces is not None}.values():
        assert previous.replaces is not None
        replaced = previous.replaces
        move(
            replaced,
            table=RESULT,
            to=R.SUPERSEDED,
            by=by,
            action=Action.REPLACED,
            note=f"{previous.get_report_status_display()} {previous.display_value} reported",
        )
    for r in results:
        r.status, r.status_changed_at = R.RELEASED, now
        r.entered_by, r.entered_at = by, now
        r.released_by, r.released_at = by, now
    created = list(bulk.insert(results))

    def said(r: Result) -> str:
        what = f"{r.get_report_status_display()} {r.display_value}" + (f" ({r.flag})" if r.flag else "")
        return f"{what} from {r.reference_lab}" if r.reference_lab_id else what

    record_all(created, by=by, action=Action.REPORTED, created=True, note=said, at=now)
    for r in created:
        _released(r, order=r.order, by=by)
    return created
