"""Stage 2 of the optimiser: CP-SAT (through OR-Tools) looks for a lower highest utilisation
keeping the objective within the tolerance of the bound, then HiGHS fills at that level
(allocation._solver has the whole method)."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd
from ortools.sat.python import cp_model

from allocation._classes import allocation_from_counts, count_model, counts_from_allocation
from allocation._packing import greedy_fill
from allocation._progress import UTILISATION_SCALE, VALUE_SCALE, Progress
from allocation._settings import AllocationSettings
from allocation._stage_value import MipRun, run_highs

BALANCE_SHARE = 0.5  # of a component's share of its lane's CP-SAT work

BALANCE_WORK = 0.1  # at most this much CP-SAT work per component to look for a lower level

# CP-SAT's deterministic time ("work", machine-independent) granted per second of the time limit
# and per thread, measured at 0.5-0.85 work units per CPU second on a 2-core machine; half the
# time is left for HiGHS, model building and explanations.
WORK_PER_SECOND = 0.5

# The clock as a safety net only, generous so that a busy machine makes a proposal slower but not
# different: a CP-SAT run may take this many times its work's expected seconds, and the whole
# solve this many times settings.time_limit_s.
RUN_CLOCK_FACTOR = 8.0


def _balance_model(progress: Progress, floor_scaled: int):
    """The count model for CP-SAT with `value >= floor`, minimising the highest utilisation
    (basis points, rounded up) of the component's workers."""
    model, counts, levels = cp_model.CpModel(), progress.model.counts, progress.model.levels
    n = [model.new_int_var(0, int(upper), f"n{i}") for i, upper in enumerate(counts["upper"])]
    y = [model.new_bool_var(f"y{j}") for j in range(len(levels))]
    for row, positions in levels.groupby("row").indices.items():
        model.add(sum(y[j] for j in positions) == sum(n[i] for i in progress.model.members[row]))
    coefficients = np.rint(levels["coefficient"].to_numpy() * VALUE_SCALE).astype("int64")
    model.add(cp_model.LinearExpr.weighted_sum(y, coefficients.tolist()) >= floor_scaled)
    known = progress.component.workers.set_index("worker_id")
    lowest = int((UTILISATION_SCALE * known["base_points"] // known["capacity_points"]).max())
    highest = model.new_int_var(min(lowest, UTILISATION_SCALE), UTILISATION_SCALE, "highest")
    points = counts["points"].to_numpy()
    for worker_id, rows in counts.groupby("worker_id").indices.items():
        load = cp_model.LinearExpr.weighted_sum(
            [n[i] for i in rows], (UTILISATION_SCALE * points[rows]).tolist()
        )
        model.add(
            load + UTILISATION_SCALE * int(known.at[worker_id, "base_points"])
            <= highest * int(known.at[worker_id, "capacity_points"])
        )
    model.minimize(highest)
    return model, n + y, highest, lowest


def _highest(progress: Progress, chosen: np.ndarray) -> int:
    """Highest utilisation (basis points, rounded up) of the component's workers."""
    pairs, known = progress.component.pairs, progress.component.workers
    load = pairs.loc[chosen].groupby("worker_id")["points"].sum()
    after = known["base_points"] + known["worker_id"].map(load).fillna(0).astype("int64")
    scaled = -(-UTILISATION_SCALE * after // known["capacity_points"])
    return int(scaled.max())


def _capped(progress: Progress, highest: int) -> dict[str, int]:
    """Free points of each worker when no one may pass `highest` (basis points)."""
    known = progress.component.workers.set_index("worker_id")
    allowed = highest * known["capacity_points"] // UTILISATION_SCALE - known["base_points"]
    return {
        worker_id: int(max(0, min(free, allowed[worker_id])))
        for worker_id, free in progress.capacity.items()
    }


def _lowest_highest(
    progress: Progress, settings: AllocationSettings, *, work: float
) -> tuple[dict[str, Any], np.ndarray | None, int]:
    """CP-SAT, from the stage-1 allocation: the lowest highest utilisation keeping the objective
    within the tolerance of the bound. Returns its record, its counts (or None) and highest."""
    hint_n, hint_y = counts_from_allocation(
        progress.component.pairs, progress.model, progress.chosen
    )
    coefficients = np.rint(progress.model.levels["coefficient"].to_numpy() * VALUE_SCALE)
    # Rounded coefficients may each be 0.5 high: the floor allows for it.
    tolerance_floor = math.ceil(
        (1 - settings.relative_gap) * progress.bound * VALUE_SCALE + 0.5 * len(hint_y)
    )
    floor = min(int(coefficients.astype("int64") @ hint_y), tolerance_floor)
    model, variables, highest, _ = _balance_model(progress, floor)
    for variable, hinted in zip(variables, [*hint_n.tolist(), *hint_y.tolist()], strict=True):
        model.add_hint(variable, int(hinted))
    started = time.perf_counter()
    wall = max(
        0.05, min(progress.deadline - started, RUN_CLOCK_FACTOR * work / WORK_PER_SECOND + 0.25)
    )
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # deterministic; parallelism is across components
    solver.parameters.random_seed = settings.seed
    solver.parameters.max_deterministic_time = max(0.01, work)
    solver.parameters.max_time_in_seconds = wall
    status = solver.solve(model)
    elapsed = time.perf_counter() - started
    record = {
        "engine": "cp-sat",
        "status": solver.status_name(status),
        "seconds": round(elapsed, 3),
        "work": round(solver.deterministic_time, 3),
        "clock_stopped": status != cp_model.OPTIMAL and elapsed >= wall - 0.01,
    }
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return record, None, UTILISATION_SCALE + 1
    counts = np.array([solver.value(variable) for variable in variables[: len(hint_n)]])
    return record, counts, int(solver.value(highest))


def _refill(
    progress: Progress, settings: AllocationSettings, highest: int
) -> tuple[np.ndarray | None, MipRun]:
    """The best allocation (HiGHS) in which no one passes `highest` basis points."""
    pairs = progress.component.pairs
    capped = _capped(progress, highest)
    model = count_model(pairs, capped)
    run = run_highs(model, settings, wall=progress.deadline - time.perf_counter())
    if run.counts is None:
        return None, run
    found = allocation_from_counts(pairs, model, run.counts).to_numpy()
    return greedy_fill(pairs, capped, found), run


def balance(progress: Progress, settings: AllocationSettings, *, work: float) -> None:
    """Stage 2: the lowest highest utilisation keeping the objective within the tolerance of the
    bound (CP-SAT, from the stage-1 allocation, within its work limit), then the highest
    objective at that level (HiGHS, capacities capped at it). The stage-1 allocation stands
    unless a lower level is found."""
    pairs = progress.component.pairs
    current = _highest(progress, progress.chosen)
    known = progress.component.workers
    lowest = int((UTILISATION_SCALE * known["base_points"] // known["capacity_points"]).max())
    if current <= lowest:
        progress.stages["balance"] = {"engine": "none", "status": "NOT_NEEDED", "seconds": 0.0}
        return
    record, counts, level = _lowest_highest(progress, settings, work=work)
    if counts is not None and level < current:
        progress.chosen = allocation_from_counts(pairs, progress.model, counts).to_numpy()
        best, run = _refill(progress, settings, level)
        if best is not None and _score(pairs, best) >= _score(pairs, progress.chosen):
            progress.chosen = best
        record |= {
            "engine": "cp-sat + highs",
            "refill_status": run.status,
            "seconds": round(record["seconds"] + run.seconds, 3),
            "clock_stopped": record["clock_stopped"] or run.clock_stopped,
        }
    record["highest"] = _highest(progress, progress.chosen)
    progress.stages["balance"] = record


def _score(pairs: pd.DataFrame, chosen: np.ndarray) -> float:
    return float(pairs["value"].to_numpy()[chosen].sum())
