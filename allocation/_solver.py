"""The optimiser: an exact MIP (HiGHS, through OR-Tools) for the objective and CP-SAT for the
load balance, both on the count model of allocation._classes.

The stages are in allocation._stage_value (HiGHS) and allocation._stage_balance (CP-SAT), the
only modules that build OR-Tools models. Each component (a locality, or localities joined by
neighbour rules) is its own problem:
1. each worker's free points are tightened to the largest load its cases' points can add up to;
2. households no allocation can tell apart are grouped into classes (allocation._classes): the
   model decides how many households of each class each worker takes;
3. stage 1: HiGHS maximises the objective of the count model to a relative gap of 1e-5 (its proof
   is the bound); if it stops first, a GLOP pattern relaxation gives a proven bound instead;
4. stage 2 (when stage 1 reached the tolerance and someone could be less loaded): CP-SAT, from
   the stage-1 allocation and within a small work limit, looks for a lower highest utilisation
   keeping the objective within relative_gap of the bound; if it finds one, HiGHS maximises the
   objective with every worker capped at that level.
HiGHS runs single-threaded with a fixed seed and a node limit; CP-SAT single-threaded with a
fixed seed and a deterministic work limit: the same input gives the same proposal. Components are
shared among settings.num_workers threads ("lanes"); in a lane, CP-SAT work a component leaves
unused passes to the next. Wall-clock limits are kept as a safety net only: if one ever cuts a
run short, the summary says the result may not be reproducible.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from ortools import __version__ as ORTOOLS_VERSION

from allocation._classes import count_model, household_classes
from allocation._packing import effective_points
from allocation._progress import UTILISATION_SCALE, VALUE_SCALE, Component, Progress
from allocation._settings import AllocationSettings
from allocation._stage_balance import BALANCE_SHARE, BALANCE_WORK, WORK_PER_SECOND, balance
from allocation._stage_value import MIP_ABSOLUTE_GAP, MIP_NODE_LIMIT, MIP_RELATIVE_GAP, maximise

TOTAL_CLOCK_FACTOR = 3.0

# For proposal.json: how every run is configured (the rest is in AllocationSettings).
SOLVER_SETTINGS = {
    "engine": "count model: HiGHS MIP (objective, proof), then OR-Tools CP-SAT (load balance)",
    "threads_per_run": 1,
    "mip_relative_gap": MIP_RELATIVE_GAP,
    "mip_absolute_gap": MIP_ABSOLUTE_GAP,
    "mip_node_limit": MIP_NODE_LIMIT,
    "value_scale": VALUE_SCALE,
    "utilisation_scale": UTILISATION_SCALE,
    "balance_share": BALANCE_SHARE,
    "work_per_second": WORK_PER_SECOND,
}

__all__ = ["ORTOOLS_VERSION", "SOLVER_SETTINGS", "VALUE_SCALE", "solve_allocation"]


def _lanes(components: list[Component], threads: int) -> list[list[Component]]:
    """Components split into one lane per thread (balanced by size, largest placed first); each
    lane runs smallest first, so work the small ones leave unused flows to the large ones."""
    lanes: list[list[Component]] = [[] for _ in range(min(threads, len(components)))]
    sizes = [0] * len(lanes)
    for part in sorted(components, key=lambda c: (-len(c.pairs), c.label)):
        lane = sizes.index(min(sizes))
        lanes[lane].append(part)
        sizes[lane] += len(part.pairs)
    return [sorted(lane, key=lambda c: (len(c.pairs), c.label)) for lane in lanes]


def _start(part: Component, deadline: float) -> Progress:
    began = time.perf_counter()
    capacity = effective_points(part.pairs, part.workers)
    model = count_model(part.pairs, capacity)
    part.stats.update(
        pairs=len(part.pairs),
        households=int(part.pairs["household_id"].nunique()),
        classes=int(part.pairs["klass"].nunique()),
        count_variables=len(model.counts),
        level_variables=len(model.levels),
        prepare_seconds=round(time.perf_counter() - began, 3),
    )
    return Progress(part, capacity, model, deadline, np.zeros(len(part.pairs), dtype=bool))


def _solve_lane(
    lane: list[Component], settings: AllocationSettings, deadline: float
) -> list[Progress]:
    """Each component of the lane in turn: stage 1, then stage 2 on its size share of what is
    left of the lane's CP-SAT work (work used is deterministic, so every share is too)."""
    pool = sum(part.work for part in lane)
    done = []
    for position, part in enumerate(lane):
        share = len(part.pairs) / sum(len(later.pairs) for later in lane[position:])
        # The clock is a safety net only: every run may use what is left of the time limit.
        progress = _start(part, deadline)
        maximise(progress, settings)
        if progress.stages["value"]["finished"]:
            balance(progress, settings, work=min(BALANCE_WORK, pool * share * BALANCE_SHARE))
            pool = max(0.0, pool - progress.stages["balance"].get("work", 0.0))
        done.append(progress)
    return done


def _work_budgets(sizes: pd.Series, settings: AllocationSettings) -> pd.Series:
    """CP-SAT work units per component: its share of the pairs of the work all threads can do
    in the time limit. Depends only on the input, never on the clock, so runs repeat exactly."""
    parallel = min(settings.num_workers, len(sizes))
    total = settings.time_limit_s * parallel * WORK_PER_SECOND
    return sizes / max(1, sizes.sum()) * total


def _components(
    pairs: pd.DataFrame, workers: pd.DataFrame, settings: AllocationSettings
) -> list[Component]:
    sizes = pairs.groupby("component").size().sort_values(ascending=False, kind="stable")
    budgets = _work_budgets(sizes, settings)
    found = []
    for label in sizes.index:
        mine = pairs.loc[pairs["component"] == label]
        found.append(
            Component(
                label,
                household_classes(mine.assign(source=mine.index)),
                workers.loc[workers["worker_id"].isin(mine["worker_id"])].reset_index(drop=True),
                float(budgets[label]),
                {"component": label},
            )
        )
    return found


def _collect(pairs: pd.DataFrame, solved: list[Progress]) -> pd.Series:
    """The chosen pairs of every component as one mask over the caller's pairs; statistics."""
    chosen = pd.Series(False, index=pairs.index)
    for progress in solved:
        part = progress.component
        chosen.loc[part.pairs.loc[progress.chosen, "source"].to_numpy()] = True
        part.stats.update(
            stages=progress.stages,
            bound_scaled=float(progress.bound * VALUE_SCALE),
            objective_scaled=progress.achieved * VALUE_SCALE,
            seconds=round(
                part.stats["prepare_seconds"]
                + sum(record["seconds"] for record in progress.stages.values()),
                3,
            ),
        )
    return chosen


def solve_allocation(
    pairs: pd.DataFrame,
    *,
    workers: pd.DataFrame,
    settings: AllocationSettings,
    deadline: float | None = None,
) -> tuple[pd.Series, list[dict[str, Any]]]:
    """Choose pairs: at most one worker per household, within every worker's free points.

    pairs: household_id, worker_id, component, rank, points, value (one row per allowed pair).
    workers: worker_id, capacity_points, base_points (open + locked), free_points.
    deadline: time.perf_counter() value by which the time limit ends (default: the time limit
    from now); the clock safety net is TOTAL_CLOCK_FACTOR times the time limit
    from the start. Returns a boolean mask over pairs.index and one record per component.
    """
    if pairs.empty:
        return pd.Series(False, index=pairs.index), []
    if deadline is None:
        deadline = time.perf_counter() + settings.time_limit_s
    deadline += settings.time_limit_s * (TOTAL_CLOCK_FACTOR - 1)
    components = _components(pairs, workers, settings)
    lanes = _lanes(components, settings.num_workers)
    with ThreadPoolExecutor(max_workers=len(lanes)) as pool:
        solved = [
            progress
            for lane in pool.map(lambda lane: _solve_lane(lane, settings, deadline), lanes)
            for progress in lane
        ]
    return _collect(pairs, solved), [part.stats for part in components]
