"""Packing facts the optimiser relies on, in plain numpy/pandas: row groups of the pairs table,
each worker's reachable load, the "patterns" (how many cases of each size a worker can take) and
a greedy fill. Kept apart from _solver so that the OR-Tools module holds only the models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MAX_PATTERNS_PER_WORKER = 2_000


@dataclass(frozen=True)
class Groups:
    """Row positions of the pairs table grouped three ways (groupby(...).indices)."""

    households: dict[Any, np.ndarray]
    workers: dict[Any, np.ndarray]
    slots: dict[tuple[Any, int], np.ndarray]  # (worker_id, points)

    @classmethod
    def of(cls, pairs: pd.DataFrame) -> Groups:
        return cls(
            pairs.groupby("household_id").indices,
            pairs.groupby("worker_id").indices,
            pairs.groupby(["worker_id", "points"]).indices,
        )


def reachable_load(free_points: int, sizes: list[int]) -> int:
    """Largest total <= free_points that cases of these sizes can add up to (exact tightening)."""
    if free_points <= 0 or not sizes:
        return 0
    possible = np.zeros(free_points + 1, dtype=bool)
    possible[0] = True
    for size in sizes:
        for total in range(size, free_points + 1):
            possible[total] |= possible[total - size]
    return int(np.flatnonzero(possible).max())


def effective_points(pairs: pd.DataFrame, workers: pd.DataFrame) -> dict[str, int]:
    """worker_id -> free points tightened to the largest load its candidates' points reach."""
    sizes = pairs.groupby("worker_id")["points"].unique()
    free = workers.set_index("worker_id")["free_points"]
    return {
        worker_id: reachable_load(int(free[worker_id]), sorted(int(p) for p in points))
        for worker_id, points in sizes.items()
    }


def size_patterns(
    capacity: int, sizes: list[int], available: list[int]
) -> list[tuple[int, ...]] | None:
    """Every count vector (cases per size) within capacity; None when there are too many."""
    found: list[tuple[int, ...]] = []

    def extend(position: int, left: int, counts: tuple[int, ...]) -> bool:
        if position == len(sizes):
            found.append(counts)
            return len(found) <= MAX_PATTERNS_PER_WORKER
        most = min(left // sizes[position], available[position])
        return all(
            extend(position + 1, left - count * sizes[position], (*counts, count))
            for count in range(most + 1)
        )

    return found if extend(0, capacity, ()) else None


def pattern_sets(pairs: pd.DataFrame, capacity: dict[str, int]) -> dict[str, tuple]:
    """worker_id -> (sizes, count vectors) for workers whose patterns are few enough to list."""
    counts = pairs.groupby(["worker_id", "points"]).size()
    found = {}
    for worker_id, per_size in counts.groupby(level="worker_id"):
        sizes = [int(size) for size in per_size.index.get_level_values("points")]
        vectors = size_patterns(capacity[worker_id], sizes, [int(n) for n in per_size])
        if vectors is not None:
            found[worker_id] = (sizes, vectors)
    return found


def greedy_fill(pairs: pd.DataFrame, capacity: dict[str, int], start: np.ndarray) -> np.ndarray:
    """Keep what fits of `start`, then add pairs by value (then rank, worker) while they fit."""
    free = dict(capacity)
    order = pairs.assign(first=start.astype("int64"), position=np.arange(len(pairs))).sort_values(
        ["first", "value", "rank", "worker_id"], ascending=[False, False, True, True], kind="stable"
    )
    placed, chosen = set(), np.zeros(len(pairs), dtype=bool)
    for position, household_id, worker_id, points in zip(
        order["position"], order["household_id"], order["worker_id"], order["points"], strict=True
    ):
        if household_id in placed or free[worker_id] < points:
            continue
        placed.add(household_id)
        free[worker_id] -= int(points)
        chosen[position] = True
    return chosen
