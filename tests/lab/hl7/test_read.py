"""The tolerant ORU reader and the dialect profiles, against the corpus in tests/lab/hl7/corpus.

No database: the reader is plain text in, dataclasses out. Each corpus file is checked field by
field, mostly by comparing whole dataclasses, so a value that lands in the wrong place, or one that
appears where none was sent, fails.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import hl7
import hl7.util
import pytest

from lab.hl7.profiles import BUILTIN_PROFILES, DialectProfile, MrnPlace
from lab.hl7.read import (
    Coded,
    HL7ParseError,
    Identity,
    MessageHeader,
    Observation,
    OrderGroup,
    ParsedMessage,
    PatientId,
    _lines,
    _read_msh,
    message_header,
    normalize_id,
    parse_oru,
    split_messages,
)

CORPUS = Path(__file__).parent / "corpus"
NATIONAL = BUILTIN_PROFILES["national-lri-251"]
LEGACY = BUILTIN_PROFILES["legacy-23"]
HOSPITAL = BUILTIN_PROFILES["hospital-outreach-231"]
EST = timezone(timedelta(hours=-5))
CST = timezone(timedelta(hours=-6))

# Every corpus file: how many items split_messages gives, and the profile its lab speaks.
CORPUS_FILES: dict[str, tuple[int, DialectProfile]] = {
    "national_251_cmp_final.hl7": (1, NATIONAL),
    "correction.hl7": (1, NATIONAL),
    "identity_mismatch.hl7": (1, NATIONAL),
    "unknown_accession.hl7": (1, NATIONAL),
    "crlf_line_endings.hl7": (1, NATIONAL),
    "batch_prelim_then_final.hl7": (2, NATIONAL),
    "escapes.hl7": (1, NATIONAL),
    "nte_comments.hl7": (1, NATIONAL),
    "cwe_sn_results.hl7": (1, NATIONAL),
    "duplicate_control_id.hl7": (2, NATIONAL),
    "legacy_23_no_orc.hl7": (1, LEGACY),
    "lf_line_endings.hl7": (1, LEGACY),
    "latin1_legacy.hl7": (1, LEGACY),
    "hospital_231_outreach.hl7": (1, HOSPITAL),
    "mllp_framed.hl7": (2, HOSPITAL),
    "tx_narrative_pathology.hl7": (1, HOSPITAL),
    "large_pathology_over_64k.hl7": (1, HOSPITAL),
    "garbage.hl7": (1, NATIONAL),
    "broken_encoding_chars.hl7": (1, LEGACY),
}
NOT_HL7 = {"garbage.hl7", "broken_encoding_chars.hl7"}


def texts(name: str) -> list[str]:
    return split_messages((CORPUS / name).read_bytes())


def read(name: str, index: int = 0, profile: DialectProfile | None = None) -> ParsedMessage:
    return parse_oru(texts(name)[index], profile or CORPUS_FILES[name][1])


# --------------------------------------------------------------------------------------------
# The corpus as a whole


def test_every_corpus_file_is_listed_here_and_in_the_readme() -> None:
    on_disk = {path.name for path in CORPUS.glob("*.hl7")}
    assert on_disk == set(CORPUS_FILES)
    readme = (CORPUS / "README.md").read_text()
    for name in on_disk:
        assert f"`{name}`" in readme, f"{name} is not described in corpus/README.md"


@pytest.mark.parametrize("name", sorted(CORPUS_FILES))
def test_each_file_splits_into_its_messages_and_each_reads_or_is_refused(name: str) -> None:
    count, profile = CORPUS_FILES[name]
    items = texts(name)
    assert len(items) == count
    for text in items:
        assert text.endswith("\r")
        assert "\n" not in text and "\x0b" not in text and "\x1c" not in text
        if name in NOT_HL7:
            with pytest.raises(HL7ParseError):
                parse_oru(text, profile)
            continue
        assert text.startswith("MSH|^~\\&|")
        message = parse_oru(text, profile)
        assert message.raw == text
        assert message.message_type == "ORU" and message.trigger == "R01"
        assert message.orders and all(order.observations for order in message.orders)
        assert message.warnings == []
        assert message_header(text) == (
            message.control_id,
            message.sending_application,
            message.sending_facility,
            "ORU^R01",
            message.version,
        )


def _python_hl7_leaves(segment: Any) -> Any:
    """(field, repetition, component, subcomponent, raw text) for every leaf of python-hl7's tree."""
    for number in range(1, len(segment)):
        for r, rep in enumerate(segment[number], 1):
            if isinstance(rep, str):
                yield number, r, 1, 1, rep
                continue
            for c, comp in enumerate(rep, 1):
                if isinstance(comp, str):
                    yield number, r, c, 1, comp
                    continue
                for s, sub in enumerate(comp, 1):
                    yield number, r, c, s, sub


@pytest.mark.parametrize("name", sorted(set(CORPUS_FILES) - NOT_HL7))
def test_segments_fields_and_components_split_exactly_as_python_hl7_splits_them(name: str) -> None:
    """The reader splits lazily for speed; it must give python-hl7's (hl7.parse) tree, leaf for leaf."""
    for text in texts(name):
        theirs = hl7.parse(text)
        lines = _lines(text)
        msh, seps = _read_msh(lines[0])
        ours = [msh] + [line.split(seps.fs) for line in lines[1:]]
        assert len(theirs) == len(ours)
        for segment, fields in zip(theirs, ours, strict=True):
            assert str(segment[0]) == fields[0]
            assert len(segment) == len(fields)
            for number, r, c, s, raw in _python_hl7_leaves(segment):
                if fields[0] == "MSH" and number <= 2:
                    assert fields[number] == raw
                    continue
                comps = seps.reps(fields[number])[r - 1].split(seps.comp)
                assert comps[c - 1].split(seps.sub)[s - 1] == raw
                if seps.esc in raw and not re.search(r"\\[^FSTRE\\]", raw.replace("\\\\", "")):
                    # Where python-hl7's unescape is right (separator escapes only), ours agrees.
                    assert seps.leaf(raw) == hl7.util.unescape(theirs, raw)


# --------------------------------------------------------------------------------------------
# The national reference lab, HL7 2.5.1 LRI

ACME_LAB = {
    "performing_org_name": "Acme Reference Laboratories",
    "performing_org_id": "05D0987654",
    "performing_org_address": "1200 Research Blvd, Suite 100, Springfield, IL 62704, USA",
    "performing_org_director": "Dr Alan J Moreau MD",
    "performing_org_director_id": "1902837465",
}
CMP = [
    # set id, LOINC, LOINC text, local code, local text, value, unit, unit text, range, flags
    ("1", "2345-7", "Glucose [Mass/volume] in Serum or Plasma", "GLU", "Glucose", "112", "mg/dL", "milligram per deciliter", "70-99", ["H"]),
    ("2", "3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "BUN", "BUN", "14", "mg/dL", "milligram per deciliter", "7-20", ["N"]),
    ("3", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "CREA", "Creatinine", "0.90", "mg/dL", "milligram per deciliter", "0.57-1.00", ["N"]),
    ("4", "2951-2", "Sodium [Moles/volume] in Serum or Plasma", "NA", "Sodium", "139", "mmol/L", "millimole per liter", "134-144", ["N"]),
    ("5", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "K", "Potassium", "4.4", "mmol/L", "millimole per liter", "3.5-5.2", ["N"]),
    ("6", "2075-0", "Chloride [Moles/volume] in Serum or Plasma", "CL", "Chloride", "101", "mmol/L", "millimole per liter", "96-106", ["N"]),
    ("7", "2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "CO2", "CO2", "24", "mmol/L", "millimole per liter", "20-29", ["N"]),
    ("8", "17861-6", "Calcium [Mass/volume] in Serum or Plasma", "CA", "Calcium", "8.4", "mg/dL", "milligram per deciliter", "8.7-10.3", ["L"]),
    ("9", "2885-2", "Protein [Mass/volume] in Serum or Plasma", "TP", "Protein, total", "7.1", "g/dL", "gram per deciliter", "6.0-8.5", ["N"]),
    ("10", "1751-7", "Albumin [Mass/volume] in Serum or Plasma", "ALB", "Albumin", "4.50", "g/dL", "gram per deciliter", "3.9-4.9", ["N"]),
    ("11", "1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "TBIL", "Bilirubin, total", "0.4", "mg/dL", "milligram per deciliter", "0.0-1.2", ["N"]),
    ("12", "6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "ALP", "Alkaline phosphatase", "88", "U/L", "unit per liter", "44-121", ["N"]),
    ("13", "1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "AST", "AST", "19", "U/L", "unit per liter", "0-40", ["N"]),
    ("14", "1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "ALT", "ALT", "22", "U/L", "unit per liter", "0-32", ["N"]),
]  # fmt: skip


def cmp_row(index: int, **changes: Any) -> Observation:
    set_id, loinc, loinc_text, local, local_text, value, unit, unit_text, ref, flags = CMP[index - 1]
    fields: dict[str, Any] = {
        "set_id": set_id,
        "value_type": "NM",
        "loinc_code": loinc,
        "loinc_text": loinc_text,
        "local_code": local,
        "local_text": local_text,
        "local_system": "L",
        "raw_value": value,
        "number": Decimal(value),
        "unit": unit,
        "unit_text": unit_text,
        "unit_system": "UCUM",
        "reference_range": ref,
        "abnormal_flags": flags,
        "status": "F",
        "observed_at": datetime(2026, 3, 1, 8, 15, tzinfo=EST),
        "analysed_at": datetime(2026, 3, 2, 9, 30, tzinfo=EST),
        **ACME_LAB,
    }
    fields.update(changes)
    return Observation(**fields)


def rosa(**changes: Any) -> Identity:
    fields: dict[str, Any] = {
        "our_mrn": "M100001",
        "our_mrn_from": "PID-3 typed MR from CLINIC",
        "identifiers": [PatientId("M100001", "MR", "CLINIC", "2.16.840.1.113883.19.5", "PID-3")],
        "family": "Martinez",
        "given": "Rosa",
        "middle": "Elena",
        "dob": date(1980, 2, 14),
        "dob_text": "19800214",
        "sex": "F",
    }
    fields.update(changes)
    return Identity(**fields)


def test_national_lri_final_cmp_header() -> None:
    message = read("national_251_cmp_final.hl7")
    assert message.control_id == "ACME20260302101500000123"
    assert message.sending_application == "ACMEREF"
    assert message.sending_application_full == "ACMEREF^2.16.840.1.113883.3.9999.1^ISO"
    assert message.sending_facility == "ACMEREFLAB"
    assert message.sending_facility_full == "ACMEREFLAB^05D0987654^CLIA"
    assert message.receiving_application == "CLINICBO"
    assert message.receiving_facility == "CLINIC"
    assert (message.message_type, message.trigger, message.structure) == ("ORU", "R01", "ORU_R01")
    assert message.version == "2.5.1"
    assert message.processing_id == "P"
    assert message.sent_at == datetime(2026, 3, 2, 10, 15, tzinfo=EST)
    assert message.sent_at is not None and message.sent_at.utcoffset() == timedelta(hours=-5)
    assert message.notes == [] and message.warnings == []


def test_national_lri_final_cmp_patient_order_and_every_result() -> None:
    message = read("national_251_cmp_final.hl7")
    assert message.identity == rosa()
    assert len(message.orders) == 1
    order = message.orders[0]
    expected_rows = [cmp_row(i) for i in range(1, 15)]
    expected_rows[0].notes = ["Fasting status: fasting 10 hours per patient."]
    assert order.observations == expected_rows
    assert order == OrderGroup(
        set_id="1",
        order_control="RE",
        placer="ORD-2026-000042",
        placer_from="ORC-2",
        accession="S000010019",
        accession_from="ORC-4",
        filler="A26-0019871",
        filler_from="ORC-3",
        service_loinc="24323-8",
        service_loinc_text="Comprehensive metabolic 2000 panel - Serum or Plasma",
        service_code="322000",
        service_text="CMP14",
        service_system="L",
        status="F",
        observed_at=datetime(2026, 3, 1, 8, 15, tzinfo=EST),
        reported_at=datetime(2026, 3, 2, 10, 15, tzinfo=EST),
        notes=["Specimen received ambient; processed within stability limits."],
        observations=expected_rows,
        specimen_ids=["S000010019"],
        identity=rosa(),
    )
    # Precision as sent: 0.90 and 4.50 stay two decimals, never floats.
    assert str(order.observations[2].number) == "0.90"
    assert order.observations[9].display_value == "4.50"


def test_correction_keeps_unchanged_rows_identical_and_marks_the_corrected_one() -> None:
    final = read("national_251_cmp_final.hl7").orders[0]
    corrected = read("correction.hl7")
    order = corrected.orders[0]
    assert corrected.control_id == "ACME20260303084500000311"
    assert (order.status, order.placer, order.accession) == ("C", "ORD-2026-000042", "S000010019")
    assert order.observations[4] == cmp_row(
        5,
        raw_value="4.1",
        number=Decimal("4.1"),
        status="C",
        notes=[
            "Corrected result: previously reported as 6.8 mmol/L (hemolyzed aliquot). "
            "Recollected specimen tested 03/03/2026."
        ],
    )
    # Every other row is re-sent unchanged: identical to the final's (the first lost only its note).
    for index in (*range(1, 4), *range(5, 14)):
        assert order.observations[index] == final.observations[index]
    assert order.observations[0] == cmp_row(1)


def test_identity_mismatch_has_the_orders_keys_and_another_patient() -> None:
    message = read("identity_mismatch.hl7")
    assert message.identity == rosa(
        family="MARTINEZ", given="ROSALIND", middle="", dob=date(1981, 2, 14), dob_text="19810214"
    )
    order = message.orders[0]
    assert (order.placer, order.accession, order.filler) == ("ORD-2026-000042", "S000010019", "A26-0019871")
    assert order.identity is message.identity
    [obs] = order.observations
    assert (obs.loinc_code, obs.number, obs.unit, obs.abnormal_flags) == ("4548-4", Decimal("6.1"), "%", ["H"])


def test_unknown_accession_reads_keys_that_are_simply_not_ours() -> None:
    message = read("unknown_accession.hl7")
    order = message.orders[0]
    assert (order.placer, order.accession, order.filler) == ("ORD-2026-999990", "S000099990", "A26-0023310")
    assert order.specimen_ids == ["S000099990"]
    assert message.identity.our_mrn == "M100099"
    assert (message.identity.family, message.identity.given, message.identity.dob) == (
        "Lindqvist",
        "Erik",
        date(1967, 3, 18),
    )
    [obs] = order.observations
    assert (obs.loinc_code, obs.raw_value, obs.number, obs.unit, obs.reference_range) == (
        "3016-3",
        "2.310",
        Decimal("2.310"),
        "m[IU]/L",
        "0.450-4.500",
    )


def test_crlf_file() -> None:
    raw = (CORPUS / "crlf_line_endings.hl7").read_bytes()
    assert raw.count(b"\r\n") == 7
    message = read("crlf_line_endings.hl7")
    assert message.control_id == "ACME20260305120000000401"
    assert message.identity.our_mrn == "M100005"
    assert (message.identity.family, message.identity.given, message.identity.middle) == ("Redcloud", "Aiyana", "Mae")
    order = message.orders[0]
    assert (order.placer, order.accession, order.specimen_ids) == ("ORD-2026-000060", "S000010040", ["S000010040"])
    [obs] = order.observations
    assert obs.number == Decimal("5.70") and obs.display_value == "5.70"
    assert (obs.unit, obs.unit_text, obs.unit_system, obs.reference_range, obs.abnormal_flags) == (
        "%",
        "percent",
        "UCUM",
        "4.8-5.6",
        ["H"],
    )


def test_batch_preliminary_then_final_in_file_order() -> None:
    preliminary, final = (read("batch_prelim_then_final.hl7", i) for i in (0, 1))
    assert [preliminary.control_id, final.control_id] == ["ACME20260306080000000501", "ACME20260307081500000502"]
    for message in (preliminary, final):
        assert not re.search(r"(^|\r)(FHS|BHS|BTS|FTS)", message.raw)
        order = message.orders[0]
        assert (order.placer, order.accession, order.filler) == ("ORD-2026-000045", "S000010023", "A26-0024555")
        assert (order.service_loinc, order.service_code) == ("630-4", "UCX")
        assert message.identity == rosa()
    [p] = preliminary.orders[0].observations
    assert preliminary.orders[0].status == "P"
    assert p == Observation(
        set_id="1",
        value_type="ST",
        loinc_code="630-4",
        loinc_text="Bacteria identified in Urine by Culture",
        local_code="UCX",
        local_text="Urine culture",
        local_system="L",
        raw_value="Culture in progress; preliminary report to follow.",
        text="Culture in progress; preliminary report to follow.",
        status="P",
        observed_at=datetime(2026, 3, 5, 9, 30, tzinfo=EST),
        **ACME_LAB,
    )
    [f] = final.orders[0].observations
    assert final.orders[0].status == "F"
    assert (f.value_type, f.status, f.text, f.number) == ("CWE", "F", "", None)
    assert f.coded == Coded("264868006", "No growth", "SCT", "NG", "No growth", "L", "No growth at 48 hours")
    assert f.display_value == "No growth"
    assert f.analysed_at == datetime(2026, 3, 7, 8, 0, tzinfo=EST)


def test_escapes_in_ft_st_and_nte() -> None:
    message = read("escapes.hl7")
    order = message.orders[0]
    assert order.notes == ["Reviewed by J. Alvarez & K. Osei; see C:\\LIS\\notes"]
    ft, st, nm = order.observations
    assert ft.value_type == "FT"
    assert ft.text == (
        "HEMOLYSIS INDEX: moderate\n"
        "Values flagged | may be affected\n"
        "Ratio A^B & C~D \\ E\n"
        "Café au lait macules noted; code AB per protocol.\n"
        "\n"
        "    Indented line\n"
        "Back at margin   after three\n"
        "Centered end."
    )
    assert ft.raw_value.startswith("\\H\\HEMOLYSIS INDEX\\N\\")
    assert st.text == "Target cells 1+ ^ rare schistocytes (| 1~2 per HPF)"
    assert nm.number == Decimal("13.6")
    # A lone escape character is no escape: the text is kept as sent.
    assert nm.notes == ["Unterminated escape kept as sent: 50\\ of normal"]


def test_nte_comments_attach_to_the_patient_the_order_and_the_result_they_follow() -> None:
    message = read("nte_comments.hl7")
    assert message.identity.notes == ["Patient identity confirmed by two identifiers at draw."]
    order = message.orders[0]
    assert order.notes == [
        "Assay changed on 02/15/2026 to LC-MS/MS; results are not directly comparable\n"
        "with results obtained before that date.",
        "",
        "Questions: Client Services 800-555-0199.",
    ]
    [obs] = order.observations
    assert obs.notes == ["Vitamin D deficiency: < 20 ng/mL.", "    Insufficiency: 20 - 29 ng/mL (indented as sent)"]
    assert (obs.loinc_code, obs.number, obs.abnormal_flags, obs.reference_range) == (
        "62292-8",
        Decimal("18"),
        ["L"],
        "30.0-100.0",
    )


def test_cwe_results_with_snomed_and_a_local_code_first() -> None:
    respiratory, chemistry = read("cwe_sn_results.hl7").orders
    assert (respiratory.placer, respiratory.accession) == ("ORD-2026-000047", "S000010025")
    assert (chemistry.placer, chemistry.accession) == ("ORD-2026-000048", "S000010026")
    covid, flu, rsv = respiratory.observations
    assert covid.loinc_code == "94500-6" and covid.local_code == ""
    assert covid.coded == Coded("260373001", "Detected", "SCT")
    assert (covid.display_value, covid.abnormal_flags) == ("Detected", ["A"])
    assert flu.coded == Coded("260415000", "Not detected", "SCT")
    assert flu.display_value == "Not detected"
    assert rsv.coded == Coded("NEG", "Negative", "L", "260385009", "Negative", "SCT")


def test_sn_results_keep_the_comparator_and_the_exact_number() -> None:
    chemistry = read("cwe_sn_results.hl7").orders[1]
    troponin, egfr, titer, urine_wbc, glucose = chemistry.observations
    assert (troponin.comparator, troponin.number, troponin.number2) == ("<", Decimal("0.5"), None)
    assert isinstance(troponin.number, Decimal) and str(troponin.number) == "0.5"
    assert troponin.display_value == "<0.5"
    assert (troponin.unit, troponin.reference_range, troponin.abnormal_flags) == ("ng/L", "<=19.8", ["N"])
    assert (egfr.comparator, egfr.number, egfr.display_value) == (">", Decimal("60"), ">60")
    assert egfr.unit == "mL/min/{1.73_m2}"
    assert (titer.comparator, titer.number, titer.separator, titer.number2) == ("", Decimal("1"), ":", Decimal("160"))
    assert titer.display_value == "1:160"
    assert (urine_wbc.number, urine_wbc.separator, urine_wbc.number2, urine_wbc.display_value) == (
        Decimal("2"),
        "-",
        Decimal("5"),
        "2-5",
    )
    assert (glucose.comparator, glucose.number, glucose.abnormal_flags, glucose.display_value) == (
        ">=",
        Decimal("500"),
        ["HH"],
        ">=500",
    )


def test_duplicate_is_the_same_message_twice() -> None:
    first, second = texts("duplicate_control_id.hl7")
    assert first == second
    assert (
        message_header(first)
        == message_header(second)
        == MessageHeader("ACME20260311090000000901", "ACMEREF", "ACMEREFLAB", "ORU^R01", "2.5.1")
    )
    message = parse_oru(second, NATIONAL)
    [obs] = message.orders[0].observations
    assert (obs.number, obs.abnormal_flags) == (Decimal("0.012"), ["LL"])


# --------------------------------------------------------------------------------------------
# Legacy 2.3


def test_legacy_23_without_orc() -> None:
    message = read("legacy_23_no_orc.hl7")
    assert (message.sending_application, message.sending_facility, message.version) == ("LABLINK", "VALLEYPATH", "2.3")
    assert message.structure == ""
    assert message.sent_at == datetime(2026, 3, 3, 14, 30) and message.sent_at.tzinfo is None
    assert message.identity == Identity(
        our_mrn="M100002",
        our_mrn_from="PID-2",
        identifiers=[PatientId("VP448812")],
        alternate_ids=[PatientId("M100002", field="PID-2")],
        family="OKOYE",
        given="DANIEL",
        middle="C",
        dob=date(1975, 7, 30),
        dob_text="19750730",
        sex="M",
    )
    [order] = message.orders
    assert order.order_control == ""
    assert (order.placer, order.placer_from) == ("0000123", "OBR-2")
    assert (order.accession, order.accession_from) == ("S000010020", "OBR-18")
    assert (order.filler, order.filler_from) == ("VP26-55012", "OBR-3")
    assert (order.service_loinc, order.service_code, order.service_text) == ("", "LIPID", "Lipid Panel")
    assert order.received_at == datetime(2026, 3, 3, 12, 0)
    assert order.notes == ["FASTING: YES"]
    chol, trig, hdl, ldl, comment = order.observations
    assert chol == Observation(
        set_id="1",
        value_type="NM",
        loinc_code="2093-3",  # the second triplet: legacy labs put their own code first
        loinc_text="Cholesterol [Mass/volume] in Serum or Plasma",
        local_code="CHOL",
        local_text="Cholesterol",
        local_system="L",
        sub_id="",
        raw_value="212",
        number=Decimal("212"),
        unit="mg/dL",
        reference_range="<200",
        abnormal_flags=["H"],
        status="F",
        observed_at=datetime(2026, 3, 3, 7, 15),
        producer="Valley Pathology Associates",
    )
    assert [o.loinc_code for o in (trig, hdl, ldl)] == ["2571-8", "2085-9", "13457-7"]
    assert [o.abnormal_flags for o in (trig, hdl, ldl)] == [[], [], ["H"]]
    assert (comment.value_type, comment.local_code, comment.loinc_code, comment.text) == (
        "ST",
        "LCOM",
        "",
        "Desirable LDL for high-risk patients is <70 mg/dL.",
    )


def test_lf_file_and_our_mrn_from_the_first_pid3_repetition() -> None:
    raw = (CORPUS / "lf_line_endings.hl7").read_bytes()
    assert b"\r" not in raw and raw.count(b"\n") == 4
    message = read("lf_line_endings.hl7")
    assert message.control_id == "VP0000874600"
    assert (message.identity.our_mrn, message.identity.our_mrn_from) == ("M100004", "PID-3")
    assert [p.id for p in message.identity.identifiers] == ["M100004", "VP550017"]
    order = message.orders[0]
    assert (order.placer, order.accession) == ("0000124", "S000010021")
    [obs] = order.observations
    assert (obs.loinc_code, obs.local_code, obs.number, obs.unit, obs.unit_system) == (
        "3016-3",
        "TSH",
        Decimal("3.02"),
        "uIU/mL",
        "",
    )


def test_latin1_file_is_read_as_latin1() -> None:
    raw = (CORPUS / "latin1_legacy.hl7").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    message = read("latin1_legacy.hl7")
    assert (message.identity.family, message.identity.given) == ("MÜLLER", "JÜRGEN")
    assert message.orders[0].observations[0].notes == ["Probe leicht hämolysiert; Kalium möglicherweise falsch erhöht."]


# --------------------------------------------------------------------------------------------
# Hospital outreach LIS 2.3.1


def test_hospital_outreach_two_orders_and_our_mrn_beside_the_hospitals() -> None:
    message = read("hospital_231_outreach.hl7")
    assert message.sent_at == datetime(2026, 3, 8, 13, 45, tzinfo=CST)
    identity = message.identity
    assert identity.identifiers == [
        PatientId("H7788123", "MR", "MERCY"),
        PatientId("M100003", "PI", "CLINIC"),
    ]
    # The hospital's MRN typed MR comes first; ours is the PI from our authority.
    assert (identity.our_mrn, identity.our_mrn_from) == ("M100003", "PID-3 typed PI from CLINIC")
    cbc, ferritin = message.orders
    assert (cbc.placer, cbc.accession, cbc.filler) == ("ORD-2026-000051", "S000010031", "MH26-0301-0044")
    assert (cbc.placer_from, cbc.accession_from, cbc.filler_from) == ("ORC-2", "OBR-18", "ORC-3")
    assert (ferritin.placer, ferritin.accession, ferritin.filler) == ("ORD-2026-000052", "S000010032", "MH26-0301-0045")
    assert (cbc.service_loinc, cbc.service_code, cbc.service_text) == ("58410-2", "CBC", "CBC w/o Differential")
    assert [(o.local_code, o.loinc_code, o.raw_value, o.unit, o.abnormal_flags) for o in cbc.observations] == [
        ("WBC", "6690-2", "7.2", "K/uL", []),
        ("RBC", "789-8", "4.12", "M/uL", []),
        ("HGB", "718-7", "11.2", "g/dL", ["L"]),
        ("HCT", "4544-3", "34.9", "%", ["L"]),
        ("PLT", "777-3", "256", "K/uL", []),
    ]
    assert all(o.producer == "Mercy General Hospital Laboratory" and o.sub_id == "" for o in cbc.observations)
    assert cbc.observations[0].observed_at == datetime(2026, 3, 8, 7, 15, tzinfo=CST)
    [ferr] = ferritin.observations
    assert (ferr.number, ferr.reference_range, ferr.abnormal_flags) == (Decimal("9"), "15-150", ["L"])


def test_mllp_framed_file_and_our_mrn_from_pid4() -> None:
    raw = (CORPUS / "mllp_framed.hl7").read_bytes()
    assert raw.startswith(b"\x0bMSH") and raw.count(b"\x1c\r") == 2
    first, second = (read("mllp_framed.hl7", i) for i in (0, 1))
    assert [first.control_id, second.control_id] == ["MGH26030915100007", "MGH26030915100008"]
    for message in (first, second):
        identity = message.identity
        # PID-3 holds the hospital's MR and its own PI: neither is ours.
        assert (identity.our_mrn, identity.our_mrn_from) == ("M100003", "PID-4")
        assert identity.alternate_ids == [PatientId("M100003", "", "CLINIC", "", "PID-4")]
    assert (first.orders[0].placer, first.orders[0].accession) == ("ORD-2026-000053", "S000010033")
    assert (second.orders[0].placer, second.orders[0].accession) == ("ORD-2026-000054", "S000010034")
    assert second.orders[0].observations[0].number == Decimal("5.4")


PART_A = (
    "A. SKIN, LEFT FOREARM, SHAVE BIOPSY:\n"
    "   - SEBORRHEIC KERATOSIS, IRRITATED.\n"
    "   - NO ATYPIA OR MALIGNANCY IDENTIFIED.\n"
    "\n"
    "  Comment: Margins are uninvolved."
)
GROSS_A = (
    'Received in formalin labeled with the patient\'s name and "left forearm" is a\n'
    "tan-brown shave of skin, 0.6 x 0.5 x 0.1 cm.\n"
    "\n"
    "    Entirely submitted in cassette A1."
)
PART_B = "B. SKIN, RIGHT UPPER BACK, PUNCH BIOPSY:\n   - COMPOUND MELANOCYTIC NEVUS.\n\n   - Margins free."


def test_tx_narrative_rows_with_one_obx3_and_obx4_are_the_lines_of_one_observation() -> None:
    message = read("tx_narrative_pathology.hl7")
    order = message.orders[0]
    assert (order.placer, order.accession, order.service_loinc) == ("ORD-2026-000055", "S000010035", "60567-5")
    diagnosis_a, gross_a, diagnosis_b = order.observations
    assert (diagnosis_a.set_id, diagnosis_a.loinc_code, diagnosis_a.sub_id) == ("1", "22637-3", "1")
    assert diagnosis_a.text == PART_A
    assert (gross_a.set_id, gross_a.loinc_code, gross_a.sub_id) == ("6", "22634-0", "1")
    assert gross_a.text == GROSS_A
    # Same OBX-3 as part A, another OBX-4: a section of its own; the NTE between its rows stays with it.
    assert (diagnosis_b.set_id, diagnosis_b.loinc_code, diagnosis_b.sub_id) == ("10", "22637-3", "2")
    assert diagnosis_b.text == PART_B
    assert diagnosis_b.notes == ["Part B reviewed at intradepartmental consensus."]
    assert [o.notes for o in (diagnosis_a, gross_a)] == [[], []]
    assert all(o.status == "F" and o.value_type == "TX" for o in order.observations)


def test_message_over_64_kib_is_read_whole() -> None:
    raw = (CORPUS / "large_pathology_over_64k.hl7").read_bytes()
    assert len(raw) > 64 * 1024
    message = read("large_pathology_over_64k.hl7")
    [order] = message.orders
    [report] = order.observations
    lines = report.text.split("\n")
    assert len(lines) == 360
    assert lines[0] == "LEVEL 01 OF 40, BLOCK A1:"
    assert lines[1].startswith("  Sections show breast parenchyma")
    assert lines[3].startswith("    Immunostains (block A1)")
    assert lines[5] == "" and lines[-1] == ""
    assert lines[-9] == "LEVEL 40 OF 40, BLOCK A40:"
    assert lines[-2] == "  Distance to the nearest (posterior) margin: 7 mm. Lymphovascular invasion: not identified."
    assert report.raw_value.count("\n") == 359
    assert (order.placer, order.accession) == ("ORD-2026-000056", "S000010036")


# --------------------------------------------------------------------------------------------
# Not HL7


def test_garbage_is_kept_as_one_item_and_refused() -> None:
    [item] = texts("garbage.hl7")
    assert item.startswith("<html>") and "502 Bad Gateway" in item
    with pytest.raises(HL7ParseError, match="no MSH segment"):
        parse_oru(item, NATIONAL)
    with pytest.raises(HL7ParseError, match="no MSH segment"):
        message_header(item)


def test_broken_encoding_characters_are_refused() -> None:
    [item] = texts("broken_encoding_chars.hl7")
    with pytest.raises(HL7ParseError, match="MSH-2, the encoding characters"):
        parse_oru(item, LEGACY)
    with pytest.raises(HL7ParseError, match="MSH-2"):
        message_header(item)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "no MSH segment"),
        ("   \r\n  \n", "no MSH segment"),
        ("PID|1||M100001\rOBX|1|NM|2345-7^Glucose^LN||90", "no MSH segment at the start"),
        ("MSH", "cut short"),
        ("MSHA^~\\&|LAB", "field separator"),
        ("MSH|^~\\&", "nothing after its encoding characters"),
        ("MSH||LAB|FAC", "encoding characters"),
        ("MSH|^^\\&|LAB|FAC", "encoding characters"),
        ("MSH|^~\\&1|LAB|FAC", "encoding characters"),
        ("MSH|^~|&|LAB|FAC", "encoding characters"),
        ("MSH|^~\\|LAB|FAC", "encoding characters"),
        ("MSH|^~\\&#!|LAB|FAC", "encoding characters"),
        ("FHS|^~\\&|LAB\rBHS|^~\\&|LAB\rBTS|0\rFTS|1", "batch envelope with no message"),
        ("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "no MSH segment"),
    ],
)
def test_not_hl7_raises_hl7_parse_error(text: str, match: str) -> None:
    with pytest.raises(HL7ParseError, match=match) as raised:
        parse_oru(text, NATIONAL)
    assert isinstance(raised.value, ValueError)


def test_two_messages_in_one_text_are_refused_with_what_to_do() -> None:
    text = texts("duplicate_control_id.hl7")[0] * 2
    with pytest.raises(HL7ParseError, match="split_messages"):
        parse_oru(text, NATIONAL)


# --------------------------------------------------------------------------------------------
# Escapes, one by one

MSH = "MSH|^~\\&|LAB|LABFAC|CLINICBO|CLINIC|20260301120000||ORU^R01|CTRL1|P|2.5.1\r"


def one_observation(value: str, value_type: str = "FT", *, msh: str = MSH, extra: str = "") -> Observation:
    fs = msh[3]
    text = (
        msh
        + f"PID{fs}1{fs}{fs}M100001^^^CLINIC^MR{fs}{fs}DOE^JANE{fs}{fs}19900101{fs}F\r"
        + f"OBR{fs}1{fs}ORD-1{fs}{fs}X^Test^L\r"
        + f"OBX{fs}1{fs}{value_type}{fs}X^Test^L{fs}{fs}{value}{extra}\r"
    )
    message = parse_oru(text, NATIONAL)
    [order] = message.orders
    [obs] = order.observations
    return obs


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("a\\F\\b", "a|b"),
        ("a\\S\\b", "a^b"),
        ("a\\T\\b", "a&b"),
        ("a\\R\\b", "a~b"),
        ("a\\E\\b", "a\\b"),
        ("line 1\\.br\\line 2", "line 1\nline 2"),
        ("\\H\\CRITICAL\\N\\ value", "CRITICAL value"),
        ("\\X41\\", "A"),
        ("Caf\\XC3A9\\", "Café"),  # UTF-8 hex
        ("Caf\\XC3\\\\XA9\\", "Café"),  # split over two hex escapes
        ("Caf\\XE9\\", "Café"),  # not UTF-8: latin-1
        ("a\\X0D0A\\b", "a\nb"),
        ("a\\.sp\\b", "a\nb"),
        ("a\\.sp3\\b", "a\n\n\nb"),
        ("\\.in+4\\a", "    a"),
        ("\\.ti-4\\a", "a"),
        ("a\\.sk2\\b", "a  b"),
        ("a\\.ce\\b", "a\nb"),
        ("\\.fi\\a\\.nf\\b", "ab"),
        ("a\\Zlocal\\b", "ab"),
        ("a\\C2842\\b", "ab"),
        ("a\\M2442\\b", "ab"),
        ("C:\\temp\\file", "C:\\temp\\file"),  # not an escape: as sent
        ("50\\ of normal", "50\\ of normal"),  # unterminated
        ("a\\\\b", "a\\\\b"),  # empty sequence
        ("a\\X4\\b", "a\\X4\\b"),  # odd hex
        ("no escapes at all", "no escapes at all"),
    ],
)
def test_each_escape(value: str, text: str) -> None:
    assert one_observation(value).text == text


@pytest.mark.parametrize("sequence", ["\\F\\", "\\S\\", "\\T\\", "\\R\\", "\\E\\", "a\\F\\b\\S\\c\\E\\\\T\\"])
def test_separator_escapes_decode_as_python_hl7_decodes_them(sequence: str) -> None:
    parsed = hl7.parse(MSH + f"OBX|1|ST|X^Test^L||{sequence}\r")
    assert one_observation(sequence, "ST").text == hl7.util.unescape(parsed, sequence)


@pytest.mark.parametrize(
    ("value", "python_hl7", "ours"),
    [
        ("a\\.br\\b", "a\rb", "a\nb"),
        ("\\H\\x\\N\\", "_x_", "x"),
        ("Caf\\XC3A9\\", "CafÃ©", "Café"),
        ("50\\ of normal", "50", "50\\ of normal"),
    ],
)
def test_where_python_hl7_unescape_is_wrong_ours_is_used(value: str, python_hl7: str, ours: str) -> None:
    """Why read.py decodes escapes itself: if python-hl7 changes, this says so."""
    assert hl7.util.unescape(hl7.parse(MSH), value) == python_hl7
    assert one_observation(value).text == ours


def test_the_messages_own_delimiters_are_used() -> None:
    msh = "MSH#$*/%#LAB#LABFAC#CLINICBO#CLINIC#20260301120000##ORU$R01#CTRL2#P#2.3\r"
    obs = one_observation("a/F/b/S/c/T/d/R/e/E/f/.br/g", "TX", msh=msh, extra="#mg/dL$mg/dL$UCUM#1-2#H*HH")
    assert obs.text == "a#b$c%d*e/f\ng"
    assert (obs.unit, obs.unit_system, obs.reference_range, obs.abnormal_flags) == ("mg/dL", "UCUM", "1-2", ["H", "HH"])
    assert message_header(msh) == ("CTRL2", "LAB", "LABFAC", "ORU^R01", "2.3")


def test_a_fifth_encoding_character_from_v27_is_accepted() -> None:
    msh = MSH.replace("MSH|^~\\&|", "MSH|^~\\&#|")
    assert one_observation("a\\F\\b", "ST", msh=msh).text == "a|b"


def test_ft_components_and_repetitions_are_lines() -> None:
    assert one_observation("first^second~third").text == "first\nsecond\nthird"
    # ST has neither: a stray component separator is the lab's text.
    assert one_observation("ratio 1^2", "ST").text == "ratio 1^2"


# --------------------------------------------------------------------------------------------
# Values, tolerantly


@pytest.mark.parametrize(
    ("value", "number", "comparator", "display"),
    [
        ("5.40", Decimal("5.40"), "", "5.40"),
        ("0.0000001", Decimal("0.0000001"), "", "0.0000001"),
        (" 7 ", Decimal("7"), "", "7"),
        ("-2.5", Decimal("-2.5"), "", "-2.5"),
        ("<0.5", Decimal("0.5"), "<", "<0.5"),  # a comparator in an NM: what the lab meant, with a warning
        (">= 100", Decimal("100"), ">=", ">=100"),
    ],
)
def test_nm_values(value: str, number: Decimal, comparator: str, display: str) -> None:
    obs = one_observation(value, "NM")
    assert (obs.number, obs.comparator, obs.display_value) == (number, comparator, display)
    assert isinstance(obs.number, Decimal)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e5", "TNP", "see note", "5,4"])
def test_nm_that_is_not_a_number_is_kept_as_text(value: str) -> None:
    obs = one_observation(value, "NM")
    assert (obs.number, obs.text, obs.display_value) == (None, value, value)


@pytest.mark.parametrize(
    ("value", "comparator", "number", "separator", "number2", "display"),
    [
        ("<^0.5", "<", Decimal("0.5"), "", None, "<0.5"),
        ("<=^0.50", "<=", Decimal("0.50"), "", None, "<=0.50"),
        (">^60", ">", Decimal("60"), "", None, ">60"),
        ("=^7", "=", Decimal("7"), "", None, "7"),
        ("<>^0", "<>", Decimal("0"), "", None, "<>0"),
        ("^1^:^128", "", Decimal("1"), ":", Decimal("128"), "1:128"),
        ("^10^-^20", "", Decimal("10"), "-", Decimal("20"), "10-20"),
        ("^2^+", "", Decimal("2"), "+", None, "2+"),
        ("<0.5", "<", Decimal("0.5"), "", None, "<0.5"),  # sent without the component separator
    ],
)
def test_sn_values(
    value: str, comparator: str, number: Decimal, separator: str, number2: Decimal | None, display: str
) -> None:
    obs = one_observation(value, "SN")
    assert (obs.comparator, obs.number, obs.separator, obs.number2) == (comparator, number, separator, number2)
    assert obs.display_value == display
    assert obs.text == ""


def test_sn_that_does_not_read_is_kept_as_text_with_a_warning() -> None:
    text = MSH + "OBR|1|ORD-1\rOBX|1|SN|X^Test^L||~~^abc\r"
    message = parse_oru(text, NATIONAL)
    obs = message.orders[0].observations[0]
    assert obs.number is None and obs.text == ""
    message = parse_oru(MSH + "OBR|1|ORD-1\rOBX|1|SN|X^Test^L||<<^5\r", NATIONAL)
    obs = message.orders[0].observations[0]
    assert (obs.number, obs.comparator, obs.text, obs.display_value) == (None, "", "<<^5", "<<^5")
    assert any("SN value" in w for w in message.warnings)


def test_empty_and_null_values_and_obx4() -> None:
    obs = one_observation("", "NM")
    assert (obs.number, obs.text, obs.sub_id, obs.display_value) == (None, "", "", "")
    assert one_observation('""', "NM").number is None
    assert one_observation('""', "TX").text == ""


def test_odd_structure_is_read_as_far_as_it_goes_and_said_in_warnings() -> None:
    text = (
        MSH + "garbage line in the middle\r"
        "OBX|1|NM|2345-7^Glucose^LN||90|mg/dL\r"  # before any OBR
        "ORC|RE|ORD-9\r"  # an ORC with no OBR
    )
    message = parse_oru(text, NATIONAL)
    assert [w.split(":")[0] for w in message.warnings] == [
        "line 2 is not a segment and was skipped",
        "an OBX came before any OBR",
        "an ORC with no OBR after it was skipped",
        "no PID segment",
    ]
    [order] = message.orders
    assert (order.placer, order.accession, order.observations[0].number) == ("", "", Decimal("90"))
    assert message.identity == Identity()


def test_bad_dates_are_left_empty_with_a_warning() -> None:
    text = MSH.replace("20260301120000", "2026-03-01") + (
        "PID|1||M1^^^CLINIC^MR||DOE^JANE||198002|F\r"
        "OBR|1|ORD-1||X^Test^L|||20261301\r"
        "OBX|1|NM|X^Test^L||1|||||||||20260230\r"
    )
    message = parse_oru(text, NATIONAL)
    assert message.sent_at is None
    assert (message.identity.dob, message.identity.dob_text) == (None, "198002")
    assert message.orders[0].observed_at is None
    assert message.orders[0].observations[0].observed_at is None
    assert len(message.warnings) == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026", datetime(2026, 1, 1)),
        ("20260301", datetime(2026, 3, 1)),
        ("202603011015", datetime(2026, 3, 1, 10, 15)),
        ("20260301101530.1234", datetime(2026, 3, 1, 10, 15, 30, 123400)),
        ("20260301101530+0000", datetime(2026, 3, 1, 10, 15, 30, tzinfo=UTC)),
        ("202603011015-0330", datetime(2026, 3, 1, 10, 15, tzinfo=timezone(-timedelta(hours=3, minutes=30)))),
        (
            "20260301101530.5+0530",
            datetime(2026, 3, 1, 10, 15, 30, 500000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
    ],
)
def test_timestamps(value: str, expected: datetime) -> None:
    obs = one_observation("1", "NM", extra=f"|||||||||{value}")
    assert obs.observed_at == expected
    assert obs.observed_at is not None
    assert obs.observed_at.utcoffset() == expected.utcoffset()


def test_each_order_carries_the_patient_it_falls_under() -> None:
    text = (
        MSH + "PID|1||M1^^^CLINIC^MR||ONE^ANN||19900101|F\rOBR|1|ORD-1\rOBX|1|NM|X^T^L||1\r"
        "PID|2||M2^^^CLINIC^MR||TWO^BEN||19910101|M\rOBR|1|ORD-2\rOBX|1|NM|X^T^L||2\r"
    )
    message = parse_oru(text, NATIONAL)
    first, second = message.orders
    assert (first.identity.our_mrn, second.identity.our_mrn) == ("M1", "M2")
    assert message.identity is first.identity
    assert any("more than one PID" in w for w in message.warnings)


def test_an_obr_without_its_own_orc_does_not_borrow_the_previous_one() -> None:
    text = MSH + "ORC|RE|ORD-1\rOBR|1|\rOBX|1|NM|X^T^L||1\rOBR|2|ORD-2\rOBX|1|NM|X^T^L||2\r"
    first, second = parse_oru(text, NATIONAL).orders
    assert (first.placer, first.placer_from, first.order_control) == ("ORD-1", "ORC-2", "RE")
    assert (second.placer, second.placer_from, second.order_control) == ("ORD-2", "OBR-2", "")


def test_narrative_rows_merge_only_when_consecutive_with_the_same_code_type_and_sub_id() -> None:
    text = MSH + (
        "OBR|1|ORD-1\r"
        "OBX|1|TX|A^Alpha^L|1|one\r"
        "OBX|2|TX|A^Alpha^L|1|  two\r"
        "OBX|3|NM|B^Beta^L|1|5\r"
        "OBX|4|TX|A^Alpha^L|1|three\r"
        "OBX|5|FT|A^Alpha^L|1|four\r"
        "OBX|6|FT|A^Alpha^L|2|five\r"
        "OBX|7|NM|B^Beta^L|1|6\r"
        "OBX|8|NM|B^Beta^L|1|7\r"
    )
    observations = parse_oru(text, NATIONAL).orders[0].observations
    assert [(o.set_id, o.display_value) for o in observations] == [
        ("1", "one\n  two"),
        ("3", "5"),
        ("4", "three"),
        ("5", "four"),
        ("6", "five"),
        ("7", "6"),  # numbers are never merged: two rows, the intake decides
        ("8", "7"),
    ]


def test_message_header_reads_an_odd_message() -> None:
    text = "\x0b\r\nMSH|^~\\&|LAB^1.2.3^ISO|FAC|CLINICBO|CLINIC|x||ORU^R01^ORU_R01|CTRL9|P|2.4\nthis is not a segment\x1c\r"
    assert message_header(text) == MessageHeader("CTRL9", "LAB", "FAC", "ORU^R01", "2.4")
    assert message_header("MSH|^~\\&|^1.2.3^ISO|||||||||") == ("", "1.2.3", "", "", "")
    stray = "note: see aMSH above\r\n" + MSH + "OBX|1|NM|X\r"
    assert message_header(stray) == ("CTRL1", "LAB", "LABFAC", "ORU^R01", "2.5.1")


def test_parse_oru_takes_bytes_too() -> None:
    data = (CORPUS / "latin1_legacy.hl7").read_bytes()
    assert parse_oru(data, LEGACY).identity.family == "MÜLLER"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# split_messages


def test_split_messages_from_bytes_and_text_alike() -> None:
    data = (CORPUS / "batch_prelim_then_final.hl7").read_bytes()
    assert split_messages(data) == split_messages(data.decode()) == split_messages(bytearray(data))


def test_split_messages_keeps_stray_text_as_an_item_of_its_own() -> None:
    one = "MSH|^~\\&|LAB|FAC|||20260301||ORU^R01|A|P|2.3\rPID|1\r"
    two = "MSH|^~\\&|LAB|FAC|||20260301||ORU^R01|B|P|2.3\rPID|2\r"
    data = "\ufeffjunk before\r\n\r\n" + one.replace("\r", "\n") + "\n\n   \n" + two + "FTS|1\rtrailing junk\r\x1a"
    assert split_messages(data) == ["junk before\r", one, two, "trailing junk\r"]
    assert split_messages(b"") == [] and split_messages("\r\n \r\n") == []


def test_split_messages_drops_framing_and_blank_lines() -> None:
    one = "MSH|^~\\&|LAB|FAC|||20260301||ORU^R01|A|P|2.3\rPID|1\r"
    framed = f"\x0b{one}\x1c\r\x0b{one}\x1c\x0d\r\n"
    assert split_messages(framed.encode()) == [one, one]


# --------------------------------------------------------------------------------------------
# normalize_id


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("ORD-2026-000042^CLINIC^2.16.840.1.113883.19.5^ISO", "ORD-2026-000042"),
        ("ORD-2026-000042", "ORD-2026-000042"),
        ("S000010019&CLINIC&2.16.840.1.113883.19.5&ISO", "S000010019"),
        ("0000123", "0000123"),
        ("0000123^CLINIC", "0000123"),
        ("  0000123 ", "0000123"),
        ("\t00042\n", "00042"),
        ("000", "000"),
        ("0", "0"),
        ("1.50", "1.50"),
        ("1e3", "1e3"),
        ("s000010019", "s000010019"),  # case is kept: ids are compared as sent
        ("A 1", "A 1"),
        ("^CLINIC", ""),
        ('""', ""),
        ("", ""),
    ],
)
def test_normalize_id(value: str, normalized: str) -> None:
    assert normalize_id(value) == normalized


def test_ids_are_never_numbers() -> None:
    assert normalize_id("0000123") != normalize_id("123")
    assert normalize_id("00042") != normalize_id("42")
    assert isinstance(normalize_id("0000123"), str)
    assert read("legacy_23_no_orc.hl7").orders[0].placer == "0000123"


# --------------------------------------------------------------------------------------------
# Profiles


@pytest.mark.parametrize("key", sorted(BUILTIN_PROFILES))
def test_builtin_profiles_round_trip_through_json(key: str) -> None:
    profile = BUILTIN_PROFILES[key]
    data = json.loads(json.dumps(profile.to_dict()))
    assert DialectProfile.from_dict(data) == profile
    assert DialectProfile.from_dict(data).to_dict() == data


def test_builtin_profiles_as_documented() -> None:
    assert NATIONAL.to_dict() | {"description": ""} == {
        "name": "National reference lab, HL7 2.5.1 LRI",
        "description": "",
        "mrn": [{"field": "PID-3", "type": "MR", "authority": "CLINIC"}],
        "placer": ["ORC-2", "OBR-2"],
        "accession": ["ORC-4", "SPM-2"],
        "filler": ["ORC-3", "OBR-3"],
    }
    assert LEGACY.mrn == (MrnPlace("PID-2"), MrnPlace("PID-3"))
    assert (LEGACY.placer, LEGACY.accession, LEGACY.filler) == (("OBR-2",), ("OBR-18",), ("OBR-3",))
    assert HOSPITAL.mrn == (MrnPlace("PID-4"), MrnPlace("PID-3", "PI", "CLINIC"))
    assert (HOSPITAL.placer, HOSPITAL.accession) == (("ORC-2", "OBR-2"), ("OBR-18",))
    for profile in BUILTIN_PROFILES.values():
        assert profile.description


def test_the_docs_example_is_a_valid_profile() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "hl7-profiles.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", docs, re.S)
    assert blocks
    for block in blocks:  # the definition; admin has the name in a field of its own
        profile = DialectProfile.from_dict({"name": "From the docs", **json.loads(block)})
        assert profile.accession == ("OBR-19", "OBR-18")


def test_from_dict_is_lenient_in_form() -> None:
    profile = DialectProfile.from_dict(
        {"name": "Shorthand", "mrn": {"field": "PID-3", "type": "MR"}, "accession": " ORC-4, OBR-20 ,SPM-2.1"}
    )
    assert profile.mrn == (MrnPlace("PID-3", "MR"),)
    assert profile.accession == ("ORC-4", "OBR-20", "SPM-2.1")
    assert (profile.placer, profile.filler) == (("ORC-2", "OBR-2"), ("ORC-3", "OBR-3"))  # the defaults
    assert DialectProfile.from_dict({"name": "x", "mrn": "PID-4"}).mrn == (MrnPlace("PID-4"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({}, "needs a name"),
        ({"name": "  "}, "needs a name"),
        ({"name": 7}, "name must be text"),
        ({"name": "x", "acession": ["ORC-4"]}, r"no keys \['acession'\]"),
        ({"name": "x", "description": 3}, "description must be text"),
        ({"name": "x", "mrn": []}, "at least one place for our MRN"),
        ({"name": "x", "mrn": 5}, "mrn must be a list"),
        ({"name": "x", "mrn": [{"field": "PID-5"}]}, r"mrn\[0\]: our MRN can be in PID-3, PID-2, PID-4, not 'PID-5'"),
        ({"name": "x", "mrn": [{"type": "MR"}]}, r"mrn\[0\] needs a field"),
        ({"name": "x", "mrn": [{"field": "PID-3", "kind": "MR"}]}, r"unknown keys \['kind'\]"),
        ({"name": "x", "mrn": [{"field": "PID-3", "type": 1}]}, "type_code must be text"),
        ({"name": "x", "mrn": [{"field": "PID-3", "authority": "CLINIC^1.2"}]}, "HL7 delimiters"),
        ({"name": "x", "mrn": [{"field": "PID-3", "type": " MR"}]}, "spaces around it"),
        ({"name": "x", "mrn": [["PID-3"]]}, r"mrn\[0\] must be an object"),
        ({"name": "x", "mrn": ["PID-3", "PID-3"]}, "listed twice"),
        ({"name": "x", "placer": ["OBX-5"]}, "keys are read from ORC, OBR, SPM, not OBX"),
        ({"name": "x", "placer": ["ORC2"]}, "not a place like"),
        ({"name": "x", "placer": ["ORC-0"]}, "not a place like"),
        ({"name": "x", "accession": ["orc-4"]}, "not a place like"),
        ({"name": "x", "accession": ["OBR-18", "OBR-18"]}, "listed twice"),
        ({"name": "x", "accession": [18]}, "each place must be text"),
        ({"name": "x", "filler": {"ORC-3": 1}}, "filler must be a list"),
        (
            {"name": "x", "placer": [], "accession": ""},
            "at least one place for the placer order number or our accession",
        ),
    ],
)
def test_invalid_profiles_are_refused_with_a_clear_message(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DialectProfile.from_dict(data)


def test_the_profile_decides_where_keys_and_mrn_are_read() -> None:
    text = texts("hospital_231_outreach.hl7")[0]
    as_national = parse_oru(text, NATIONAL)
    # No PID-3 typed MR from CLINIC, no ORC-4, no SPM: read with the wrong profile, nothing matches.
    assert (as_national.identity.our_mrn, as_national.orders[0].accession) == ("", "")
    assert as_national.orders[0].placer == "ORD-2026-000051"
    custom = DialectProfile.from_dict(
        {"name": "Filler as accession", "mrn": [{"field": "PID-3", "type": "MR"}], "accession": ["OBR-3"]}
    )
    read_custom = parse_oru(text, custom)
    assert (read_custom.identity.our_mrn, read_custom.identity.our_mrn_from) == ("H7788123", "PID-3 typed MR")
    assert (read_custom.orders[0].accession, read_custom.orders[0].accession_from) == ("MH26-0301-0044", "OBR-3")
    # A component place: SPM-2.2 is the lab's own specimen id.
    spm = DialectProfile.from_dict({"name": "SPM", "accession": ["SPM-2.2"]})
    assert parse_oru(texts("national_251_cmp_final.hl7")[0], spm).orders[0].accession == "A26-0019871-1"


def test_mrn_authority_matches_the_namespace_or_the_universal_id_ignoring_case() -> None:
    text = MSH + "PID|1||H1^^^MERCY^MR~M7^^^&2.16.840.1.113883.19.5&ISO^MR\rOBR|1|ORD-1\rOBX|1|NM|X^T^L||1\r"
    by_oid = DialectProfile(name="oid", mrn=(MrnPlace("PID-3", "mr", "2.16.840.1.113883.19.5"),))
    assert parse_oru(text, by_oid).identity.our_mrn == "M7"
    by_name = DialectProfile(name="name", mrn=(MrnPlace("PID-3", "MR", "mercy"),))
    assert parse_oru(text, by_name).identity.our_mrn == "H1"


def test_an_id_that_can_t_be_our_mrn_is_passed_over_as_the_lab_s_own() -> None:
    # A hospital LIS types its own number MR in PID-3 and ours in PID-2: read with the clinic's MRN
    # format, PID-3's H-number is not ours and PID-2's is taken.
    text = MSH + "PID|1|M100002|H7788123^^^MERCY^MR\rOBR|1|ORD-1\rOBX|1|NM|X^T^L||1\r"
    profile = DialectProfile(name="mr first", mrn=(MrnPlace("PID-3", "MR"), MrnPlace("PID-2")))
    assert parse_oru(text, profile).identity.our_mrn == "H7788123"  # no format given: any id
    read = parse_oru(text, profile, is_ours=lambda value: value.startswith("M")).identity
    assert (read.our_mrn, read.our_mrn_from) == ("M100002", "PID-2")
    nothing = parse_oru(text, profile, is_ours=lambda value: False).identity
    assert (nothing.our_mrn, nothing.our_mrn_from) == ("", "")
