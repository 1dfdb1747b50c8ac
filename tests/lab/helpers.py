"""The bench's catalog as a clinic sets it up in admin: kits and lots, QC rules and control lots, the ladder."""

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from backoffice import roles
from lab.models import ControlLot, EscalationStep, Kit, KitLot, QCRule, Result, TestDefinition
from lab.workflow import ControlLevel, EscalationTarget, QCFrequency
from tests.factories import UserFactory


def test_named(short_name: str) -> TestDefinition:
    return TestDefinition.objects.get(short_name=short_name)


test_named.__test__ = False  # type: ignore[attr-defined]  # a helper, though pytest would collect its name


def kit_lot(short_name: str, *, lot: str = "L1", expires_in_days: int = 180, received_days_ago: int = 1) -> KitLot:
    """A lot of a kit made for this test, received recently and in date."""
    test = test_named(short_name)
    kit, _ = Kit.objects.get_or_create(manufacturer="Acme Diagnostics", name=f"{test.short_name} kit")
    kit.tests.add(test)
    today = timezone.localdate()
    return KitLot.objects.create(
        kit=kit,
        lot_number=lot,
        expiry_date=today + dt.timedelta(days=expires_in_days),
        received_on=today - dt.timedelta(days=received_days_ago),
    )


def qualitative_qc(short_name: str, *, frequency: str = QCFrequency.DAILY) -> tuple[ControlLot, ControlLot]:
    """The QC rule of a qualitative test and its negative and positive control lots."""
    test = test_named(short_name)
    QCRule.objects.update_or_create(test=test, defaults={"frequency": frequency})
    analyte = test.analytes.get()
    expiry = timezone.localdate() + dt.timedelta(days=365)
    negative = ControlLot.objects.create(
        test=test,
        analyte=analyte,
        level=ControlLevel.NEGATIVE,
        lot_number="N-1",
        expiry_date=expiry,
        expected_value="Negative",
    )
    positive = ControlLot.objects.create(
        test=test,
        analyte=analyte,
        level=ControlLevel.POSITIVE,
        lot_number="P-1",
        expiry_date=expiry,
        expected_value="Positive",
    )
    return negative, positive


def quantitative_qc(
    short_name: str, *, levels: tuple[tuple[str, str], tuple[str, str]], frequency: str = QCFrequency.DAILY
) -> tuple[ControlLot, ControlLot]:
    """The QC rule of a numeric test and its level 1 and level 2 control lots: (mean, SD) each."""
    test = test_named(short_name)
    QCRule.objects.update_or_create(test=test, defaults={"frequency": frequency})
    analyte = test.analytes.get()
    expiry = timezone.localdate() + dt.timedelta(days=365)
    (mean1, sd1), (mean2, sd2) = levels
    low = ControlLot.objects.create(
        test=test,
        analyte=analyte,
        level=ControlLevel.LEVEL_1,
        lot_number="C1-1",
        expiry_date=expiry,
        target_mean=Decimal(mean1),
        target_sd=Decimal(sd1),
    )
    high = ControlLot.objects.create(
        test=test,
        analyte=analyte,
        level=ControlLevel.LEVEL_2,
        lot_number="C2-1",
        expiry_date=expiry,
        target_mean=Decimal(mean2),
        target_sd=Decimal(sd2),
    )
    return low, high


def ladder() -> list[EscalationStep]:
    """Ordering clinician within 30 minutes, then the covering clinician, then the medical director."""
    covering = UserFactory(role=roles.ROLE_CLINICIAN, first_name="Cora", last_name="Covering")
    director = UserFactory(role=roles.ROLE_CLINICIAN, first_name="Dana", last_name="Director")
    return [
        EscalationStep.objects.create(position=1, target=EscalationTarget.ORDERING, due_minutes=30),
        EscalationStep.objects.create(position=2, target=EscalationTarget.COVERING, person=covering, due_minutes=15),
        EscalationStep.objects.create(position=3, target=EscalationTarget.DIRECTOR, person=director, due_minutes=15),
    ]


def bench_catalog() -> KitLot:
    """A strep kit lot with its QC rule and controls, and the escalation ladder."""
    lot = kit_lot("Rapid strep")
    qualitative_qc("Rapid strep")
    ladder()
    return lot


def released_critical_result() -> Result:
    """A hemoglobin of 6.8 g/dL (LL) entered on a lot whose QC passed, verified by a second tech and
    released: its QC runs, its events and the critical call it opened.
    """
    from lab.criticals.services import critical_call_attempt
    from lab.models import CriticalCall
    from lab.results import services as result_services
    from lab.workflow import CallOutcome
    from tests.lab.results_helpers import at_bench, enter, fresh, passing_lot

    ma = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    tech, verifier = UserFactory(role=roles.ROLE_LAB_TECH), UserFactory(role=roles.ROLE_LAB_TECH)
    specimen = at_bench("Hemoglobin", ma=ma, lab_tech=tech)
    [result] = enter(specimen, "Hemoglobin", "6.8", by=tech, lot=passing_lot("Hemoglobin", by=tech, lot="HB-1"))
    result_services.result_verify(result=fresh(result), by=verifier)
    # The tech's first call doesn't reach the ordering clinician: an attempt, the call still open.
    critical_call_attempt(
        call=CriticalCall.objects.get(result=result),
        by=tech,
        contact_name="Front desk",
        contact_role="Receptionist",
        outcome=CallOutcome.NOT_REACHED,
    )
    return fresh(result)
