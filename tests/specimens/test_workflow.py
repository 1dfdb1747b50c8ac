"""The specimen workflow table, read without a database."""

import itertools

import pytest

from backoffice.workflow import TransitionNotAllowed
from specimens.workflow import COLLECTED_STATUSES, SPECIMEN, SPECIMEN_MOVES, SpecimenStatus

S = SpecimenStatus


def test_every_status_has_a_row() -> None:
    assert set(SPECIMEN_MOVES) == set(S)


def test_the_chain_of_custody_is_allowed_in_order() -> None:
    path = [S.LABELLED, S.COLLECTED, S.IN_TRANSIT, S.RECEIVED, S.IN_TESTING, S.DONE, S.STORED, S.DISPOSED]
    assert all(SPECIMEN.allows(a, b) for a, b in itertools.pairwise(path))


@pytest.mark.parametrize("status", [S.COLLECTED, S.IN_TRANSIT, S.RECEIVED, S.IN_TESTING])
def test_a_specimen_can_be_rejected_once_drawn_until_testing_is_done(status: str) -> None:
    assert SPECIMEN.allows(status, S.REJECTED)


def test_a_label_not_yet_verified_is_never_received_or_rejected() -> None:
    # The bedside check comes first: until then there is no specimen to hand over.
    assert SPECIMEN_MOVES[S.LABELLED] == frozenset({S.COLLECTED, S.NOT_COLLECTED})


def test_a_rejected_specimen_stays_on_record_until_disposed() -> None:
    assert SPECIMEN_MOVES[S.REJECTED] == frozenset({S.DISPOSED})
    assert SPECIMEN_MOVES[S.DISPOSED] == frozenset()


def test_nothing_is_received_twice() -> None:
    assert not any(S.RECEIVED in SPECIMEN_MOVES[s] for s in (S.RECEIVED, S.IN_TESTING, S.DONE, S.STORED))
    with pytest.raises(TransitionNotAllowed, match=r"This specimen is received; it can't become received\."):
        SPECIMEN.check(S.RECEIVED, S.RECEIVED)


def test_collected_statuses_are_exactly_those_reached_after_the_bedside_check() -> None:
    reachable = {S.COLLECTED}
    frontier = [S.COLLECTED]
    while frontier:
        for target in SPECIMEN_MOVES[frontier.pop()]:
            if target not in reachable and target not in (S.REJECTED, S.DISPOSED):
                reachable.add(target)
                frontier.append(target)
    assert set(COLLECTED_STATUSES) == reachable
