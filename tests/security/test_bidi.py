"""No bidirectional control characters in what the app saves (backoffice.text): "Trojan Source" text
can't reorder a patient's name, a note or a lab's comment on screen. A lab's raw message is kept as sent."""

import pytest

from backoffice.models import Handoff, HandoffEvent, Patient, User
from backoffice.services import handoff_cancel, handoff_create
from backoffice.text import BIDI_CONTROLS, strip_bidi
from lab.models import InboundMessage, Result
from lab.sendouts.intake import receive
from lab.workflow import IntakeChannel
from tests.factories import PatientFactory
from tests.lab.hl7.intake_helpers import corpus_bytes, corpus_orders

pytestmark = pytest.mark.django_db

RLO, LRI, PDI = "\u202e", "\u2066", "\u2069"


def test_every_control_is_stripped_and_the_marks_real_text_uses_are_kept() -> None:
    assert strip_bidi("".join(sorted(BIDI_CONTROLS)) + "Ana") == "Ana"
    assert strip_bidi("\u05e9\u05dc\u05d5\u05dd\u200f 12") == "\u05e9\u05dc\u05d5\u05dd\u200f 12"  # RLM kept


def test_a_name_and_a_note_are_saved_without_them_whoever_writes_them(
    clinician: User,
    exam_room,
    medical_assistant: User,  # type: ignore[no-untyped-def]
) -> None:
    patient = PatientFactory(family_name=f"Gar{RLO}cia", given_name=f"{LRI}Ana{PDI}")
    patient.refresh_from_db()
    assert (patient.family_name, patient.given_name) == ("Garcia", "Ana")
    handoff = handoff_create(
        patient=patient,
        ordering_clinician=clinician,
        exam_room=exam_room,
        clinical_note=f"Give 10 mg{RLO} gm 01",
        by=medical_assistant,
    )
    assert Handoff.objects.get(pk=handoff.pk).clinical_note == "Give 10 mg gm 01"
    handoff_cancel(handoff=handoff, by=clinician, reason=f"Patient left{RLO} early")
    event = HandoffEvent.objects.filter(handoff=handoff).latest("pk")
    assert event.note == "Patient left early"
    assert not Patient.objects.filter(family_name__contains=RLO).exists()


def test_a_labs_comment_is_filed_without_them_and_its_raw_message_kept_as_sent() -> None:
    corpus_orders("ORD-2026-000049")
    sent = corpus_bytes("nte_comments.hl7").replace(b"Vitamin D deficiency", f"Vitamin{RLO} D deficiency".encode())
    [received] = receive(sent, channel=IntakeChannel.FILE, source="nte-rlo.hl7")
    [vitamin_d] = Result.objects.filter(order__send_out__placer_number="ORD-2026-000049")
    assert vitamin_d.notes.startswith("Vitamin D deficiency")
    assert RLO in InboundMessage.objects.get(pk=received.message.pk).raw
