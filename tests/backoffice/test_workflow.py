"""The allowed status moves are data; these tests read them without a database."""

import itertools

import pytest

from backoffice.workflow import (
    HANDOFF,
    HANDOFF_MOVES,
    IDENTIFIED_STATUSES,
    OPEN_STATUSES,
    STATION,
    STATION_MOVES,
    HandoffStatus,
    StationState,
    Table,
    TransitionNotAllowed,
)

HANDOFF_ALLOWED = [(current, target) for current, targets in HANDOFF_MOVES.items() for target in sorted(targets)]
HANDOFF_REFUSED = [
    (current, target)
    for current, target in itertools.product(HandoffStatus.values, repeat=2)
    if target not in HANDOFF_MOVES[current]
]
STATION_ALLOWED = [(current, target) for current, targets in STATION_MOVES.items() for target in sorted(targets)]
STATION_REFUSED = [
    (current, target)
    for current, target in itertools.product(StationState.values, repeat=2)
    if target not in STATION_MOVES[current]
]


def test_every_handoff_status_has_an_entry() -> None:
    assert set(HANDOFF_MOVES) == set(HandoffStatus.values)


def test_every_station_state_has_an_entry() -> None:
    assert set(STATION_MOVES) == set(StationState.values)


def test_the_tables_only_name_known_states() -> None:
    assert set().union(*HANDOFF_MOVES.values()) <= set(HandoffStatus.values)
    assert set().union(*STATION_MOVES.values()) <= set(StationState.values)


@pytest.mark.parametrize("terminal", [HandoffStatus.COMPLETED, HandoffStatus.CANCELLED])
def test_a_terminal_handoff_status_has_no_moves(terminal: str) -> None:
    assert HANDOFF_MOVES[terminal] == frozenset()


def test_only_terminal_statuses_have_no_moves() -> None:
    dead_ends = {status for status, targets in HANDOFF_MOVES.items() if not targets}
    assert dead_ends == {HandoffStatus.COMPLETED, HandoffStatus.CANCELLED}


def test_open_statuses_are_exactly_those_with_moves_but_the_clinicians() -> None:
    # A handoff returned to its clinician moves on (back to waiting, or cancelled), but it is the
    # clinician's to move, not open work for the back office.
    with_moves = {status for status, targets in HANDOFF_MOVES.items() if targets}
    assert set(OPEN_STATUSES) == with_moves - {HandoffStatus.RETURNED}


def test_a_patient_being_worked_can_be_handed_back_and_the_clinician_decides() -> None:
    for status in (HandoffStatus.CLAIMED, HandoffStatus.IDENTITY_VERIFIED, HandoffStatus.IN_PROGRESS):
        assert HANDOFF.allows(status, HandoffStatus.RETURNED)
    assert not HANDOFF.allows(HandoffStatus.WAITING, HandoffStatus.RETURNED)
    assert HANDOFF_MOVES[HandoffStatus.RETURNED] == {HandoffStatus.WAITING, HandoffStatus.CANCELLED}


def test_identified_statuses_are_open() -> None:
    assert set(IDENTIFIED_STATUSES) <= set(OPEN_STATUSES)
    assert HandoffStatus.CLAIMED not in IDENTIFIED_STATUSES


def test_every_open_handoff_can_be_cancelled() -> None:
    assert all(HandoffStatus.CANCELLED in HANDOFF_MOVES[status] for status in OPEN_STATUSES)


def test_no_status_moves_to_itself() -> None:
    assert all(status not in targets for status, targets in HANDOFF_MOVES.items())
    assert all(state not in targets for state, targets in STATION_MOVES.items())


def test_the_happy_path_is_allowed_in_order() -> None:
    path = [
        HandoffStatus.WAITING,
        HandoffStatus.CLAIMED,
        HandoffStatus.IDENTITY_VERIFIED,
        HandoffStatus.IN_PROGRESS,
        HandoffStatus.COMPLETED,
    ]
    assert all(HANDOFF.allows(current, target) for current, target in itertools.pairwise(path))
    # The path ends where nothing moves on: a completed handoff is closed for good.
    assert HANDOFF_MOVES[path[-1]] == frozenset()
    assert path[-1] not in OPEN_STATUSES


@pytest.mark.parametrize(("current", "target"), HANDOFF_ALLOWED)
def test_every_allowed_handoff_move_passes(current: str, target: str) -> None:
    HANDOFF.check(current, target)
    assert HANDOFF.allows(current, target)


@pytest.mark.parametrize(("current", "target"), HANDOFF_REFUSED)
def test_every_other_handoff_move_is_refused(current: str, target: str) -> None:
    assert not HANDOFF.allows(current, target)
    with pytest.raises(TransitionNotAllowed):
        HANDOFF.check(current, target)


@pytest.mark.parametrize(("current", "target"), STATION_ALLOWED)
def test_every_allowed_station_move_passes(current: str, target: str) -> None:
    STATION.check(current, target)
    assert STATION.allows(current, target)


@pytest.mark.parametrize(("current", "target"), STATION_REFUSED)
def test_every_other_station_move_is_refused(current: str, target: str) -> None:
    assert not STATION.allows(current, target)
    with pytest.raises(TransitionNotAllowed):
        STATION.check(current, target)


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        (HandoffStatus.WAITING, HandoffStatus.COMPLETED, "This handoff is waiting; it can't become completed."),
        (
            HandoffStatus.WAITING,
            HandoffStatus.IDENTITY_VERIFIED,
            "This handoff is waiting; it can't become identity verified.",
        ),
        (HandoffStatus.CLAIMED, HandoffStatus.IN_PROGRESS, "This handoff is claimed; it can't become in progress."),
        (
            HandoffStatus.IDENTITY_VERIFIED,
            HandoffStatus.WAITING,
            "This handoff is identity verified; it can't become waiting.",
        ),
        (HandoffStatus.COMPLETED, HandoffStatus.WAITING, "This handoff is completed; it can't become waiting."),
        (HandoffStatus.CANCELLED, HandoffStatus.CLAIMED, "This handoff is cancelled; it can't become claimed."),
    ],
)
def test_a_refused_handoff_move_says_why_in_plain_words(current: str, target: str, message: str) -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        HANDOFF.check(current, target)
    assert str(caught.value) == message


def test_a_refused_station_move_says_why_in_plain_words() -> None:
    with pytest.raises(TransitionNotAllowed) as caught:
        STATION.check(StationState.OCCUPIED, StationState.READY)
    assert str(caught.value) == "This station is occupied; it can't become ready."


@pytest.mark.parametrize(("current", "target"), HANDOFF_REFUSED + STATION_REFUSED)
def test_no_refusal_shows_raw_codes_or_braces(current: str, target: str) -> None:
    table = HANDOFF if current in HANDOFF_MOVES else STATION
    with pytest.raises(TransitionNotAllowed) as caught:
        table.check(current, target)
    assert not set("_{}") & set(str(caught.value))


def test_an_unknown_status_has_no_moves() -> None:
    with pytest.raises(TransitionNotAllowed):
        HANDOFF.check("archived", HandoffStatus.WAITING)


def test_every_app_words_its_refusals_the_same_way() -> None:
    from procedures.workflow import PROCEDURE, ProcedureStatus

    tables: list[tuple[Table, str, str]] = [
        (HANDOFF, HandoffStatus.COMPLETED, HandoffStatus.WAITING),
        (STATION, StationState.READY, StationState.NEEDS_TURNOVER),
        (PROCEDURE, ProcedureStatus.COMPLETED, ProcedureStatus.IN_PROGRESS),
    ]
    for table, current, target in tables:
        with pytest.raises(TransitionNotAllowed) as caught:
            table.check(current, target)
        assert (
            str(caught.value) == f"This {table.label} is {table.name(current)}; it can't become {table.name(target)}."
        )
