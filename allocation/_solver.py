"""The optimiser: an exact MIP (HiGHS, through OR-Tools) for the objective and CP-SAT for the
load balance, both on the count model of allocation._classes.

The only module that imports ortools. Each component (a locality, or localities joined by
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

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from ortools import __version__ as ORTOOLS_VERSION
from ortools.linear_solver.python import model_builder
from ortools.sat.python import cp_model

from allocation._classes import (
    RATIO_TOLERANCE,
    CountModel,
    allocation_from_counts,
    count_model,
    counts_from_allocation,
    household_classes,
)
from allocation._packing import Groups, effective_points, greedy_fill, pattern_sets
from allocation._settings import AllocationSettings

VALUE_SCALE = 1_000_000  # CP-SAT objective coefficients are value x 1e6, rounded to integers
UTILISATION_SCALE = 10_000  # utilisation in basis points
# HiGHS stops when (bound - objective) <= MIP_RELATIVE_GAP x objective or <= MIP_ABSOLUTE_GAP;
# on OPTIMAL, objective x (1 + MIP_RELATIVE_GAP) + MIP_ABSOLUTE_GAP is therefore a proven bound.
MIP_RELATIVE_GAP = 1e-5
MIP_ABSOLUTE_GAP = 1e-6
# The deterministic limit of a HiGHS run (branch-and-bound nodes). The weekly localities are all
# proved at the root node; a run that needs more than this is reported as stopped.
MIP_NODE_LIMIT = 20_000
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


@dataclass
class _Component:
    """One independent sub-problem: its pairs in class order (`source` = the caller's index),
    workers (worker_id, capacity_points, base_points, free_points) and statistics."""

    label: str
    pairs: pd.DataFrame
    workers: pd.DataFrame
    work: float  # deterministic CP-SAT work units for the balance stage
    stats: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class _Progress:
    """A component being solved: its count model, the allocation so far and each stage's record."""

    component: _Component
    capacity: dict[str, int]
    model: CountModel
    deadline: float
    chosen: np.ndarray  # mask over component.pairs
    stages: dict[str, dict] = field(default_factory=dict)
    bound: float = math.inf  # proven bound on the component's objective (value units)

    @property
    def achieved(self) -> float:
        return float(self.component.pairs["value"].to_numpy()[self.chosen].sum())


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
class _MipRun:
    status: str
    proved: bool
    objective: float  # the count model's objective (nan without a solution)
    counts: np.ndarray | None  # n per counts row, None without a solution
    seconds: float
    clock_stopped: bool


def _run_highs(model: CountModel, settings: AllocationSettings, *, wall: float) -> _MipRun:
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
    return _MipRun(
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


def _fallback_bound(component: _Component, capacity: dict[str, int]) -> float:
    pairs = component.pairs
    return _relaxation(pairs, Groups.of(pairs), capacity, pattern_sets(pairs, capacity))


def _maximise(progress: _Progress, settings: AllocationSettings) -> None:
    """Stage 1: HiGHS on the count model; the allocation is repaired and filled greedily (a
    no-op unless rounding left room), and the bound is HiGHS' proof or the fallback."""
    pairs = progress.component.pairs
    run = _run_highs(progress.model, settings, wall=progress.deadline - time.perf_counter())
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


def _balance_model(progress: _Progress, floor_scaled: int):
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


def _highest(progress: _Progress, chosen: np.ndarray) -> int:
    """Highest utilisation (basis points, rounded up) of the component's workers."""
    pairs, known = progress.component.pairs, progress.component.workers
    load = pairs.loc[chosen].groupby("worker_id")["points"].sum()
    after = known["base_points"] + known["worker_id"].map(load).fillna(0).astype("int64")
    scaled = -(-UTILISATION_SCALE * after // known["capacity_points"])
    return int(scaled.max())


def _capped(progress: _Progress, highest: int) -> dict[str, int]:
    """Free points of each worker when no one may pass `highest` (basis points)."""
    known = progress.component.workers.set_index("worker_id")
    allowed = highest * known["capacity_points"] // UTILISATION_SCALE - known["base_points"]
    return {
        worker_id: int(max(0, min(free, allowed[worker_id])))
        for worker_id, free in progress.capacity.items()
    }


def _lowest_highest(
    progress: _Progress, settings: AllocationSettings, *, work: float
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
    progress: _Progress, settings: AllocationSettings, highest: int
) -> tuple[np.ndarray | None, _MipRun]:
    """The best allocation (HiGHS) in which no one passes `highest` basis points."""
    pairs = progress.component.pairs
    capped = _capped(progress, highest)
    model = count_model(pairs, capped)
    run = _run_highs(model, settings, wall=progress.deadline - time.perf_counter())
    if run.counts is None:
        return None, run
    found = allocation_from_counts(pairs, model, run.counts).to_numpy()
    return greedy_fill(pairs, capped, found), run


def _balance(progress: _Progress, settings: AllocationSettings, *, work: float) -> None:
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


def _lanes(components: list[_Component], threads: int) -> list[list[_Component]]:
    """Components split into one lane per thread (balanced by size, largest placed first); each
    lane runs smallest first, so work the small ones leave unused flows to the large ones."""
    lanes: list[list[_Component]] = [[] for _ in range(min(threads, len(components)))]
    sizes = [0] * len(lanes)
    for part in sorted(components, key=lambda c: (-len(c.pairs), c.label)):
        lane = sizes.index(min(sizes))
        lanes[lane].append(part)
        sizes[lane] += len(part.pairs)
    return [sorted(lane, key=lambda c: (len(c.pairs), c.label)) for lane in lanes]


def _start(part: _Component, deadline: float) -> _Progress:
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
    return _Progress(part, capacity, model, deadline, np.zeros(len(part.pairs), dtype=bool))


def _solve_lane(
    lane: list[_Component], settings: AllocationSettings, deadline: float
) -> list[_Progress]:
    """Each component of the lane in turn: stage 1, then stage 2 on its size share of what is
    left of the lane's CP-SAT work (work used is deterministic, so every share is too)."""
    pool = sum(part.work for part in lane)
    done = []
    for position, part in enumerate(lane):
        share = len(part.pairs) / sum(len(later.pairs) for later in lane[position:])
        # The clock is a safety net only: every run may use what is left of the time limit.
        progress = _start(part, deadline)
        _maximise(progress, settings)
        if progress.stages["value"]["finished"]:
            _balance(progress, settings, work=min(BALANCE_WORK, pool * share * BALANCE_SHARE))
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
) -> list[_Component]:
    sizes = pairs.groupby("component").size().sort_values(ascending=False, kind="stable")
    budgets = _work_budgets(sizes, settings)
    found = []
    for label in sizes.index:
        mine = pairs.loc[pairs["component"] == label]
        found.append(
            _Component(
                label,
                household_classes(mine.assign(source=mine.index)),
                workers.loc[workers["worker_id"].isin(mine["worker_id"])].reset_index(drop=True),
                float(budgets[label]),
                {"component": label},
            )
        )
    return found


def _collect(pairs: pd.DataFrame, solved: list[_Progress]) -> pd.Series:
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
