"""Flags computed from the seeded ranges (lab/migrations/0008), as a table: sex, age band, values at each limit.

Hemoglobin: men 13.2-16.6, women 11.6-15.0 g/dL, critical at or below 7.0 and at or above 20.0, from 18 years.
Glucose: 70-99 mg/dL, critical at or below 39 and at or above 451 (below 40, above 450), reportable 20-600.
"""

import pytest

from lab.models import Analyte
from lab.results.flags import ResultValueError, age_in_days, interpret
from lab.results.services import interpret_for

pytestmark = pytest.mark.django_db
ADULT = 18 * 365


def flag(loinc: str, typed: str, *, sex: str = "F", age_days: int = 40 * 365) -> tuple[str, str]:
    """(reported value, flag)."""
    analyte = Analyte.objects.get(loinc_code=loinc)
    read = interpret(analyte, typed, sex=sex, age_days=age_days, ranges=analyte.ranges.all())
    value = f"{read.comparator}{read.value_numeric:f}" if read.value_numeric is not None else read.value_text
    return value, read.flag


HGB, GLUCOSE, INR, A1C, HCG, URINE_PH = "718-7", "41653-7", "34714-6", "4548-4", "2106-3", "5803-2"


@pytest.mark.parametrize(
    ("loinc", "typed", "sex", "expected"),
    [
        # Hemoglobin by sex: the same value is low for a man and normal for a woman.
        (HGB, "12.0", "M", ("12.0", "L")),
        (HGB, "12.0", "F", ("12.0", "N")),
        (HGB, "13.2", "M", ("13.2", "N")),  # exactly at the low limit: within
        (HGB, "13.1", "M", ("13.1", "L")),
        (HGB, "16.6", "M", ("16.6", "N")),  # exactly at the high limit: within
        (HGB, "16.7", "M", ("16.7", "H")),
        (HGB, "15.1", "F", ("15.1", "H")),
        (HGB, "11.5", "F", ("11.5", "L")),
        (HGB, "7.1", "F", ("7.1", "L")),
        (HGB, "7.0", "F", ("7.0", "LL")),  # exactly at the critical limit: critical
        (HGB, "6.8", "M", ("6.8", "LL")),
        (HGB, "19.9", "M", ("19.9", "H")),
        (HGB, "20.0", "M", ("20.0", "HH")),
        (HGB, "6.95", "F", ("7.0", "LL")),  # rounded half up to the analyte's one decimal first
        # Glucose, one range for any sex.
        (GLUCOSE, "40", "M", ("40", "L")),
        (GLUCOSE, "39", "M", ("39", "LL")),
        (GLUCOSE, "69", "F", ("69", "L")),
        (GLUCOSE, "70", "F", ("70", "N")),
        (GLUCOSE, "99", "F", ("99", "N")),
        (GLUCOSE, "100", "F", ("100", "H")),
        (GLUCOSE, "450", "F", ("450", "H")),
        (GLUCOSE, "451", "F", ("451", "HH")),
        # Outside the reportable range: the limit with < or >, flagged beyond it.
        (GLUCOSE, "<20", "F", ("<20", "LL")),
        (GLUCOSE, "12", "F", ("<20", "LL")),
        (GLUCOSE, ">600", "M", (">600", "HH")),
        (GLUCOSE, "750", "M", (">600", "HH")),
        (GLUCOSE, "600", "M", ("600", "HH")),
        # A patient whose sex is unknown gets a range for any sex only (hemoglobin has none).
        (GLUCOSE, "120", "U", ("120", "H")),
        (HGB, "12.0", "U", ("12.0", "")),
        # Critical high only, and an upper limit only.
        (INR, "4.9", "F", ("4.9", "H")),
        (INR, "5.0", "F", ("5.0", "HH")),
        (A1C, "5.6", "F", ("5.6", "N")),
        (A1C, "5.7", "F", ("5.7", "H")),
        (A1C, "3.1", "F", ("<4.0", "N")),  # no lower limit: only "below what the method reports"
        (URINE_PH, "8.5", "F", ("8.5", "H")),
        # Ordinal: the scale's spelling whatever the case; off the normal values is A.
        (HCG, "positive", "F", ("Positive", "A")),
        (HCG, "NEGATIVE", "F", ("Negative", "N")),
    ],
)
def test_flags_are_computed_from_sex_and_the_seeded_ranges(
    loinc: str, typed: str, sex: str, expected: tuple[str, str]
) -> None:
    assert flag(loinc, typed, sex=sex) == expected


@pytest.mark.parametrize(
    ("age_days", "expected"),
    [
        # A day short of 18: the children's band carries only the critical limit, so no L/H is claimed...
        (ADULT - 1, ("11.0", "")),
        (ADULT, ("11.0", "L")),  # ...the adult band from its first day (inclusive)
        (90 * 365, ("11.0", "L")),  # no upper age
        (ADULT - 1, ("6.8", "LL")),  # a child's critical value is flagged all the same
    ],
)
def test_age_bands_start_on_their_first_day(age_days: int, expected: tuple[str, str]) -> None:
    assert flag(HGB, expected[0], sex="F", age_days=age_days) == expected


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter a value for Hgb."),
        ("abc", "Hgb is a number in g/dL."),
        ("<10", "Only a value outside the reportable range (0.0 to 25.6) is given as < or >; enter the number."),
    ],
)
def test_a_value_that_cannot_be_a_result_says_what_would_be(typed: str, message: str) -> None:
    analyte = Analyte.objects.get(loinc_code=HGB)
    with pytest.raises(ResultValueError) as refused:
        interpret(analyte, typed, sex="F", age_days=ADULT, ranges=analyte.ranges.all())
    assert str(refused.value) == message


def test_an_ordinal_value_off_the_scale_names_the_scale() -> None:
    analyte = Analyte.objects.get(loinc_code=HCG)
    with pytest.raises(ResultValueError, match=r"hCG is one of: Negative, Positive\."):
        interpret(analyte, "maybe", sex="F", age_days=ADULT, ranges=[])


def test_the_age_is_taken_on_the_day_of_collection_not_today() -> None:
    import datetime as dt

    from django.utils import timezone

    from backoffice.models import Patient
    from specimens.models import Specimen

    collected = timezone.now() - dt.timedelta(days=3)
    born = timezone.localdate(collected) - dt.timedelta(days=ADULT - 1)  # 18 the day after collection
    patient = Patient(date_of_birth=born, sex="F")
    specimen = Specimen(patient=patient, collected_at=collected)
    analyte = Analyte.objects.get(loinc_code=HGB)
    assert age_in_days(born, timezone.localdate()) >= ADULT  # adult today...
    assert interpret_for(analyte, "11.0", specimen=specimen).flag == ""  # ...but not when drawn (no L)
