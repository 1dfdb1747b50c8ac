"""The demo's send-out desk: three labs, one per dialect profile, a send-out in every state it shows, and
what the labs send back through the HL7 intake (every outcome the desk's inbound pages show)."""

from collections import Counter
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from pytest_django import Settings

from backoffice.devtools.seed.sendout_results import RESULT_KEYS
from backoffice.devtools.seed.sendouts import DEMO_SENDOUT_KEYS, ST_BRENDANS
from lab.hl7.build import is_valid_npi
from lab.models import (
    AskAtOrderEntry,
    CriticalCall,
    DialectProfile,
    InboundMessage,
    Orderable,
    OutboundMessage,
    ReferenceLab,
    Result,
    SendOut,
    Shipment,
)
from lab.models.sendouts import CLIA_NUMBER
from lab.workflow import (
    CriticalCallStatus,
    IntakeChannel,
    IntakeOutcome,
    MessageStatus,
    ResultStatus,
    SendOutStatus,
    ShipmentStatus,
    TestOrderStatus,
)
from tests.lab.hl7.strict import assert_strictly_valid

pytestmark = pytest.mark.django_db
IO = IntakeOutcome


def test_the_demo_desk_has_every_state_and_a_second_run_adds_nothing(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", stdout=StringIO())
    labs = list(ReferenceLab.objects.select_related("profile"))
    assert {lab.profile.name for lab in labs} == set(DialectProfile.objects.values_list("name", flat=True)) & {
        "National reference lab, HL7 2.5.1 LRI",
        "Legacy HL7 2.3 interface",
        "Hospital outreach LIS, HL7 2.3.1",
    }
    assert len(labs) == 3
    for lab in labs:
        CLIA_NUMBER(lab.clia_number)
        lab.full_clean()
    assert sorted(lab.transport for lab in labs) == ["folder", "mllp", "mllp"]
    assert all(lab.mllp_host == "127.0.0.1" for lab in labs if lab.transport == "mllp")
    send_out_tests = Orderable.objects.values("test").distinct().count()
    assert all(lab.orderables.count() == send_out_tests for lab in labs)  # every send-out test, own codes
    assert Orderable.objects.filter(is_default=True).count() == send_out_tests
    assert AskAtOrderEntry.objects.filter(loinc_code="49541-6", orderable__test__short_name="Lipids").count() == 3

    demo = SendOut.objects.filter(order__handoff__uuid__in=DEMO_SENDOUT_KEYS)
    statuses = set(demo.values_list("status", flat=True))
    assert {SendOutStatus.WAITING, SendOutStatus.PACKED, SendOutStatus.SENT} <= statuses
    assert Shipment.objects.filter(status=ShipmentStatus.OPEN).count() == 1
    messages = set(OutboundMessage.objects.values_list("status", flat=True))
    assert {MessageStatus.ACCEPTED, MessageStatus.RETRYING, MessageStatus.DELIVERED} <= messages
    assert demo.filter(overdue_since__isnull=False).count() == 1
    for message in OutboundMessage.objects.select_related("send_out__order__handoff__ordering_clinician"):
        assert_strictly_valid(message.text)
        assert is_valid_npi(message.send_out.order.handoff.ordering_clinician.npi)
    for send_out in demo.exclude(sent_at=None):
        assert send_out.sent_at is not None and send_out.expected_by is not None
        assert send_out.sent_at < send_out.expected_by
    counts = (SendOut.objects.count(), Shipment.objects.count(), OutboundMessage.objects.count())

    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Send-outs: demo send-outs already there; none added." in out.getvalue()
    assert "Reference labs: 0 added, 3 already there" in out.getvalue()
    assert (SendOut.objects.count(), Shipment.objects.count(), OutboundMessage.objects.count()) == counts


def test_the_demo_labs_results_come_back_through_the_intake_once(settings: Settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("seed_demo", stdout=StringIO())
    now = timezone.now()
    demo = InboundMessage.objects.filter(received_at__gte=now - timedelta(days=1))
    assert Counter(demo.values_list("outcome", flat=True)) == {
        IO.MATCHED: 5, IO.AMENDED: 1, IO.SUPERSEDED: 1, IO.UNMATCHED: 1, IO.IDENTITY_HOLD: 1, IO.DUPLICATE: 1,
    }  # fmt: skip
    assert all(m.received_at < now and m.processed_at is not None and m.processed_at < now for m in demo)
    assert {m.channel for m in demo.filter(reference_lab__name=ST_BRENDANS)} == {IntakeChannel.FILE}
    assert {m.channel for m in demo.exclude(reference_lab__name=ST_BRENDANS)} == {IntakeChannel.MLLP}
    send_outs = {name: SendOut.objects.select_related("order__handoff").get(order__handoff__uuid=key)
                 for name, key in RESULT_KEYS.items()}  # fmt: skip

    def released(name: str) -> dict[str, Result]:
        rows = Result.objects.filter(order=send_outs[name].order, status=ResultStatus.RELEASED).select_related(
            "analyte"
        )
        return {r.lab_code: r for r in rows}

    for name in ("lipids", "culture", "corrected", "psa", "critical"):
        send_out = send_outs[name]
        send_out.refresh_from_db()
        send_out.order.refresh_from_db()
        assert (send_out.status, send_out.order.status) == (SendOutStatus.FINAL, TestOrderStatus.RESULTED), name
        for result in released(name).values():  # in the clinician's inbox: released, not acknowledged yet
            assert result.reference_lab_id == send_out.reference_lab_id and result.acknowledged_at is None
            assert result.patient_id == send_out.order.handoff.patient_id and result.performed_by

    # (a) A final with H and L flags, and (h) the same message again from Meridian's interface.
    lipids = released("lipids")
    assert (lipids["012059"].value_numeric, lipids["012059"].flag, lipids["012059"].unit) == (
        Decimal(172),
        "H",
        "mg/dL",
    )
    assert (lipids["011817"].value_numeric, lipids["011817"].flag, lipids["011817"].reference_text) == (
        Decimal(36), "L", ">39",
    )  # fmt: skip
    assert lipids["001065"].performing_lab == "Meridian Reference Laboratories (CLIA 05D2045871)"
    [original] = InboundMessage.objects.filter(send_out=send_outs["lipids"])
    [copy] = demo.filter(outcome=IO.DUPLICATE)
    assert (copy.duplicate_of, copy.raw, copy.control_id) == (original, original.raw, original.control_id)
    assert original.observations_filed == 4 and original.hl7_version == "2.5.1"

    # (b) St. Brendan's preliminary, superseded by its final (not an amendment).
    culture = released("culture")
    final = culture["MIC700"]
    assert (final.value_code, final.value_text, final.flag, final.report_status) == (
        "112283007", "Escherichia coli", "A", Result.ReportStatus.FINAL,
    )  # fmt: skip
    assert final.replaces is not None and final.amends is None
    assert (
        final.replaces.status == ResultStatus.SUPERSEDED
        and final.replaces.report_status == Result.ReportStatus.PRELIMINARY
    )
    assert final.replaces.value_text.startswith(">100,000 CFU/mL gram-negative rods")
    assert "  Ampicillin" in culture["MIC710"].narrative and culture["MIC710"].narrative.count("\n") == 5
    assert demo.get(outcome=IO.SUPERSEDED).hl7_version == "2.3.1"

    # (c) Bayside's CBC corrected: the platelet count amended, the clinician told again.
    cbc = released("corrected")
    platelets = cbc["PLT"]
    assert (platelets.value_numeric, platelets.report_status, platelets.flag) == (
        Decimal(214),
        Result.ReportStatus.CORRECTED,
        "",
    )
    assert platelets.amends is not None and platelets.amends.value_numeric == Decimal(96)
    assert platelets.amends.status == ResultStatus.SUPERSEDED and "platelet clumps" in platelets.amend_reason
    assert len(cbc) == 14 and demo.get(outcome=IO.AMENDED).observations_filed == 1

    # (d) Meridian's critical potassium opens its call-back, due in the ladder's time from its arrival.
    potassium = released("critical")["001180"]
    assert (potassium.value_numeric, potassium.lab_flags, potassium.is_critical) == (Decimal("6.9"), "HH", True)
    call = CriticalCall.objects.get(result=potassium)
    assert (
        call.status == CriticalCallStatus.OPEN
        and call.clinician == send_outs["critical"].order.handoff.ordering_clinician
    )
    assert call.opened_at < now < call.due_at
    assert InboundMessage.objects.get(send_out=send_outs["critical"]).critical

    # (e) The PSA's comments (NTE) and its interpretation (TX).
    psa = released("psa")
    assert (psa["010322"].value_numeric, psa["010322"].flag) == (Decimal("6.8"), "H")
    assert psa["010322"].notes.startswith("Roche ECLIA methodology.")
    assert psa["010322"].order_notes == "Specimen received refrigerated; processed within stability limits."
    assert "AUA/SUO guideline" in psa["010323"].narrative

    # (f) A result for no order of ours: kept whole in the unmatched queue, nothing filed.
    unmatched = demo.get(outcome=IO.UNMATCHED)
    assert unmatched.is_open and unmatched.send_out is None and unmatched.placer and unmatched.accession
    assert "DELGADO^MARISOL" in unmatched.raw.upper() and unmatched.raw.count("\rOBX|") == 14
    assert not Result.objects.filter(inbound=unmatched).exists()
    # (g) The order found, the patient's date of birth not the order's: held, nothing filed, still sent.
    held = demo.get(outcome=IO.IDENTITY_HOLD)
    assert held.is_open and held.send_out == send_outs["identity"] and "date of birth" in held.detail
    assert not Result.objects.filter(order=send_outs["identity"].order).exists()
    assert SendOut.objects.get(pk=send_outs["identity"].pk).status == SendOutStatus.SENT

    counts = (InboundMessage.objects.count(), Result.objects.count(), CriticalCall.objects.count())
    calls = dict(CriticalCall.objects.values_list("pk", "status"))
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Inbound results: the demo labs' messages are already there; none added." in out.getvalue()
    assert (InboundMessage.objects.count(), Result.objects.count(), CriticalCall.objects.count()) == counts
    assert dict(CriticalCall.objects.values_list("pk", "status")) == calls
