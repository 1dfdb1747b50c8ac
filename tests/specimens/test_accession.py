"""Accession numbers: a check digit no single typo or adjacent swap passes, and a sequence no race breaks."""

import threading

import pytest
from django.db import connection, connections
from django.test import override_settings

from specimens.accession import format_accession, is_valid, next_accession, normalise

NUMBERS = [0, 7, 1000, 42917, 1234567, 99999999]


@override_settings(ACCESSION_PREFIX="S", ACCESSION_DIGITS=8)
def test_the_format_is_prefix_padded_number_and_check_digit() -> None:
    assert format_accession(1234) == "S000012340"
    assert is_valid("S000012340")
    assert not is_valid("S000012343")


@override_settings(ACCESSION_PREFIX="LAB", ACCESSION_DIGITS=6)
def test_the_prefix_and_width_are_configurable() -> None:
    value = format_accession(17)
    assert value.startswith("LAB000017") and len(value) == 10
    assert is_valid(value)
    assert not is_valid("S" + value[3:])


@pytest.mark.parametrize("number", NUMBERS)
def test_every_single_digit_error_is_caught(number: int) -> None:
    value = format_accession(number, prefix="S", digits=8)
    digits = value[1:]
    for i, original in enumerate(digits):
        for typo in "0123456789":
            if typo != original:
                assert not is_valid("S" + digits[:i] + typo + digits[i + 1 :], prefix="S")


@pytest.mark.parametrize("number", NUMBERS)
def test_every_adjacent_swap_is_caught(number: int) -> None:
    value = format_accession(number, prefix="S", digits=8)
    digits = value[1:]
    for i in range(len(digits) - 1):
        if digits[i] != digits[i + 1]:
            swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
            assert not is_valid("S" + swapped, prefix="S")


def test_scanner_input_is_normalised() -> None:
    assert normalise(" s0000-1234 0\n") == "S000012340"
    assert not is_valid("not an accession")
    assert not is_valid("S")


@pytest.mark.django_db
def test_the_sequence_never_repeats_a_number() -> None:
    values = [next_accession() for _ in range(50)]
    assert len(set(values)) == 50
    assert all(is_valid(v) for v in values)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_hundred_concurrent_collections_get_a_hundred_distinct_numbers() -> None:
    """Each thread has its own database connection (Django's are per thread), all at once."""
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(100)
    lock = threading.Lock()

    def take() -> None:
        try:
            barrier.wait(timeout=30)
            value = next_accession()
            with lock:
                results.append(value)
        except BaseException as exc:  # reported below, with the others
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=take) for _ in range(100)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == 100
    assert len(set(results)) == 100
    assert connection.vendor == "postgresql"
