"""The benchmark's pure helpers. Nothing here times anything: `make bench` does, on a quiet machine."""

from backoffice.devtools.bench import __main__ as bench
from backoffice.devtools.bench import labels
from specimens import selectors


def test_the_bench_counts_the_statuses_the_tracking_list_shows() -> None:
    assert tuple(str(s) for s in selectors.TRACKED_STATUSES) == bench.TRACKED_STATUSES


def test_summarise_reports_median_and_p95_in_milliseconds() -> None:
    samples = [n * 1_000_000 for n in range(1, 101)]  # 1 ms … 100 ms

    timing = labels.summarise("PDF", samples, output_bytes=2048)

    assert (timing.runs, timing.median_ms, timing.output_bytes) == (100, 50.5, 2048)
    assert 95 <= timing.p95_ms <= 96


def test_time_calls_warms_up_then_keeps_one_sample_per_timed_call() -> None:
    calls = 0

    def render() -> str:
        nonlocal calls
        calls += 1
        return "^XA…^XZ"

    samples, size = labels.time_calls(render, warmup=3, runs=5)

    assert calls == 8
    assert len(samples) == 5 and all(ns >= 0 for ns in samples)
    assert size == len("^XA…^XZ".encode())


def test_every_case_renders_the_draw() -> None:
    outputs = {name: render() for name, render in labels.CASES}

    assert outputs["PDF, 2 labels (EDTA + cup)"].startswith(b"%PDF")
    assert isinstance(outputs["ZPL, 2 labels (EDTA + cup)"], str)
    assert outputs["ZPL, 2 labels (EDTA + cup)"].count("^XA") == 2
