"""Stage 1 of the optimiser: HiGHS (through OR-Tools) maximises the count model's objective; its
proof is the bound, or, if it stops first, a GLOP pattern relaxation gives a proven bound instead
(allocation._solver has the whole method)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from ortools.linear_solver.python import model_builder

from allocation._classes import RATIO_TOLERANCE, CountModel, allocation_from_counts
from allocation._packing import Groups, greedy_fill, pattern_sets
from allocation._progress import Component, Progress
from allocation._settings import AllocationSettings

# HiGHS stops when (bound - objective) <= MIP_RELATIVE_GAP x objective or <= MIP_ABSOLUTE_GAP;
# on OPTIMAL, objective x (1 + MIP_RELATIVE_GAP) + MIP_ABSOLUTE_GAP is therefore a proven bound.
MIP_RELATIVE_GAP = 1e-5

MIP_ABSOLUTE_GAP = 1e-6

# The deterministic limit of a HiGHS run (branch-and-bound nodes). The weekly localities are all
# proved at the root node; a run that needs more than this is reported as stopped.
MIP_NODE_LIMIT = 20_000


def _lp_sum(variables: list, coefficients: list | None = None):
    if coefficients is None:
        return model_builder.LinearExpr.sum(variables)
    return model_builder.LinearExpr.weighted_sum(variables, coefficients)


def _relaxation_model(
    pairs: pd.DataFrame, groups: Groups, capacity: dict[str, int], patterns: dict[str, tuple]
):
    """The pattern relaxation: x per pair in [0, 1], one pattern mix per worker (or a plain
    capacity row when its patterns are too many), and the rows whose prices the bound needs."""
    model = model_builder.Model()
    x = model.new_num_var_series(
        name="x", index=pairs.index, lower_bounds=0, upper_bounds=1
    ).tolist()
    rows: dict[str, dict] = {"household": {}, "slot": {}, "capacity": {}}
    for household_id, members in groups.households.items():
        rows["household"][household_id] = model.add(_lp_sum([x[i] for i in members]) <= 1)
    weights = {
        worker_id: [model.new_num_var(0, 1, "") for _ in vectors]
        for worker_id, (_, vectors) in patterns.items()
    }
    for worker_id, (sizes, vectors) in patterns.items():
        model.add(_lp_sum(weights[worker_id]) == 1)
        for position, size in enumerate(sizes):
            taken = _lp_sum([x[i] for i in groups.slots[(worker_id, size)]])
            allowed = _lp_sum(weights[worker_id], [vector[position] for vector in vectors])
            rows["slot"][(worker_id, size)] = model.add(taken - allowed <= 0)
    points = pairs["points"].to_numpy()
    for worker_id, members in groups.workers.items():
        if worker_id not in patterns:
            load = _lp_sum([x[i] for i in members], points[members].tolist())
            rows["capacity"][worker_id] = model.add(load <= capacity[worker_id])
    model.maximize(_lp_sum(x, pairs["value"].tolist()))
    return model, weights, rows


def _relaxation(
    pairs: pd.DataFrame, groups: Groups, capacity: dict[str, int], patterns: dict[str, tuple]
) -> float:
    """The fallback bound, used only when HiGHS stops before its proof: GLOP on the pattern
    relaxation. The bound is rebuilt from the (clipped) duals as a
    Lagrangian bound, valid for any non-negative prices, so LP tolerances cannot break it."""
    model, _, rows = _relaxation_model(pairs, groups, capacity, patterns)
    solver = model_builder.Solver("glop")
    if solver.solve(model) != model_builder.SolveStatus.OPTIMAL:
        return math.inf
    prices = {
        kind: {key: max(0.0, float(solver.dual_value(row))) for key, row in found.items()}
        for kind, found in rows.items()
    }
    bound, _ = _lagrangian_bound(pairs, capacity, patterns, prices)
    return bound


def _lagrangian_bound(
    pairs: pd.DataFrame,
    capacity: dict[str, int],
    patterns: dict[str, tuple],
    prices: dict[str, dict],
) -> tuple[float, np.ndarray]:
    """For any allocation: value <= sum of household prices + each worker's best pattern worth
    (or capacity x price) + the positive reduced costs of the pairs it uses."""
    slot, per_point = prices["slot"], prices["capacity"]
    pair_price = np.array(
        [
            slot[(w, p)] if w in patterns else per_point.get(w, 0.0) * p
            for w, p in zip(pairs["worker_id"], pairs["points"], strict=True)
        ],
        dtype="float64",
    )
    household_price = pairs["household_id"].map(prices["household"]).to_numpy(dtype="float64")
    reduced = pairs["value"].to_numpy(dtype="float64") - household_price - pair_price
    pattern_worth = sum(
        max(
            sum(slot[(worker_id, size)] * count for size, count in zip(sizes, vector, strict=True))
            for vector in vectors
        )
        for worker_id, (sizes, vectors) in patterns.items()
    )
    capacity_worth = sum(price * capacity[worker_id] for worker_id, price in per_point.items())
    bound = (
        sum(prices["household"].values())
        + pattern_worth
        + capacity_worth
        + np.clip(reduced, 0.0, None).sum()
    )
    return float(bound), np.clip(reduced, None, 0.0)


def _highs_parameters(settings: AllocationSettings) -> str:
    # output_flag first: HiGHS prints its banner as soon as any option is set otherwise.
    return "\n".join(
        [
            "output_flag=false",
            "threads=1",
            f"random_seed={settings.seed}",
            f"mip_rel_gap={MIP_RELATIVE_GAP}",
            f"mip_abs_gap={MIP_ABSOLUTE_GAP}",
            f"mip_max_nodes={MIP_NODE_LIMIT}",
        ]
    )


def _value_model(model: CountModel) -> tuple[model_builder.Model, list]:
    """The count model for HiGHS: n integer per counts row, y 0/1 per levels row."""
    built = model_builder.Model()
    counts, levels = model.counts, model.levels
    n = [built.new_int_var(0, int(upper), f"n{i}") for i, upper in enumerate(counts["upper"])]
    y = [built.new_bool_var(f"y{j}") for j in range(len(levels))]
    for row, positions in levels.groupby("row").indices.items():
        built.add(
            _lp_sum([y[j] for j in positions]) - _lp_sum([n[i] for i in model.members[row]]) == 0
        )
    for worker_id, rows in counts.groupby("worker_id").indices.items():
        load = _lp_sum([n[i] for i in rows], counts["points"].to_numpy()[rows].tolist())
        built.add(load <= model.capacity[worker_id])
    built.maximize(_lp_sum(y, levels["coefficient"].tolist()))
    return built, n


@dataclass(frozen=True)
class MipRun:
    status: str
    proved: bool
    objective: float  # the count model's objective (nan without a solution)
    counts: np.ndarray | None  # n per counts row, None without a solution
    seconds: float
    clock_stopped: bool


def run_highs(model: CountModel, settings: AllocationSettings, *, wall: float) -> MipRun:
    """HiGHS on the count model: single-threaded, seeded, node-limited, clock as a safety net."""
    started = time.perf_counter()
    built, n = _value_model(model)
    solver = model_builder.Solver("highs")
    solver.set_time_limit_in_seconds(max(0.05, wall))
    solver.set_solver_specific_parameters(_highs_parameters(settings))
    status = solver.solve(built)
    elapsed = time.perf_counter() - started
    found = status in (model_builder.SolveStatus.OPTIMAL, model_builder.SolveStatus.FEASIBLE)
    proved = status == model_builder.SolveStatus.OPTIMAL
    return MipRun(
        status.name,
        proved,
        solver.objective_value if found else math.nan,
        np.array([solver.value(variable) for variable in n]) if found else None,
        elapsed,
        not proved and elapsed >= wall - 0.01,
    )


def _certified(objective: float) -> float:
    """The bound HiGHS proved when it reports OPTIMAL, widened by the class tolerance."""
    return (objective * (1 + MIP_RELATIVE_GAP) + MIP_ABSOLUTE_GAP) * (1 + RATIO_TOLERANCE)


def _fallback_bound(component: Component, capacity: dict[str, int]) -> float:
    pairs = component.pairs
    return _relaxation(pairs, Groups.of(pairs), capacity, pattern_sets(pairs, capacity))


def maximise(progress: Progress, settings: AllocationSettings) -> None:
    """Stage 1: HiGHS on the count model; the allocation is repaired and filled greedily (a
    no-op unless rounding left room), and the bound is HiGHS' proof or the fallback."""
    pairs = progress.component.pairs
    run = run_highs(progress.model, settings, wall=progress.deadline - time.perf_counter())
    start = np.zeros(len(pairs), dtype=bool)
    if run.counts is not None:
        start = allocation_from_counts(pairs, progress.model, run.counts).to_numpy()
    progress.chosen = greedy_fill(pairs, progress.capacity, start)
    progress.bound = max(
        progress.achieved,
        _certified(run.objective)
        if run.proved
        else _fallback_bound(progress.component, progress.capacity),
    )
    progress.stages["value"] = {
        "engine": "highs",
        "status": run.status,
        "seconds": round(run.seconds, 3),
        "clock_stopped": run.clock_stopped,
        "objective": progress.achieved,
        "bound": progress.bound,
        "finished": progress.achieved >= (1 - settings.relative_gap) * progress.bound - 1e-9,
    }
