"""Demo results on the demo's received in-house specimens: most normal and released, one critical
(released, so its call opens), one waiting for a second person, one released then amended, and one
under review: its lot's positive control failed after it was released, then passed on the repeat.

Entered by the lab technician and verified by the supervisor, through lab.results.services, only on
kit lots whose QC passes now (a test whose lots are locked stays on the bench, as the QC board says).
Idempotent: a test already entered is left as it is, and a second run finds nothing to enter.
"""

from django.core.management.base import OutputWrapper

from backoffice.devtools.seed.clinic_now import NOW_VISIT_KEYS
from backoffice.models import Handoff, User
from backoffice.workflow import TransitionNotAllowed
from lab.models import Analyte, ControlLot, KitLot, Result, ResultEvent, TestOrder
from lab.qc.services import qc_run_record
from lab.results import selectors, services
from lab.workflow import ControlLevel, ResultStatus, ResultType

# Typed as the bench would: a normal value, a critical one, and a corrected one with its reason.
NORMAL = {"POC glucose": "94", "Hemoglobin": "13.6", "HbA1c": "5.4", "PT/INR": "1.0"}
CRITICAL = {"POC glucose": "38", "Hemoglobin": "6.8", "PT/INR": "5.4"}
AMENDED = {
    "POC glucose": ("142", "Strip read before the sample filled it; repeated on a new strip"),
    "Hemoglobin": ("12.1", "Cuvette had an air bubble; repeated"),
    "HbA1c": ("6.1", "Transcription error: the analyzer printout reads 6.1"),
    "PT/INR": ("1.3", "Second drop applied late; repeated"),
}
NUMERIC_NORMAL = {"5811-5": "1.015", "5803-2": "6.0"}  # the urine strip's specific gravity and pH


def _normal(analyte: Analyte, test: str) -> str:
    if analyte.result_type == ResultType.ORDINAL:
        return str(analyte.normal_choices[0] if analyte.normal_choices else analyte.choices[0])
    return NUMERIC_NORMAL.get(analyte.loinc_code) or NORMAL.get(test, "1")


def seed_lab_results(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    tech, verifier = users["labtech"], users["supervisor"]
    todo: list[TestOrder] = []
    # The clinic-now visits' tests stay on the bench: their patients wait for them (a second run too).
    kept_on_bench = set(Handoff.objects.filter(uuid__in=NOW_VISIT_KEYS).values_list("pk", flat=True))
    for row in selectors.bench_list(user=tech):
        if row.specimen.handoff_id in kept_on_bench:
            continue
        for order in row.pending:
            order.specimen = row.specimen
            if not Result.objects.filter(order=order).exists():
                todo.append(order)
    lots: dict[int, KitLot | None] = {}
    for order in todo:
        if order.test_id not in lots:
            usable = [c.lot for c in selectors.lot_choices(order.test) if c.blocked is None]
            lots[order.test_id] = usable[0] if usable else None
    todo = [o for o in todo if lots[o.test_id] is not None]
    if not todo:
        stdout.write("Results: nothing to enter (no received in-house test with a lot that passes QC).")
        return
    critical = next((o for o in todo if o.test.short_name in CRITICAL), None)
    rest = [o for o in todo if o is not critical]
    # One left for a second person: a test that isn't the one to amend.
    waiting = next((o for o in rest if o.test.short_name not in AMENDED), rest[0] if rest else None)
    if waiting is not None:
        rest.remove(waiting)
    amended = next((o for o in rest if o.test.short_name in AMENDED), None)
    counts = {"released": 0, "critical": 0, "waiting": 0, "amended": 0}
    for order in todo:
        name = order.test.short_name
        analytes = list(order.test.analytes.all())
        typed = {a.pk: _normal(a, name) for a in analytes}
        if order is critical:
            typed = {analytes[0].pk: CRITICAL[name]}
        lot = lots[order.test_id]
        assert lot is not None  # orders without a usable lot were left out above
        try:
            results = services.results_enter(order=order, values=typed, kit_lot=lot, by=tech)
        except TransitionNotAllowed as exc:
            stdout.write(f"Results: {name} on {order.specimen.accession if order.specimen else '?'} skipped: {exc}")
            continue
        if order is waiting:
            counts["waiting"] += 1
            continue
        services.result_verify(result=results[0], by=verifier)
        counts["critical" if order is critical else "released"] += 1
        if order is amended:
            value, reason = AMENDED[name]
            original = Result.objects.select_related("order__test", "analyte", "specimen__patient").get(
                pk=results[0].pk
            )
            correction = services.result_amend(result=original, value=value, reason=reason, by=tech)
            services.result_verify(result=correction, by=verifier)
            counts["amended"] += 1
    stdout.write(
        f"Results: {counts['released']} released ({counts['amended']} amended), {counts['critical']} critical "
        f"released with its call, {counts['waiting']} waiting for a second person."
    )
    seed_review(stdout, tech=tech)


def seed_review(stdout: OutputWrapper, *, tech: User) -> None:
    """A released qualitative result whose lot's positive control then failed, and passed on the repeat.

    The result stays under review (the verifier closes it or amends it); the lot is usable again. A
    lot with results still waiting for a second person is left alone, so none of them is held.
    """
    if ResultEvent.objects.filter(action=ResultEvent.Action.MARKED_FOR_REVIEW).exists():
        return
    unreleased_lots = Result.objects.filter(status__in=services.UNRELEASED).values("kit_lot")
    candidate = (
        Result.objects.filter(
            status=ResultStatus.RELEASED, amends__isnull=True, analyte__result_type=ResultType.ORDINAL
        )
        .exclude(kit_lot__in=unreleased_lots)
        .filter(order__test__control_lots__level=ControlLevel.POSITIVE)
        .select_related("kit_lot__kit", "order__test")
        .order_by("released_at", "id")
        .first()
    )
    if candidate is None or candidate.kit_lot is None:
        return
    control = ControlLot.objects.filter(test=candidate.order.test, level=ControlLevel.POSITIVE, is_active=True).first()
    if control is None:
        return
    wrong = next(str(c) for c in control.analyte.choices if str(c) != control.expected_value)
    lot = candidate.kit_lot
    qc_run_record(kit_lot=lot, control_lot=control, value=wrong, by=tech, note="Read at 12 min instead of 5")
    qc_run_record(kit_lot=lot, control_lot=control, value=control.expected_value, by=tech, note="Repeat: new swab")
    stdout.write(f"Results: {candidate.order.test.short_name} on lot {lot.lot_number} under review after a failed QC.")
