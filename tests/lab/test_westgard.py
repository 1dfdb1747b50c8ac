"""The Westgard rules as pure functions of z-scores, oldest first: no database."""

from decimal import Decimal

import pytest

from lab.qc import westgard


def test_z_score_is_the_distance_from_the_mean_in_sds() -> None:
    assert westgard.z_score(Decimal("110"), mean=Decimal("100"), sd=Decimal("5")) == 2.0
    assert westgard.z_score(Decimal("92.5"), mean=Decimal("100"), sd=Decimal("5")) == -1.5


def test_a_control_without_a_positive_sd_is_refused() -> None:
    with pytest.raises(ValueError):
        westgard.z_score(Decimal("1"), mean=Decimal("1"), sd=Decimal("0"))


@pytest.mark.parametrize(
    ("zs", "expected"),
    [
        ([0.4], []),
        ([2.0], []),  # on the line is inside it
        ([2.1], ["1-2s"]),
        ([-2.5], ["1-2s"]),
        ([3.2], ["1-2s", "1-3s"]),
        ([-3.01], ["1-2s", "1-3s"]),
        ([2.2, 2.4], ["1-2s", "2-2s"]),
        ([-2.2, -2.1], ["1-2s", "2-2s"]),
        ([2.2, -2.4], ["1-2s", "R-4s"]),  # opposite sides: not 2-2s, but more than 4 SD apart
        ([1.9, 2.4], ["1-2s"]),  # the previous one was inside 2 SD
        ([1.2, 1.5, 1.1, 1.8], ["4-1s"]),
        ([1.2, -1.5, 1.1, 1.8], []),
        ([0.1, 0.3, 0.2, 0.5, 0.4, 0.1, 0.9, 0.3, 0.2, 0.6], ["10x"]),
        ([0.1, 0.3, 0.2, 0.5, -0.4, 0.1, 0.9, 0.3, 0.2, 0.6], []),
        ([], []),
    ],
)
def test_violations_read_the_current_run_with_those_before_it(zs: list[float], expected: list[str]) -> None:
    assert westgard.violations(zs) == expected


def test_only_earlier_runs_beyond_a_rule_do_not_flag_the_current_one() -> None:
    assert westgard.violations([3.5, 2.5, 0.2]) == []


def test_1_2s_alone_warns_and_does_not_reject() -> None:
    assert not westgard.rejects(["1-2s"])
    assert westgard.rejects(["1-2s", "2-2s"])
    assert westgard.rejects(["4-1s"])


@pytest.mark.parametrize(
    ("zs", "passes"),
    [
        ([0.0], True),
        ([-2.0], True),
        ([2.3], False),  # outside the ±2 SD acceptance window
        ([1.3, 1.4, 1.2, 1.6], False),  # within 2 SD, but 4-1s rejects it
        ([2.5, 1.0], True),
        ([], False),
    ],
)
def test_a_run_is_accepted_within_2_sd_with_no_rejecting_rule(zs: list[float], passes: bool) -> None:
    assert westgard.accepted(zs) is passes


def test_violations_round_trip_through_the_stored_field() -> None:
    stored = westgard.as_field(["1-2s", "1-3s", "2-2s", "R-4s", "4-1s", "10x"])
    assert len(stored) <= 40  # QCRun.westgard's max_length
    assert westgard.from_field(stored) == ["1-2s", "1-3s", "2-2s", "R-4s", "4-1s", "10x"]
    assert westgard.from_field("") == []
