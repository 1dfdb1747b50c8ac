"""Every procedure transition through the services, the refusals, and the supervision rules."""

import datetime as dt
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from backoffice import hooks, roles
from backoffice.models import Credential, Handoff, HandoffEvent, Station, User
from backoffice.services import (
    IdentityNotVerified,
    handoff_assign_station,
    handoff_cancel,
    handoff_claim,
    handoff_verify_identity,
    station_turnover,
)
from backoffice.workflow import HandoffStatus, PermissionRefused, StationState, TransitionNotAllowed
from lab.models import TestDefinition
from lab.services import test_orders_add
from procedures import services
from procedures.models import (
    Addendum,
    ChargeLine,
    Competency,
    MedicationAdministration,
    ProcedureDocumentation,
    ProcedureEvent,
    ProcedureOrder,
    ProcedureType,
    StepCompletion,
    VitalSigns,
)
from procedures.selectors import active_procedure_types, open_procedure_count, procedure_orders_by_handoff
from procedures.services import (
    CredentialExpired,
    DocumentationIncomplete,
    DocumentationLocked,
    ExpiredLot,
    SelfReview,
    StaleDocumentation,
    SupervisionRequired,
    SupervisorRefused,
    Vitals,
    procedure_orders_add,
)
from procedures.workflow import ProcedureStatus, Supervision
from tests.factories import CredentialFactory, HandoffFactory, StationFactory, UserFactory
from tests.procedures.helpers import (
    awaiting_cosign,
    credentialed,
    documented,
    equipped,
    finished,
    full_documentation,
    good_lot,
    new_ma,
    new_supervisor,
    one_of_everything,
    procedure_type,
    ready_handoff,
    signed_off,
    start,
    version,
    web_request,
)

pytestmark = pytest.mark.django_db

S = ProcedureStatus
Action = ProcedureEvent.Action
SEEDED_CODES = {
    "69209",
    "36415",
    "96372",
    "90471",
    "99211",
    "12001",
    "S0630",
    "93000",
    "10005",
    "94640",
    "94760",
    "51702",
    "94010",
    "86580",
    "99173",
}


def procedures(*codes: str) -> list[ProcedureType]:
    by_code = ProcedureType.objects.in_bulk(list(codes), field_name="code")
    return [by_code[code] for code in codes]


def fresh(order: ProcedureOrder) -> ProcedureOrder:
    return ProcedureOrder.objects.get(pk=order.pk)


def actions(order: ProcedureOrder) -> list[str]:
    return list(ProcedureEvent.objects.filter(order_id=order.pk).order_by("at", "id").values_list("action", flat=True))


@pytest.fixture
def ma() -> User:
    """A credentialed MA, not yet signed off for anything."""
    return new_ma(username="trainee", first_name="Jordan", last_name="Lee")


@pytest.fixture
def competent_ma() -> User:
    return signed_off(new_ma(username="senior", first_name="Maria", last_name="Alvarez"))


@pytest.fixture
def sup() -> User:
    return new_supervisor(username="boss", first_name="Samira", last_name="Okafor")


# --- Catalog -----------------------------------------------------------------------------------


def test_the_migrations_seed_the_whole_catalog() -> None:
    assert set(ProcedureType.objects.values_list("code", flat=True)) >= SEEDED_CODES
    assert {p.code for p in active_procedure_types()} >= SEEDED_CODES


def test_every_seeded_procedure_has_an_ordered_checklist() -> None:
    for ptype in ProcedureType.objects.filter(code__in=SEEDED_CODES):
        positions = list(ptype.steps.values_list("position", flat=True))
        assert len(positions) >= 2, ptype.code
        assert positions == list(range(1, len(positions) + 1)), ptype.code


def test_the_catalog_says_what_each_procedure_needs_and_documents() -> None:
    fna = procedure_type("10005")
    assert fna.consent_required and fna.timeout_required
    assert fna.documents_site and fna.documents_findings and fna.documents_medication and fna.documents_specimen
    assert fna.vitals == ProcedureType.Vitals.BEFORE_AFTER
    irrigation = procedure_type("69209")
    assert irrigation.laterality_modifier and not irrigation.consent_required
    assert [s.text for s in irrigation.steps.all()][:2] == [
        "Inspect both canals with the otoscope",
        "Confirm no perforation, ear surgery or tubes",
    ]
    assert procedure_type("96372").documents_medication
    assert procedure_type("36415").documents_specimen


# --- Ordering ----------------------------------------------------------------------------------


def test_a_clinician_orders_procedures_on_an_open_handoff(handoff: Handoff, clinician: User) -> None:
    orders = procedure_orders_add(handoff=handoff, procedure_types=procedures("69209", "96372"), by=clinician)

    stored = ProcedureOrder.objects.filter(handoff=handoff).order_by("id")
    assert [o.pk for o in orders] == [o.pk for o in stored]
    assert [o.procedure_type.code for o in stored] == ["69209", "96372"]
    assert all(o.status == S.ORDERED and o.created_by == clinician for o in stored)
    assert len({o.uuid for o in stored}) == 2
    assert [actions(o) for o in stored] == [[Action.ORDERED], [Action.ORDERED]]


def test_procedures_may_be_added_once_the_handoff_is_claimed(handoff: Handoff, medical_assistant: User) -> None:
    handoff_claim(handoff=handoff, by=medical_assistant)
    procedure_orders_add(handoff=handoff, procedure_types=procedures("36415"), by=medical_assistant)
    assert open_procedure_count(handoff) == 1


def test_it_refuses_to_order_on_a_cancelled_handoff(handoff: Handoff, clinician: User) -> None:
    handoff_cancel(handoff=handoff, by=clinician, reason="Patient left")
    with pytest.raises(TransitionNotAllowed, match="open handoff"):
        procedure_orders_add(handoff=handoff, procedure_types=procedures("69209"), by=clinician)
    assert not ProcedureOrder.objects.filter(handoff=handoff).exists()


def test_it_refuses_a_procedure_no_longer_offered(handoff: Handoff, clinician: User) -> None:
    ProcedureType.objects.filter(code="93000").update(is_active=False)
    with pytest.raises(TransitionNotAllowed, match="No longer offered: Electrocardiogram"):
        procedure_orders_add(handoff=handoff, procedure_types=procedures("69209", "93000"), by=clinician)
    assert not ProcedureOrder.objects.filter(handoff=handoff).exists()


def test_the_open_count_only_counts_this_handoffs_procedures(handoff: Handoff, clinician: User) -> None:
    other = HandoffFactory()
    procedure_orders_add(handoff=handoff, procedure_types=procedures("69209"), by=clinician)
    procedure_orders_add(handoff=other, procedure_types=procedures("69209", "36415"), by=clinician)
    assert open_procedure_count(handoff) == 1
    assert open_procedure_count(other) == 2
    assert hooks.open_item_count(other) == 2


def test_orders_are_grouped_by_handoff_in_one_query(
    handoff: Handoff, clinician: User, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    other = HandoffFactory()
    procedure_orders_add(handoff=handoff, procedure_types=procedures("69209"), by=clinician)
    procedure_orders_add(handoff=other, procedure_types=procedures("36415", "96372"), by=clinician)
    with django_assert_num_queries(1):  # procedure orders joined to their procedure types
        grouped = procedure_orders_by_handoff([handoff.pk, other.pk])
        codes = {pk: [o.procedure_type.code for o in orders] for pk, orders in grouped.items()}
    assert codes == {handoff.pk: ["69209"], other.pk: ["36415", "96372"]}


# --- Starting ----------------------------------------------------------------------------------


def test_a_competent_ma_starts_a_procedure_and_the_handoffs_work(competent_ma: User) -> None:
    handoff, orders = ready_handoff("69209", "36415", ma=competent_ma)

    order = start(orders["69209"], competent_ma)

    stored = fresh(order)
    assert stored.status == S.IN_PROGRESS
    assert (stored.performer, stored.station, stored.performer_competent) == (competent_ma, handoff.station, True)
    assert stored.supervision == Supervision.NONE and stored.supervisor is None
    assert stored.started_at is not None and stored.version == 2
    assert ProcedureDocumentation.objects.get(order=order).version == 1
    event = ProcedureEvent.objects.get(order=order, action=Action.STARTED)
    assert (event.from_status, event.to_status, event.actor) == (S.ORDERED, S.IN_PROGRESS, competent_ma)
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.IN_PROGRESS
    # Starting the second procedure leaves the handoff's own trail alone.
    start(orders["36415"], competent_ma)
    assert HandoffEvent.objects.filter(handoff=handoff, action=HandoffEvent.Action.STARTED).count() == 1


def test_starting_needs_the_patients_identity_verified(competent_ma: User) -> None:
    handoff = HandoffFactory()
    [order] = procedure_orders_add(handoff=handoff, procedure_types=procedures("36415"), by=competent_ma)
    handoff_claim(handoff=handoff, by=competent_ma)
    handoff_assign_station(handoff=handoff, station=equipped(StationFactory()), by=competent_ma)

    with pytest.raises(IdentityNotVerified):
        start(order, competent_ma)
    assert fresh(order).status == S.ORDERED
    assert not ProcedureDocumentation.objects.exists()


def test_starting_needs_a_station(competent_ma: User) -> None:
    handoff = HandoffFactory()
    [order] = procedure_orders_add(handoff=handoff, procedure_types=procedures("36415"), by=competent_ma)
    handoff_claim(handoff=handoff, by=competent_ma)
    handoff_verify_identity(handoff=handoff, by=competent_ma, scanned_mrn=handoff.patient.mrn)

    with pytest.raises(TransitionNotAllowed, match="Bring the patient to a station"):
        start(order, competent_ma)


def test_starting_needs_the_procedures_equipment_at_the_station(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma, station=StationFactory(code="bare", name="Bare room"))
    Station.objects.get(code="bare").equipment.clear()

    with pytest.raises(TransitionNotAllowed, match="Bare room has no ear irrigation"):
        start(orders["69209"], competent_ma)
    assert fresh(orders["69209"]).status == S.ORDERED


def test_an_expired_credential_stops_the_performer_even_when_competent(competent_ma: User) -> None:
    _, orders = ready_handoff("36415", ma=competent_ma)
    Credential.objects.filter(user=competent_ma).update(
        expires_on=timezone.localdate() - dt.timedelta(days=1), issued_on=None
    )

    with pytest.raises(CredentialExpired, match=r"You can't perform procedures: CMA credential .* expired on"):
        start(orders["36415"], competent_ma)
    assert fresh(orders["36415"]).status == S.ORDERED
    assert actions(orders["36415"]) == [Action.ORDERED]


def test_one_lapsed_credential_is_not_outweighed_by_a_current_one(competent_ma: User) -> None:
    CredentialFactory(
        user=competent_ma, kind=Credential.Kind.CPT, expires_on=timezone.localdate() - dt.timedelta(days=3)
    )
    _, orders = ready_handoff("36415", ma=competent_ma)
    with pytest.raises(CredentialExpired):
        start(orders["36415"], competent_ma)


def test_staff_without_any_credential_cannot_perform(medical_assistant: User) -> None:
    signed_off(medical_assistant)
    _, orders = ready_handoff("36415", ma=medical_assistant)
    with pytest.raises(CredentialExpired, match="no credential is on file"):
        start(orders["36415"], medical_assistant)


def test_an_ma_cannot_start_another_mas_patient(competent_ma: User, ma: User) -> None:
    _, orders = ready_handoff("36415", ma=competent_ma)
    signed_off(ma)
    with pytest.raises(PermissionRefused, match="claimed by Maria Alvarez"):
        start(orders["36415"], ma)


def test_a_supervisor_may_step_in_on_a_claimed_patient(competent_ma: User, sup: User) -> None:
    _, orders = ready_handoff("36415", ma=competent_ma)
    order = start(orders["36415"], sup)
    assert fresh(order).performer == sup


@pytest.mark.parametrize("role", ["clinician", "lab_tech", "outsider"])
def test_roles_that_dont_perform_procedures_cannot_start(
    role: str, request: pytest.FixtureRequest, competent_ma: User
) -> None:
    by = credentialed(request.getfixturevalue(role))
    _, orders = ready_handoff("36415", ma=competent_ma)
    with pytest.raises(PermissionRefused, match="perform procedures"):
        start(orders["36415"], by)


def test_a_not_yet_competent_ma_is_told_to_get_a_supervisor(ma: User) -> None:
    _, orders = ready_handoff("36415", ma=ma)
    with pytest.raises(SupervisionRequired, match="You aren't signed off for Venipuncture yet"):
        start(orders["36415"], ma)
    assert fresh(orders["36415"]).status == S.ORDERED


def test_a_lapsed_sign_off_counts_as_not_competent(ma: User) -> None:
    signed_off(ma, "36415")
    Competency.objects.filter(user=ma).update(expires_on=timezone.localdate() - dt.timedelta(days=1))
    _, orders = ready_handoff("36415", ma=ma)
    with pytest.raises(SupervisionRequired):
        start(orders["36415"], ma)


def test_a_not_yet_competent_ma_may_start_for_a_later_cosign(ma: User) -> None:
    _, orders = ready_handoff("36415", ma=ma)
    order = start(orders["36415"], ma, cosign=True)
    stored = fresh(order)
    assert (stored.supervision, stored.performer_competent, stored.supervisor) == (Supervision.COSIGN, False, None)
    assert "co-signs afterwards" in ProcedureEvent.objects.get(order=order, action=Action.STARTED).note


def test_a_present_supervisor_confirms_with_their_own_password(ma: User, sup: User) -> None:
    _, orders = ready_handoff("36415", ma=ma)
    order = start(orders["36415"], ma, supervisor=sup)
    stored = fresh(order)
    assert (stored.supervision, stored.supervisor) == (Supervision.PRESENT, sup)
    assert stored.supervisor_confirmed_at is not None
    assert "Supervised by Samira Okafor, present and confirmed by password" in (
        ProcedureEvent.objects.get(order=order, action=Action.STARTED).note
    )


def test_a_wrong_supervisor_password_starts_nothing(ma: User, sup: User) -> None:
    _, orders = ready_handoff("36415", ma=ma)
    with pytest.raises(SupervisorRefused, match="That is not Samira Okafor's password"):
        services.procedure_start(
            order=orders["36415"],
            by=ma,
            supervision=Supervision.PRESENT,
            supervisor=sup,
            supervisor_password="the-mas-own-password",
            request=web_request(),
        )
    assert fresh(orders["36415"]).status == S.ORDERED
    assert not ProcedureDocumentation.objects.exists()


def test_the_performers_password_does_not_confirm_a_supervisor(ma: User, sup: User) -> None:
    ma.set_password("trainee-password-2026")
    ma.save(update_fields=["password"])
    _, orders = ready_handoff("36415", ma=ma)
    with pytest.raises(SupervisorRefused):
        services.procedure_start(
            order=orders["36415"],
            by=ma,
            supervision=Supervision.PRESENT,
            supervisor=sup,
            supervisor_password="trainee-password-2026",
            request=web_request(),
        )


def test_a_present_supervisor_must_be_signed_off_for_the_procedure(ma: User) -> None:
    other = signed_off(
        credentialed(UserFactory(role=roles.ROLE_SUPERVISOR, first_name="Ana", last_name="Ruiz")), "69209"
    )
    _, orders = ready_handoff("36415", ma=ma)
    with pytest.raises(SupervisorRefused, match="Ana Ruiz isn't signed off for Venipuncture"):
        start(orders["36415"], ma, supervisor=other)


def test_a_present_supervisor_needs_a_current_credential(ma: User, sup: User) -> None:
    Credential.objects.filter(user=sup).update(expires_on=timezone.localdate() - dt.timedelta(days=2), issued_on=None)
    _, orders = ready_handoff("36415", ma=ma)
    with pytest.raises(SupervisorRefused, match="Samira Okafor can't supervise: CMA credential"):
        start(orders["36415"], ma, supervisor=sup)


def test_an_ma_cannot_be_named_as_the_supervisor(ma: User, competent_ma: User) -> None:
    _, orders = ready_handoff("36415", ma=ma)
    with pytest.raises(SupervisorRefused, match="Maria Alvarez is not a supervisor"):
        start(orders["36415"], ma, supervisor=competent_ma)


def test_nobody_supervises_themselves(ma: User) -> None:
    trainee_supervisor = credentialed(UserFactory(role=roles.ROLE_SUPERVISOR))
    _, orders = ready_handoff("36415", ma=trainee_supervisor)
    with pytest.raises(SupervisorRefused, match="You can't supervise yourself"):
        start(orders["36415"], trainee_supervisor, supervisor=trainee_supervisor)


def test_a_procedure_without_supervision_rules_needs_no_supervisor(ma: User) -> None:
    assert not procedure_type("94760").supervision_required_if_not_competent
    _, orders = ready_handoff("94760", ma=ma)
    order = start(orders["94760"], ma)
    assert (fresh(order).supervision, fresh(order).performer_competent) == (Supervision.NONE, False)


# --- Documenting -------------------------------------------------------------------------------


def test_documentation_is_saved_with_a_new_version_and_an_event(ma: User) -> None:
    _, orders = ready_handoff("96372", ma=ma)
    order = start(orders["96372"], ma, cosign=True)
    data = full_documentation(order, site="Right deltoid", laterality="right", complications="")

    doc = services.procedure_document(order=order, by=ma, version=1, data=data)

    assert doc.version == 2
    stored = ProcedureDocumentation.objects.get(order=order)
    assert (stored.site, stored.laterality, stored.tolerance) == ("Right deltoid", "right", "well")
    assert (stored.consent_by, stored.consent_from) == (ma, "Patient")
    assert stored.consent_at is not None
    assert StepCompletion.objects.filter(documentation=stored, done_by=ma).count() == order.procedure_type.steps.count()
    # The injection documents no findings, vitals or specimen: those inputs are ignored.
    assert stored.findings == "" and stored.specimen_note == ""
    assert not VitalSigns.objects.filter(documentation=stored).exists()
    event = ProcedureEvent.objects.get(order=order, action=Action.DOCUMENTED)
    assert (event.from_status, event.to_status, event.note) == (S.IN_PROGRESS, S.IN_PROGRESS, "Version 2")


def test_a_stale_version_is_refused_and_nothing_is_written(ma: User) -> None:
    _, orders = ready_handoff("69209", ma=ma)
    signed_off(ma, "69209")
    order = start(orders["69209"], ma)
    services.procedure_document(order=order, by=ma, version=1, data=full_documentation(order, findings="First save"))

    with pytest.raises(StaleDocumentation, match=r"saved this documentation at .* after you opened it"):
        services.procedure_document(order=order, by=ma, version=1, data=full_documentation(order, findings="Stale"))

    stored = ProcedureDocumentation.objects.get(order=order)
    assert (stored.version, stored.findings) == (2, "First save")
    assert actions(order).count(Action.DOCUMENTED) == 1


def test_saving_unchanged_documentation_writes_nothing(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = start(orders["69209"], competent_ma)
    data = full_documentation(order)
    services.procedure_document(order=order, by=competent_ma, version=1, data=data)
    doc = services.procedure_document(order=order, by=competent_ma, version=2, data=data)
    assert doc.version == 2
    assert actions(order).count(Action.DOCUMENTED) == 1


def test_unticking_a_step_removes_it_before_finishing(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = start(orders["69209"], competent_ma)
    services.procedure_document(order=order, by=competent_ma, version=1, data=full_documentation(order))
    first_step = order.procedure_type.steps.first()
    assert first_step is not None
    remaining = frozenset(order.procedure_type.steps.exclude(pk=first_step.pk).values_list("pk", flat=True))
    services.procedure_document(
        order=order, by=competent_ma, version=2, data=full_documentation(order, steps_done=remaining)
    )
    assert set(StepCompletion.objects.values_list("step_id", flat=True)) == set(remaining)


def test_vitals_are_kept_per_phase(competent_ma: User) -> None:
    _, orders = ready_handoff("94640", ma=competent_ma)
    order = start(orders["94640"], competent_ma)
    services.procedure_document(order=order, by=competent_ma, version=1, data=full_documentation(order))
    rows = {v.phase: v for v in VitalSigns.objects.filter(documentation__order=order)}
    assert (rows["before"].spo2, rows["after"].spo2) == (97, 98)
    assert rows["before"].summary == "BP 128/82 · P 76 · SpO₂ 97%"


def test_only_the_performer_documents(competent_ma: User, sup: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = start(orders["69209"], competent_ma)
    with pytest.raises(PermissionRefused, match="Only Maria Alvarez, who performed this procedure"):
        services.procedure_document(order=order, by=sup, version=1, data=full_documentation(order))


def test_an_ordered_procedure_has_nothing_to_document_yet(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    with pytest.raises(DocumentationLocked, match="This procedure is ordered"):
        services.procedure_document(
            order=orders["69209"], by=competent_ma, version=1, data=full_documentation(orders["69209"])
        )


# --- Medication --------------------------------------------------------------------------------


def test_medication_is_recorded_with_its_lot(ma: User) -> None:
    _, orders = ready_handoff("96372", ma=ma)
    order = start(orders["96372"], ma, cosign=True)

    given = services.procedure_add_medication(
        order=order, by=ma, version=1, medication=good_lot(lot_number=" cx4471b ")
    )

    assert (given.drug, given.dose, given.route, given.lot_number) == (
        "Ceftriaxone 250 mg/mL",
        Decimal("250"),
        "IM",
        "CX4471B",
    )
    assert given.administered_by == ma
    assert version(order) == 2
    assert ProcedureEvent.objects.get(order=order, action=Action.MEDICATION).note.startswith("Ceftriaxone")


def test_an_expired_lot_is_refused_and_nothing_is_written(ma: User) -> None:
    _, orders = ready_handoff("96372", ma=ma)
    order = start(orders["96372"], ma, cosign=True)
    yesterday = timezone.localdate() - dt.timedelta(days=1)

    with pytest.raises(ExpiredLot, match=r"Lot OLD1 of Ceftriaxone 250 mg/mL expired on .* Don't give it"):
        services.procedure_add_medication(
            order=order, by=ma, version=1, medication=good_lot(lot_number="OLD1", expiry_date=yesterday)
        )
    assert not MedicationAdministration.objects.exists()
    assert version(order) == 1


def test_a_lot_expiring_today_may_still_be_given(ma: User) -> None:
    _, orders = ready_handoff("96372", ma=ma)
    order = start(orders["96372"], ma, cosign=True)
    services.procedure_add_medication(
        order=order, by=ma, version=1, medication=good_lot(expiry_date=timezone.localdate())
    )
    assert MedicationAdministration.objects.count() == 1


def test_medication_with_a_stale_version_is_refused(ma: User) -> None:
    _, orders = ready_handoff("96372", ma=ma)
    order = start(orders["96372"], ma, cosign=True)
    services.procedure_add_medication(order=order, by=ma, version=1, medication=good_lot())
    with pytest.raises(StaleDocumentation):
        services.procedure_add_medication(order=order, by=ma, version=1, medication=good_lot(lot_number="OTHER"))
    assert MedicationAdministration.objects.count() == 1


# --- Finishing ---------------------------------------------------------------------------------


def test_finishing_without_consent_is_refused(ma: User) -> None:
    _, orders = ready_handoff("96372", ma=ma)
    order = start(orders["96372"], ma, cosign=True)
    services.procedure_add_medication(order=order, by=ma, version=1, medication=good_lot())
    services.procedure_document(order=order, by=ma, version=2, data=full_documentation(order, consent_obtained=False))

    with pytest.raises(DocumentationIncomplete, match=r"Before you finish, record the patient's consent."):
        services.procedure_finish(order=order, by=ma, version=3)
    assert fresh(order).status == S.IN_PROGRESS
    assert Action.PERFORMED not in actions(order)


def test_finishing_without_the_time_out_is_refused(competent_ma: User) -> None:
    _, orders = ready_handoff("12001", ma=competent_ma)
    order = start(orders["12001"], competent_ma)
    services.procedure_add_medication(
        order=order,
        by=competent_ma,
        version=1,
        medication=good_lot(drug="Lidocaine 1%", dose=Decimal("3"), unit="mL", route="LOCAL"),
    )
    services.procedure_document(
        order=order, by=competent_ma, version=2, data=full_documentation(order, timeout_done=False)
    )
    with pytest.raises(DocumentationIncomplete, match="do the time-out"):
        services.procedure_finish(order=order, by=competent_ma, version=3)


def test_the_refusal_lists_everything_still_missing(competent_ma: User) -> None:
    _, orders = ready_handoff("10005", ma=competent_ma)
    order = start(orders["10005"], competent_ma)
    with pytest.raises(DocumentationIncomplete) as refused:
        services.procedure_finish(order=order, by=competent_ma, version=1)
    assert str(refused.value) == (
        "Before you finish, record the patient's consent; do the time-out; tick checklist steps 1, 2, 3, 4, 5, 6; "
        "give the body site and laterality; describe the findings; record the medication given; "
        "record vital signs before and after; describe the specimen collected; record how the patient tolerated it."
    )


def test_finishing_with_a_stale_version_is_refused(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = documented(start(orders["69209"], competent_ma), competent_ma)
    with pytest.raises(StaleDocumentation):
        services.procedure_finish(order=order, by=competent_ma, version=1)
    assert fresh(order).status == S.IN_PROGRESS


def test_a_competent_performers_procedure_completes_with_a_charge(competent_ma: User, clinician: User) -> None:
    handoff, orders = ready_handoff("69209", "36415", ma=competent_ma)
    order = documented(start(orders["69209"], competent_ma), competent_ma, laterality="bilateral")

    finished(order, competent_ma)

    stored = fresh(order)
    assert stored.status == S.COMPLETED
    assert stored.performed_at is not None and stored.completed_at is not None
    assert actions(order)[-2:] == [Action.PERFORMED, Action.COMPLETED]
    charge = ChargeLine.objects.get(order=order)
    assert (charge.code, charge.units, charge.modifiers) == ("69209", 1, "50")
    assert (charge.performer, charge.supervisor, charge.patient) == (competent_ma, None, handoff.patient)
    assert charge.ordering_clinician == handoff.ordering_clinician
    assert charge.service_date == timezone.localdate()
    # The venipuncture is still open: the handoff waits.
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.IN_PROGRESS
    assert not Competency.objects.filter(user=competent_ma, supervised_count__gt=0).exists()


@pytest.mark.parametrize(("laterality", "modifier"), [("left", "LT"), ("right", "RT"), ("bilateral", "50")])
def test_laterality_becomes_the_charge_modifier(competent_ma: User, laterality: str, modifier: str) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    finished(documented(start(orders["69209"], competent_ma), competent_ma, laterality=laterality), competent_ma)
    assert ChargeLine.objects.get().modifiers == modifier


def test_a_procedure_without_a_laterality_modifier_bills_none(competent_ma: User) -> None:
    _, orders = ready_handoff("36415", ma=competent_ma)
    finished(documented(start(orders["36415"], competent_ma), competent_ma, laterality="left"), competent_ma)
    assert ChargeLine.objects.get().modifiers == ""


def test_a_present_supervisors_procedure_completes_and_counts_as_supervised(ma: User, sup: User) -> None:
    _, orders = ready_handoff("36415", ma=ma)
    order = finished(documented(start(orders["36415"], ma, supervisor=sup), ma), ma)

    assert fresh(order).status == S.COMPLETED
    assert ChargeLine.objects.get(order=order).supervisor == sup
    assert Competency.objects.get(user=ma, procedure_type__code="36415").supervised_count == 1
    assert (
        ProcedureEvent.objects.get(order=order, action=Action.COMPLETED).note == "Supervised by Samira Okafor, present"
    )


def test_a_trainees_procedure_waits_for_a_cosign_and_bills_nothing_yet(ma: User) -> None:
    order = awaiting_cosign("36415", ma=ma)
    assert fresh(order).status == S.AWAITING_COSIGN
    assert actions(order)[-2:] == [Action.PERFORMED, Action.COSIGN_REQUESTED]
    assert not ChargeLine.objects.exists()


def test_work_awaiting_cosign_no_longer_holds_the_patient_or_the_station(ma: User) -> None:
    order = awaiting_cosign("36415", ma=ma)

    handoff = Handoff.objects.select_related("station").get(pk=order.handoff_id)
    assert open_procedure_count(handoff) == 0
    assert handoff.status == HandoffStatus.COMPLETED
    assert HandoffEvent.objects.get(handoff=handoff, action=HandoffEvent.Action.COMPLETED).actor == ma
    station = handoff.station
    assert station is not None and station.state == StationState.NEEDS_TURNOVER
    assert fresh(order).status == S.AWAITING_COSIGN  # still the supervisor's to co-sign or return
    station_turnover(station=station, by=ma)
    station.refresh_from_db()
    assert station.state == StationState.READY  # the next patient needn't wait for the co-sign


def test_a_procedure_still_at_the_patient_keeps_the_handoff_open(ma: User) -> None:
    handoff, orders = ready_handoff("36415", "96372", ma=ma)
    finished(documented(start(orders["36415"], ma, cosign=True), ma), ma)

    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.IN_PROGRESS
    assert hooks.open_items(handoff) == ["Therapeutic injection, IM or SC (ordered)"]


def test_a_cosign_after_the_patient_left_completes_the_procedure_and_bills_it(ma: User, sup: User) -> None:
    order = awaiting_cosign("36415", ma=ma)
    handoff_closed_at = Handoff.objects.get(pk=order.handoff_id).closed_at

    services.procedure_cosign(order=order, by=sup)

    assert fresh(order).status == S.COMPLETED
    assert ChargeLine.objects.get(order=order).supervisor == sup
    handoff = Handoff.objects.get(pk=order.handoff_id)
    assert (handoff.status, handoff.closed_at) == (HandoffStatus.COMPLETED, handoff_closed_at)


def test_work_returned_after_the_patient_left_is_corrected_and_resubmitted(ma: User, sup: User) -> None:
    order = awaiting_cosign("36415", ma=ma)
    services.procedure_return(order=order, by=sup, comment="Give the site.")

    services.procedure_document(
        order=order, by=ma, version=version(order), data=full_documentation(order, site="Right antecubital fossa")
    )
    services.procedure_resubmit(order=order, by=ma)
    services.procedure_cosign(order=order, by=sup)

    assert fresh(order).status == S.COMPLETED
    assert Handoff.objects.get(pk=order.handoff_id).status == HandoffStatus.COMPLETED


def test_only_the_performer_finishes(competent_ma: User, sup: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = documented(start(orders["69209"], competent_ma), competent_ma)
    with pytest.raises(PermissionRefused):
        services.procedure_finish(order=order, by=sup, version=version(order))


# --- Co-sign, return, resubmit -----------------------------------------------------------------


def test_a_supervisor_cosigns_and_the_procedure_completes(ma: User, sup: User) -> None:
    order = awaiting_cosign("36415", ma=ma)

    services.procedure_cosign(order=order, by=sup)

    stored = fresh(order)
    assert (stored.status, stored.cosigned_by) == (S.COMPLETED, sup)
    assert stored.cosigned_at is not None
    event = ProcedureEvent.objects.get(order=order, action=Action.COSIGNED)
    assert (event.from_status, event.to_status, event.actor) == (S.AWAITING_COSIGN, S.COMPLETED, sup)
    assert ChargeLine.objects.get(order=order).supervisor == sup
    assert Competency.objects.get(user=ma, procedure_type__code="36415").supervised_count == 1


def test_a_supervisor_cannot_cosign_their_own_work() -> None:
    supervisor = credentialed(UserFactory(role=roles.ROLE_SUPERVISOR, first_name="Ana", last_name="Ruiz"))
    order = awaiting_cosign("36415", ma=supervisor)
    with pytest.raises(SelfReview, match="You performed this procedure yourself"):
        services.procedure_cosign(order=order, by=supervisor)
    assert fresh(order).status == S.AWAITING_COSIGN


def test_the_database_refuses_a_self_cosign_whatever_wrote_it(ma: User) -> None:
    order = awaiting_cosign("36415", ma=ma)
    with pytest.raises(IntegrityError, match="procedureorder_no_self_cosign"), transaction.atomic():
        ProcedureOrder.objects.filter(pk=order.pk).update(cosigned_by=ma)


def test_an_ma_cannot_cosign(ma: User, competent_ma: User) -> None:
    order = awaiting_cosign("36415", ma=ma)
    with pytest.raises(PermissionRefused, match="co-sign procedures"):
        services.procedure_cosign(order=order, by=competent_ma)


def test_a_cosigner_must_be_signed_off_for_the_procedure(ma: User) -> None:
    reviewer = signed_off(credentialed(UserFactory(role=roles.ROLE_SUPERVISOR)), "69209")
    order = awaiting_cosign("36415", ma=ma)
    with pytest.raises(SupervisorRefused, match="You aren't signed off as competent for Venipuncture yourself"):
        services.procedure_cosign(order=order, by=reviewer)


def test_a_cosigner_needs_a_current_credential(ma: User, sup: User) -> None:
    order = awaiting_cosign("36415", ma=ma)
    Credential.objects.filter(user=sup).update(expires_on=timezone.localdate() - dt.timedelta(days=1), issued_on=None)
    with pytest.raises(CredentialExpired):
        services.procedure_cosign(order=order, by=sup)


def test_only_work_awaiting_cosign_can_be_cosigned(ma: User, sup: User) -> None:
    _, orders = ready_handoff("36415", ma=ma)
    order = start(orders["36415"], ma, cosign=True)
    with pytest.raises(TransitionNotAllowed, match="in progress; only work awaiting co-sign can be co-signed"):
        services.procedure_cosign(order=order, by=sup)


def test_a_return_needs_a_comment(ma: User, sup: User) -> None:
    order = awaiting_cosign("96372", ma=ma)
    with pytest.raises(TransitionNotAllowed, match="Say what needs correcting"):
        services.procedure_return(order=order, by=sup, comment="   ")
    assert fresh(order).status == S.AWAITING_COSIGN


def test_a_supervisor_returns_work_with_a_comment(ma: User, sup: User) -> None:
    order = awaiting_cosign("96372", ma=ma)
    services.procedure_return(order=order, by=sup, comment="Document the injection site: which deltoid?")
    stored = fresh(order)
    assert (stored.status, stored.returned_by, stored.return_comment) == (
        S.RETURNED,
        sup,
        "Document the injection site: which deltoid?",
    )
    event = ProcedureEvent.objects.get(order=order, action=Action.RETURNED)
    assert (event.from_status, event.to_status, event.note) == (
        S.AWAITING_COSIGN,
        S.RETURNED,
        "Document the injection site: which deltoid?",
    )
    assert not ChargeLine.objects.exists()


def test_returned_work_needs_a_correction_before_it_is_resubmitted(ma: User, sup: User) -> None:
    order = awaiting_cosign("96372", ma=ma)
    services.procedure_return(order=order, by=sup, comment="Which deltoid?")
    with pytest.raises(TransitionNotAllowed, match="Make the correction first"):
        services.procedure_resubmit(order=order, by=ma)
    assert fresh(order).status == S.RETURNED


def test_corrected_documentation_goes_back_for_cosign(ma: User, sup: User) -> None:
    order = awaiting_cosign("96372", ma=ma)
    services.procedure_return(order=order, by=sup, comment="Which deltoid?")
    services.procedure_document(
        order=order, by=ma, version=version(order), data=full_documentation(order, site="Left deltoid")
    )
    services.procedure_resubmit(order=order, by=ma, note="Site corrected")
    assert fresh(order).status == S.AWAITING_COSIGN
    assert ProcedureEvent.objects.filter(order=order, action=Action.RESUBMITTED, note="Site corrected").exists()
    services.procedure_cosign(order=order, by=sup)
    assert fresh(order).status == S.COMPLETED


def test_an_addendum_is_a_correction_too(ma: User, sup: User) -> None:
    order = awaiting_cosign("96372", ma=ma)
    services.procedure_return(order=order, by=sup, comment="Lot number?")
    services.procedure_add_addendum(order=order, by=ma, reason="correction", text="Lot confirmed on the vial: CX4471B.")
    services.procedure_resubmit(order=order, by=ma)
    assert fresh(order).status == S.AWAITING_COSIGN


def test_only_the_performer_resubmits(ma: User, sup: User, competent_ma: User) -> None:
    order = awaiting_cosign("96372", ma=ma)
    services.procedure_return(order=order, by=sup, comment="Lot number?")
    services.procedure_add_addendum(order=order, by=ma, reason="correction", text="Lot confirmed.")
    with pytest.raises(PermissionRefused):
        services.procedure_resubmit(order=order, by=competent_ma)


def test_a_supervisor_cannot_return_their_own_work() -> None:
    supervisor = credentialed(UserFactory(role=roles.ROLE_SUPERVISOR))
    order = awaiting_cosign("36415", ma=supervisor)
    with pytest.raises(SelfReview):
        services.procedure_return(order=order, by=supervisor, comment="Looks wrong")


# --- After completion --------------------------------------------------------------------------


def test_completed_documentation_cannot_be_edited(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = finished(documented(start(orders["69209"], competent_ma), competent_ma), competent_ma)
    before = ProcedureDocumentation.objects.get(order=order)

    with pytest.raises(DocumentationLocked, match=r"completed: its documentation can't be changed. Add an addendum"):
        services.procedure_document(
            order=order, by=competent_ma, version=before.version, data=full_documentation(order, findings="Changed")
        )
    with pytest.raises(DocumentationLocked, match="medication can't be added"):
        services.procedure_add_medication(order=order, by=competent_ma, version=before.version, medication=good_lot())

    after = ProcedureDocumentation.objects.get(order=order)
    assert (after.version, after.findings) == (before.version, before.findings)


def test_an_addendum_keeps_the_original_documentation(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = finished(documented(start(orders["69209"], competent_ma), competent_ma), competent_ma)
    original = ProcedureDocumentation.objects.get(order=order)

    addendum = services.procedure_add_addendum(
        order=order, by=competent_ma, reason="correction", text="Left canal was irrigated twice, not once."
    )

    assert (addendum.author, addendum.reason) == (competent_ma, Addendum.Reason.CORRECTION)
    kept = ProcedureDocumentation.objects.get(order=order)
    assert (kept.version, kept.findings) == (original.version, original.findings)
    event = ProcedureEvent.objects.get(order=order, action=Action.ADDENDUM)
    assert (event.from_status, event.to_status) == (S.COMPLETED, S.COMPLETED)
    assert event.note == "Correction: Left canal was irrigated twice, not once."
    assert fresh(order).status == S.COMPLETED


def test_an_addendum_needs_documented_work(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = start(orders["69209"], competent_ma)
    with pytest.raises(TransitionNotAllowed, match="Only documented procedures take addenda"):
        services.procedure_add_addendum(order=order, by=competent_ma, reason="correction", text="x")


def test_an_addendum_comes_from_the_performer_or_a_supervisor(competent_ma: User, ma: User, sup: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = finished(documented(start(orders["69209"], competent_ma), competent_ma), competent_ma)
    with pytest.raises(PermissionRefused, match="Only Maria Alvarez or a supervisor"):
        services.procedure_add_addendum(order=order, by=ma, reason="clarification", text="Not mine to add")
    services.procedure_add_addendum(order=order, by=sup, reason="clarification", text="Reviewed with the MA.")
    assert Addendum.objects.filter(order=order).count() == 1


# --- Not done ----------------------------------------------------------------------------------


def test_an_ordered_procedure_can_be_recorded_as_not_done(competent_ma: User) -> None:
    handoff, orders = ready_handoff("69209", "36415", ma=competent_ma)
    start(orders["36415"], competent_ma)

    services.procedure_not_done(
        order=orders["69209"], by=competent_ma, reason="patient_declined", note="Ear feels fine now"
    )

    stored = fresh(orders["69209"])
    assert (stored.status, stored.not_done_reason, stored.not_done_note) == (
        S.NOT_DONE,
        "patient_declined",
        "Ear feels fine now",
    )
    assert (
        ProcedureEvent.objects.get(order=stored, action=Action.NOT_DONE).note == "Patient declined: Ear feels fine now"
    )
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.IN_PROGRESS  # the venipuncture is still going


def test_not_done_needs_a_reason(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    with pytest.raises(TransitionNotAllowed, match="Choose why"):
        services.procedure_not_done(order=orders["69209"], by=competent_ma, reason="")


def test_when_every_item_is_done_or_not_done_the_handoff_completes(competent_ma: User) -> None:
    handoff, orders = ready_handoff("69209", "36415", ma=competent_ma)
    finished(documented(start(orders["36415"], competent_ma), competent_ma), competent_ma)

    services.procedure_not_done(order=orders["69209"], by=competent_ma, reason="equipment_unavailable")

    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.COMPLETED
    assert Station.objects.get(pk=handoff.station_id).state == StationState.NEEDS_TURNOVER
    assert ChargeLine.objects.count() == 1  # nothing is charged for the one not done


def test_not_done_before_anything_started_still_closes_the_handoff(competent_ma: User) -> None:
    handoff, orders = ready_handoff("69209", ma=competent_ma)
    services.procedure_not_done(order=orders["69209"], by=competent_ma, reason="contraindicated", note="Perforation")
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.COMPLETED
    assert list(handoff.events.values_list("action", flat=True))[-2:] == ["started", "completed"]


def test_a_started_procedure_can_be_stopped_as_not_done(competent_ma: User) -> None:
    _, orders = ready_handoff("36415", ma=competent_ma)
    order = start(orders["36415"], competent_ma)
    services.procedure_not_done(order=order, by=competent_ma, reason="deferred", note="Patient felt faint")
    assert fresh(order).status == S.NOT_DONE


def test_completed_work_cannot_become_not_done(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = finished(documented(start(orders["69209"], competent_ma), competent_ma), competent_ma)
    with pytest.raises(TransitionNotAllowed):
        services.procedure_not_done(order=order, by=competent_ma, reason="deferred")


def test_an_open_lab_test_keeps_the_handoff_open(competent_ma: User) -> None:
    handoff, orders = ready_handoff("69209", ma=competent_ma)
    test_orders_add(handoff=handoff, tests=[TestDefinition.objects.filter(is_active=True)[0]], by=competent_ma)
    finished(documented(start(orders["69209"], competent_ma), competent_ma), competent_ma)
    handoff.refresh_from_db()
    assert handoff.status == HandoffStatus.IN_PROGRESS


# --- Competency --------------------------------------------------------------------------------


def test_a_supervisor_signs_an_ma_off(ma: User, sup: User) -> None:
    competency = services.competency_sign_off(user=ma, procedure_type=procedure_type("36415"), by=sup)
    assert (competency.signed_off_by, competency.expires_on) == (sup, timezone.localdate() + dt.timedelta(days=365))
    assert services.is_competent(ma, procedure_type("36415"))
    # From now on the MA performs venipuncture alone.
    _, orders = ready_handoff("36415", ma=ma)
    assert fresh(start(orders["36415"], ma)).supervision == Supervision.NONE


def test_a_sign_off_keeps_the_supervised_count(ma: User, sup: User) -> None:
    services.procedure_cosign(order=awaiting_cosign("36415", ma=ma), by=sup)
    competency = services.competency_sign_off(user=ma, procedure_type=procedure_type("36415"), by=sup)
    assert competency.supervised_count == 1


def test_nobody_signs_themselves_off(sup: User) -> None:
    with pytest.raises(SelfReview):
        services.competency_sign_off(user=sup, procedure_type=procedure_type("36415"), by=sup)


def test_an_ma_cannot_sign_anyone_off(ma: User, competent_ma: User) -> None:
    with pytest.raises(PermissionRefused):
        services.competency_sign_off(user=ma, procedure_type=procedure_type("36415"), by=competent_ma)


def test_only_staff_who_perform_procedures_are_signed_off(lab_tech: User, sup: User) -> None:
    with pytest.raises(TransitionNotAllowed, match="doesn't perform procedures"):
        services.competency_sign_off(user=lab_tech, procedure_type=procedure_type("36415"), by=sup)


def test_a_sign_off_runs_into_the_future(ma: User, sup: User) -> None:
    with pytest.raises(TransitionNotAllowed, match="future"):
        services.competency_sign_off(
            user=ma, procedure_type=procedure_type("36415"), by=sup, expires_on=timezone.localdate()
        )


# --- Append-only and history -------------------------------------------------------------------

REFUSED = "Cannot update or delete rows"


@pytest.mark.parametrize("model", [ProcedureEvent, MedicationAdministration, Addendum, ChargeLine])
def test_event_and_record_rows_are_append_only(model: type) -> None:
    one_of_everything()
    row = model._default_manager.first()
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        model._default_manager.filter(pk=row.pk).update(**{model._meta.pk.name: row.pk})
    with pytest.raises(DatabaseError, match=REFUSED), transaction.atomic():
        model._default_manager.filter(pk=row.pk).delete()


def test_documentation_keeps_every_version_in_its_history(competent_ma: User) -> None:
    _, orders = ready_handoff("69209", ma=competent_ma)
    order = start(orders["69209"], competent_ma)
    services.procedure_document(order=order, by=competent_ma, version=1, data=full_documentation(order, findings="Wax"))
    services.procedure_document(
        order=order, by=competent_ma, version=2, data=full_documentation(order, findings="Clear")
    )
    history = apps.get_model("procedures", "ProcedureDocumentationHistory")
    assert list(history.objects.filter(order=order).order_by("pgh_id").values_list("findings", flat=True)) == [
        "",
        "Wax",
        "Clear",
    ]


def test_vitals_validation_belongs_to_the_form_not_the_dataclass() -> None:
    assert Vitals().is_empty()
    assert not Vitals(pulse=60).is_empty()
