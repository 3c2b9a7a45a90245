"""Checks of a city's parameters and of allocations given to it."""

from __future__ import annotations

import numpy as np
import pandas as pd

MINIMUM_HOUSEHOLDS = 200


def check_parameters(
    *, households: int, case_effect: float, households_per_worker: int, target_utilisation: float
) -> None:
    if households < MINIMUM_HOUSEHOLDS:
        raise ValueError(f"households must be at least {MINIMUM_HOUSEHOLDS}, not {households}")
    if not 0.0 <= case_effect < 1.0:
        raise ValueError(f"case_effect must be in [0, 1), not {case_effect}")
    if households_per_worker < 1:
        raise ValueError(f"households_per_worker must be positive, not {households_per_worker}")
    if not 0.0 < target_utilisation <= 1.0:
        raise ValueError(f"target_utilisation must be in (0, 1], not {target_utilisation}")


def validate_allocations(
    allocations: pd.DataFrame,
    *,
    household_ids: np.ndarray,
    worker_ids: np.ndarray,
    open_case: np.ndarray,
    active: np.ndarray,
    remaining: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row numbers of households and workers, and points; ValueError naming row and column."""
    missing = {"household_id", "worker_id", "complexity_points"} - set(allocations.columns)
    if missing:
        raise ValueError(f"allocations: missing column(s) {sorted(missing)}")
    households = _lookup(allocations["household_id"], household_ids, column="household_id")
    workers = _lookup(allocations["worker_id"], worker_ids, column="worker_id")
    points = pd.to_numeric(allocations["complexity_points"], errors="coerce").to_numpy()
    for row, (household, worker, point) in enumerate(
        zip(households, workers, points, strict=True), 1
    ):
        where = f"allocations row {row}"
        if not (np.isfinite(point) and point == int(point) and point > 0):
            raise ValueError(
                f"{where}, column complexity_points: {point!r} is not a whole number > 0"
            )
        if open_case[household] >= 0:
            raise ValueError(f"{where}, column household_id: household already has an open case")
        if not active[worker]:
            raise ValueError(f"{where}, column worker_id: worker is not active")
    duplicated = pd.Series(households).duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated)) + 1
        raise ValueError(f"allocations row {row}, column household_id: household allocated twice")
    load = np.bincount(workers, weights=points, minlength=len(worker_ids))
    over = np.flatnonzero(load > remaining)
    if len(over):
        row = int(np.argmax(workers == over[0])) + 1
        raise ValueError(
            f"allocations row {row}, column worker_id: allocations exceed the worker's "
            f"remaining capacity ({int(remaining[over[0]])} points)"
        )
    return households, workers, points.astype(np.int64)


def _lookup(values: pd.Series, ids: np.ndarray, *, column: str) -> np.ndarray:
    """Row numbers of ids (sorted or not) for the given keys; ValueError on an unknown key."""
    index = pd.Index(ids)
    rows = index.get_indexer(values.astype("str"))
    if (rows < 0).any():
        row = int(np.argmax(rows < 0)) + 1
        raise ValueError(
            f"allocations row {row}, column {column}: unknown {column} {values.iloc[row - 1]!r}"
        )
    return rows


# ------------------------------------------------------------------------------ generation
