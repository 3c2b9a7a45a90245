"""The week's problem after every hard rule and lock has been applied: validated inputs, the
candidates, the workers in scope with their free points, and the pairs the optimiser decides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocation._candidates import (
    allowed_localities,
    eligible_pairs,
    locality_components,
    select_candidates,
    solver_pairs,
    worker_capacity,
)
from allocation._inputs import validate_cases, validate_locks, validate_scores, validate_workers
from allocation._locks import APPLIED, LockContext, judge_locks
from allocation._settings import AllocationInputError, AllocationSettings


@dataclass(frozen=True)
class Prepared:
    """The week's problem after every hard rule and lock has been applied."""

    scores: pd.DataFrame
    candidates: pd.DataFrame
    workers: pd.DataFrame  # in scope: open load, locked_points, base_points, free_points
    open_cases: pd.DataFrame  # in scope
    options: pd.DataFrame  # eligible pairs after exclusions, capacity not yet applied
    pairs: pd.DataFrame  # what the optimiser decides
    locked: pd.DataFrame  # accepted assign locks: household_id, worker_id
    lock_report: pd.DataFrame
    places: dict[str, list[str]]
    locality: str | None


def _check_locality(locality: str | None, *, scores: pd.DataFrame, workers: pd.DataFrame) -> None:
    if locality is None:
        return
    known = sorted(set(scores["locality"].dropna()) | set(workers["locality"].dropna()))
    if locality not in known:
        raise AllocationInputError(
            f"locality {locality!r} is in neither the scores nor the workers; known localities: "
            + ", ".join(known)
        )


def _lock_context(scores, open_cases, capacity, candidates, locality, settings) -> LockContext:
    return LockContext(
        scored=scores.set_index("household_id"),
        open_worker=open_cases.set_index("household_id")["worker_id"],
        workers=capacity.set_index("worker_id"),
        # A one-locality proposal has only that locality's workers in scope (allowed_localities).
        neighbours={} if locality is not None else settings.neighbours,
        points=candidates.set_index("household_id")["points"],
        locality=locality,
        safeguarding=settings.safeguarding,
    )


def _without_exclusions(eligible: pd.DataFrame, lock_report: pd.DataFrame) -> pd.DataFrame:
    excluded = lock_report.loc[
        (lock_report["kind"] == "exclude") & (lock_report["status"] == APPLIED)
    ]
    keys = set(zip(excluded["household_id"], excluded["worker_id"], strict=True))
    pair_keys = pd.Series(
        list(zip(eligible["household_id"], eligible["worker_id"], strict=True)),
        index=eligible.index,
    )
    return eligible.loc[~pair_keys.isin(keys)].reset_index(drop=True)


def _with_locked_load(
    scope: pd.DataFrame, locked: pd.DataFrame, candidates: pd.DataFrame
) -> pd.DataFrame:
    points = locked.merge(candidates[["household_id", "points"]], on="household_id")
    locked_points = points.groupby("worker_id")["points"].sum()
    return (
        scope.assign(locked_points=scope["worker_id"].map(locked_points).fillna(0).astype("int64"))
        .assign(
            base_points=lambda frame: frame["open_points"] + frame["locked_points"],
            free_points=lambda frame: frame["capacity_points"] - frame["base_points"],
        )
        .reset_index(drop=True)
    )


def _validated(
    *,
    scores: pd.DataFrame,
    workers: pd.DataFrame,
    cases: pd.DataFrame,
    locks: pd.DataFrame | None = None,
    locality: str | None = None,
    as_of=None,
) -> dict[str, Any]:
    """Inputs checked (AllocationInputError names table, row and column); cases -> the cases
    open on `as_of`."""
    workers = validate_workers(workers)
    valid = {
        "scores": validate_scores(scores),
        "workers": workers,
        "open_cases": validate_cases(cases, workers=workers, as_of=as_of),
        "locks": validate_locks(locks),
        "locality": locality,
    }
    _check_locality(valid["locality"], scores=valid["scores"], workers=workers)
    return valid


def _places(allowed: pd.DataFrame) -> dict[str, list[str]]:
    """Household locality -> localities whose workers may take it, its own first."""
    return {
        home: sorted(set(group["worker_locality"]), key=lambda name: (name != home, name))
        for home, group in allowed.groupby("locality")
    }


def prepare(*, settings: AllocationSettings, **inputs: Any) -> Prepared:
    """The candidate pairs and workers of a week; `inputs` are propose_allocation's tables."""
    valid = _validated(**inputs)
    scores, open_cases, locality = valid["scores"], valid["open_cases"], valid["locality"]
    capacity = worker_capacity(valid["workers"], open_cases=open_cases)
    scope = capacity if locality is None else capacity.loc[capacity["locality"] == locality]
    candidates = select_candidates(
        scores,
        open_cases=open_cases,
        locality=locality,
        lock_households=valid["locks"]["household_id"],
        settings=settings,
    )
    allowed = allowed_localities(candidates, settings=settings, locality=locality)
    eligible = eligible_pairs(candidates, capacity=scope, allowed=allowed, settings=settings)
    lock_report, locked = judge_locks(
        valid["locks"],
        _lock_context(scores, open_cases, capacity, candidates, locality, settings),
    )
    options = _without_exclusions(eligible, lock_report)
    scope = _with_locked_load(scope, locked, candidates)
    pairs = solver_pairs(options, locked=locked, workers=scope)
    pairs = pairs.assign(component=pairs["locality"].map(locality_components(allowed)))
    return Prepared(
        scores,
        candidates,
        scope,
        open_cases.loc[open_cases["worker_id"].isin(scope["worker_id"])],
        options,
        pairs,
        locked,
        lock_report,
        _places(allowed),
        locality,
    )
