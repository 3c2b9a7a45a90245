"""The optimiser: OR-Tools CP-SAT, with a GLOP linear relaxation to bound and shrink the problem.

The only module that imports ortools. The problem is one table of candidate (household, worker)
pairs with one boolean per row, in the style of OR-Tools' assignment_sat.py: constraints are built
by groupby, the objective is a dot product and the solution is read back as a mask.

Each component (a locality, or localities joined by neighbour rules) is its own problem:
1. each worker's free points are tightened to the largest load its cases' points can add up to;
2. a linear relaxation in which each worker picks a "pattern" (how many cases of each size it
   takes) gives a proven upper bound and reduced costs; pairs that cannot appear in any allocation
   within the tolerance are removed (reduced-cost fixing); the rounded relaxation is the start;
3. stage 1: CP-SAT maximises the objective to within relative_gap of its proven bound;
4. stage 2 (when stage 1 reached the tolerance): among allocations within it, CP-SAT minimises
   the highest utilisation, then maximises the objective again (one lexicographic objective).
Every CP-SAT run is single-threaded with a fixed seed and a deterministic work limit, so the same
input gives the same proposal. Components are shared among settings.num_workers threads ("lanes");
in a lane, work a component leaves unused passes to the next. A wall-clock limit is kept as a
safety net: if it ever cuts a run short, the summary says the result may not be reproducible.
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

from allocation._packing import Groups, effective_points, greedy_fill, pattern_sets
from allocation._settings import AllocationSettings

VALUE_SCALE = 1_000_000  # objective coefficients are value x 1e6, rounded to integers
UTILISATION_SCALE = 10_000  # utilisation in basis points
STAGE_SHARE = {"value": 0.85, "balance": 0.15}  # of a component's share of its lane's work
# CP-SAT's deterministic time ("work", machine-independent) granted per second of the time limit
# and per thread. Measured at 0.55-0.85 work units per CPU second on a 2-core machine; 0.5 leaves
# room for the relaxation, model building and explanations, so that the work limit, not the
# clock, normally ends a run and the proposal stays reproducible.
WORK_PER_SECOND = 0.5
# The clock as a safety net: a run may take this many times its work's expected seconds; the
# whole proposal this many times settings.time_limit_s.
RUN_CLOCK_FACTOR = 2.0
TOTAL_CLOCK_FACTOR = 1.0

# For proposal.json: how every CP-SAT run is configured (the rest is in AllocationSettings).
SOLVER_SETTINGS = {
    "engine": "OR-Tools CP-SAT (bound and start from a GLOP relaxation)",
    "threads_per_run": 1,
    "value_scale": VALUE_SCALE,
    "utilisation_scale": UTILISATION_SCALE,
    "stage_share": STAGE_SHARE,
    "work_per_second": WORK_PER_SECOND,
}

__all__ = ["ORTOOLS_VERSION", "SOLVER_SETTINGS", "VALUE_SCALE", "solve_allocation"]


@dataclass
class _Component:
    """One independent sub-problem: its pairs (positional index), workers and statistics."""

    label: str
    pairs: pd.DataFrame
    workers: pd.DataFrame  # worker_id, capacity_points, base_points, free_points
    work: float  # deterministic work units for all stages
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Relaxation:
    bound: float  # proven upper bound on the component's objective (inf if the LP failed)
    reduced_cost: np.ndarray  # per pair, <= 0: objective lost by forcing the pair in
    start: np.ndarray  # per pair, bool: a feasible allocation rounded from the relaxation


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
) -> _Relaxation:
    """GLOP on the pattern relaxation. The bound is rebuilt from the (clipped) duals as a
    Lagrangian bound, valid for any non-negative prices, so LP tolerances cannot break it."""
    model, weights, rows = _relaxation_model(pairs, groups, capacity, patterns)
    solver = model_builder.Solver("glop")
    if solver.solve(model) != model_builder.SolveStatus.OPTIMAL:
        return _Relaxation(math.inf, np.zeros(len(pairs)), np.zeros(len(pairs), dtype=bool))
    prices = {
        kind: {key: max(0.0, float(solver.dual_value(row))) for key, row in found.items()}
        for kind, found in rows.items()
    }
    heaviest = {
        worker_id: vectors[int(np.argmax([solver.value(w) for w in weights[worker_id]]))]
        for worker_id, (_, vectors) in patterns.items()
    }
    bound, reduced = _lagrangian_bound(pairs, capacity, patterns, prices)
    return _Relaxation(bound, reduced, _round(pairs, groups, capacity, patterns, heaviest))


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


def _round(
    pairs: pd.DataFrame,
    groups: Groups,
    capacity: dict[str, int],
    patterns: dict[str, tuple],
    heaviest: dict[str, tuple],
) -> np.ndarray:
    """Each worker takes its heaviest pattern; a transport LP fills the slots (integral: the
    matrix is totally unimodular); a greedy pass then fills what is left."""
    model = model_builder.Model()
    x = model.new_num_var_series(
        name="x", index=pairs.index, lower_bounds=0, upper_bounds=1
    ).tolist()
    for members in groups.households.values():
        model.add(_lp_sum([x[i] for i in members]) <= 1)
    for worker_id, vector in heaviest.items():
        for size, count in zip(patterns[worker_id][0], vector, strict=True):
            model.add(_lp_sum([x[i] for i in groups.slots[(worker_id, size)]]) <= count)
    points = pairs["points"].to_numpy()
    for worker_id, members in groups.workers.items():
        model.add(_lp_sum([x[i] for i in members], points[members].tolist()) <= capacity[worker_id])
    model.maximize(_lp_sum(x, pairs["value"].tolist()))
    solver = model_builder.Solver("glop")
    start = np.zeros(len(pairs), dtype=bool)
    if solver.solve(model) == model_builder.SolveStatus.OPTIMAL:
        start = solver.values(pd.Series(x)).to_numpy() > 1 - 1e-6
    return greedy_fill(pairs, capacity, start)


def _scaled(values: pd.Series) -> np.ndarray:
    return np.rint(values.to_numpy(dtype="float64") * VALUE_SCALE).astype("int64")


def _cp_sum(variables: list, coefficients: list | None = None):
    if coefficients is None:
        return cp_model.LinearExpr.sum(variables)
    return cp_model.LinearExpr.weighted_sum(variables, coefficients)


@dataclass
class _Model:
    """The CP-SAT model of one component and its handles."""

    model: cp_model.CpModel
    x: pd.Series  # one boolean per pair
    value: Any  # scaled objective expression
    highest: Any = None  # highest utilisation (basis points), added by the balance stage


def _build_model(
    pairs: pd.DataFrame,
    groups: Groups,
    capacity: dict[str, int],
    patterns: dict[str, tuple],
    upper_bound: float,
) -> _Model:
    """x per pair; at most one worker per household; capacity; each worker's pattern choice."""
    model = cp_model.CpModel()
    x = model.new_bool_var_series(name="x", index=pairs.index)
    xs, points = x.tolist(), pairs["points"].to_numpy()
    for members in groups.households.values():
        model.add_at_most_one([xs[i] for i in members])
    for worker_id, members in groups.workers.items():
        model.add(
            _cp_sum([xs[i] for i in members], points[members].tolist()) <= capacity[worker_id]
        )
    for worker_id, (sizes, vectors) in patterns.items():
        choice = [model.new_bool_var(f"pattern_{worker_id}_{n}") for n in range(len(vectors))]
        model.add_exactly_one(choice)
        for position, size in enumerate(sizes):
            members = groups.slots[(worker_id, size)]
            model.add(
                _cp_sum([xs[i] for i in members])
                <= _cp_sum(choice, [vector[position] for vector in vectors])
            )
    value = _cp_sum(xs, _scaled(pairs["value"]).tolist())
    if math.isfinite(upper_bound):
        # A scaled coefficient may round up by 0.5, hence the allowance per household.
        slack = 0.5 * len(groups.households) + 1
        model.add(value <= int(math.floor(upper_bound * VALUE_SCALE * (1 + 1e-9) + slack)))
    return _Model(model, x, value)


def _add_highest_utilisation(
    built: _Model, pairs: pd.DataFrame, groups: Groups, workers: pd.DataFrame
) -> None:
    """highest >= utilisation (basis points) of every worker who could take a case here."""
    known = workers.set_index("worker_id")
    xs, points = built.x.tolist(), pairs["points"].to_numpy()
    floor = max(
        0,
        int(
            (UTILISATION_SCALE * known["base_points"] // known["capacity_points"])
            .loc[list(groups.workers)]
            .max()
        ),
    )
    built.highest = built.model.new_int_var(
        min(floor, UTILISATION_SCALE), UTILISATION_SCALE, "highest"
    )
    for worker_id, members in groups.workers.items():
        load = _cp_sum([xs[i] for i in members], (UTILISATION_SCALE * points[members]).tolist())
        built.model.add(
            load + UTILISATION_SCALE * int(known.at[worker_id, "base_points"])
            <= built.highest * int(known.at[worker_id, "capacity_points"])
        )


def _record(
    solver: cp_model.CpSolver, status, built: _Model, *, elapsed: float, wall: float, gap: float
) -> dict[str, Any]:
    """What one run did, for proposal.json (and whether the clock, not the work, stopped it)."""
    record: dict[str, Any] = {
        "status": solver.status_name(status),
        "seconds": round(elapsed, 3),
        "work": round(solver.deterministic_time, 3),
        "clock_stopped": elapsed >= wall - 0.01,
        "finished": False,
    }
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return record
    objective, bound = solver.objective_value, solver.best_objective_bound
    record |= {
        "objective": objective,
        "bound": bound,
        "finished": status == cp_model.OPTIMAL
        or abs(bound - objective) <= gap * max(1.0, abs(objective)) + 1e-9,
    }
    if built.highest is not None:
        record["highest"] = int(solver.value(built.highest))
    return record


def _run(
    built: _Model,
    chosen: np.ndarray,
    settings: AllocationSettings,
    *,
    work: float,
    deadline: float,
    gap: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One CP-SAT run from a hint, within `work` units; keeps `chosen` if nothing better is found.
    The clock is only a safety net (RUN_CLOCK_FACTOR, and never past the overall deadline)."""
    started = time.perf_counter()
    built.model.clear_hints()
    for variable, flag in zip(built.x.tolist(), chosen.tolist(), strict=True):
        built.model.add_hint(variable, bool(flag))
    wall = max(0.05, min(deadline - started, RUN_CLOCK_FACTOR * work / WORK_PER_SECOND + 0.25))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # deterministic; parallelism is across components
    solver.parameters.random_seed = settings.seed
    solver.parameters.relative_gap_limit = gap
    solver.parameters.max_deterministic_time = max(0.01, work)
    solver.parameters.max_time_in_seconds = wall
    status = solver.solve(built.model)
    record = _record(
        solver, status, built, elapsed=time.perf_counter() - started, wall=wall, gap=gap
    )
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return chosen, record
    return solver.boolean_values(built.x).to_numpy(dtype=bool), record


def _shrink(component: _Component, settings: AllocationSettings):
    """Tighten capacity, bound, fix pairs by reduced cost and build a start (see module doc)."""
    pairs = component.pairs
    capacity = effective_points(pairs, component.workers)
    relaxation = _relaxation(pairs, Groups.of(pairs), capacity, pattern_sets(pairs, capacity))
    start = (
        relaxation.start
        if relaxation.start.any()
        else greedy_fill(pairs, capacity, np.zeros(len(pairs), dtype=bool))
    )
    first = float(pairs["value"].to_numpy()[start].sum())
    # A pair whose forced inclusion caps the objective below the tolerance band's floor cannot be
    # in any allocation the later stages may return, so it is left out of the model.
    floor = (1 - settings.relative_gap) * first - 1e-9 * max(1.0, relaxation.bound)
    keep = start | (relaxation.bound + relaxation.reduced_cost >= floor)
    component.stats.update(
        pairs=len(pairs),
        pairs_kept=int(keep.sum()),
        relaxation_bound=relaxation.bound,
        first_objective=first,
    )
    return keep, start[keep], relaxation.bound


@dataclass
class _Progress:
    """A component being solved: its model, the allocation so far and what each run found."""

    component: _Component
    keep: np.ndarray  # mask over component.pairs: pairs left in the model
    pairs: pd.DataFrame  # the kept pairs
    groups: Groups
    built: _Model
    chosen: np.ndarray  # mask over the kept pairs
    deadline: float
    stages: dict[str, dict] = field(default_factory=dict)
    bound: float = math.inf  # best proven bound, scaled

    @property
    def achieved(self) -> int:
        return int(_scaled(self.pairs["value"])[self.chosen].sum())

    def mask(self) -> np.ndarray:
        """The chosen pairs as a mask over the component's pairs."""
        mask = np.zeros(len(self.component.pairs), dtype=bool)
        mask[np.flatnonzero(self.keep)[self.chosen]] = True
        return mask


def _start(component: _Component, settings: AllocationSettings, deadline: float) -> _Progress:
    began = time.perf_counter()
    keep, chosen, upper = _shrink(component, settings)
    pairs = component.pairs.loc[keep].reset_index(drop=True)
    groups = Groups.of(pairs)
    capacity = effective_points(pairs, component.workers)
    built = _build_model(pairs, groups, capacity, pattern_sets(pairs, capacity), upper)
    bound = math.floor(upper * VALUE_SCALE) if math.isfinite(upper) else math.inf
    component.stats["prepare_seconds"] = round(time.perf_counter() - began, 3)
    return _Progress(component, keep, pairs, groups, built, chosen, deadline, bound=bound)


def _maximise(progress: _Progress, settings: AllocationSettings, *, work: float) -> None:
    """Stage 1: maximise the objective to within relative_gap of the proven bound."""
    progress.built.model.maximize(progress.built.value)
    progress.chosen, record = _run(
        progress.built,
        progress.chosen,
        settings,
        work=work,
        deadline=progress.deadline,
        gap=settings.relative_gap,
    )
    progress.stages["value"] = record
    if "bound" in record:
        progress.bound = min(progress.bound, record["bound"])
    progress.bound = max(progress.bound, progress.achieved)


def _balance(progress: _Progress, settings: AllocationSettings, *, work: float) -> None:
    """Stage 2: among allocations within the tolerance of the bound, the lowest highest
    utilisation, then (lexicographically) the highest objective."""
    built = progress.built
    if math.isfinite(progress.bound):
        floor = math.ceil((1 - settings.relative_gap) * progress.bound)
        built.model.add(built.value >= min(progress.achieved, floor))
    _add_highest_utilisation(built, progress.pairs, progress.groups, progress.component.workers)
    # One unit of utilisation outweighs the whole objective: the order is strict.
    weight = int(_scaled(progress.pairs["value"]).sum()) + 1
    built.model.minimize(weight * built.highest - built.value)
    progress.chosen, progress.stages["balance"] = _run(
        built, progress.chosen, settings, work=work, deadline=progress.deadline, gap=0.0
    )


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


def _solve_lane(
    lane: list[_Component], settings: AllocationSettings, deadline: float
) -> list[_Progress]:
    """Each component of the lane in turn, drawing on the lane's work pool: stage 1 gets the
    component's size share of what is left; stage 2 runs only if stage 1 reached the tolerance.
    Work used is deterministic, so every share is too."""
    pool = sum(part.work for part in lane)
    done = []
    for position, part in enumerate(lane):
        share = len(part.pairs) / sum(len(later.pairs) for later in lane[position:])
        # On a busy machine the clock may bind first: each component keeps its share of it too.
        now = time.perf_counter()
        progress = _start(part, settings, now + max(0.0, deadline - now) * share)
        _maximise(progress, settings, work=pool * share * STAGE_SHARE["value"])
        pool = max(0.0, pool - progress.stages["value"]["work"])
        if progress.stages["value"]["finished"]:
            _balance(progress, settings, work=pool * share * STAGE_SHARE["balance"])
            pool = max(0.0, pool - progress.stages["balance"]["work"])
        done.append(progress)
    return done


def _work_budgets(sizes: pd.Series, settings: AllocationSettings) -> pd.Series:
    """Work units per component: its share of the pairs of the work all threads can do in the
    time limit. Depends only on the input, never on the clock, so runs repeat exactly."""
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
                mine.reset_index(drop=True),
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
        mine = pairs.index[(pairs["component"] == progress.component.label).to_numpy()]
        chosen.loc[mine[progress.mask()]] = True
        stats = progress.component.stats
        stats.update(
            stages=progress.stages,
            bound_scaled=float(progress.bound),
            objective_scaled=progress.achieved,
            seconds=round(
                stats["prepare_seconds"]
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
    deadline: time.perf_counter() value the clock safety net must not pass (default: the time
    limit from now). Returns a boolean mask over pairs.index and one record per component.
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
