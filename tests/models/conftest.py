"""A small synthetic city for model tests: contract tables with a learnable escalation signal.

Each household has a latent need that drifts week by week; every event type occurs at a rate that
rises with it, crises most steeply, so recent multi-agency contact predicts a crisis. Partners share
records after a per-source delay, which exercises the known_at rule.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import EVENT_TYPES, LOCALITIES, SKILLS, TENURES, table_dtypes

SHARING_DELAY_WEEKS = {"police": 1, "nhs": 3, "education": 4, "dwp": 2, "social_care": 1}


def _weekly_need(rng: np.random.Generator, *, households: int, weeks: int) -> np.ndarray:
    baseline = rng.normal(0.0, 1.0, households)
    need = np.empty((weeks, households))
    drift = np.zeros(households)
    for week in range(weeks):
        drift = 0.97 * drift + rng.normal(0.0, 0.25, households)
        need[week] = baseline + drift
    return need


def _events(rng, *, need: np.ndarray, household_ids: np.ndarray, start: pd.Timestamp):
    weeks, households = need.shape
    frames = []
    for event_type, kind in EVENT_TYPES.items():
        base_rate = 0.0004 if kind.crisis else 0.008
        slope = 1.5 if kind.crisis else 1.0
        counts = rng.poisson(base_rate * np.exp(slope * need - 0.5))
        week, household = np.nonzero(counts)
        occurred = start + pd.to_timedelta(week * 7 + rng.integers(0, 7, len(week)), unit="D")
        delay = SHARING_DELAY_WEEKS.get(kind.source, 0) * 7 + rng.integers(0, 7, len(week))
        value = np.full(len(week), np.nan)
        if kind.has_value:
            value = np.round(rng.gamma(2.0, 150.0 * np.exp(need[week, household])), 2)
        frames.append(
            pd.DataFrame(
                {
                    "household_id": household_ids[household],
                    "source": kind.source,
                    "event_type": event_type,
                    "occurred_at": occurred,
                    "known_at": occurred + pd.to_timedelta(delay, unit="D"),
                    "value": value,
                }
            )
        )
    events = pd.concat(frames, ignore_index=True).sort_values(["occurred_at", "household_id"])
    return events.assign(
        event_id=[f"E{n:08d}" for n in range(len(events))], person_id=np.nan
    ).reset_index(drop=True)


def _workers_and_cases(rng, *, household_ids, need, start: pd.Timestamp, end: pd.Timestamp):
    n_workers = max(3, len(household_ids) // 150)
    workers = pd.DataFrame(
        {
            "worker_id": [f"W{n:03d}" for n in range(n_workers)],
            "locality": rng.choice(LOCALITIES, n_workers),
            "skills": [";".join(rng.choice(SKILLS, 3, replace=False)) for _ in range(n_workers)],
            "capacity_points": rng.choice([60, 100], n_workers),
            "active": rng.random(n_workers) > 0.1,
        }
    )
    neediest = np.argsort(-need[-30])[: n_workers * 6]
    opened = end - pd.to_timedelta(rng.integers(20, 200, len(neediest)), unit="D")
    still_open = rng.random(len(neediest)) < 0.5
    closed = pd.Series(opened + pd.to_timedelta(rng.integers(10, 120, len(neediest)), unit="D"))
    closed = closed.where(~still_open & (closed < end))
    cases = pd.DataFrame(
        {
            "case_id": [f"C{n:05d}" for n in range(len(neediest))],
            "household_id": household_ids[neediest],
            "worker_id": rng.choice(workers["worker_id"].to_numpy(), len(neediest)),
            "opened_at": opened,
            "closed_at": closed,
            "complexity_points": rng.choice([5, 10, 15, 20], len(neediest)),
            "close_reason": pd.Series("resolved", index=closed.index).where(closed.notna()),
        }
    )
    return workers, cases


def make_city(*, households: int = 1500, seed: int = 7, end: str = "2025-06-30", weeks: int = 170):
    """Contract tables (canonical dtypes) for a small city whose history ends on `end`."""
    rng = np.random.default_rng(seed)
    end_date = pd.Timestamp(end)
    start = end_date - pd.Timedelta(weeks=weeks)
    household_ids = np.array([f"H{n:06d}" for n in rng.permutation(households)])
    need = _weekly_need(rng, households=households, weeks=weeks)
    households_table = pd.DataFrame(
        {
            "household_id": household_ids,
            "locality": rng.choice(LOCALITIES, households),
            "ward": [f"Ward {n % 20}" for n in range(households)],
            "tenure": rng.choice(TENURES, households),
            "adults": rng.integers(1, 4, households),
            "children": rng.integers(0, 5, households),
        }
    )
    people = pd.DataFrame(
        {
            "person_id": [f"P{n:06d}" for n in range(households)],
            "household_id": household_ids,
            "birth_year": rng.integers(1950, 2005, households),
            "sex": rng.choice(["female", "male"], households),
            "ethnicity": rng.choice(["white", "asian", "black", "mixed"], households),
            "disability": rng.choice(["yes", "no"], households),
        }
    )
    events = _events(rng, need=need, household_ids=household_ids, start=start)
    events = events.loc[events["known_at"] <= end_date]
    workers, cases = _workers_and_cases(
        rng, household_ids=household_ids, need=need, start=start, end=end_date
    )
    tables = {
        "households": households_table,
        "people": people,
        "events": events,
        "workers": workers,
        "cases": cases,
    }
    return {name: _canonical(table, name) for name, table in tables.items()}


def _canonical(table: pd.DataFrame, name: str) -> pd.DataFrame:
    dtypes = table_dtypes(name)
    return table[list(dtypes)].astype(dtypes).reset_index(drop=True)


@pytest.fixture(scope="session")
def small_city():
    return make_city()


@pytest.fixture(scope="session")
def _mlflow_template_db(tmp_path_factory) -> Path:
    # Creating MLflow's schema takes seconds; every test copies an initialised empty database.
    from experiments import tracking

    database = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    tracking.initialise(tracking_uri=f"sqlite:///{database}")
    return database


@pytest.fixture
def rebalance_home(tmp_path, _mlflow_template_db, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(_mlflow_template_db) as source, sqlite3.connect(home / "mlflow.db") as copy:
        source.backup(copy)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("REBALANCE_HOME", str(home))
    return home
