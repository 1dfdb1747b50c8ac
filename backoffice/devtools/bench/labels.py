"""Label rendering timings for `make bench`: PDF and ZPL drawn in this process, no HTTP, no database.

    python -m backoffice.devtools.bench.labels          # alone; `make bench` runs it after the pages
    python -m backoffice.devtools.bench.labels -n 1000

Each output is rendered --warmup times, then timed --runs times with time.perf_counter_ns, one
call at a time; the median and p95 are printed in milliseconds. The labels are a typical draw:
an EDTA tube and a urine cup for one patient, on the 2" x 1" label the clinic's printers use.
specimens.labels prints the collection time in the clinic's time zone, so Django's settings are
configured first, as the benchmark server's (profile.configure); no query is made.
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from specimens.labels import LabelData, LabelSize, label_pdf, label_zpl, labels_zpl

WARMUP = 20
RUNS = 300
SIZE = LabelSize()  # 2 x 1 in at 203 dpi: seed_demo's PDF printers at every patient station


def _label(accession: str, specimen: str, tests: tuple[str, ...]) -> LabelData:
    """One container of a diabetes follow-up's draw, for a patient whose name is as long as real ones get."""
    return LabelData(
        accession=accession,
        family_name="Martínez-Olivares",
        given_name="Rosa María",
        date_of_birth=date(1962, 3, 14),
        mrn="M100001",
        specimen=specimen,
        collected_at=datetime(2026, 5, 6, 18, 5, tzinfo=UTC),
        collector_initials="MA",
        tests=tests,
    )


# CBC and HbA1c share the EDTA tube; the urine cup serves the dipstick and the culture.
EDTA = _label("S26-0000017-4", "Venous blood · Lavender-top EDTA 4 mL", ("CBC", "HbA1c"))
URINE_CUP = _label("S26-0000018-2", "Urine · Sterile urine cup 30 mL", ("Urine dipstick", "Urine culture"))


@dataclass
class Timing:
    name: str
    runs: int
    median_ms: float
    p95_ms: float
    output_bytes: int  # the size of one rendering: what goes to the browser or the printer


def summarise(name: str, samples_ns: list[int], output_bytes: int) -> Timing:
    """Median and p95 (statistics.quantiles, as profile.py reports) of per-call times, in ms."""
    return Timing(
        name=name,
        runs=len(samples_ns),
        median_ms=statistics.median(samples_ns) / 1e6,
        p95_ms=statistics.quantiles(samples_ns, n=20)[-1] / 1e6,
        output_bytes=output_bytes,
    )


def time_calls(render: Callable[[], bytes | str], *, warmup: int, runs: int) -> tuple[list[int], int]:
    """Per-call wall times in ns after the warm-up, and the size of the last output in bytes."""
    for _ in range(warmup):
        render()
    samples = []
    out: bytes | str = b""
    for _ in range(runs):
        started = time.perf_counter_ns()
        out = render()
        samples.append(time.perf_counter_ns() - started)
    return samples, len(out.encode() if isinstance(out, str) else out)


CASES: tuple[tuple[str, Callable[[], bytes | str]], ...] = (
    ("PDF, 1 label", lambda: label_pdf([EDTA], size=SIZE)),
    ("PDF, 2 labels (EDTA + cup)", lambda: label_pdf([EDTA, URINE_CUP], size=SIZE)),
    ("ZPL, 1 label", lambda: label_zpl(EDTA, size=SIZE)),
    ("ZPL, 2 labels (EDTA + cup)", lambda: labels_zpl([EDTA, URINE_CUP], size=SIZE)),
)


def run(*, warmup: int = WARMUP, runs: int = RUNS) -> dict[str, Any]:
    """Time every case; needs Django's settings configured (the clinic's TIME_ZONE)."""
    from django.conf import settings

    results = [summarise(name, *time_calls(render, warmup=warmup, runs=runs)) for name, render in CASES]
    return {
        "label": f"{SIZE.describe()}, {SIZE.dpi} dpi",
        "time_zone": settings.TIME_ZONE,
        "warmup": warmup,
        "runs": runs,
        "results": [asdict(r) for r in results],
    }


def print_table(report: dict[str, Any]) -> None:
    print()
    print(
        f"label rendering, in-process: median / p95 ms "
        f"({report['label']}; {report['runs']} calls each after {report['warmup']} warm-up)"
    )
    print(f"{'output':<28} {'median ms':>10} {'p95 ms':>8} {'bytes':>8}")
    for r in report["results"]:
        print(f"{r['name']:<28} {r['median_ms']:>10.2f} {r['p95_ms']:>8.2f} {r['output_bytes']:>8,}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m backoffice.devtools.bench.labels", description=__doc__)
    parser.add_argument("-n", "--runs", type=int, default=RUNS)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    args = parser.parse_args()
    from backoffice.devtools.bench.profile import configure

    # Settings only: nothing here connects, so without a server a placeholder URL will do (as for mypy).
    os.environ.setdefault("DATABASE_URL", "postgres://bench@localhost/none")
    configure("backoffice_bench_labels")
    print_table(run(warmup=args.warmup, runs=args.runs))


if __name__ == "__main__":
    main()
