"""Seeded, realistic allocation instances (scores, workers, cases) for the benchmark, the tests and
demonstrations; independent of the synthetic city so the optimiser can be exercised on its own."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import CLOSE_REASONS, LOCALITIES, SKILLS, table_dtypes

# How often each skill is a need of a high-risk household (domestic abuse ~1 in 8 needs lists).
_NEED_WEIGHTS = {
    "debt": 3.0,
    "housing": 2.5,
    "domestic_abuse": 0.8,
    "substance_misuse": 1.0,
    "mental_health": 2.5,
    "parenting": 1.5,
    "youth": 1.0,
    "school_attendance": 1.2,
    "employment": 1.2,
    "asb": 0.8,
}
_REASONS = (
    "rent arrears rising",
    "police callouts",
    "school absence",
    "A&E attendances",
    "benefit sanction",
    "council tax arrears",
    "anti-social behaviour reports",
)
_CASE_POINTS = np.arange(8, 33, 4)
# Shares of households with 0, 1, 2, 3 needs, as the weekly scoring gives them for the top 500 of
# the synthetic city (models.explain: needs are the skills of the shown reasons).
NEED_COUNTS: tuple[float, ...] = (0.22, 0.55, 0.18, 0.05)


@dataclass(frozen=True)
class AllocationInstance:
    """One week's inputs: scores (one row per household), workers and cases (contract tables)."""

    scores: pd.DataFrame
    workers: pd.DataFrame
    cases: pd.DataFrame


def _weighted_picks(
    rng: np.random.Generator, weights: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    """Per row, positions of `counts[row]` distinct items drawn with these weights (as a mask)."""
    keys = rng.random((len(counts), len(weights))) ** (1.0 / weights)
    order = np.argsort(-keys, axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(len(weights))[None, :], axis=1)
    return ranks < counts[:, None]


def _needs(rng: np.random.Generator, count: int, need_counts: tuple[float, ...]) -> list[str]:
    weights = np.array([_NEED_WEIGHTS[s] for s in SKILLS])
    shares = np.asarray(need_counts, dtype="float64")
    picked = _weighted_picks(
        rng, weights, rng.choice(len(shares), size=count, p=shares / shares.sum())
    )
    return [";".join(s for s, flag in zip(SKILLS, row, strict=True) if flag) for row in picked]


def _reasons(rng: np.random.Generator, count: int) -> list[str]:
    picked = _weighted_picks(rng, np.ones(len(_REASONS)), np.full(count, 2))
    return [" | ".join(r for r, flag in zip(_REASONS, row, strict=True) if flag) for row in picked]


def _households(
    rng: np.random.Generator, count: int, shares: np.ndarray, localities: tuple[str, ...]
) -> pd.DataFrame:
    risk = rng.beta(1.1, 14.0, size=count)
    frame = pd.DataFrame(
        {
            "household_id": [f"H{n:06d}" for n in range(1, count + 1)],
            "locality": rng.choice(localities, size=count, p=shares),
            "risk": risk.round(6),
        }
    ).astype({"household_id": "str", "locality": "str"})
    order = frame.sort_values(["risk", "household_id"], ascending=[False, True]).index
    return frame.assign(rank=pd.Series(np.arange(1, count + 1), index=order).astype("int64"))


def _workers(
    rng: np.random.Generator, count: int, shares: np.ndarray, localities: tuple[str, ...]
) -> pd.DataFrame:
    per_locality = np.maximum(2, np.round(shares * count).astype(int))
    per_locality[np.argmax(per_locality)] += count - per_locality.sum()
    home = np.repeat(localities, per_locality)
    skills = []
    for position in range(count):
        chosen = set(rng.choice(SKILLS, size=rng.integers(2, 5), replace=False))
        # About a third of each team is trained in domestic abuse, so safeguarding can be met.
        if position % 3 == 0:
            chosen.add("domestic_abuse")
        skills.append(";".join(s for s in SKILLS if s in chosen))
    return pd.DataFrame(
        {
            "worker_id": [f"W{n:03d}" for n in range(1, count + 1)],
            "locality": home,
            "skills": skills,
            "capacity_points": rng.choice([100, 100, 100, 100, 100, 100, 80, 60], size=count),
            "active": rng.random(count) > 0.04,
        }
    ).astype(table_dtypes("workers"))


def _caseload(rng: np.random.Generator, target: float) -> list[int]:
    """Case points drawn until the next would pass the worker's target load."""
    points: list[int] = []
    while True:
        drawn = int(rng.choice(_CASE_POINTS))
        if sum(points) + drawn > target:
            return points
        points.append(drawn)


def _open_cases(
    rng: np.random.Generator,
    workers: pd.DataFrame,
    households: pd.DataFrame,
    open_load: tuple[float, float],
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    # Open cases go to households from the riskier end of each locality, as in practice.
    pools = {
        locality: iter(
            local.nsmallest(4000, "rank")["household_id"]
            .sample(frac=1.0, random_state=rng)
            .tolist()
        )
        for locality, local in households.groupby("locality")
    }
    rows = []
    for worker_id, locality, capacity in zip(
        workers["worker_id"], workers["locality"], workers["capacity_points"], strict=True
    ):
        for points in _caseload(rng, rng.uniform(*open_load) * capacity):
            opened = as_of - pd.Timedelta(days=int(rng.integers(7, 300)))
            rows.append((next(pools[locality]), worker_id, opened, pd.NaT, points, None))
    return pd.DataFrame(
        rows,
        columns=[
            "household_id",
            "worker_id",
            "opened_at",
            "closed_at",
            "complexity_points",
            "close_reason",
        ],
    )


def _closed_cases(
    rng: np.random.Generator,
    open_cases: pd.DataFrame,
    households: pd.DataFrame,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    sample = households.sample(n=min(len(households), len(open_cases)), random_state=rng)
    opened = as_of - pd.to_timedelta(rng.integers(300, 700, size=len(sample)), unit="D")
    return pd.DataFrame(
        {
            "household_id": sample["household_id"].to_numpy(),
            "worker_id": rng.choice(open_cases["worker_id"].unique(), size=len(sample)),
            "opened_at": opened,
            "closed_at": opened
            + pd.to_timedelta(rng.integers(60, 250, size=len(sample)), unit="D"),
            "complexity_points": rng.choice(_CASE_POINTS, size=len(sample)),
            "close_reason": rng.choice(CLOSE_REASONS, size=len(sample)),
        }
    )


def random_instance(
    *,
    seed: int = 0,
    households: int = 110_000,
    workers: int = 157,
    localities: tuple[str, ...] = LOCALITIES,
    open_load: tuple[float, float] = (0.60, 0.75),
    need_counts: tuple[float, ...] = NEED_COUNTS,
    as_of: str = "2025-01-06",
) -> AllocationInstance:
    """A city of `households` scored households and `workers` key workers whose open cases use
    `open_load` of their capacity; `need_counts[k]` is the share of households with k needs.
    The same arguments always give the same instance."""
    rng = np.random.default_rng(seed)
    shares = rng.dirichlet(np.full(len(localities), 25.0))
    scored = _households(rng, households, shares, localities)
    staff = _workers(rng, workers, shares, localities)
    day = pd.Timestamp(as_of)
    open_cases = _open_cases(rng, staff, scored, open_load, day)
    cases = pd.concat([open_cases, _closed_cases(rng, open_cases, scored, day)], ignore_index=True)
    cases = cases.assign(case_id=[f"C{n:06d}" for n in range(1, len(cases) + 1)])
    cases = cases[list(table_dtypes("cases"))].astype(table_dtypes("cases"))
    holder = open_cases.set_index("household_id")["worker_id"]
    scores = scored.assign(
        needs=_needs(rng, households, need_counts),
        reasons=_reasons(rng, households),
        open_case_worker=scored["household_id"].map(holder).astype("str"),
        model_version="synthetic-allocation-1",
    ).astype({"needs": "str", "reasons": "str", "model_version": "str"})
    return AllocationInstance(scores=scores, workers=staff, cases=cases)
