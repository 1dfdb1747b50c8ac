"""The demo's send-out desk: three labs, one per dialect profile, and a send-out in every state it shows."""

from io import StringIO

import pytest
from django.core.management import call_command
from pytest_django import Settings

from backoffice.devtools.seed.sendouts import DEMO_SENDOUT_KEYS
from lab.hl7.build import is_valid_npi
from lab.models import AskAtOrderEntry, DialectProfile, Orderable, OutboundMessage, ReferenceLab, SendOut, Shipment
from lab.models.sendouts import CLIA_NUMBER
from lab.workflow import MessageStatus, SendOutStatus, ShipmentStatus
from tests.lab.hl7.strict import assert_strictly_valid

pytestmark = pytest.mark.django_db


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
