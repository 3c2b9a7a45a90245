"""Benchmark: needs and their evidence from the records (features.needs) for every household of the
110k city, and for one household at a time (as `explain_household` does).

Setup (not timed): generate the city. Timed: `household_needs` over every household (twice; the
two tables must be identical), and `needs_of_records` for 200 single households (p50, p95).

    .venv/bin/python bench/bench_needs.py [--households 110000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np
import pandas as pd

from experiments.city import generate_city
from features.contract import SKILLS
from features.needs import household_needs, needs_of_records

END = date(2025, 6, 30)
SINGLE_SAMPLE = 200


def _timed(function, **kwargs):
    started, cpu_started = time.perf_counter(), time.process_time()
    result = function(**kwargs)
    return result, (time.perf_counter() - started, time.process_time() - cpu_started)


def _single_household_seconds(events: pd.DataFrame, household_ids: np.ndarray) -> np.ndarray:
    by_household = dict(tuple(events.groupby("household_id", sort=False)))
    seconds = []
    for household_id in household_ids:
        mine = by_household.get(household_id, events.iloc[:0])
        columns = {
            "event_type": mine["event_type"].to_numpy(dtype=object),
            "occurred_at": mine["occurred_at"].to_numpy(),
            "known_at": mine["known_at"].to_numpy(),
            "value": mine["value"].to_numpy(),
        }
        started = time.perf_counter()
        needs_of_records(**columns, as_of=END)
        seconds.append(time.perf_counter() - started)
    return np.array(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    city = generate_city(households=arguments.households, seed=arguments.seed, end=END)
    tables = city.tables()
    events, household_ids = tables["events"], tables["households"]["household_id"].sort_values()
    common = {"events": events, "household_ids": household_ids, "as_of": END}
    needs, first = _timed(household_needs, **common)
    again, second = _timed(household_needs, **common)
    pd.testing.assert_frame_equal(needs, again)
    print(f"city: {len(needs):,} households, {len(events):,} records, as of {END}")
    print(f"{'':<38}   wall      CPU")
    for label, (wall, cpu) in (
        ("household_needs, every household", first),
        ("household_needs, again", second),
    ):
        print(f"{label:<38} {wall:6.2f} s {cpu:6.2f} s")
    rng = np.random.default_rng(arguments.seed)
    sample = rng.choice(household_ids.to_numpy(dtype=object), size=SINGLE_SAMPLE, replace=False)
    single = _single_household_seconds(events, sample) * 1000
    print(
        f"needs_of_records, {SINGLE_SAMPLE} single households: p50 {np.percentile(single, 50):.1f} "
        f"ms, p95 {np.percentile(single, 95):.1f} ms"
    )
    with_needs = needs["needs"] != ""
    print(f"households with at least one need: {with_needs.mean():.1%}")
    for skill in SKILLS:
        share = needs["needs"].str.split(";").map(lambda named, s=skill: s in named).mean()
        print(f"  {skill:<18} {share:6.1%}")


if __name__ == "__main__":
    main()
