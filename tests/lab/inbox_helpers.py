"""Released results for the inbox's tests, written as rows.

The bench's services (lab.results.services: results_enter, result_verify, result_amend) were being
written alongside the inbox; until they are in, ``released`` and ``corrected`` write the rows those
services would leave: entered by a lab tech, verified and released by another (version 3, as after
the two moves), the flag computed by lab.results.flags from the patient's age and sex. A correction
is a new released result that amends the original, which is superseded (its version moved on).
Swap these two bodies for the services once they are there; the tests call only these names.
"""

import datetime as dt

from django.utils import timezone

from backoffice import roles
from backoffice.models import Handoff, Patient, User
from backoffice.services import handoff_assign_station, handoff_claim, handoff_verify_identity
from lab.models import Result, TestOrder
from lab.results.flags import age_in_days, interpret
from lab.services import test_orders_add, tests_start_collection
from lab.workflow import ResultStatus
from specimens.models import Specimen
from tests.factories import HandoffFactory, PatientFactory, StationFactory, UserFactory
from tests.specimens.helpers import confirm, tests


def adult(**fields: object) -> Patient:
    """A woman of 40 (the seeded adult ranges apply), unless told otherwise."""
    born = timezone.localdate() - dt.timedelta(days=40 * 365 + 20)
    return PatientFactory(**{"date_of_birth": born, "sex": Patient.Sex.FEMALE, **fields})


def collected_for(clinician: User, *short_names: str, patient: Patient | None = None) -> Handoff:
    """A handoff the clinician ordered these tests on, their specimens collected at the bedside."""
    ma = UserFactory(role=roles.ROLE_MEDICAL_ASSISTANT)
    handoff = HandoffFactory(patient=patient or adult(), ordering_clinician=clinician, created_by=clinician)
    test_orders_add(handoff=handoff, tests=tests(*short_names), by=clinician)
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=StationFactory(), by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=handoff.patient.mrn)
    for specimen in tests_start_collection(handoff=handoff, by=ma):
        confirm(specimen, ma)
    return handoff


def order_for(handoff: Handoff, short_name: str) -> TestOrder:
    return TestOrder.objects.select_related("test", "specimen", "handoff__patient").get(
        handoff=handoff, test__short_name=short_name
    )


def _bench_staff() -> tuple[User, User]:
    """A lab tech who enters and another who verifies (never the same person)."""
    return UserFactory(role=roles.ROLE_LAB_TECH), UserFactory(role=roles.ROLE_LAB_TECH)


def _result(
    order: TestOrder, analyte_short: str, typed: str, *, at: dt.datetime, amends: Result | None, reason: str
) -> Result:
    specimen: Specimen = order.specimen  # type: ignore[assignment]
    if specimen.collected_at is None or specimen.collected_at > at:
        # A result of some days ago was drawn then too (the bedside check stamped it now).
        specimen.collected_at = at - dt.timedelta(minutes=20)
        Specimen.objects.filter(pk=specimen.pk).update(collected_at=specimen.collected_at)
    patient = order.handoff.patient
    analyte = order.test.analytes.get(short_name=analyte_short)
    on = timezone.localdate(specimen.collected_at or at)
    value = interpret(
        analyte, typed, sex=patient.sex, age_days=age_in_days(patient.date_of_birth, on), ranges=analyte.ranges.all()
    )
    tech, verifier = _bench_staff()
    return Result.objects.create(
        order=order,
        analyte=analyte,
        patient=patient,
        specimen=specimen,
        status=ResultStatus.RELEASED,
        status_changed_at=at,
        value_numeric=value.value_numeric,
        comparator=value.comparator,
        value_text=value.value_text,
        unit=analyte.unit,
        flag=value.flag,
        is_critical=value.is_critical,
        reference_range=value.reference_range,
        reference_text=value.reference_range.label if value.reference_range else "",
        entered_at=at - dt.timedelta(minutes=5),
        entered_by=tech,
        verified_at=at,
        verified_by=verifier,
        released_at=at,
        released_by=verifier,
        amends=amends,
        amend_reason=reason,
        version=3,
    )


def released(order: TestOrder, typed: str, *, analyte: str | None = None, ago_minutes: int = 0) -> Result:
    """The test's (or this analyte's) result, verified and released ``ago_minutes`` ago."""
    at = timezone.now() - dt.timedelta(minutes=ago_minutes)
    return _result(order, analyte or order.test.analytes.get().short_name, typed, at=at, amends=None, reason="")


def corrected(original: Result, typed: str, *, reason: str = "Wrong sample cup read") -> Result:
    """The original's correction, released now: the original is superseded."""
    original = Result.objects.select_related(
        "order__test", "order__specimen", "order__handoff__patient", "analyte"
    ).get(pk=original.pk)
    amended = _result(
        original.order, original.analyte.short_name, typed, at=timezone.now(), amends=original, reason=reason
    )
    original.status, original.status_changed_at = ResultStatus.SUPERSEDED, timezone.now()
    original.version += 1
    original.save(update_fields=["status", "status_changed_at", "version"])
    return amended
