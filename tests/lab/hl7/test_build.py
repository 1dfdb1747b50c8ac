"""The ORM^O01 orders and the ACKs we build: strictly valid (hl7apy, with the #151 workaround of
tests/lab/hl7/strict.py and nothing else) and right field by field (read back with python-hl7)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import hl7
import pytest
from hl7apy.exceptions import HL7apyException, ValidationError

from lab.hl7 import er7
from lab.hl7.build import (
    HD,
    AskAtOrderEntry,
    Collector,
    Diagnosis,
    Endpoint,
    OrmOrder,
    PatientIds,
    Provider,
    ReceivedHeader,
    SpecimenSource,
    build_ack,
    build_orm,
    is_valid_npi,
    read_header,
    timestamp,
)
from tests.lab.hl7.strict import StrictValidationFailed, assert_strictly_valid, parse_strict, report

EST = timezone(timedelta(hours=-5))
NOW = datetime(2026, 12, 2, 9, 30, 12, tzinfo=EST)
COLLECTED = datetime(2026, 12, 2, 8, 5, 0, tzinfo=EST)
CLINIC = HD.iso("CLINIC", "2.16.840.1.113883.19.5")
SENDER = Endpoint(HD("BACKOFFICE"), CLINIC)
LAB = Endpoint(HD("LABIF"), HD("NATLAB", "2.16.840.1.113883.3.999", "ISO"))

PLAIN_NAMES = {"family": "Martinez", "given": "Rosa", "middle": "Elena"}
# Every delimiter, and a backslash that looks like an escape sequence already.
TRICKY_NAMES = {"family": "O'Brien & Sons|Ltd", "given": "Rosa^Maria", "middle": "~J\\S\\"}


def make_order(*, names: dict[str, str] = PLAIN_NAMES, extras: bool = True, **overrides: object) -> OrmOrder:
    order = OrmOrder(
        placer_order_number="000042",
        accession="S000012347",
        patient=PatientIds(
            mrn="M0100001",
            assigning_authority=CLINIC,
            birth_date=date(1980, 1, 31),
            sex="F",
            **names,
        ),
        ordering_provider=Provider(npi="1234567893", family=names["family"], given="Priya", middle="K"),
        test_loinc="2345-7",
        test_name="Glucose [Mass/volume] in Serum or Plasma",
        lab_test_code="483",
        lab_test_name="GLUCOSE, SERUM",
        stat=False,
        collected_at=COLLECTED,
        collector=Collector("E1042", names["family"], names["given"]) if extras else None,
        clinical_information=("Fasting since 20:00 | on metformin ^ & ~ \\ C:\\F\\" if extras else ""),
        specimen_source=SpecimenSource("119364003", "Serum specimen") if extras else None,
        diagnoses=(
            (
                Diagnosis("E11.9", "Type 2 diabetes mellitus without complications"),
                Diagnosis("R73.09", "Other abnormal glucose"),
            )
            if extras
            else ()
        ),
        answers=(
            (
                AskAtOrderEntry("49541-6", "Fasting status", "CWE", "Yes", code="Y", coding_system="HL70136"),
                AskAtOrderEntry("8302-2", "Body height", "NM", "170.5"),
                AskAtOrderEntry("48767-8", "Annotation comment", "ST", "drawn late ^ | & ~ \\"),
            )
            if extras
            else ()
        ),
        id_authority=CLINIC,
    )
    return dataclasses.replace(order, **overrides)  # type: ignore[arg-type]


def orm(order: OrmOrder, version: str = "2.5.1", **kwargs: object) -> str:
    arguments: dict[str, object] = {
        "sender": SENDER,
        "receiver": LAB,
        "version": version,
        "processing_id": "P",
        "control_id": "ORM000042-1",
        "now": NOW,
    }
    arguments.update(kwargs)
    return build_orm(order, **arguments)  # type: ignore[arg-type]


MATRIX = list(
    itertools.product(
        ["2.5.1", "2.3"],  # version
        ["NW", "CA"],  # action
        [True, False],  # stat
        [True, False],  # with ask-at-order-entry answers, diagnoses, specimen source, collector
        ["plain", "tricky"],  # names
    )
)


@pytest.mark.parametrize(("version", "action", "stat", "extras", "names"), MATRIX)
def test_every_order_is_strictly_valid_and_right_field_by_field(
    version: str, action: str, stat: bool, extras: bool, names: str
) -> None:
    name_parts = TRICKY_NAMES if names == "tricky" else PLAIN_NAMES
    order = make_order(names=name_parts, extras=extras, action=action, stat=stat)
    text = orm(order, version)

    strict = assert_strictly_valid(text)
    assert strict.name == "ORM_O01"
    assert strict.version == version

    # Structure: the segments, in chapter 4's order, and nothing else (no result rows, no SPM).
    assert text.endswith("\r") and "\n" not in text
    segments = [line[:3] for line in text.split("\r") if line]
    expected = ["MSH", "PID", "ORC", "OBR"]
    if extras:
        expected += ["DG1", "DG1", "OBX", "OBX", "OBX"]
    assert segments == expected

    m = hl7.parse(text)
    v23 = version == "2.3"
    priority = "S" if stat else "R"
    # MSH
    assert m["MSH.F1"] == "|" and m["MSH.F2"] == "^~\\&"
    assert (m["MSH.F3.R1.C1"], m["MSH.F4.R1.C1"], m["MSH.F4.R1.C2"], m["MSH.F4.R1.C3"]) == (
        "BACKOFFICE",
        "CLINIC",
        "2.16.840.1.113883.19.5",
        "ISO",
    )
    assert (m["MSH.F5.R1.C1"], m["MSH.F6.R1.C1"], m["MSH.F6.R1.C2"], m["MSH.F6.R1.C3"]) == (
        "LABIF",
        "NATLAB",
        "2.16.840.1.113883.3.999",
        "ISO",
    )
    assert m["MSH.F7"] == "20261202093012-0500"
    assert str(m.segment("MSH")(9)) == ("ORM^O01" if v23 else "ORM^O01^ORM_O01")
    assert m["MSH.F10"] == "ORM000042-1"
    assert m["MSH.F11"] == "P"
    assert m["MSH.F12"] == version
    # PID
    assert m["PID.F1"] == "1"
    assert m["PID.F3.R1.C1"] == "M0100001"
    assert (m["PID.F3.R1.C4.S1"], m["PID.F3.R1.C4.S2"], m["PID.F3.R1.C4.S3"]) == (
        "CLINIC",
        "2.16.840.1.113883.19.5",
        "ISO",
    )
    assert m["PID.F3.R1.C5"] == "MR"
    assert (m["PID.F5.R1.C1"], m["PID.F5.R1.C2"], m["PID.F5.R1.C3"]) == (
        name_parts["family"],
        name_parts["given"],
        name_parts["middle"],
    )
    assert len(m.segment("PID")(5)) == 1  # one repetition: a ~ in a name did not make two
    assert m["PID.F7"] == "19800131"
    assert m["PID.F8"] == "F"
    # ORC
    assert m["ORC.F1"] == action
    assert (m["ORC.F2.R1.C1"], m["ORC.F2.R1.C2"], m["ORC.F2.R1.C3"], m["ORC.F2.R1.C4"]) == (
        "000042",
        "CLINIC",
        "2.16.840.1.113883.19.5",
        "ISO",
    )
    assert m["ORC.F3"] == ""
    assert m["ORC.F4.R1.C1"] == "S000012347"
    assert str(m.segment("ORC")(7)) == f"^^^^^{priority}"
    assert m["ORC.F7.R1.C6"] == priority
    assert m["ORC.F9"] == "20261202093012-0500"
    provider = str(m.segment("ORC")(12))
    assert m["ORC.F12.R1.C1"] == "1234567893"
    assert (m["ORC.F12.R1.C2"], m["ORC.F12.R1.C3"], m["ORC.F12.R1.C4"]) == (name_parts["family"], "Priya", "K")
    assert (m["ORC.F12.R1.C9.S1"], m["ORC.F12.R1.C9.S2"], m["ORC.F12.R1.C9.S3"]) == (
        "NPI",
        "2.16.840.1.113883.4.6",
        "ISO",
    )
    assert m["ORC.F12.R1.C13"] == "NPI"
    # OBR
    assert m["OBR.F1"] == "1"
    assert str(m.segment("OBR")(2)) == str(m.segment("ORC")(2))
    assert m["OBR.F3"] == ""
    assert str(m.segment("OBR")(4)) == "2345-7^Glucose [Mass/volume] in Serum or Plasma^LN^483^GLUCOSE, SERUM^L"
    assert m["OBR.F7"] == "20261202080500-0500"
    assert m["OBR.F11"] == "O"
    assert str(m.segment("OBR")(16)) == provider
    assert m["OBR.F18"] == "S000012347"
    assert str(m.segment("OBR")(27)) == f"^^^^^{priority}"
    if extras:
        assert (m["OBR.F10.R1.C1"], m["OBR.F10.R1.C2"], m["OBR.F10.R1.C3"]) == (
            "E1042",
            name_parts["family"],
            name_parts["given"],
        )
        assert m["OBR.F13"] == "Fasting since 20:00 | on metformin ^ & ~ \\ C:\\F\\"
        assert (m["OBR.F15.R1.C1.S1"], m["OBR.F15.R1.C1.S2"], m["OBR.F15.R1.C1.S3"]) == (
            "119364003",
            "Serum specimen",
            "SCT",
        )
        # DG1: ICD-10-CM, I10C in 2.5.1 and I10 in 2.3 (where DG1-2 also says so)
        system = "I10" if v23 else "I10C"
        dg1s = [s for s in m if str(s(0)) == "DG1"]
        assert [str(s(1)) for s in dg1s] == ["1", "2"]
        assert [str(s(3)) for s in dg1s] == [
            f"E11.9^Type 2 diabetes mellitus without complications^{system}",
            f"R73.09^Other abnormal glucose^{system}",
        ]
        assert [str(s(2)) for s in dg1s] == ([system, system] if v23 else ["", ""])
        assert [str(s(6)) for s in dg1s] == ["W", "W"]
        # OBX: ask-at-order-entry, OBX-11 O
        obxs = [s for s in m if str(s(0)) == "OBX"]
        assert [str(s(1)) for s in obxs] == ["1", "2", "3"]
        assert [str(s(2)) for s in obxs] == ["CE" if v23 else "CWE", "NM", "ST"]
        assert [str(s(3)) for s in obxs] == [
            "49541-6^Fasting status^LN",
            "8302-2^Body height^LN",
            "48767-8^Annotation comment^LN",
        ]
        assert str(obxs[0](5)) == "Y^Yes^HL70136"
        assert str(obxs[1](5)) == "170.5"
        assert m.unescape(str(obxs[2](5))) == "drawn late ^ | & ~ \\"
        assert [str(s(11)) for s in obxs] == ["O", "O", "O"]
    else:
        for field in (10, 13, 15):
            assert str(m.segment("OBR")(field)) == ""


def test_an_example_order_reads_as_the_standard_shows_it() -> None:
    order = make_order(stat=True, answers=make_order().answers[:1], diagnoses=make_order().diagnoses[:1])
    assert orm(order).split("\r") == [
        "MSH|^~\\&|BACKOFFICE|CLINIC^2.16.840.1.113883.19.5^ISO|LABIF|NATLAB^2.16.840.1.113883.3.999^ISO"
        "|20261202093012-0500||ORM^O01^ORM_O01|ORM000042-1|P|2.5.1",
        "PID|1||M0100001^^^CLINIC&2.16.840.1.113883.19.5&ISO^MR||Martinez^Rosa^Elena||19800131|F",
        "ORC|NW|000042^CLINIC^2.16.840.1.113883.19.5^ISO||S000012347^CLINIC^2.16.840.1.113883.19.5^ISO|||^^^^^S"
        "||20261202093012-0500|||1234567893^Martinez^Priya^K^^^^^NPI&2.16.840.1.113883.4.6&ISO^^^^NPI",
        "OBR|1|000042^CLINIC^2.16.840.1.113883.19.5^ISO||2345-7^Glucose [Mass/volume] in Serum or Plasma^LN^483"
        "^GLUCOSE, SERUM^L|||20261202080500-0500|||E1042^Martinez^Rosa|O||Fasting since 20:00 \\F\\ on metformin"
        " \\S\\ \\T\\ \\R\\ \\E\\ C:\\E\\F\\E\\||119364003&Serum specimen&SCT|1234567893^Martinez^Priya^K^^^^^NPI"
        "&2.16.840.1.113883.4.6&ISO^^^^NPI||S000012347|||||||||^^^^^S",
        "DG1|1||E11.9^Type 2 diabetes mellitus without complications^I10C|||W",
        "OBX|1|CWE|49541-6^Fasting status^LN||Y^Yes^HL70136||||||O",
        "",
    ]


def test_tricky_names_are_escaped_and_round_trip_exactly() -> None:
    text = orm(make_order(names=TRICKY_NAMES))
    pid = next(line for line in text.split("\r") if line.startswith("PID"))
    assert "O'Brien \\T\\ Sons\\F\\Ltd^Rosa\\S\\Maria^\\R\\J\\E\\S\\E\\" in pid
    strict = assert_strictly_valid(text)
    name = strict.ORM_O01_PATIENT.PID.pid_5
    assert name.xpn_2.to_er7() == "Rosa\\S\\Maria"


def test_a_test_with_no_loinc_sends_the_labs_code_alone() -> None:
    text = orm(make_order(test_loinc="", test_name=""))
    assert_strictly_valid(text)
    assert str(hl7.parse(text).segment("OBR")(4)) == "483^GLUCOSE, SERUM^L"


def test_the_labs_coding_system_and_a_diagnosis_system_can_be_named() -> None:
    order = make_order(lab_coding_system="99NLB", diagnoses=(Diagnosis("E11.9", "T2DM", coding_system="I10"),))
    text = orm(order)
    assert_strictly_valid(text)
    m = hl7.parse(text)
    assert m["OBR.F4.R1.C6"] == "99NLB"
    assert str(m.segment("DG1")(3)) == "E11.9^T2DM^I10"
    with pytest.raises(ValueError, match="99zzz"):
        make_order(lab_coding_system="LOCAL")


def test_processing_id_t_and_a_utc_now() -> None:
    text = orm(make_order(), processing_id="T", now=datetime(2026, 7, 1, 14, 0, 0, tzinfo=UTC))
    assert_strictly_valid(text)
    m = hl7.parse(text)
    assert m["MSH.F11"] == "T"
    assert m["MSH.F7"] == "20260701140000+0000"
    with pytest.raises(ValueError, match="MSH-11"):
        orm(make_order(), processing_id="D")


def test_non_ascii_text_declares_utf8() -> None:
    names = {"family": "Martínez", "given": "Zoë", "middle": ""}
    text = orm(make_order(names=names))
    assert_strictly_valid(text)
    m = hl7.parse(text)
    assert m["MSH.F18"] == "UNICODE UTF-8"
    assert m["PID.F5.R1.C1"] == "Martínez"
    assert hl7.parse(orm(make_order()))["MSH.F18"] == ""


def test_text_answers_keep_their_lines() -> None:
    answers = (
        AskAtOrderEntry("48767-8", "Annotation comment", "TX", "line one\nline | two"),
        AskAtOrderEntry("48767-8", "Annotation comment", "FT", "first\r\nsecond ^"),
        AskAtOrderEntry("21112-8", "Birth date", "DT", "19800131"),
    )
    text = orm(make_order(answers=answers))
    assert_strictly_valid(text)
    obxs = [line for line in text.split("\r") if line.startswith("OBX")]
    assert obxs[0].split("|")[5] == "line one~line \\F\\ two"
    assert obxs[1].split("|")[5] == "first\\.br\\second \\S\\"
    assert obxs[2].split("|")[5] == "19800131"
    # a line break in an ST field can't end the segment
    text = orm(make_order(clinical_information="two\nlines\r\nhere"))
    assert hl7.parse(text)["OBR.F13"] == "two lines here"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"control_id": ""}, "MSH-10"),
        ({"control_id": "A" * 21}, "at most 20"),
        ({"control_id": "A|B"}, "delimiters"),
        ({"now": datetime(2026, 12, 2, 9, 30)}, "aware"),
        ({"version": "2.4"}, "2.5.1"),
    ],
)
def test_bad_header_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        orm(make_order(), **kwargs)  # type: ignore[arg-type]


def test_bad_orders_are_refused() -> None:
    with pytest.raises(ValueError, match="NW or CA"):
        make_order(action="XO")
    with pytest.raises(ValueError, match="aware"):
        make_order(collected_at=datetime(2026, 12, 2, 8, 5))
    with pytest.raises(ValueError, match="NPI"):
        Provider(npi="1234567890", family="Shah", given="Priya")
    with pytest.raises(ValueError, match="table 0001"):
        PatientIds("M1", CLINIC, "Doe", "Jane", date(1980, 1, 1), "X")
    with pytest.raises(ValueError, match="assigning authority"):
        PatientIds("M1", HD(), "Doe", "Jane", date(1980, 1, 1), "F")
    with pytest.raises(ValueError, match="code and coding system"):
        AskAtOrderEntry("49541-6", "Fasting", "CWE", "Yes")
    with pytest.raises(ValueError, match="NM"):
        AskAtOrderEntry("8302-2", "Height", "NM", "tall")
    with pytest.raises(ValueError, match="value type"):
        AskAtOrderEntry("8302-2", "Height", "XYZ", "1")
    with pytest.raises(ValueError, match="universal id"):
        HD("CLINIC", "2.16.840.1.113883.19.5")


def test_npi_check_digit() -> None:
    assert is_valid_npi("1234567893")
    assert not is_valid_npi("1234567890")
    assert not is_valid_npi("123456789")


def test_timestamps_carry_the_offset() -> None:
    assert timestamp(datetime(2026, 12, 2, 9, 30, 12, tzinfo=EST)) == "20261202093012-0500"
    assert timestamp(datetime(2026, 3, 1, 0, 0, 0, tzinfo=timezone(timedelta(hours=5, minutes=30)))) == (
        "20260301000000+0530"
    )


# The #151 workaround itself: it hides hl7apy's bogus choice-group errors and nothing else.


def test_hl7apy_151_is_still_there() -> None:
    """If this fails, hl7apy fixed #151: drop the workaround in tests/lab/hl7/strict.py."""
    message = parse_strict(orm(make_order()))
    with pytest.raises(ValidationError, match=r"Missing required child ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP\.RQD"):
        message.validate()
    errors, _ = report(message)
    assert sorted(errors) == sorted(
        f"Missing required child ORM_O01_OBRRQDRQ1RXOODSODT_SUPPGRP.{member}"
        for member in ("RQD", "RQ1", "RXO", "ODS", "ODT")
    )


@pytest.mark.parametrize("version", ["2.5.1", "2.3"])
def test_the_workaround_still_catches_real_errors(version: str) -> None:
    good = orm(make_order(), version)
    lines = good.split("\r")
    # A required field missing: OBX-11 is required, the set id of DG1 too.
    missing_status = "\r".join(line.rsplit("|O", 1)[0] if line.startswith("OBX") else line for line in lines)
    # A segment where ORM has none (a PV1 after the order's ORC).
    misplaced = "\r".join([*lines[:3], "PV1|1|O", *lines[3:]])
    # A second OBR in the one choice group.
    two_obrs = "\r".join([*lines[:4], lines[3], *lines[4:]])
    for bad in (missing_status, misplaced, two_obrs):
        with pytest.raises((StrictValidationFailed, HL7apyException)):
            assert_strictly_valid(bad)


def test_the_workaround_fails_an_unexpected_warning() -> None:
    text = orm(make_order()).replace("||19800131|F\r", "||19800131|Q\r")  # PID-8 not in table 0001
    with pytest.raises(StrictValidationFailed, match="Value Q not in table HL70001"):
        assert_strictly_valid(text)


@pytest.mark.parametrize("version", ["2.5.1", "2.3"])
def test_long_clinical_information_goes_whole_into_an_nte(version: str) -> None:
    note = "Patient on warfarin | INR target 2-3.\n" + "Recent dose change ^ see chart. " * 12
    text = orm(make_order(clinical_information=note), version)
    assert_strictly_valid(text)
    m = hl7.parse(text)
    assert [str(s(0)) for s in m][:5] == ["MSH", "PID", "ORC", "OBR", "NTE"]
    assert m["OBR.F13"] == ""
    assert (m["NTE.F1"], m["NTE.F2"]) == ("1", "P")
    assert "2-3.\\.br\\Recent" in text
    assert m["NTE.F3"] == note.replace("\n", "\r")  # python-hl7 reads \.br\ as a CR
    short = orm(make_order(clinical_information="x" * 199), version)
    assert hl7.parse(short)["OBR.F13"] == "x" * 199
    assert "\rNTE|" not in short


def test_a_text_too_long_for_its_st_is_refused() -> None:
    with pytest.raises(ValueError, match="ST value holds 199"):
        orm(make_order(names={"family": "F" * 200, "given": "G", "middle": ""}))
    ack = build_ack(read_header(ORU_251), code="AE", text="|" * 300, sender=SENDER, control_id="A", now=NOW)
    assert hl7.parse(ack)["MSA.F3"] == "|" * 66  # cut to fit 199 escaped, never inside \F\


# ACKs


def received(text: str) -> ReceivedHeader:
    return read_header(text)


ORU_251 = (
    "MSH|^~\\&|LABIF|NATLAB^2.16.840.1.113883.3.999^ISO|BACKOFFICE|CLINIC|20261203101500-0500||ORU^R01^ORU_R01"
    "|LAB\\F\\778|P|2.5.1\rPID|1||M0100001^^^CLINIC^MR||Martinez^Rosa\r"
)
ORU_23 = "MSH|^~\\&|LEGACY|REFLAB|BACKOFFICE|CLINIC|200612031015||ORU^R01|77801|T|2.3\rPID|1||M0100001\r"


@pytest.mark.parametrize(
    ("raw", "code", "structure"),
    [(ORU_251, "AA", None), (ORU_251, "AE", None), (ORU_23, "AA", "ACK"), (ORU_23, "AR", "ACK")],
)
def test_acks_are_strictly_valid_and_echo_the_message(raw: str, code: str, structure: str | None) -> None:
    header = received(raw)
    ack = build_ack(header, code=code, text="stored ^ | & ~ \\", sender=SENDER, control_id="ACK1", now=NOW)
    assert ack.endswith("\r")
    strict = assert_strictly_valid(ack, structure)
    assert strict.name == "ACK"
    m = hl7.parse(ack)
    original = hl7.parse(raw)
    assert [str(s(0)) for s in m] == ["MSH", "MSA"]
    assert m["MSA.F1"] == code
    assert m["MSA.F2"] == original["MSH.F10"]
    assert m["MSA.F3"] == "stored ^ | & ~ \\"
    assert str(m.segment("MSH")(5)) == str(original.segment("MSH")(3))
    assert str(m.segment("MSH")(6)) == str(original.segment("MSH")(4))
    assert (m["MSH.F3"], str(m.segment("MSH")(4))) == ("BACKOFFICE", "CLINIC^2.16.840.1.113883.19.5^ISO")
    assert m["MSH.F7"] == "20261202093012-0500"
    assert m["MSH.F10"] == "ACK1"
    assert m["MSH.F11"] == original["MSH.F11"]
    assert m["MSH.F12"] == original["MSH.F12"]
    assert str(m.segment("MSH")(9)) == ("ACK^R01^ACK" if original["MSH.F12"] == "2.5.1" else "ACK^R01")


def test_the_received_control_id_is_unescaped_then_escaped_again() -> None:
    header = received(ORU_251)
    assert header.control_id == "LAB|778"
    ack = build_ack(header, sender=SENDER, control_id="ACK2", now=NOW)
    assert "MSA|AA|LAB\\F\\778" in ack


def test_read_header_is_tolerant() -> None:
    odd = "\x0b\ufeffMSH#$~\\&#LABIF#NATLAB$1.2.3$ISO#BACKOFFICE##20261203##ORU$R01#X9#P#2.3.1\nPID#1\n\x1c\r"
    header = read_header(odd)
    assert header.sending_application == HD("LABIF")
    assert header.sending_facility == HD("NATLAB", "1.2.3", "ISO")
    assert (header.message_type, header.trigger_event, header.control_id) == ("ORU", "R01", "X9")
    assert (header.processing_id, header.version) == ("P", "2.3.1")
    ack = build_ack(header, sender=SENDER, control_id="ACK3", now=NOW)
    assert_strictly_valid(ack)
    assert hl7.parse(ack)["MSH.F12"] == "2.3.1"
    assert str(hl7.parse(ack).segment("MSH")(9)) == "ACK^R01^ACK"
    for garbage in ("", "garbage", "MSH", "PID|1||x"):
        assert read_header(garbage) == ReceivedHeader()


def test_an_ack_for_input_with_no_header() -> None:
    ack = build_ack(read_header("not hl7 at all"), code="AR", text="not HL7", sender=SENDER, control_id="R1", now=NOW)
    m = hl7.parse(ack)
    assert (m["MSA.F1"], m["MSA.F2"], m["MSA.F3"]) == ("AR", "", "not HL7")
    assert (m["MSH.F11"], m["MSH.F12"], str(m.segment("MSH")(9))) == ("P", "2.5.1", "ACK^^ACK")
    # With no control id to echo, MSA-2 (required) stays empty: that is the one thing strict
    # validation finds, and it is true.
    errors, _ = report(parse_strict(ack))
    assert errors == ["Missing required child MSA.MSA_2"]


def test_bad_ack_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="MSA-1"):
        build_ack(ReceivedHeader(), code="OK", sender=SENDER, control_id="A", now=NOW)
    with pytest.raises(ValueError, match="aware"):
        build_ack(ReceivedHeader(), sender=SENDER, control_id="A", now=datetime(2026, 1, 1))


def test_er7_escape_round_trips_through_python_hl7() -> None:
    samples = ["plain", "a|b^c&d~e\\f", "\\F\\ literal", "\\", "ends with \\", "x\\.br\\y"]
    for sample in samples:
        text = f"MSH|^~\\&|A|B|C|D|20260101||ORM^O01|1|P|2.5.1\rNTE|1||{er7.escape(sample)}\r"
        assert hl7.parse(text)["NTE.F3"] == sample
        assert er7.unescape(er7.escape(sample)) == sample
