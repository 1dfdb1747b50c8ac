"""Working the desk's two queues: attach a message to the right order (the identity check still applies),
or resolve it with a reason. Every step is recorded on the message; nothing is filed half-way."""

from __future__ import annotations

import pytest

from backoffice import roles
from backoffice.services import system_user
from backoffice.workflow import PermissionRefused, TransitionNotAllowed
from lab.models import InboundMessage, InboundMessageEvent, Result, SendOut
from lab.sendouts.carried_over import open_send_outs_import
from lab.sendouts.intake import AttachRefused, inbound_attach, inbound_resolve
from lab.workflow import IntakeOutcome, SendOutStatus
from tests.factories import UserFactory
from tests.lab.hl7.intake_helpers import corpus_orders, csv_text, desk_user, intake, order_row

pytestmark = pytest.mark.django_db

IO = IntakeOutcome
Action = InboundMessageEvent.Action

# The order the unknown TSH really was for: the lab sent another placer and accession.
LINDQVIST = {
    "mrn": "M100099",
    "family_name": "Lindqvist",
    "given_name": "Erik",
    "date_of_birth": "1967-03-18",
    "sex": "M",
    "placer_number": "ORD-2026-000070",
    "accession": "S000010070",
}


def lindqvists_order() -> SendOut:
    corpus_orders("ORD-2026-000050")
    row = order_row("ORD-2026-000050") | LINDQVIST
    open_send_outs_import(text=csv_text([row]), by=desk_user())
    return SendOut.objects.select_related("order__specimen").get(placer_number="ORD-2026-000070")


def unmatched() -> InboundMessage:
    [received] = intake("unknown_accession.hl7")
    assert received.message.outcome == IO.UNMATCHED
    return received.message


def test_an_unmatched_result_attached_by_accession_is_filed_and_the_attach_recorded() -> None:
    target = lindqvists_order()
    message = unmatched()
    tech = desk_user()
    done = inbound_attach(message=message, targets={0: " S000010070 "}, by=tech, note="Lab typo, confirmed by phone")
    assert (done.outcome, done.send_out, done.observations_filed) == (IO.MATCHED, target, 1)
    assert (done.resolved_by, done.is_open) == (tech, False)
    assert done.resolution == "Attached to S000010070: Lab typo, confirmed by phone"
    [tsh] = Result.objects.filter(order=target.order)
    assert (tsh.inbound, tsh.display_value, tsh.released_by) == (message, "2.310 m[IU]/L", tech)
    system = system_user().pk  # the intake stored and queued it; the tech attached and filed it
    assert list(done.events.values_list("action", "actor")) == [
        (Action.RECEIVED, system),
        (Action.UNMATCHED, system),
        (Action.ATTACHED, tech.pk),
        (Action.FILED, tech.pk),
    ]
    target.refresh_from_db()
    assert target.status == SendOutStatus.FINAL


def test_attaching_by_placer_number_works_too() -> None:
    target = lindqvists_order()
    done = inbound_attach(message=unmatched(), targets={0: "ORD-2026-000070"}, by=desk_user())
    assert (done.outcome, done.send_out) == (IO.MATCHED, target)


def test_attaching_to_another_patients_order_is_refused_recorded_and_files_nothing() -> None:
    corpus_orders("ORD-2026-000042")
    message = unmatched()
    tech = desk_user()
    with pytest.raises(AttachRefused, match="disagrees with placer ORD-2026-000042 on family name, given name"):
        inbound_attach(message=message, targets={0: "S000010019"}, by=tech)
    message.refresh_from_db()
    assert (message.outcome, message.is_open, message.send_out) == (IO.UNMATCHED, True, None)
    refused = message.events.get(action=Action.ATTACH_REFUSED)
    assert refused.actor == tech and "Attach it to that patient's order, or resolve it with a reason" in refused.note
    assert not Result.objects.exists()


def test_an_identity_hold_is_attached_only_to_an_order_of_the_patient_the_message_names() -> None:
    corpus_orders("ORD-2026-000042")
    [held] = intake("identity_mismatch.hl7")
    message = held.message
    with pytest.raises(AttachRefused):
        inbound_attach(message=message, targets={0: "ORD-2026-000042"}, by=desk_user())
    # Rosalind's own order, under her own MRN: her name and date of birth agree, so it files.
    row = order_row("ORD-2026-000042") | {
        "mrn": "M100077",
        "given_name": "Rosalind",
        "date_of_birth": "1981-02-14",
        "placer_number": "ORD-2026-000071",
        "accession": "S000010071",
    }
    open_send_outs_import(text=csv_text([row]), by=desk_user())
    done = inbound_attach(message=message, targets={0: "S000010071"}, by=desk_user())
    assert (done.outcome, done.send_out.placer_number) == (IO.MATCHED, "ORD-2026-000071")
    assert "the lab's MRN M100001 is not the order's (M100077); name and DOB agree" in done.detail
    assert Result.objects.get().patient.mrn == "M100077"


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "Scan or type the placer number or accession for order 1."),
        ("S999", "S999: no order has placer — / accession S999."),
    ],
)
def test_attaching_without_a_known_order_says_what_to_do(typed: str, why: str) -> None:
    corpus_orders("ORD-2026-000042")
    message = unmatched()
    with pytest.raises(TransitionNotAllowed) as refused:
        inbound_attach(message=message, targets={0: typed}, by=desk_user())
    assert str(refused.value) == why
    assert not message.events.filter(action=Action.ATTACHED).exists()


def test_a_message_is_filed_all_or_nothing_so_each_of_its_orders_is_named() -> None:
    corpus_orders("ORD-2026-000047")  # the message's second order (ORD-2026-000048) is not ours
    [received] = intake("cwe_sn_results.hl7")
    message = received.message
    assert message.outcome == IO.UNMATCHED and not Result.objects.exists()
    assert message.detail == "No order found: no order has placer ORD-2026-000048 / accession S000010026"
    with pytest.raises(TransitionNotAllowed, match="for order 2"):
        inbound_attach(message=message, targets={0: "ORD-2026-000047"}, by=desk_user())
    corpus_orders("ORD-2026-000048")
    done = inbound_attach(message=message, targets={0: "ORD-2026-000047", 1: "S000010026"}, by=desk_user())
    assert (done.outcome, done.observations_filed) == (IO.MATCHED, 8)


def test_resolving_keeps_the_message_files_nothing_and_needs_a_reason() -> None:
    corpus_orders("ORD-2026-000042")
    message = unmatched()
    tech = desk_user()
    with pytest.raises(TransitionNotAllowed, match="Say why this message needs nothing filed"):
        inbound_resolve(message=message, reason="   ", by=tech)
    done = inbound_resolve(message=message, reason="Not our patient: the lab misrouted it", by=tech)
    assert (done.outcome, done.resolved_by, done.resolution, done.is_open) == (
        IO.UNMATCHED,
        tech,
        "Not our patient: the lab misrouted it",
        False,
    )
    assert done.events.get(action=Action.RESOLVED).note == "Not our patient: the lab misrouted it"
    with pytest.raises(TransitionNotAllowed, match="This message was resolved"):
        inbound_resolve(message=done, reason="again", by=tech)
    with pytest.raises(TransitionNotAllowed, match="This message was resolved"):
        inbound_attach(message=done, targets={0: "S000010019"}, by=tech)
    assert InboundMessage.objects.get(pk=message.pk).raw.startswith("MSH|")


def test_a_filed_message_is_not_worked_from_the_queues() -> None:
    corpus_orders("ORD-2026-000042")
    [received] = intake("national_251_cmp_final.hl7")
    with pytest.raises(TransitionNotAllowed, match="only an unmatched or held one is worked here"):
        inbound_resolve(message=received.message, reason="tidy up", by=desk_user())


@pytest.mark.parametrize("role", [roles.ROLE_CLINICIAN, roles.ROLE_MEDICAL_ASSISTANT, roles.ROLE_ADMIN])
def test_only_the_send_out_desk_works_the_queues(role: str) -> None:
    corpus_orders("ORD-2026-000042")
    message = unmatched()
    someone = UserFactory(role=role)
    with pytest.raises(PermissionRefused):
        inbound_resolve(message=message, reason="not mine", by=someone)
    with pytest.raises(PermissionRefused):
        inbound_attach(message=message, targets={0: "S000010019"}, by=someone)
    supervisor = UserFactory(role=roles.ROLE_SUPERVISOR)
    assert (
        inbound_resolve(message=message, reason="Duplicate of a faxed report", by=supervisor).resolved_by == supervisor
    )


def test_a_lab_s_number_outside_the_clinic_s_mrn_format_is_not_read_as_ours(settings) -> None:
    # The same held message, with the clinic's MRNs in another format: the lab's M100001 can't be
    # one of ours, so the message names no MRN of ours and attaching notes no MRN difference.
    settings.MRN_PATTERN = r"M[0-9]{6}|Q[0-9]{7}"
    corpus_orders("ORD-2026-000042")
    settings.MRN_PATTERN = r"Q[0-9]{7}"
    [held] = intake("identity_mismatch.hl7")
    message = held.message
    assert "MRN" not in message.patient_text
    row = order_row("ORD-2026-000042") | {
        "mrn": "Q1000077",
        "given_name": "Rosalind",
        "date_of_birth": "1981-02-14",
        "placer_number": "ORD-2026-000071",
        "accession": "S000010071",
    }
    open_send_outs_import(text=csv_text([row]), by=desk_user())
    done = inbound_attach(message=message, targets={0: "S000010071"}, by=desk_user())
    assert done.outcome == IO.MATCHED
    assert "the lab's MRN" not in done.detail
