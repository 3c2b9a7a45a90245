"""The rule a manager would use by hand, kept as the baseline the optimiser is measured against:
highest risk first, each to the eligible worker with the most free points."""

from __future__ import annotations

import pandas as pd


def greedy_choice(pairs: pd.DataFrame, *, workers: pd.DataFrame) -> pd.Series:
    """Boolean mask over pairs: households in rank order, each to the eligible worker with the
    most free points (ties: lower worker_id), when the case's points fit."""
    free = dict(zip(workers["worker_id"], workers["free_points"], strict=True))
    chosen = []
    for _, options in pairs.sort_values(["rank", "household_id"], kind="stable").groupby(
        "household_id", sort=False
    ):
        fitting = [
            (-free[worker_id], worker_id, index)
            for index, worker_id, points in zip(
                options.index, options["worker_id"], options["points"], strict=True
            )
            if free[worker_id] >= points
        ]
        if fitting:
            _, worker_id, index = min(fitting)
            free[worker_id] -= int(options.at[index, "points"])
            chosen.append(index)
    return pd.Series(pairs.index.isin(chosen), index=pairs.index)


def fill_gaps(pairs: pd.DataFrame, *, chosen: pd.Series, workers: pd.DataFrame) -> pd.Series:
    """Add any household still waiting that fits a worker's remaining points (rank order, best
    value first). Only ever raises the objective; a no-op when the optimiser proved optimality."""
    used = pairs.loc[chosen].groupby("worker_id")["points"].sum()
    free = {
        w: int(f) - int(used.get(w, 0))
        for w, f in zip(workers["worker_id"], workers["free_points"], strict=True)
    }
    placed = set(pairs.loc[chosen, "household_id"])
    added = []
    waiting = pairs.loc[~pairs["household_id"].isin(placed)].sort_values(
        ["rank", "household_id", "value", "worker_id"],
        ascending=[True, True, False, True],
        kind="stable",
    )
    for index, household_id, worker_id, points in zip(
        waiting.index,
        waiting["household_id"],
        waiting["worker_id"],
        waiting["points"],
        strict=True,
    ):
        if household_id in placed or free[worker_id] < points:
            continue
        placed.add(household_id)
        free[worker_id] -= int(points)
        added.append(index)
    return chosen | pd.Series(pairs.index.isin(added), index=pairs.index)
