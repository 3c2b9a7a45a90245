"""Who can go to whom: candidates, worker capacity, eligible (household, worker) pairs, components.

Pure pandas: the hard rules of the weekly allocation are applied here, before any optimisation,
so the optimiser only ever sees pairs that respect locality, safeguarding, activity and locks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from allocation._settings import AllocationSettings
from allocation.rules import allowed_pairs, places_for, skill_mask, split_skills

PAIR_DTYPES = {
    "household_id": "str",
    "worker_id": "str",
    "locality": "str",
    "worker_locality": "str",
    "rank": "int64",
    "points": "int64",
    "need_count": "int64",
    "overlap": "int64",
    "same_locality": "bool",
    "value": "float64",
}


def case_points(need_count: pd.Series, *, settings: AllocationSettings) -> pd.Series:
    """Points a new case counts against a worker: min(base + per_need x needs, max)."""
    raw = settings.base_points + settings.points_per_need * need_count
    return raw.clip(upper=settings.max_points).astype("int64")


def worker_capacity(workers: pd.DataFrame, *, open_cases: pd.DataFrame) -> pd.DataFrame:
    """Workers with their open caseload: open_cases, open_points, remaining_points."""
    load = open_cases.groupby("worker_id").agg(
        open_cases=("case_id", "size"), open_points=("complexity_points", "sum")
    )
    return (
        workers.merge(load, how="left", left_on="worker_id", right_index=True)
        .fillna({"open_cases": 0, "open_points": 0})
        .astype({"open_cases": "int64", "open_points": "int64"})
        .assign(
            remaining_points=lambda frame: frame["capacity_points"] - frame["open_points"],
            skill_mask=lambda frame: frame["skills"].map(skill_mask).astype("int64"),
        )
        .sort_values("worker_id", ignore_index=True)
    )


def select_candidates(
    scores: pd.DataFrame,
    *,
    open_cases: pd.DataFrame,
    lock_households: pd.Series,
    locality: str | None,
    settings: AllocationSettings,
) -> pd.DataFrame:
    """Households with no open case, top_n in rank order city-wide, plus any named in a lock."""
    without_case = scores.loc[~scores["household_id"].isin(open_cases["household_id"])]
    ranked = without_case.sort_values(["rank", "household_id"], kind="stable")
    chosen = ranked["household_id"].head(settings.top_n)
    named = ranked["household_id"].isin(chosen) | ranked["household_id"].isin(lock_households)
    candidates = ranked.loc[named]
    if locality is not None:
        candidates = candidates.loc[candidates["locality"] == locality]
    need_count = candidates["needs"].map(lambda text: len(split_skills(text))).astype("int64")
    return candidates.assign(
        need_count=need_count,
        points=case_points(need_count, settings=settings),
        need_mask=candidates["needs"].map(skill_mask).astype("int64"),
        in_top_n=candidates["household_id"].isin(chosen),
    ).reset_index(drop=True)


def allowed_localities(
    candidates: pd.DataFrame, *, settings: AllocationSettings, locality: str | None
) -> pd.DataFrame:
    """(household locality, worker locality) pairs a household may be allocated across."""
    localities = sorted(candidates["locality"].unique())
    neighbours = {} if locality is not None else settings.neighbours
    pairs = [
        (home, place) for home in localities for place in places_for(home, neighbours=neighbours)
    ]
    return pd.DataFrame(pairs, columns=["locality", "worker_locality"], dtype="str")


def eligible_pairs(
    candidates: pd.DataFrame,
    *,
    capacity: pd.DataFrame,
    allowed: pd.DataFrame,
    settings: AllocationSettings,
) -> pd.DataFrame:
    """Every (household, worker) pair the rules allow (allocation.rules), with its value.

    Capacity is not applied here: explanations need to know about full workers too.
    """
    workers = capacity.rename(columns={"locality": "worker_locality"})
    pairs = candidates.merge(allowed, on="locality").merge(
        workers[["worker_id", "worker_locality", "skill_mask", "active"]], on="worker_locality"
    )
    pairs = pairs.loc[allowed_pairs(pairs, safeguarding=settings.safeguarding)]
    overlap = np.bitwise_count(
        (pairs["need_mask"] & pairs["skill_mask"]).to_numpy(dtype="int64")
    ).astype("int64")
    coverage = overlap / np.maximum(1, pairs["need_count"].to_numpy())
    return (
        pairs.assign(
            overlap=overlap,
            same_locality=pairs["locality"] == pairs["worker_locality"],
            value=pairs["risk"] * (1.0 + settings.skill_bonus * coverage),
        )[list(PAIR_DTYPES)]
        .astype(PAIR_DTYPES)
        .sort_values(["rank", "household_id", "worker_id"], ignore_index=True)
    )


def locality_components(allowed: pd.DataFrame) -> dict[str, str]:
    """Household locality -> component label; localities joined by neighbour rules share one."""
    parent = {name: name for name in pd.concat([allowed["locality"], allowed["worker_locality"]])}

    def root(name: str) -> str:
        while parent[name] != name:
            name = parent[name]
        return name

    for home, other in zip(allowed["locality"], allowed["worker_locality"], strict=True):
        first, second = sorted((root(home), root(other)))
        parent[second] = first
    members: dict[str, list[str]] = {}
    for name in sorted(parent):
        members.setdefault(root(name), []).append(name)
    return {name: "+".join(members[root(name)]) for name in parent}


def solver_pairs(
    eligible: pd.DataFrame, *, locked: pd.DataFrame, workers: pd.DataFrame
) -> pd.DataFrame:
    """Pairs the optimiser decides: households not locked, whose points fit the worker's free
    points."""
    free = workers.set_index("worker_id")["free_points"]
    open_to_solver = ~eligible["household_id"].isin(locked["household_id"])
    fits = eligible["points"] <= eligible["worker_id"].map(free).astype("int64")
    return eligible.loc[open_to_solver & fits].reset_index(drop=True)
