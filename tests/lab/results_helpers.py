"""Reaching bench states the way the app does: a specimen received at the bench, a lot with passing QC, results."""

import datetime as dt

from django.utils import timezone

from backoffice.models import User
from backoffice.services import handoff_assign_station, handoff_claim, handoff_verify_identity
from lab.models import Analyte, ControlLot, KitLot, QCRule, QCRun, Result, TestDefinition, TestOrder
from lab.results import services
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import ControlLevel, QCFrequency
from specimens.models import Specimen
from tests.factories import HandoffFactory, PatientFactory, StationFactory
from tests.lab.helpers import kit_lot, qualitative_qc, quantitative_qc, test_named
from tests.specimens.helpers import confirm, received, tests

# Mean and SD of each numeric test's level 1 and level 2 controls.
LEVELS = {
    "Hemoglobin": (("8.0", "0.3"), ("16.0", "0.5")),
    "POC glucose": (("50", "4"), ("300", "15")),
    "HbA1c": (("5.5", "0.2"), ("9.5", "0.3")),
    "PT/INR": (("1.0", "0.1"), ("3.0", "0.2")),
}


def adult_handoff(*short_names: str, ma: User, sex: str = "F", age_years: int = 40, stat: bool = False):  # type: ignore[no-untyped-def]
    """A handoff of an adult patient with these tests, claimed by the MA at a station, identity verified."""
    born = timezone.localdate() - dt.timedelta(days=age_years * 365 + age_years // 4 + 10)
    handoff = HandoffFactory(patient=PatientFactory(date_of_birth=born, sex=sex), priority=1 if stat else 2)
    test_orders_add(handoff=handoff, tests=tests(*short_names), by=handoff.ordering_clinician)
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=StationFactory(), by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=handoff.patient.mrn)
    return handoff


def at_bench(*short_names: str, ma: User, lab_tech: User, **patient: object) -> Specimen:
    """One specimen for these tests (they share a container), collected and received at the in-house bench."""
    handoff = adult_handoff(*short_names, ma=ma, **patient)  # type: ignore[arg-type]
    [specimen] = tests_start_collection(handoff=handoff, by=ma)
    confirm(specimen, ma)
    return received(specimen, ma=ma, lab_tech=lab_tech)


def passing_lot(short_name: str, *, by: User, lot: str = "L1", **kwargs: object) -> KitLot:
    """A lot of a kit for this test whose controls (made here if missing) passed today."""
    kit = kit_lot(short_name, lot=lot, **kwargs)  # type: ignore[arg-type]
    test = test_named(short_name)
    controls = list(test.control_lots.all())
    if not controls:
        if short_name in LEVELS:
            controls = list(quantitative_qc(short_name, levels=LEVELS[short_name]))
        elif test.analytes.count() == 1:
            controls = list(qualitative_qc(short_name))
        else:
            controls = _panel_controls(test)
    for control in controls:
        QCRun.objects.create(
            kit_lot=kit,
            control_lot=control,
            performed_by=by,
            value_numeric=control.target_mean,
            value_text=control.expected_value,
            passed=True,
        )
    return kit


def _panel_controls(test: TestDefinition) -> list[ControlLot]:
    """A strip panel's level 1 (normal) and level 2 (abnormal) controls, read against their expected pads."""
    QCRule.objects.update_or_create(test=test, defaults={"frequency": QCFrequency.DAILY})
    first = test.analytes.order_by("position").first()
    expiry = timezone.localdate() + dt.timedelta(days=365)
    return [
        ControlLot.objects.create(
            test=test, analyte=first, level=level, lot_number=f"{level}-1", expiry_date=expiry, expected_value=expected
        )
        for level, expected in ((ControlLevel.LEVEL_1, "Negative"), (ControlLevel.LEVEL_2, "2+"))
    ]


def order_of(specimen: Specimen, short_name: str) -> TestOrder:
    return TestOrder.objects.select_related("test", "specimen").get(specimen=specimen, test__short_name=short_name)


def values(short_name: str, *typed: str) -> dict[int, str]:
    """Typed values for the test's analytes, in their order on the form."""
    analytes = list(Analyte.objects.filter(test__short_name=short_name).order_by("position"))
    assert len(analytes) == len(typed)
    return {a.pk: v for a, v in zip(analytes, typed, strict=True)}


def enter(specimen: Specimen, short_name: str, *typed: str, by: User, lot: KitLot) -> list[Result]:
    return services.results_enter(
        order=order_of(specimen, short_name), values=values(short_name, *typed), kit_lot=lot, by=by
    )


def fresh(result: Result) -> Result:
    return Result.objects.select_related("order__test", "order__handoff", "analyte", "specimen__patient").get(
        pk=result.pk
    )
