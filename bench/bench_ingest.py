"""Time contract validation and ingest of a whole city's extract.

    .venv/bin/python bench/bench_ingest.py [FOLDER] [--households 110000] [--format csv]

With FOLDER, that extract is measured. Without it, a city of --households households is generated
first (with experiments.city when that module is present, else with the simple generator below)
into a temporary folder, and the measurement runs in a fresh process so that its peak RSS is the
ingest's own. Prints rows per table, seconds for validation alone, for a first ingest
(validation + writing the snapshot) and for a repeated ingest (a no-op), and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.contract import CLOSE_REASONS, EVENT_TYPES, LOCALITIES, SKILLS, TENURES  # noqa: E402
from features.ingest import ingest_folder  # noqa: E402
from features.validation import read_extract  # noqa: E402

try:  # the realistic city; the simple generator below stands in where experiments.city is absent
    from experiments.city import generate_city, write_city
except ImportError:  # pragma: no cover
    generate_city = write_city = None

EVENTS_PER_HOUSEHOLD = 30
FIRST_DAY, DAYS = np.datetime64("2018-01-01"), 8 * 365
CITY_END = date(2025, 3, 30)


def _ids(prefix: str, count: int, width: int) -> pa.Array:
    numbers = np.char.zfill(np.arange(1, count + 1).astype(str), width)
    return pa.array(np.char.add(prefix, numbers))


def _households(rng: np.random.Generator, count: int) -> pa.Table:
    wards = np.char.add("Ward ", rng.integers(1, 38, count).astype(str))
    return pa.table(
        {
            "household_id": _ids("H", count, 6),
            "locality": pa.array(np.asarray(LOCALITIES)[rng.integers(0, len(LOCALITIES), count)]),
            "ward": pa.array(wards),
            "tenure": pa.array(np.asarray(TENURES)[rng.integers(0, len(TENURES), count)]),
            "adults": pa.array(rng.integers(1, 4, count)),
            "children": pa.array(rng.integers(0, 4, count)),
        }
    )


def _people(rng: np.random.Generator, households: pa.Table) -> tuple[pa.Table, np.ndarray]:
    sizes = households["adults"].to_numpy() + households["children"].to_numpy()
    homes = np.repeat(np.arange(len(sizes)), sizes)
    count = homes.size
    people = pa.table(
        {
            "person_id": _ids("P", count, 7),
            "household_id": households["household_id"].take(pa.array(homes)),
            "birth_year": pa.array(rng.integers(1940, 2024, count)),
            "sex": pa.array(
                np.asarray(["female", "male", "other", "unknown"])[rng.integers(0, 4, count)]
            ),
            "ethnicity": pa.array(
                np.asarray(["white", "asian", "black", "mixed"])[rng.integers(0, 4, count)]
            ),
            "disability": pa.array(np.asarray(["yes", "no", "unknown"])[rng.integers(0, 3, count)]),
        }
    )
    return people, np.concatenate([[0], np.cumsum(sizes)])


def _events(rng: np.random.Generator, households: pa.Table, first_person: np.ndarray) -> pa.Table:
    count = households.num_rows * EVENTS_PER_HOUSEHOLD
    home = rng.integers(0, households.num_rows, count)
    sizes = np.diff(first_person)[home]
    person = first_person[home] + (rng.random(count) * sizes).astype(np.int64)
    names = np.asarray(list(EVENT_TYPES))
    kind = rng.integers(0, len(names), count)
    valued = np.asarray([EVENT_TYPES[name].has_value for name in names])[kind]
    occurred = FIRST_DAY + rng.integers(0, DAYS, count).astype("timedelta64[D]")
    return pa.table(
        {
            "event_id": _ids("E", count, 8),
            "household_id": households["household_id"].take(pa.array(home)),
            "person_id": pa.array(
                np.char.add("P", np.char.zfill((person + 1).astype(str), 7)),
                mask=rng.random(count) < 0.3,
            ),
            "source": pa.array(np.asarray([EVENT_TYPES[name].source for name in names])[kind]),
            "event_type": pa.array(names[kind]),
            "occurred_at": pa.array(occurred),
            "known_at": pa.array(occurred + rng.integers(0, 45, count).astype("timedelta64[D]")),
            "value": pa.array(np.round(rng.gamma(2.0, 300.0, count), 2), mask=~valued),
        }
    )


def _workers(rng: np.random.Generator, count: int) -> pa.Table:
    skills = [";".join(rng.choice(SKILLS, size=3, replace=False)) for _ in range(count)]
    return pa.table(
        {
            "worker_id": _ids("W", count, 4),
            "locality": pa.array(np.asarray(LOCALITIES)[np.arange(count) % len(LOCALITIES)]),
            "skills": pa.array(skills),
            "capacity_points": pa.array(rng.choice([60, 80, 100], count)),
            "active": pa.array(rng.random(count) < 0.9),
        }
    )


def _cases(rng: np.random.Generator, households: pa.Table, workers: int) -> pa.Table:
    count = households.num_rows // 4
    home = rng.choice(households.num_rows, count, replace=False)
    is_open = rng.random(count) < 0.4
    opened = FIRST_DAY + rng.integers(0, DAYS - 200, count).astype("timedelta64[D]")
    closed = opened + rng.integers(30, 200, count).astype("timedelta64[D]")
    reasons = np.asarray(CLOSE_REASONS)[rng.integers(0, len(CLOSE_REASONS), count)]
    return pa.table(
        {
            "case_id": _ids("C", count, 6),
            "household_id": households["household_id"].take(pa.array(home)),
            "worker_id": _ids("W", workers, 4).take(pa.array(rng.integers(0, workers, count))),
            "opened_at": pa.array(opened),
            "closed_at": pa.array(closed, mask=is_open),
            "complexity_points": pa.array(rng.integers(5, 40, count)),
            "close_reason": pa.array(reasons, mask=is_open),
        }
    )


def simple_city(folder: Path, *, households: int, seed: int, fmt: str) -> None:
    """A valid extract with the contract's shape (not its realism): the fallback generator."""
    rng = np.random.default_rng(seed)
    household_table = _households(rng, households)
    people, first_person = _people(rng, household_table)
    workers = max(25, households // 1000)
    tables = {
        "households": household_table,
        "people": people,
        "events": _events(rng, household_table, first_person),
        "workers": _workers(rng, workers),
        "cases": _cases(rng, household_table, workers),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if fmt == "csv":
            pa_csv.write_csv(table, folder / f"{name}.csv")
        else:
            pq.write_table(table, folder / f"{name}.parquet")


def simulated_city(folder: Path, *, households: int, seed: int, fmt: str) -> bool:
    """Write the synthetic city of experiments.city when that module is there."""
    if generate_city is None:
        return False
    city = generate_city(households=households, seed=seed, end=CITY_END)
    write_city(city, folder, fmt=fmt)
    return True


def measure(folder: Path) -> None:
    started = time.perf_counter()
    extract = read_extract(folder)
    validated = time.perf_counter()
    rows = {name: len(table) for name, table in extract.items()}
    del extract
    with tempfile.TemporaryDirectory(prefix="bench-ingest-home-") as home:
        first = time.perf_counter()
        result = ingest_folder(folder, home=Path(home))
        ingested = time.perf_counter()
        again = ingest_folder(folder, home=Path(home))
        repeated = time.perf_counter()
    assert result.created and not again.created
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size_mb = sum(path.stat().st_size for path in folder.iterdir() if path.is_file()) / 2**20
    print(f"folder: {folder} ({size_mb:,.0f} MB)")
    for name, count in rows.items():
        print(f"  {name:<11} {count:>11,} rows")
    print(f"validation only (read_extract): {validated - started:7.2f} s")
    print(f"first ingest (validate + write snapshot): {ingested - first:7.2f} s")
    print(f"repeated ingest (no-op):        {repeated - ingested:7.2f} s")
    print(f"peak RSS: {peak_mb:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--simple", action="store_true", help="skip experiments.city")
    arguments = parser.parse_args()
    if arguments.folder is not None:
        measure(arguments.folder)
        return
    with tempfile.TemporaryDirectory(prefix="bench-ingest-city-") as scratch:
        folder = Path(scratch) / "extract"
        started = time.perf_counter()
        simulated = not arguments.simple and simulated_city(
            folder, households=arguments.households, seed=arguments.seed, fmt=arguments.format
        )
        if not simulated:
            simple_city(
                folder, households=arguments.households, seed=arguments.seed, fmt=arguments.format
            )
        generator = "experiments.city" if simulated else "the simple generator"
        print(f"generated with {generator} in {time.perf_counter() - started:.1f} s")
        subprocess.run([sys.executable, __file__, str(folder)], check=True)


if __name__ == "__main__":
    main()
