"""The dev-tool ORU^R01 writer (backoffice.devtools.oru): what it writes for each shipped dialect goes
through the real intake and is filed field by field, like the corpus."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from backoffice.devtools.oru import Director, Obs, PatientAs, oru_for
from lab.hl7.profiles import BUILTIN_PROFILES
from lab.hl7.read import parse_oru
from lab.models import CriticalCall, InboundMessage, Result, SendOut
from lab.sendouts.intake import receive
from lab.workflow import IntakeChannel, IntakeOutcome, ResultStatus, SendOutStatus, TestOrderStatus
from tests.lab.hl7.intake_helpers import corpus_orders

pytestmark = pytest.mark.django_db

IO = IntakeOutcome
RS = Result.ReportStatus
EST = timezone(timedelta(hours=-5))
AT = datetime(2026, 3, 11, 14, 30, tzinfo=EST)
DIRECTOR = Director("1902837461", "Moreau", "Alan", "J")

# One send-out of the corpus's labs per shipped profile: (profile key, placer, version the lab speaks).
DIALECTS = [
    ("national-lri-251", "ORD-2026-000049", "2.5.1"),
    ("legacy-23", "0000123", "2.3"),
    ("hospital-outreach-231", "ORD-2026-000051", "2.3.1"),
]
ROWS = (
    Obs.nm("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "236", "mg/dL", unit_text="milligram per deciliter",
           range="100-199", flag="H", lab_code="CHOL", lab_name="Cholesterol, Total", notes=("Fasting 12 hours.",)),
    Obs.nm("2085-9", "HDL Cholesterol", "0.90", "mmol/L", range="1.04-1.55", flag="L"),
    Obs.sn("98979-8", "eGFR", ">", "60", "mL/min/{1.73_m2}", range=">59"),
    Obs.sn("5048-4", "ANA titer", "", "1", "{titer}", separator=":", value2="160", flag="A"),
    Obs.cwe("94500-6", "SARS-CoV-2 RNA", "260415000", "Not detected", flag="N", alt_code="NEG",
            alt_text="Negative", alt_system="L"),
    Obs.st("48767-8", "Comment", "Desirable LDL for high-risk patients is <70 mg/dL; see ^guideline^ & notes."),
    Obs.tx("22637-3", "Final diagnosis", "A. SKIN, LEFT FOREARM:\n   - SEBORRHEIC KERATOSIS.\n\n  Margins free.",
           status="P"),
)  # fmt: skip


def _send_out(placer: str) -> SendOut:
    corpus_orders(placer)
    return SendOut.objects.select_related(
        "reference_lab__profile", "order__handoff__patient", "order__handoff__ordering_clinician",
        "order__specimen", "order__test__specimen_type", "orderable",
    ).get(placer_number=placer)  # fmt: skip


@pytest.mark.parametrize(("profile", "placer", "version"), DIALECTS, ids=[d[0] for d in DIALECTS])
def test_a_written_message_is_read_matched_and_filed_field_by_field(profile: str, placer: str, version: str) -> None:
    send_out = _send_out(placer)
    assert send_out.reference_lab.profile.as_profile() == BUILTIN_PROFILES[profile]
    lab = send_out.reference_lab
    text = oru_for(
        send_out,
        observations=ROWS,
        control_id=f"T{placer[-6:]}",
        at=AT,
        version=version,
        notes=("Specimen received ambient.", "Questions: client services\n800-555-0199."),
        director=DIRECTOR,
    )
    assert "\n" not in text and text.endswith("\r")
    parsed = parse_oru(text, BUILTIN_PROFILES[profile])
    assert parsed.version == version and not parsed.warnings
    assert parsed.sending_application == lab.their_application and parsed.sending_facility == lab.their_facility
    [group] = parsed.orders
    assert (group.placer, group.accession) == (placer, send_out.order.specimen.accession)
    assert parsed.identity.our_mrn == send_out.order.handoff.patient.mrn
    assert ("ORC" in text) == (profile != "legacy-23")

    [received] = receive(text, channel=IntakeChannel.MLLP, source="test")
    message = received.message
    assert received.ack_code == "AA"
    assert (message.outcome, message.send_out_id, message.hl7_version) == (IO.MATCHED, send_out.pk, version)
    assert message.observations_filed == len(ROWS)
    results = {r.analyte.loinc_code: r for r in Result.objects.filter(inbound=message).select_related("analyte")}
    assert set(results) == {row.loinc for row in ROWS}
    performing = f"{lab.name} (CLIA {lab.clia_number})" if version == "2.5.1" else lab.name

    for result in results.values():
        assert result.status == ResultStatus.RELEASED
        assert result.reference_lab == lab and result.performing_lab == performing
        assert result.observed_at == send_out.order.specimen.collected_at
        assert result.order_notes == "Specimen received ambient.\nQuestions: client services\n800-555-0199."
    if version == "2.5.1":
        assert results["2093-3"].performing_lab_address == lab.address
        assert results["2093-3"].performing_lab_director == "Alan J Moreau MD"

    cholesterol = results["2093-3"]
    assert (cholesterol.value_numeric, cholesterol.value_decimals, cholesterol.unit) == (Decimal("236"), 0, "mg/dL")
    assert (cholesterol.lab_flags, cholesterol.flag, cholesterol.reference_text) == ("H", "H", "100-199")
    assert (cholesterol.report_status, cholesterol.lab_code, cholesterol.notes) == (
        RS.FINAL,
        "CHOL",
        "Fasting 12 hours.",
    )
    hdl = results["2085-9"]
    assert (hdl.value_numeric, hdl.value_decimals, hdl.unit, hdl.flag) == (Decimal("0.90"), 2, "mmol/L", "L")
    egfr = results["98979-8"]
    assert (egfr.comparator, egfr.value_numeric, egfr.unit) == (">", Decimal("60"), "mL/min/{1.73_m2}")
    ana = results["5048-4"]
    assert (ana.value_numeric, ana.value_separator, ana.value_numeric2, ana.lab_flags) == (
        Decimal("1"), ":", Decimal("160"), "A",
    )  # fmt: skip
    covid = results["94500-6"]
    assert (covid.value_code, covid.value_text, covid.value_code_system) == ("260415000", "Not detected", "SCT")
    assert (covid.value_alt_code, covid.value_alt_code_system, covid.flag) == ("NEG", "L", "N")
    comment = results["48767-8"]
    assert comment.value_text == "Desirable LDL for high-risk patients is <70 mg/dL; see ^guideline^ & notes."
    narrative = results["22637-3"]
    assert narrative.narrative == "A. SKIN, LEFT FOREARM:\n   - SEBORRHEIC KERATOSIS.\n\n  Margins free."
    assert narrative.report_status == RS.PRELIMINARY
    # OBR-25 F: the report is final, though one of its rows says preliminary.
    send_out.refresh_from_db()
    assert send_out.status == SendOutStatus.FINAL


@pytest.mark.parametrize(("profile", "placer", "version"), DIALECTS, ids=[d[0] for d in DIALECTS])
def test_preliminary_final_correction_critical_and_duplicate(profile: str, placer: str, version: str) -> None:
    send_out = _send_out(placer)
    tsh = Obs.nm("3016-3", "TSH", "4.9", "u[IU]/mL", range="0.45-4.50", flag="H")

    def say(obs: list[Obs], status: str, minutes: int, control: str) -> InboundMessage:
        text = oru_for(send_out, observations=obs, status=status, at=AT + timedelta(minutes=minutes),
                       control_id=control, version=version)  # fmt: skip
        return receive(text.encode(), channel=IntakeChannel.FILE, source=f"{control}.hl7")[0].message

    preliminary = say([replace(tsh, value="4.6")], "P", 0, "P1")
    assert preliminary.outcome == IO.MATCHED
    send_out.refresh_from_db()
    assert send_out.status == SendOutStatus.PRELIMINARY
    final = say([tsh], "F", 60, "F1")
    assert final.outcome == IO.SUPERSEDED
    corrected = say(
        [replace(tsh, value="0.01", flag="LL", status="C", notes=("Corrected: wrong aliquot",))], "C", 90, "C1"
    )
    assert corrected.outcome == IO.AMENDED and corrected.critical
    [current] = Result.objects.filter(order=send_out.order, status=ResultStatus.RELEASED)
    assert (current.value_numeric, current.flag, current.is_critical) == (Decimal("0.01"), "LL", True)
    assert current.amends is not None and current.amends.value_numeric == Decimal("4.9")
    assert current.amends.replaces is not None and current.amends.replaces.value_numeric == Decimal("4.6")
    assert CriticalCall.objects.filter(result=current).exists()
    send_out.order.refresh_from_db()
    assert send_out.order.status == TestOrderStatus.RESULTED
    again = say([tsh], "F", 60, "F1")
    assert again.outcome == IO.DUPLICATE and again.duplicate_of == final


def test_overrides_make_an_unmatched_result_and_an_identity_hold() -> None:
    send_out = _send_out("ORD-2026-000050")
    row = [Obs.nm("3016-3", "TSH", "2.1", "u[IU]/mL", range="0.45-4.50")]
    unknown = oru_for(send_out, observations=row, placer_override="ORD-2026-999991", accession_override="S000099991",
                      identity_override=PatientAs(family="Quigley", given="Harold", birth_date=date(1950, 1, 2), mrn=""))  # fmt: skip
    [received] = receive(unknown, channel=IntakeChannel.MLLP)
    assert received.message.outcome == IO.UNMATCHED
    assert (received.message.placer, received.message.accession) == ("ORD-2026-999991", "S000099991")
    assert received.message.patient_text.startswith("Quigley, Harold")
    patient = send_out.order.handoff.patient
    held = oru_for(send_out, observations=row,
                   identity_override=PatientAs(birth_date=patient.date_of_birth + timedelta(days=365)))  # fmt: skip
    [received] = receive(held, channel=IntakeChannel.MLLP)
    assert (received.message.outcome, received.message.send_out_id) == (IO.IDENTITY_HOLD, send_out.pk)
    assert not Result.objects.filter(order=send_out.order).exists()


def test_what_no_lab_could_send_is_refused() -> None:
    send_out = _send_out("ORD-2026-000050")
    row = [Obs.nm("3016-3", "TSH", "2.1", "u[IU]/mL")]
    with pytest.raises(ValueError, match="OBR-25"):
        oru_for(send_out, observations=row, status="Q")
    with pytest.raises(ValueError, match="HL7"):
        oru_for(send_out, observations=row, version="2.4")
    with pytest.raises(ValueError, match="not a number"):
        Obs.nm("3016-3", "TSH", "high")
    with pytest.raises(ValueError, match="at least one"):
        oru_for(send_out, observations=[])
