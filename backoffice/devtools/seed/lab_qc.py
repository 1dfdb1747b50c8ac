"""Demo quality control: kits and lots for the in-house tests, their QC rules and control lots, and
about twenty days of QC history, with one failed run and the repeat that passed.

The bench a lab tech meets in the morning: most lots unlocked by this morning's QC, hemoglobin's
daily QC still to run, a new shipment of strep kits awaiting its first QC, and an expired hCG lot
left on the shelf (locked). Targets are typical of the controls each kit's maker sells.

History is seed data only: its runs are written with the time they should show, each evaluated by
the same code the service uses (lab.qc.services.evaluate, reading the runs before it), so the
Levey-Jennings charts and the stored Westgard flags agree. Today's runs go through the service.
"""

import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal

from django.core.management.base import OutputWrapper
from django.db import transaction
from django.utils import timezone

from backoffice.models import User
from lab.models import ControlLot, Kit, KitLot, QCRule, QCRun, TestDefinition
from lab.qc import westgard
from lab.qc.services import Evaluation, evaluate, qc_run_record
from lab.workflow import ControlLevel, QCFrequency

HISTORY_DAYS = 20
SEED = 20261202


@dataclass(frozen=True)
class Control:
    level: str
    lot: str
    expected: str = ""  # qualitative
    mean: str = ""  # quantitative: target mean and SD
    sd: str = ""


@dataclass(frozen=True)
class Bench:
    """One kit for one or more tests, its lots, the tests' QC rule and their control lots."""

    manufacturer: str
    kit: str
    tests: tuple[str, ...]  # short names
    lot: str
    frequency: str
    controls: tuple[Control, ...]
    every_n_days: int = 1
    run_today: bool = True
    new_shipment: bool = False  # the same lot number arrived again today: QC before use
    expired_lot: str = ""  # an older lot left on the shelf, past its date


NEG_POS = (ControlLevel.NEGATIVE, ControlLevel.POSITIVE)

BENCHES = (
    Bench(
        "Quidel",
        "QuickVue Dipstick Strep A",
        ("Rapid strep",),
        "STA-24117",
        QCFrequency.DAILY,
        (Control(ControlLevel.NEGATIVE, "SC-5512", "Negative"), Control(ControlLevel.POSITIVE, "SC-5513", "Positive")),
        new_shipment=True,
    ),
    Bench(
        "Abbott",
        "BinaxNOW COVID-19 Ag Card",
        ("COVID-19 Ag",),
        "195-118",
        QCFrequency.EVERY_N_DAYS,
        (Control(ControlLevel.NEGATIVE, "CV-0431", "Negative"), Control(ControlLevel.POSITIVE, "CV-0432", "Positive")),
        every_n_days=7,
    ),
    Bench(
        "Quidel",
        "QuickVue Influenza A+B",
        ("Flu A Ag", "Flu B Ag"),
        "FLU-77310",
        QCFrequency.LOT_ONLY,
        (Control(ControlLevel.NEGATIVE, "FC-2201", "Negative"), Control(ControlLevel.POSITIVE, "FC-2202", "Positive")),
    ),
    Bench(
        "Sekisui",
        "OSOM hCG Urine",
        ("Urine hCG",),
        "HCG-3391",
        QCFrequency.DAILY,
        (Control(ControlLevel.NEGATIVE, "HC-118", "Negative"), Control(ControlLevel.POSITIVE, "HC-119", "Positive")),
        expired_lot="HCG-3307",
    ),
    Bench(
        "Roche",
        "Accu-Chek Inform II strips",
        ("POC glucose",),
        "GL-497212",
        QCFrequency.DAILY,
        (
            Control(ControlLevel.LEVEL_1, "ACL1-2291", mean="52", sd="3"),
            Control(ControlLevel.LEVEL_2, "ACL2-2291", mean="305", sd="12"),
        ),
    ),
    Bench(
        "HemoCue",
        "Hb 201 microcuvettes",
        ("Hemoglobin",),
        "HB-1124077",
        QCFrequency.DAILY,
        (
            Control(ControlLevel.LEVEL_1, "HT-L-5601", mean="8.2", sd="0.2"),
            Control(ControlLevel.LEVEL_2, "HT-H-5601", mean="17.6", sd="0.3"),
        ),
        run_today=False,  # this morning's QC is still to run: the board says so
    ),
    Bench(
        "Roche",
        "CoaguChek XS PT Test strips",
        ("PT/INR",),
        "PT-61209",
        QCFrequency.SHIFT,
        (
            Control(ControlLevel.LEVEL_1, "CQC1-339", mean="1.1", sd="0.1"),
            Control(ControlLevel.LEVEL_2, "CQC2-339", mean="2.9", sd="0.2"),
        ),
    ),
)
# The one failed run: glucose level 2, six days ago, beyond 3 SD; repeated on a new vial, in range.
FAILED = ("POC glucose", ControlLevel.LEVEL_2, 6)


def seed_lab_qc(stdout: OutputWrapper, *, users: dict[str, User]) -> None:
    """Kits, lots, QC rules, control lots and QC history; a second run finds them and adds nothing."""
    tech, supervisor = users["labtech"], users["supervisor"]
    today = timezone.localdate()
    with transaction.atomic():
        benches = [(bench, *_catalog(bench, today)) for bench in BENCHES]
        if QCRun.objects.filter(control_lot__in=[c for _, _, controls in benches for c in controls]).exists():
            stdout.write("QC: kits, controls and history already there.")
            return
        rng = random.Random(SEED)  # noqa: S311 - demo values, reproducible, not secrets
        history = 0
        for bench, lot, controls in benches:
            history += _history(bench, lot, controls, by=(tech, supervisor), rng=rng, today=today)
    # Today's runs through the service, as the bench enters them (its own transaction each).
    today_runs = 0
    for bench, lot, controls in benches:
        if not bench.run_today or bench.frequency in (QCFrequency.LOT_ONLY, QCFrequency.EVERY_N_DAYS):
            continue
        for control in controls:
            value = control.expected_value or _value(control, z=-0.4 if control.level == ControlLevel.LEVEL_1 else 0.3)
            qc_run_record(kit_lot=lot, control_lot=control, value=value, by=tech)
            today_runs += 1
    failed = QCRun.objects.filter(passed=False).count()
    stdout.write(
        f"QC: {len(BENCHES)} kits, {ControlLot.objects.count()} control lots, {history} runs of history "
        f"and {today_runs} this morning ({failed} failed)."
    )


def _catalog(bench: Bench, today: dt.date) -> tuple[KitLot, list[ControlLot]]:
    tests = [TestDefinition.objects.get(short_name=name) for name in bench.tests]
    kit, _ = Kit.objects.get_or_create(manufacturer=bench.manufacturer, name=bench.kit)
    kit.tests.add(*tests)
    received = today - dt.timedelta(days=HISTORY_DAYS + 2)
    lot, _ = KitLot.objects.get_or_create(
        kit=kit,
        lot_number=bench.lot,
        received_on=received,
        defaults={"expiry_date": today + dt.timedelta(days=240), "opened_on": received},
    )
    if bench.new_shipment:
        KitLot.objects.get_or_create(
            kit=kit, lot_number=bench.lot, received_on=today, defaults={"expiry_date": today + dt.timedelta(days=240)}
        )
    if bench.expired_lot:
        KitLot.objects.get_or_create(
            kit=kit,
            lot_number=bench.expired_lot,
            received_on=today - dt.timedelta(days=200),
            defaults={"expiry_date": today - dt.timedelta(days=3), "opened_on": today - dt.timedelta(days=60)},
        )
    controls = []
    for test in tests:
        QCRule.objects.get_or_create(
            test=test, defaults={"frequency": bench.frequency, "every_n_days": bench.every_n_days, "shift_hours": 8}
        )
        analyte = test.analytes.order_by("position").first()
        assert analyte is not None, f"{test} has no analyte"
        for spec in bench.controls:
            # Each test of a combined kit has its own control lot record (Flu A and Flu B read one swab).
            number = spec.lot if len(tests) == 1 else f"{spec.lot}-{test.short_name.split()[1]}"
            control, _ = ControlLot.objects.get_or_create(
                test=test,
                level=spec.level,
                lot_number=number,
                defaults={
                    "analyte": analyte,
                    "expiry_date": today + dt.timedelta(days=180),
                    "expected_value": spec.expected,
                    "target_mean": Decimal(spec.mean) if spec.mean else None,
                    "target_sd": Decimal(spec.sd) if spec.sd else None,
                },
            )
            control.test, control.analyte = test, analyte
            controls.append(control)
    return lot, controls


def _value(control: ControlLot, *, z: float) -> str:
    assert control.target_mean is not None and control.target_sd is not None
    value = control.target_mean + Decimal(str(round(z, 3))) * control.target_sd
    return f"{value.quantize(control.analyte.quantum):f}"


def _run_days(bench: Bench, today: dt.date) -> list[tuple[int, dt.time]]:
    """(days ago, time of day) of each historical run: the clinic is closed on Sundays."""
    if bench.frequency == QCFrequency.LOT_ONLY:
        return [(HISTORY_DAYS, dt.time(7, 50))]
    if bench.frequency == QCFrequency.EVERY_N_DAYS:
        return [(d, dt.time(7, 55)) for d in range(HISTORY_DAYS, 0, -bench.every_n_days)]
    days = [d for d in range(HISTORY_DAYS, 0, -1) if (today - dt.timedelta(days=d)).weekday() != 6]
    times = [dt.time(7, 40), dt.time(15, 40)] if bench.frequency == QCFrequency.SHIFT else [dt.time(7, 40)]
    return [(d, t) for d in days for t in times]


def _history(
    bench: Bench, lot: KitLot, controls: list[ControlLot], *, by: tuple[User, User], rng: random.Random, today: dt.date
) -> int:
    runs: list[QCRun] = []
    previous: dict[int, list[Decimal]] = {c.pk: [] for c in controls}
    for days_ago, at_time in _run_days(bench, today):
        day = today - dt.timedelta(days=days_ago)
        at = timezone.make_aware(dt.datetime.combine(day, at_time))
        performer = by[1] if day.weekday() == 5 else by[0]  # the supervisor covers Saturdays
        for i, control in enumerate(controls):
            stamp = at + dt.timedelta(minutes=2 * i)
            note = ""
            if control.is_quantitative:
                failing = (bench.tests[0], control.level, days_ago) == FAILED and at_time.hour < 12
                z = 3.4 if failing else max(-1.8, min(1.8, rng.gauss(0, 0.75)))
                value = _value(control, z=z)
                if failing:
                    note = "Control vial left open overnight."
            else:
                value = control.expected_value
            result = evaluate(control, value, previous=previous[control.pk])
            runs.append(_row(lot, control, result, performer, stamp, note))
            if result.value_numeric is not None:
                previous[control.pk].append(result.value_numeric)
            if not result.passed:
                # The repeat on a new vial, half an hour later.
                repeat = evaluate(control, _value(control, z=0.2), previous=previous[control.pk])
                note = "Repeat on a new vial of control after the 1-3s failure: in range."
                runs.append(_row(lot, control, repeat, performer, stamp + dt.timedelta(minutes=30), note))
                assert repeat.value_numeric is not None
                previous[control.pk].append(repeat.value_numeric)
    QCRun.objects.bulk_create(runs)
    return len(runs)


def _row(lot: KitLot, control: ControlLot, result: Evaluation, performer: User, at: dt.datetime, note: str) -> QCRun:
    return QCRun(
        kit_lot=lot,
        control_lot=control,
        performed_by=performer,
        performed_at=at,
        value_numeric=result.value_numeric,
        value_text=result.value_text,
        passed=result.passed,
        westgard=westgard.as_field(result.violations),
        note=note,
    )
