"""Time the synthetic city: generate and write a whole city, then print the figures.

    .venv/bin/python bench/bench_synth.py                 # 110,000 households, CSV
    .venv/bin/python bench/bench_synth.py --households 20000 --format parquet

Prints wall-clock seconds for generating and for writing, peak resident memory, table sizes and
the calibration figures of the generated city (escalation rate, truth calibration, caseload).
The requirement is at most 60 s and under 6 GB for 110,000 households on a 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.city import City, generate_city, write_city  # noqa: E402


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2025, 3, 30))
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: a temp folder)")
    return parser.parse_args()


def _peak_memory_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _calibration(city: City) -> dict[str, float]:
    truth, cases, workers = city.truth, city.cases, city.workers
    open_points = cases.complexity_points[cases.closed_at.isna()].sum()
    active_capacity = workers.capacity_points[workers.active].sum()
    years = (city.end - city.start).days / 365.25
    return {
        "escalation rate (realised, all as-of dates)": truth.escalated.mean(),
        "mean p_true": truth.p_true.mean(),
        "open cases": int(cases.closed_at.isna().sum()),
        "open-case share of active capacity": open_points / active_capacity,
        "events per household per year": len(city.events) / len(city.households) / years,
    }


def main() -> None:
    arguments = _arguments()
    started = time.perf_counter()
    city = generate_city(households=arguments.households, seed=arguments.seed, end=arguments.end)
    generated = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = arguments.out or Path(scratch) / "city"
        paths = write_city(city, out, fmt=arguments.format)
        written = time.perf_counter()
        sizes = {name: path.stat().st_size / 1e6 for name, path in paths.items()}
    print(f"households            {arguments.households:,}")
    print(f"generate_city         {generated - started:8.1f} s")
    print(f"write_city ({arguments.format:7s})  {written - generated:8.1f} s")
    print(f"total                 {written - started:8.1f} s   (requirement: <= 60 s)")
    print(f"peak memory           {_peak_memory_mb():8.0f} MB  (requirement: < 6000 MB)")
    for name, table in city.tables().items():
        print(f"  {name:10s} {len(table):>10,} rows  {sizes[name]:8.1f} MB")
    for name, figure in _calibration(city).items():
        print(f"  {name:45s} {figure:10.4f}")


if __name__ == "__main__":
    main()
