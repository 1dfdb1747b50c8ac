"""The procedure workflow table, read without a database."""

import pytest

from backoffice.workflow import TransitionNotAllowed
from procedures.workflow import (
    ADDENDUM_STATUSES,
    DONE_STATUSES,
    EDITABLE_STATUSES,
    OPEN_STATUSES,
    PROCEDURE,
    PROCEDURE_MOVES,
    ProcedureStatus,
)

S = ProcedureStatus

ALLOWED = {
    (S.ORDERED, S.IN_PROGRESS),
    (S.ORDERED, S.NOT_DONE),
    (S.IN_PROGRESS, S.PERFORMED),
    (S.IN_PROGRESS, S.NOT_DONE),
    (S.PERFORMED, S.COMPLETED),
    (S.PERFORMED, S.AWAITING_COSIGN),
    (S.AWAITING_COSIGN, S.COMPLETED),
    (S.AWAITING_COSIGN, S.RETURNED),
    (S.RETURNED, S.AWAITING_COSIGN),
}


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(PROCEDURE_MOVES) == set(S)


def test_the_table_allows_exactly_the_documented_moves() -> None:
    moves = {(current, target) for current, targets in PROCEDURE_MOVES.items() for target in targets}
    assert moves == ALLOWED


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_an_allowed_move_passes_the_check(current: str, target: str) -> None:
    assert PROCEDURE.allows(current, target)
    PROCEDURE.check(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [(c, t) for c in S for t in S if (c, t) not in ALLOWED],
)
def test_every_other_move_is_refused(current: str, target: str) -> None:
    with pytest.raises(TransitionNotAllowed):
        PROCEDURE.check(current, target)


def test_the_refusal_names_both_statuses_in_words() -> None:
    with pytest.raises(TransitionNotAllowed, match=r"This procedure is completed; it can't become in progress."):
        PROCEDURE.check(S.COMPLETED, S.IN_PROGRESS)
    with pytest.raises(TransitionNotAllowed, match="awaiting co-sign; it can't become not done"):
        PROCEDURE.check(S.AWAITING_COSIGN, S.NOT_DONE)


def test_finished_procedures_go_nowhere() -> None:
    assert all(not PROCEDURE_MOVES[s] for s in DONE_STATUSES)


def test_open_and_done_split_the_statuses() -> None:
    assert set(OPEN_STATUSES) | set(DONE_STATUSES) == set(S)
    assert not set(OPEN_STATUSES) & set(DONE_STATUSES)


def test_documentation_is_editable_only_while_in_progress_or_returned() -> None:
    assert set(EDITABLE_STATUSES) == {S.IN_PROGRESS, S.RETURNED}


def test_addenda_attach_only_to_documented_work() -> None:
    assert S.ORDERED not in ADDENDUM_STATUSES
    assert S.IN_PROGRESS not in ADDENDUM_STATUSES
    assert S.NOT_DONE not in ADDENDUM_STATUSES
    assert S.COMPLETED in ADDENDUM_STATUSES


def test_a_returned_procedure_can_only_go_back_to_the_cosign_queue() -> None:
    assert PROCEDURE_MOVES[S.RETURNED] == frozenset({S.AWAITING_COSIGN})
