"""Reaching specimen states the way the app does: through the services, in order."""

from backoffice.models import Handoff, Station, User
from backoffice.services import handoff_assign_station, handoff_claim, handoff_complete, handoff_verify_identity
from lab.models import RecollectionCall, TestDefinition, TestOrder
from lab.services import test_orders_add, tests_start_collection
from specimens import services
from specimens.models import LabelPrinter, RejectionReason, Specimen
from specimens.workflow import Location
from tests.factories import HandoffFactory, StationFactory


def tests(*short_names: str) -> list[TestDefinition]:
    return [TestDefinition.objects.get(short_name=name) for name in short_names]


tests.__test__ = False  # type: ignore[attr-defined]  # a helper, though pytest would collect its name


def verified_handoff(*short_names: str, ma: User, station: Station | None = None) -> Handoff:
    """A handoff with these lab tests, claimed by the MA at a station, identity verified."""
    handoff = HandoffFactory()
    test_orders_add(handoff=handoff, tests=tests(*short_names), by=handoff.ordering_clinician)
    handoff_claim(handoff=handoff, by=ma)
    handoff_assign_station(handoff=handoff, station=station or StationFactory(), by=ma)
    handoff_verify_identity(handoff=handoff, by=ma, scanned_mrn=handoff.patient.mrn)
    return handoff


def labelled(*short_names: str, ma: User) -> tuple[Handoff, list[Specimen]]:
    handoff = verified_handoff(*short_names, ma=ma)
    return handoff, tests_start_collection(handoff=handoff, by=ma)


def confirm(specimen: Specimen, ma: User) -> Specimen:
    return services.specimen_confirm(
        handoff=specimen.handoff, scanned_label=specimen.accession, scanned_wristband=specimen.patient.mrn, by=ma
    )


def collected(*short_names: str, ma: User) -> tuple[Handoff, list[Specimen]]:
    handoff, specimens = labelled(*short_names, ma=ma)
    return handoff, [confirm(s, ma) for s in specimens]


def received(specimen: Specimen, *, ma: User, lab_tech: User, at: str = Location.IN_HOUSE_BENCH) -> Specimen:
    services.specimen_hand_over(specimen=specimen, to=at, by=ma)
    return services.specimen_receive(specimen=specimen, at=at, by=lab_tech)


def reason(code: str) -> RejectionReason:
    return RejectionReason.objects.get(code=code)


def orders_of(handoff: Handoff) -> dict[str, TestOrder]:
    return {o.test.short_name: o for o in TestOrder.objects.filter(handoff=handoff).select_related("test")}


def pdf_printer(station: Station) -> LabelPrinter:
    return LabelPrinter.objects.create(station=station, name=f"{station.name} labels")


def call_back(*, ma: User, lab_tech: User) -> RecollectionCall:
    """A specimen rejected after its patient left: the ordering clinician's call-back."""
    handoff, [tube] = collected("CBC", ma=ma)
    handoff_complete(handoff=Handoff.objects.get(pk=handoff.pk), by=ma)
    received(tube, ma=ma, lab_tech=lab_tech)
    services.specimen_reject(specimen=tube, reason=reason("RC"), by=lab_tech)
    return RecollectionCall.objects.get(specimen=tube)


def results_released(specimen: Specimen, *, lab_tech: User) -> Specimen:
    """Normal results entered and released for each in-house test on the specimen: its testing is done.

    The bench's way (lab.results.services): QC passed on a lot, a second tech verifies where the test
    needs it; the last release marks the specimen done, as at the bench.
    """
    from backoffice import roles
    from lab.models import Analyte
    from lab.results import services as results
    from lab.workflow import ResultType
    from tests.factories import UserFactory
    from tests.lab.results_helpers import fresh, passing_lot

    verifier = UserFactory(role=roles.ROLE_LAB_TECH)
    orders = TestOrder.objects.filter(specimen=specimen, test__performed=TestDefinition.Performed.IN_HOUSE)
    for order in orders.select_related("test", "specimen").order_by("id"):
        lot = passing_lot(order.test.short_name, by=lab_tech, lot=f"L-{order.pk}")
        analytes: list[Analyte] = list(order.test.analytes.prefetch_related("ranges").order_by("position"))
        typed = {}
        for analyte in analytes:
            if analyte.result_type == ResultType.ORDINAL:
                typed[analyte.pk] = str((analyte.normal_choices or analyte.choices)[0])
            else:
                band = next((r for r in analyte.ranges.all() if r.low is not None and r.high is not None), None)
                typed[analyte.pk] = f"{((band.low + band.high) / 2).quantize(analyte.quantum)}" if band else "1"
        [first, *_] = results.results_enter(order=order, values=typed, kit_lot=lot, by=lab_tech)
        if order.test.requires_verification:
            results.result_verify(result=fresh(first), by=verifier)
        else:
            results.result_release(result=fresh(first), by=lab_tech)
    specimen.refresh_from_db()
    return specimen
