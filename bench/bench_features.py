"""Benchmark: features for every household of the 110k city as of one date.

Times the project's feature builder (`features.build.build_features`) against a straightforward
pandas groupby implementation of the same features written here, checks that both give the same
values, and prints both times and the ratio.

    .venv/bin/python bench/bench_features.py [--households 110000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np
import pandas as pd

from experiments.city import generate_city
from features.build import (
    ARREARS_TYPES,
    HALF_LIVES_WEEKS,
    RISE_WINDOWS_WEEKS,
    STATEMENT_TYPES,
    TREND_WEEKS,
    WINDOWS_WEEKS,
    build_features,
)
from features.contract import CLOSE_REASONS, EVENT_TYPES, TENURES

END = date(2025, 6, 30)


def _known_events(events: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    known = events.loc[events["known_at"] <= as_of]
    return known.assign(age_days=(as_of - known["occurred_at"]).dt.days)


def _per_type(grouped: pd.Series, households: pd.Index, *, suffix: str, fill) -> pd.DataFrame:
    table = grouped.unstack("event_type").reindex(index=households, columns=list(EVENT_TYPES))
    return table.fillna(fill).rename(columns=lambda name: f"{name}{suffix}")


def _counts_and_recency(known: pd.DataFrame, households: pd.Index) -> list[pd.DataFrame]:
    frames = []
    for weeks in WINDOWS_WEEKS:
        recent = known.loc[known["age_days"] < weeks * 7]
        counts = recent.groupby(["household_id", "event_type"]).size()
        frames.append(_per_type(counts, households, suffix=f"_count_{weeks}w", fill=0))
    latest = known.groupby(["household_id", "event_type"])["age_days"].min().astype(float)
    frames.append(_per_type(latest, households, suffix="_days_since", fill=np.nan))
    return frames


def _latest_balance(records: pd.DataFrame, households: pd.Index) -> pd.Series:
    ordered = records.sort_values(["household_id", "occurred_at", "value"])
    return ordered.groupby("household_id")["value"].last().reindex(households)


def _rises(records: pd.DataFrame, households: pd.Index, *, name: str) -> dict[str, pd.Series]:
    ordered = records.sort_values(["household_id", "occurred_at", "value"])
    step = ordered.groupby("household_id")["value"].diff()
    rose = ordered.assign(step=step).loc[step > 0]
    columns = {}
    for weeks in RISE_WINDOWS_WEEKS:
        in_window = rose.loc[rose["age_days"] < weeks * 7].groupby("household_id")["step"]
        columns[f"{name}_rises_{weeks}w"] = in_window.size().reindex(households, fill_value=0)
        columns[f"{name}_risen_{weeks}w"] = in_window.sum().reindex(households, fill_value=0.0)
    return columns


def _contact_intensity(known: pd.DataFrame, households: pd.Index) -> pd.DataFrame:
    is_crisis = known["event_type"].map(lambda name: EVENT_TYPES[name].crisis).astype(bool)
    kinds = {
        "contacts": known.loc[~is_crisis & ~known["event_type"].isin(STATEMENT_TYPES)],
        "crises": known.loc[is_crisis],
    }
    columns = {}
    for kind, rows in kinds.items():
        for weeks in WINDOWS_WEEKS:
            recent = rows.loc[rows["age_days"] < weeks * 7]
            columns[f"{kind}_count_{weeks}w"] = (
                recent.groupby("household_id").size().reindex(households, fill_value=0)
            )
        year = rows.loc[rows["age_days"] < 52 * 7]
        for half_life in HALF_LIVES_WEEKS:
            weight = 0.5 ** (year["age_days"] / (7.0 * half_life))
            columns[f"{kind}_decayed_{half_life}w"] = (
                weight.groupby(year["household_id"]).sum().reindex(households, fill_value=0.0)
            )
    year = known.loc[known["age_days"] < 52 * 7]
    columns["event_types_52w"] = (
        year.groupby("household_id")["event_type"].nunique().reindex(households, fill_value=0)
    )
    return pd.DataFrame(columns)


def _arrears(known: pd.DataFrame, households: pd.Index) -> pd.DataFrame:
    columns = {}
    for name in ARREARS_TYPES:
        records = known.loc[known["event_type"] == name]
        columns |= _rises(records, households, name=name)
        latest = _latest_balance(records, households)
        before = _latest_balance(records.loc[records["age_days"] >= TREND_WEEKS * 7], households)
        columns[f"{name}_balance_latest"] = latest
        columns[f"{name}_balance_{TREND_WEEKS}w_ago"] = before
        columns[f"{name}_change_{TREND_WEEKS}w"] = latest - before.where(
            before.notna() | latest.isna(), 0.0
        )
    return pd.DataFrame(columns)


def _school_and_agencies(known: pd.DataFrame, households: pd.Index) -> pd.DataFrame:
    absence = known.loc[known["event_type"] == "school_absence"]
    columns = {
        f"school_absence_sessions_{weeks}w": absence.loc[absence["age_days"] < weeks * 7]
        .groupby("household_id")["value"]
        .sum()
        .reindex(households, fill_value=0.0)
        for weeks in WINDOWS_WEEKS[1:]
    }

    def distinct_sources(rows: pd.DataFrame) -> pd.Series:
        return rows.groupby("household_id")["source"].nunique().reindex(households, fill_value=0)

    recent = distinct_sources(known.loc[known["age_days"] < 26 * 7])
    previous = distinct_sources(known.loc[known["age_days"].between(26 * 7, 52 * 7 - 1)])
    columns["agencies_26w"] = recent
    columns["agencies_change_26w"] = recent - previous
    columns["agencies_52w"] = distinct_sources(known.loc[known["age_days"] < 52 * 7])
    return pd.DataFrame(columns)


def _households_and_cases(tables, households: pd.Index, *, as_of) -> pd.DataFrame:
    homes = tables["households"].set_index("household_id").reindex(households)
    columns = {"adults": homes["adults"], "children": homes["children"]}
    columns |= {f"tenure_{name}": (homes["tenure"] == name).astype(int) for name in TENURES}
    cases = tables["cases"].loc[tables["cases"]["opened_at"] <= as_of]
    closed = cases.loc[cases["closed_at"] <= as_of]
    still_open = cases.loc[~(cases["closed_at"] <= as_of)]
    columns["cases_previous"] = closed.groupby("household_id").size().reindex(households)
    columns["case_open"] = pd.Series(households.isin(still_open["household_id"]), households)
    opened = still_open.groupby("household_id")["opened_at"].min()
    columns["case_open_weeks"] = ((as_of - opened).dt.days // 7).reindex(households)
    last_closed = closed.groupby("household_id")["closed_at"].max()
    columns["case_closed_weeks_ago"] = ((as_of - last_closed).dt.days // 7).reindex(households)
    for reason in CLOSE_REASONS:
        columns[f"cases_closed_{reason}"] = (
            closed.loc[closed["close_reason"] == reason].groupby("household_id").size()
        ).reindex(households)
    frame = pd.DataFrame(columns)
    counts = ["cases_previous", *(f"cases_closed_{reason}" for reason in CLOSE_REASONS)]
    return frame.fillna(dict.fromkeys(counts, 0))


def naive_features(tables, *, as_of) -> pd.DataFrame:
    """The same features with plain pandas filters and groupbys, one group at a time."""
    as_of = pd.Timestamp(as_of)
    households = pd.Index(sorted(tables["households"]["household_id"]), name="household_id")
    known = _known_events(tables["events"], as_of=as_of)
    frames = [
        *_counts_and_recency(known, households),
        _contact_intensity(known, households),
        _arrears(known, households),
        _school_and_agencies(known, households),
        _households_and_cases(tables, households, as_of=as_of),
    ]
    return pd.concat(frames, axis=1)


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    city, generate_seconds = _timed(
        generate_city, households=arguments.households, seed=arguments.seed, end=END
    )
    tables = {name: table for name, table in city.tables().items() if name != "truth"}
    as_of = pd.Timestamp(END)
    built, built_seconds = _timed(build_features, tables, as_of)
    naive, naive_seconds = _timed(naive_features, tables, as_of=as_of)
    if set(built.columns) != set(naive.columns):
        raise SystemExit(f"column sets differ: {set(built.columns) ^ set(naive.columns)}")
    pd.testing.assert_frame_equal(
        built,
        naive[built.columns].astype(built.dtypes.to_dict()),
        check_dtype=False,
        check_index_type=False,
        rtol=1e-9,
    )
    print(f"city: {len(tables['households']):,} households, {len(tables['events']):,} events")
    print(f"  (generated in {generate_seconds:.1f} s, not timed below)")
    print(f"features as of {as_of.date()}: {built.shape[1]} columns, identical in both")
    print(f"build_features (project):  {built_seconds:6.2f} s")
    print(f"naive pandas groupby:      {naive_seconds:6.2f} s")
    print(f"speed-up:                  {naive_seconds / built_seconds:6.1f} x")


if __name__ == "__main__":
    main()
