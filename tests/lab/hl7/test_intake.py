"""Every corpus case through the intake (lab.sendouts.intake.receive), checking what was filed, field by field.

The corpus's orders are brought in as open send-outs (intake_helpers.corpus_orders, through
``import_open_send_outs``) under the placer numbers and accessions the messages carry; each test
then feeds one file as ``hl7_import`` does and reads back the stored message, the Result rows, the
send-out's and the test's status, and what the clinician now sees.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, transaction
from django.utils import timezone as dj_timezone

from backoffice.models import Patient
from backoffice.services import system_user
from lab.hl7.read import split_messages
from lab.models import CriticalCall, InboundMessage, InboundMessageEvent, Result, ResultEvent, SendOut, SendOutEvent
from lab.sendouts.carried_over import open_send_outs_import
from lab.sendouts.intake import ack, receive
from lab.workflow import IntakeChannel, IntakeOutcome, ResultStatus, SendOutStatus, TestOrderStatus
from tests.lab.hl7.intake_helpers import CORPUS, corpus_bytes, corpus_orders, csv_text, desk_user, intake, order_row
from tests.lab.hl7.test_read import GROSS_A, PART_A, PART_B

pytestmark = pytest.mark.django_db

EST = timezone(timedelta(hours=-5))
CST = timezone(timedelta(hours=-6))
IO = IntakeOutcome
RS = Result.ReportStatus
ACME = "Acme Reference Laboratories"
ACME_PERFORMING = "Acme Reference Laboratories (CLIA 05D0987654)"
ACME_ADDRESS = "1200 Research Blvd, Suite 100, Springfield, IL 62704, USA"


def results_of(placer: str, *, status: str | None = None) -> list[Result]:
    rows = Result.objects.filter(order__send_out__placer_number=placer).select_related("analyte", "amends", "replaces")
    if status:
        rows = rows.filter(status=status)
    return list(rows.order_by("id"))


def by_loinc(placer: str, loinc: str) -> Result:
    return Result.objects.select_related("analyte").get(
        order__send_out__placer_number=placer, analyte__loinc_code=loinc, status=ResultStatus.RELEASED
    )


def send_out(placer: str) -> SendOut:
    return SendOut.objects.select_related("order").get(placer_number=placer)


# --- A final, field by field ---------------------------------------------------------------------------


def test_a_final_panel_files_every_row_as_the_lab_sent_it() -> None:
    orders = corpus_orders("ORD-2026-000042")
    [received] = intake("national_251_cmp_final.hl7")
    message = received.message
    assert received.ack_code == "AA"
    assert (message.outcome, message.channel, message.source) == (
        IO.MATCHED,
        IntakeChannel.FILE,
        "national_251_cmp_final.hl7",
    )
    assert message.raw == split_messages(corpus_bytes("national_251_cmp_final.hl7"))[0]
    assert (message.control_id, message.sending_application, message.sending_facility) == (
        "ACME20260302101500000123",
        "ACMEREF",
        "ACMEREFLAB",
    )
    assert (message.message_type, message.hl7_version, message.reference_lab.name) == ("ORU^R01", "2.5.1", ACME)
    assert (message.placer, message.accession, message.send_out) == (
        "ORD-2026-000042",
        "S000010019",
        orders["ORD-2026-000042"],
    )
    assert (message.observations_filed, message.critical) == (14, False)
    assert message.detail == "Filed 14 results to placer ORD-2026-000042"
    assert message.patient_text == "Martinez, Rosa Elena · born 1980-02-14 · MRN M100001"
    assert list(message.events.values_list("action", "from_status", "to_status")) == [
        (InboundMessageEvent.Action.RECEIVED, "", IO.RECEIVED),
        (InboundMessageEvent.Action.FILED, IO.RECEIVED, IO.MATCHED),
    ]

    rows = results_of("ORD-2026-000042")
    assert [r.analyte.loinc_code for r in rows] == [
        "2345-7", "3094-0", "2160-0", "2951-2", "2823-3", "2075-0", "2028-9",
        "17861-6", "2885-2", "1751-7", "1975-2", "6768-6", "1920-8", "1742-6",
    ]  # fmt: skip
    assert [r.display_value for r in rows] == [
        "112 mg/dL", "14 mg/dL", "0.90 mg/dL", "139 mmol/L", "4.4 mmol/L", "101 mmol/L", "24 mmol/L",
        "8.4 mg/dL", "7.1 g/dL", "4.50 g/dL", "0.4 mg/dL", "88 U/L", "19 U/L", "22 U/L",
    ]  # fmt: skip
    assert [r.flag for r in rows] == ["H", "N", "N", "N", "N", "N", "N", "L", "N", "N", "N", "N", "N", "N"]
    glucose = rows[0]
    patient = orders["ORD-2026-000042"].order.handoff.patient
    assert glucose.analyte.name == "Glucose [Mass/volume] in Serum or Plasma"
    assert (glucose.analyte.short_name, glucose.analyte.result_type, glucose.analyte.unit) == (
        "Glucose",
        "numeric",
        "mg/dL",
    )
    assert (glucose.analyte.test.short_name, glucose.lab_code, glucose.lab_name) == ("CMP", "GLU", "Glucose")
    assert (glucose.value_numeric, glucose.value_decimals, glucose.comparator, glucose.value_text) == (
        Decimal("112"),
        0,
        "",
        "",
    )
    assert (glucose.unit, glucose.reference_text, glucose.lab_flags, glucose.flag, glucose.is_critical) == (
        "mg/dL",
        "70-99",
        "H",
        "H",
        False,
    )
    assert (glucose.status, glucose.report_status, glucose.observation_sub_id) == (ResultStatus.RELEASED, RS.FINAL, "")
    assert (glucose.inbound, glucose.reference_lab.name, glucose.kit_lot) == (message, ACME, None)
    assert (glucose.patient, glucose.specimen.accession, glucose.order) == (
        patient,
        "S000010019",
        orders["ORD-2026-000042"].order,
    )
    assert glucose.notes == "Fasting status: fasting 10 hours per patient."
    assert glucose.order_notes == "Specimen received ambient; processed within stability limits."
    assert (glucose.performing_lab, glucose.performing_lab_address) == (ACME_PERFORMING, ACME_ADDRESS)
    assert glucose.performing_lab_director == "Dr Alan J Moreau MD"
    assert glucose.observed_at == datetime(2026, 3, 1, 8, 15, tzinfo=EST)
    assert glucose.entered_by == glucose.released_by == system_user()
    assert glucose.verified_by is None and glucose.amends is None and glucose.replaces is None
    assert glucose.released_at is not None and glucose.acknowledged_at is None
    assert list(glucose.events.values_list("action", "to_status")) == [(ResultEvent.Action.REPORTED, "released")]
    # The precision the lab sent: 0.90 and 4.50 stay two decimals.
    assert (rows[2].value_numeric, rows[2].value_decimals) == (Decimal("0.9"), 2)

    done = send_out("ORD-2026-000042")
    assert (done.status, done.final_at is not None) == (SendOutStatus.FINAL, True)
    assert done.order.status == TestOrderStatus.RESULTED
    assert list(done.events.filter(action=SendOutEvent.Action.FINAL).values_list("from_status", "to_status")) == [
        (SendOutStatus.SENT, SendOutStatus.FINAL)
    ]
    assert received.as_json() == {
        "control_id": "ACME20260302101500000123",
        "sending_lab": ACME,
        "outcome": "matched",
        "placer": "ORD-2026-000042",
        "accession": "S000010019",
        "observations_filed": 14,
        "critical": False,
        "detail": "Filed 14 results to placer ORD-2026-000042",
    }


def test_the_ack_says_aa_with_the_messages_control_id_once_it_is_stored() -> None:
    corpus_orders("ORD-2026-000042")
    [received] = intake("national_251_cmp_final.hl7")
    text = ack(received)
    segments = text.rstrip("\r").split("\r")
    # To the sender as it named itself (MSH-3/MSH-4 echoed whole), from our ids for that lab.
    assert segments[0].startswith(
        "MSH|^~\\&|CLINICBO|CLINIC|ACMEREF^2.16.840.1.113883.3.9999.1^ISO|ACMEREFLAB^05D0987654^CLIA|"
    )
    assert segments[0].split("|")[8] == "ACK^R01^ACK"
    assert segments[1] == "MSA|AA|ACME20260302101500000123"


# --- Corrections, and what is not one ---------------------------------------------------------------------


def test_a_correction_amends_the_final_through_the_in_house_path_and_tells_the_clinician_again() -> None:
    corpus_orders("ORD-2026-000042")
    intake("national_251_cmp_final.hl7")
    original = by_loinc("ORD-2026-000042", "2823-3")
    clinician = original.order.handoff.ordering_clinician
    Result.objects.filter(pk=original.pk).update(acknowledged_at=dj_timezone.now(), acknowledged_by=clinician)
    [received] = intake("correction.hl7")
    message = received.message
    assert (message.outcome, message.observations_filed) == (IO.AMENDED, 1)
    assert message.detail == "Filed 1 result to placer ORD-2026-000042; 1 correction; 13 unchanged"
    corrected = by_loinc("ORD-2026-000042", "2823-3")
    original.refresh_from_db()
    assert (original.status, original.display_value) == (ResultStatus.SUPERSEDED, "4.4 mmol/L")
    assert (corrected.amends, corrected.display_value, corrected.report_status) == (
        original,
        "4.1 mmol/L",
        RS.CORRECTED,
    )
    assert corrected.amend_reason == (
        "Corrected by Acme Reference Laboratories: Corrected result: previously reported as 6.8 mmol/L "
        "(hemolyzed aliquot). Recollected specimen tested 03/03/2026."
    )
    assert corrected.acknowledged_at is None  # the clinician is told again: unsigned in their inbox
    assert original.events.filter(action=ResultEvent.Action.SUPERSEDED).get().note == (
        f"Corrected to 4.1 mmol/L: {corrected.amend_reason}"
    )
    # The thirteen rows re-sent unchanged are not amendments: nothing new for them.
    assert len(results_of("ORD-2026-000042")) == 15
    assert Result.objects.filter(amends__isnull=False).count() == 1
    done = send_out("ORD-2026-000042")
    assert done.status == SendOutStatus.FINAL
    assert done.events.filter(action=SendOutEvent.Action.CORRECTED).count() == 1


def test_a_final_sent_again_under_a_new_control_id_files_nothing_new() -> None:
    corpus_orders("ORD-2026-000042")
    intake("national_251_cmp_final.hl7")
    resent = corpus_bytes("national_251_cmp_final.hl7").replace(
        b"ACME20260302101500000123", b"ACME20260302101500000999"
    )
    [received] = receive(resent, channel=IntakeChannel.FILE, source="resent.hl7")
    assert (received.message.outcome, received.message.observations_filed) == (IO.MATCHED, 0)
    assert received.message.detail == "Filed 0 results to placer ORD-2026-000042; 14 unchanged"
    assert len(results_of("ORD-2026-000042")) == 14


# --- Preliminary, then final ---------------------------------------------------------------------------------


def test_a_batch_files_the_preliminary_then_the_final_which_supersedes_it_without_amending() -> None:
    corpus_orders("ORD-2026-000045")
    first, second = intake("batch_prelim_then_final.hl7")
    assert (first.message.outcome, second.message.outcome) == (IO.MATCHED, IO.SUPERSEDED)
    assert first.message.received_at <= second.message.received_at and first.message.pk < second.message.pk
    preliminary, final = results_of("ORD-2026-000045")
    assert (preliminary.report_status, preliminary.status) == (RS.PRELIMINARY, ResultStatus.SUPERSEDED)
    assert preliminary.value_text == "Culture in progress; preliminary report to follow."
    assert preliminary.events.filter(action=ResultEvent.Action.REPLACED).get().note == "Final No growth reported"
    assert (final.report_status, final.status, final.replaces, final.amends) == (
        RS.FINAL,
        ResultStatus.RELEASED,
        preliminary,
        None,
    )
    assert (final.value_text, final.value_code, final.value_code_system) == ("No growth", "264868006", "SCT")
    assert (final.value_alt_code, final.value_alt_code_system) == ("NG", "L")
    assert final.amend_reason == "" and second.message.detail.endswith("1 preliminary superseded")
    done = send_out("ORD-2026-000045")
    assert list(done.events.exclude(action=SendOutEvent.Action.CREATED).values_list("action", "to_status")) == [
        (SendOutEvent.Action.PRELIMINARY, SendOutStatus.PRELIMINARY),
        (SendOutEvent.Action.FINAL, SendOutStatus.FINAL),
    ]
    assert done.order.status == TestOrderStatus.RESULTED


def test_the_preliminary_alone_keeps_the_order_open() -> None:
    corpus_orders("ORD-2026-000045")
    first = split_messages(corpus_bytes("batch_prelim_then_final.hl7"))[0]
    receive(first, channel=IntakeChannel.MLLP)
    done = send_out("ORD-2026-000045")
    assert (done.status, done.order.status) == (SendOutStatus.PRELIMINARY, TestOrderStatus.SENT_OUT)
    [result] = results_of("ORD-2026-000045")
    assert (result.is_preliminary, result.status) == (True, ResultStatus.RELEASED)


# --- Identity hold and the unmatched queue ---------------------------------------------------------------------


def test_a_patient_who_disagrees_with_the_order_holds_the_message_and_files_nothing() -> None:
    orders = corpus_orders("ORD-2026-000042")
    patients = Patient.objects.count()
    [received] = intake("identity_mismatch.hl7")
    message = received.message
    assert received.ack_code == "AA"
    assert (message.outcome, message.send_out, message.observations_filed) == (
        IO.IDENTITY_HOLD,
        orders["ORD-2026-000042"],
        0,
    )
    assert message.detail == (
        "The patient disagrees with placer ORD-2026-000042 on given name, date of birth. "
        "The message: MARTINEZ, ROSALIND · born 1981-02-14 · MRN M100001. "
        "The order: MARTINEZ, Rosa Elena · born 1980-02-14 · MRN M100001."
    )
    assert message.is_open and not Result.objects.exists()
    done = send_out("ORD-2026-000042")
    assert (done.status, done.order.status) == (SendOutStatus.SENT, TestOrderStatus.SENT_OUT)
    assert Patient.objects.count() == patients


def test_an_unknown_order_goes_whole_to_the_unmatched_queue_and_no_patient_is_created() -> None:
    corpus_orders("ORD-2026-000042")
    patients = Patient.objects.count()
    [received] = intake("unknown_accession.hl7")
    message = received.message
    assert (received.ack_code, message.outcome, message.send_out) == ("AA", IO.UNMATCHED, None)
    assert (message.placer, message.accession) == ("ORD-2026-999990", "S000099990")
    assert message.detail == "No order found: no order has placer ORD-2026-999990 / accession S000099990"
    assert message.patient_text == "Lindqvist, Erik Johan · born 1967-03-18 · MRN M100099"
    assert message.tests_text == "TSH"
    assert message.raw == split_messages(corpus_bytes("unknown_accession.hl7"))[0]
    assert not Result.objects.exists() and Patient.objects.count() == patients
    assert not Patient.objects.filter(mrn="M100099").exists()


def test_keys_are_compared_as_text_so_leading_zeros_matter() -> None:
    corpus_orders("0000123")
    # An order whose placer is the same number without its zeros belongs to someone else.
    row = order_row("0000123") | {
        "placer_number": "123",
        "accession": "X-123",
        "mrn": "M200123",
        "family_name": "Other",
    }
    open_send_outs_import(text=csv_text([row]), by=desk_user())
    [received] = intake("legacy_23_no_orc.hl7")
    assert (received.message.outcome, received.message.send_out.placer_number) == (IO.MATCHED, "0000123")
    assert not results_of("123")


def test_placer_and_accession_that_name_two_different_orders_are_no_match() -> None:
    corpus_orders("ORD-2026-000042", "ORD-2026-000045")
    mixed = corpus_bytes("national_251_cmp_final.hl7").replace(b"S000010019^CLINIC", b"S000010023^CLINIC")
    [received] = receive(mixed, channel=IntakeChannel.FILE)
    assert received.message.outcome == IO.UNMATCHED
    assert "they disagree" in received.message.detail and not Result.objects.exists()


def test_a_lab_we_do_not_know_is_unmatched_and_says_who_sent_it() -> None:
    corpus_orders("ORD-2026-000042")
    stranger = corpus_bytes("national_251_cmp_final.hl7").replace(b"|ACMEREFLAB^05D0987654^CLIA|", b"|OTHERLAB|")
    [received] = receive(stranger, channel=IntakeChannel.FILE)
    message = received.message
    assert (message.outcome, message.reference_lab, message.sending_facility) == (IO.UNMATCHED, None, "OTHERLAB")
    assert message.detail.startswith("No reference lab sends as MSH-3 ACMEREF / MSH-4 OTHERLAB")
    assert (message.placer, message.accession) == ("ORD-2026-000042", "S000010019")  # read, never matched


# --- Duplicates -----------------------------------------------------------------------------------------------


def test_the_same_message_twice_is_stored_twice_and_filed_once() -> None:
    corpus_orders("ORD-2026-000050")
    first, second = intake("duplicate_control_id.hl7")
    assert (first.message.outcome, second.message.outcome) == (IO.MATCHED, IO.DUPLICATE)
    assert (second.ack_code, second.message.duplicate_of) == ("AA", first.message)
    assert second.message.raw == first.message.raw
    assert second.message.detail.startswith("Already received") and second.message.detail.endswith("nothing new filed")
    assert len(results_of("ORD-2026-000050")) == 1
    # And the whole file again, later: two more copies kept, nothing filed.
    again = intake("duplicate_control_id.hl7")
    assert [r.message.outcome for r in again] == [IO.DUPLICATE, IO.DUPLICATE]
    assert InboundMessage.objects.count() == 4 and len(results_of("ORD-2026-000050")) == 1
    assert CriticalCall.objects.count() == 1


# --- Critical values ---------------------------------------------------------------------------------------------


def test_a_critical_value_from_the_lab_opens_the_same_call_back_as_in_house() -> None:
    orders = corpus_orders("ORD-2026-000050")
    [received] = intake("duplicate_control_id.hl7")[:1]
    tsh = by_loinc("ORD-2026-000050", "3016-3")
    assert (tsh.display_value, tsh.lab_flags, tsh.flag, tsh.is_critical) == ("0.012 m[IU]/L", "LL", "LL", True)
    call = CriticalCall.objects.get(result=tsh)
    assert call.clinician == orders["ORD-2026-000050"].order.handoff.ordering_clinician
    assert call.patient == tsh.patient and call.status == "open"
    assert received.message.critical and received.as_json()["critical"] is True


def test_our_own_critical_limits_apply_to_a_labs_result_the_lab_did_not_flag_critical() -> None:
    corpus_orders("ORD-2026-000046")
    # The in-house hemoglobin (LOINC 718-7) is critical at or below 7.0 g/dL; the lab only says L.
    low = corpus_bytes("escapes.hl7").replace(
        b"||13.6|g/dL^gram per deciliter^UCUM|13.0-17.7|N|", b"||6.1|g/dL^gram per deciliter^UCUM|13.0-17.7|L|"
    )
    [received] = receive(low, channel=IntakeChannel.FILE)
    hgb = by_loinc("ORD-2026-000046", "718-7")
    assert (hgb.lab_flags, hgb.flag, hgb.is_critical) == ("L", "LL", True)
    assert hgb.reference_range is not None and hgb.reference_range.critical_low == Decimal("7.0")
    assert CriticalCall.objects.filter(result=hgb).exists() and received.message.critical


# --- Value types -----------------------------------------------------------------------------------------------


def test_cwe_and_sn_results_keep_code_system_and_comparator() -> None:
    corpus_orders("ORD-2026-000047", "ORD-2026-000048")
    [received] = intake("cwe_sn_results.hl7")
    message = received.message
    assert (message.outcome, message.observations_filed, message.critical) == (IO.MATCHED, 8, True)
    assert message.detail == "Filed 8 results to placer ORD-2026-000047, placer ORD-2026-000048"
    covid, flu, rsv = results_of("ORD-2026-000047")
    assert (covid.value_text, covid.value_code, covid.value_code_system, covid.flag) == (
        "Detected",
        "260373001",
        "SCT",
        "A",
    )
    assert (flu.value_text, flu.value_code, flu.value_code_system, flu.flag) == (
        "Not detected",
        "260415000",
        "SCT",
        "N",
    )
    assert (rsv.value_text, rsv.value_code, rsv.value_code_system) == ("Negative", "NEG", "L")
    assert (rsv.value_alt_code, rsv.value_alt_code_system, rsv.flag) == ("260385009", "SCT", "")
    assert covid.analyte.result_type == "text" and covid.value_numeric is None
    troponin, egfr, ana, wbc, glucose = results_of("ORD-2026-000048")
    # "<^0.5" is "<" and 0.5, shown "<0.5": never 0.5.
    assert (troponin.comparator, troponin.value_numeric, troponin.display_value) == ("<", Decimal("0.5"), "<0.5 ng/L")
    assert (egfr.comparator, egfr.value_numeric, egfr.display_value) == (">", Decimal("60"), ">60 mL/min/{1.73_m2}")
    assert (ana.value_numeric, ana.value_separator, ana.value_numeric2, ana.display_value) == (
        Decimal("1"),
        ":",
        Decimal("160"),
        "1:160 {titer}",
    )
    assert (wbc.display_value, wbc.reference_text) == ("2-5 /[HPF]", "0-5")
    assert (glucose.comparator, glucose.display_value, glucose.flag, glucose.is_critical) == (
        ">=",
        ">=500 mg/dL",
        "HH",
        True,
    )
    assert CriticalCall.objects.filter(result=glucose).exists()
    for placer in ("ORD-2026-000047", "ORD-2026-000048"):
        assert send_out(placer).status == SendOutStatus.FINAL


def test_every_escape_is_decoded_in_ft_st_and_nte() -> None:
    corpus_orders("ORD-2026-000046")
    intake("escapes.hl7")
    smear_review, smear, hgb = results_of("ORD-2026-000046")
    assert smear_review.narrative == (
        "HEMOLYSIS INDEX: moderate\n"
        "Values flagged | may be affected\n"
        "Ratio A^B & C~D \\ E\n"
        "Café au lait macules noted; code AB per protocol.\n"
        "\n"
        "    Indented line\n"
        "Back at margin   after three\n"
        "Centered end."
    )
    assert smear_review.value_text == "HEMOLYSIS INDEX: moderate …"
    assert (smear.value_text, smear.narrative) == ("Target cells 1+ ^ rare schistocytes (| 1~2 per HPF)", "")
    assert hgb.order_notes == "Reviewed by J. Alvarez & K. Osei; see C:\\LIS\\notes"
    assert hgb.notes == "Unterminated escape kept as sent: 50\\ of normal"


def test_nte_comments_stay_with_the_order_and_the_result_they_follow() -> None:
    corpus_orders("ORD-2026-000049")
    intake("nte_comments.hl7")
    [vitamin_d] = results_of("ORD-2026-000049")
    assert vitamin_d.order_notes == (
        "Assay changed on 02/15/2026 to LC-MS/MS; results are not directly comparable\n"
        "with results obtained before that date.\n"
        "\n"
        "Questions: Client Services 800-555-0199."
    )
    assert vitamin_d.notes == "Vitamin D deficiency: < 20 ng/mL.\n    Insufficiency: 20 - 29 ng/mL (indented as sent)"
    assert (vitamin_d.display_value, vitamin_d.flag, vitamin_d.reference_text) == ("18 ng/mL", "L", "30.0-100.0")


def test_a_tx_narrative_is_one_result_per_section_with_its_lines_kept() -> None:
    corpus_orders("ORD-2026-000055")
    [received] = intake("tx_narrative_pathology.hl7")
    assert received.message.observations_filed == 3
    part_a, gross_a, part_b = results_of("ORD-2026-000055")
    assert (part_a.analyte.loinc_code, part_a.observation_sub_id, part_a.narrative) == ("22637-3", "1", PART_A)
    assert (gross_a.analyte.loinc_code, gross_a.observation_sub_id, gross_a.narrative) == ("22634-0", "1", GROSS_A)
    # Same OBX-3, another OBX-4: its own result under the same analyte, not an overwrite.
    assert (part_b.analyte, part_b.observation_sub_id, part_b.narrative) == (part_a.analyte, "2", PART_B)
    assert part_b.notes == "Part B reviewed at intradepartmental consensus."
    assert part_a.narrative_lines[1] == "   - SEBORRHEIC KERATOSIS, IRRITATED." and "" in part_a.narrative_lines
    assert part_a.value_text == "A. SKIN, LEFT FOREARM, SHAVE BIOPSY: …"
    assert part_a.performing_lab == "Mercy General Hospital Laboratory"


def test_a_message_over_64_kib_is_stored_and_filed_whole() -> None:
    corpus_orders("ORD-2026-000056")
    [received] = intake("large_pathology_over_64k.hl7")
    assert len(received.message.raw) > 64 * 1024
    assert received.message.raw == split_messages(corpus_bytes("large_pathology_over_64k.hl7"))[0]
    [report] = results_of("ORD-2026-000056")
    lines = report.narrative_lines
    assert len(lines) == 360 and lines[0] == "LEVEL 01 OF 40, BLOCK A1:" and lines[-9] == "LEVEL 40 OF 40, BLOCK A40:"


# --- Dialects --------------------------------------------------------------------------------------------------


def test_a_legacy_23_interface_without_orc() -> None:
    corpus_orders("0000123")
    [received] = intake("legacy_23_no_orc.hl7")
    message = received.message
    assert (message.outcome, message.placer, message.accession, message.reference_lab.name) == (
        IO.MATCHED,
        "0000123",
        "S000010020",
        "Valley Pathology Associates",
    )
    cholesterol, trig, hdl, ldl, comment = results_of("0000123")
    # Its own code first in OBX-3, the LOINC second: the analyte is the LOINC's, the lab's code kept beside.
    assert (cholesterol.analyte.loinc_code, cholesterol.lab_code, cholesterol.lab_name) == (
        "2093-3",
        "CHOL",
        "Cholesterol",
    )
    assert (cholesterol.display_value, cholesterol.reference_text, cholesterol.flag) == ("212 mg/dL", "<200", "H")
    assert (trig.flag, hdl.reference_text, ldl.flag) == ("", ">39", "H")
    # No LOINC at all: known by the lab's code.
    assert (comment.analyte.loinc_code, comment.analyte.lab_code, comment.analyte.short_name) == (
        "",
        "LCOM",
        "Lipid Comment",
    )
    assert comment.value_text == "Desirable LDL for high-risk patients is <70 mg/dL."
    assert cholesterol.order_notes == "FASTING: YES"
    assert cholesterol.performing_lab == "Valley Pathology Associates"  # OBX-15 on a 2.3 interface
    # No offset sent: the clinic's time zone.
    assert cholesterol.observed_at == dj_timezone.make_aware(datetime(2026, 3, 3, 7, 15))


def test_lf_line_ends_and_our_mrn_in_the_first_pid3_repetition() -> None:
    corpus_orders("0000124")
    [received] = intake("lf_line_endings.hl7")
    assert received.message.outcome == IO.MATCHED
    assert "\n" not in received.message.raw
    [tsh] = results_of("0000124")
    assert (tsh.display_value, tsh.flag, tsh.reference_text) == ("3.02 uIU/mL", "N", "0.45-4.50")


def test_crlf_line_ends() -> None:
    corpus_orders("ORD-2026-000060")
    [received] = intake("crlf_line_endings.hl7")
    assert received.message.outcome == IO.MATCHED and "\n" not in received.message.raw
    [a1c] = results_of("ORD-2026-000060")
    assert (a1c.analyte.loinc_code, a1c.display_value, a1c.value_decimals, a1c.flag) == ("4548-4", "5.70 %", 2, "H")


def test_a_latin1_file_matches_its_patient_whatever_the_accents() -> None:
    corpus_orders("0000125")
    [received] = intake("latin1_legacy.hl7")
    assert received.message.outcome == IO.MATCHED
    assert "MÜLLER^JÜRGEN" in received.message.raw
    [potassium] = results_of("0000125")
    assert (potassium.display_value, potassium.flag) == ("5.9 mmol/L", "H")
    assert "hämolysiert" in potassium.notes


def test_a_hospital_lis_with_two_orders_and_its_own_mrn_in_pid3() -> None:
    corpus_orders("ORD-2026-000051", "ORD-2026-000052")
    [received] = intake("hospital_231_outreach.hl7")
    assert (received.message.outcome, received.message.observations_filed) == (IO.MATCHED, 6)
    assert [r.display_value for r in results_of("ORD-2026-000051")] == [
        "7.2 K/uL",
        "4.12 M/uL",
        "11.2 g/dL",
        "34.9 %",
        "256 K/uL",
    ]
    [ferritin] = results_of("ORD-2026-000052")
    assert (ferritin.display_value, ferritin.flag, ferritin.observed_at) == (
        "9 ng/mL",
        "L",
        datetime(2026, 3, 8, 7, 15, tzinfo=CST),
    )


def test_an_mllp_framed_file_is_two_messages_with_our_mrn_in_pid4() -> None:
    corpus_orders("ORD-2026-000053", "ORD-2026-000054")
    first, second = intake("mllp_framed.hl7")
    assert (first.message.outcome, second.message.outcome) == (IO.MATCHED, IO.MATCHED)
    assert "\x0b" not in first.message.raw and "\x1c" not in second.message.raw
    assert by_loinc("ORD-2026-000053", "2345-7").display_value == "98 mg/dL"
    assert by_loinc("ORD-2026-000054", "4548-4").display_value == "5.4 %"


# --- Not HL7 -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["garbage.hl7", "broken_encoding_chars.hl7"])
def test_what_is_not_hl7_is_stored_as_sent_and_refused_with_ar(name: str) -> None:
    [received] = intake(name)
    message = received.message
    assert (received.ack_code, message.outcome, message.processed_at is not None) == ("AR", IO.REJECTED, True)
    assert message.raw == split_messages(corpus_bytes(name))[0]
    assert message.detail.startswith("Not HL7: ")
    assert list(message.events.values_list("action", flat=True)) == [InboundMessageEvent.Action.REJECTED]
    segments = ack(received).rstrip("\r").split("\r")
    assert segments[1].startswith("MSA|AR|")


def test_the_raw_message_is_never_changed_or_deleted() -> None:
    [received] = intake("garbage.hl7")
    with pytest.raises(DatabaseError), transaction.atomic():
        InboundMessage.objects.filter(pk=received.message.pk).update(raw="tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        InboundMessage.objects.filter(pk=received.message.pk).delete()


def test_an_error_while_filing_leaves_the_message_stored_with_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    corpus_orders("ORD-2026-000042")

    def broken(**kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("lab.sendouts.intake.file_order_group", broken)
    [received] = intake("national_251_cmp_final.hl7")
    message = InboundMessage.objects.get(pk=received.message.pk)
    assert (received.ack_code, message.outcome) == ("AA", IO.RECEIVED)
    assert message.detail == "Stored, not filed: RuntimeError: disk full"
    assert not Result.objects.exists() and send_out("ORD-2026-000042").status == SendOutStatus.SENT


# --- hl7_import ----------------------------------------------------------------------------------------------------


def test_hl7_import_prints_one_json_object_per_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    corpus_orders("ORD-2026-000045", "ORD-2026-000042")
    out = StringIO()
    call_command(
        "hl7_import",
        str(CORPUS / "batch_prelim_then_final.hl7"),
        str(CORPUS / "unknown_accession.hl7"),
        str(CORPUS / "garbage.hl7"),
        "--json",
        stdout=out,
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [
        (o["control_id"], o["outcome"], o["placer"], o["accession"], o["observations_filed"], o["critical"])
        for o in lines
    ] == [
        ("ACME20260306080000000501", "matched", "ORD-2026-000045", "S000010023", 1, False),
        ("ACME20260307081500000502", "superseded", "ORD-2026-000045", "S000010023", 1, False),
        ("ACME20260304071500000222", "unmatched", "ORD-2026-999990", "S000099990", 0, False),
        ("", "rejected", "", "", 0, False),
    ]
    assert {o["sending_lab"] for o in lines[:3]} == {ACME}
    # The same files again: every message a duplicate (the garbage is refused again, and kept again).
    again = StringIO()
    call_command("hl7_import", str(CORPUS / "batch_prelim_then_final.hl7"), "--json", stdout=again)
    assert [json.loads(line)["outcome"] for line in again.getvalue().splitlines()] == ["duplicate", "duplicate"]
    # A folder is read file by file, in name order.
    (tmp_path / "b.hl7").write_bytes(corpus_bytes("unknown_accession.hl7").replace(b"000222|", b"000223|"))
    (tmp_path / "a.hl7").write_bytes(b"not hl7")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    text = StringIO()
    call_command("hl7_import", str(tmp_path), stdout=text)
    assert text.getvalue().splitlines()[-1] == "2 messages: 1 unmatched, 1 not HL7, refused."


def test_hl7_import_says_which_path_is_missing() -> None:
    with pytest.raises(CommandError, match=r"nowhere\.hl7: no such file or folder"):
        call_command("hl7_import", "nowhere.hl7")


def test_every_time_is_stored_in_utc() -> None:
    corpus_orders("ORD-2026-000042")
    intake("national_251_cmp_final.hl7")
    glucose = by_loinc("ORD-2026-000042", "2345-7")
    assert glucose.observed_at is not None
    assert glucose.observed_at.astimezone(UTC) == datetime(2026, 3, 1, 13, 15, tzinfo=UTC)
