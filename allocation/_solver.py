"""The optimiser: OR-Tools CP-SAT, with a GLOP linear relaxation to bound and shrink the problem.

The only module that imports ortools. The problem is one table of candidate (household, worker)
pairs with one boolean per row, in the style of OR-Tools' assignment_sat.py: constraints are built
by groupby, the objective is a dot product and the solution is read back as a mask.

Each component (a locality, or localities joined by neighbour rules) is solved on its own:
1. each worker's free points are tightened to the largest load its cases' points can add up to;
2. a linear relaxation in which each worker picks a "pattern" (how many cases of each size it
   takes) gives a proven upper bound and reduced costs; pairs that cannot appear in any allocation
   within the tolerance are removed (reduced-cost fixing), and a rounded relaxation is the start;
3. CP-SAT maximises the objective to within relative_gap of its proven bound;
4. among allocations within that tolerance, CP-SAT minimises the highest utilisation;
5. within that utilisation, CP-SAT maximises the objective again (to a tenth of the tolerance).
Every CP-SAT run is single-threaded with a fixed seed and a deterministic work limit, so the same
input gives the same proposal; settings.num_workers components are solved side by side, one per
thread. A wall-clock limit is kept as a safety net: if it ever cuts a run short, the summary says
the result may not be reproducible.
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

from allocation._settings import AllocationSettings

VALUE_SCALE = 1_000_000  # objective coefficients are value x 1e6, rounded to integers
UTILISATION_SCALE = 10_000  # utilisation in basis points
MAX_PATTERNS_PER_WORKER = 2_000
STAGE_SHARE = {"value": 0.7, "balance": 0.1, "refine": 0.2}  # of a component's work budget
# CP-SAT's deterministic time ("work", machine-independent) granted per second of the time limit
# and per thread, leaving room for the relaxation, model building and explanations. Measured at
# 0.55-0.85 work units per CPU second on a 2-core machine, so the work limit, not the clock,
# normally ends a run, which keeps the proposal reproducible.
WORK_PER_SECOND = 0.5

__all__ = ["ORTOOLS_VERSION", "VALUE_SCALE", "solve_allocation"]


@dataclass
class _Component:
    """One independent sub-problem: its pairs (positional index), workers and statistics."""

    label: str
    pairs: pd.DataFrame
    workers: pd.DataFrame  # worker_id, capacity_points, base_points, free_points
    work: float  # deterministic work units for all stages
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Groups:
    """Row positions of the pairs table grouped three ways (groupby(...).indices)."""

    households: dict[Any, np.ndarray]
    workers: dict[Any, np.ndarray]
    slots: dict[tuple[Any, int], np.ndarray]  # (worker_id, points)

    @classmethod
    def of(cls, pairs: pd.DataFrame) -> _Groups:
        return cls(
            pairs.groupby("household_id").indices,
            pairs.groupby("worker_id").indices,
            pairs.groupby(["worker_id", "points"]).indices,
        )


def _reachable(free_points: int, sizes: list[int]) -> int:
    """Largest total <= free_points that cases of these sizes can add up to (exact tightening)."""
    if free_points <= 0 or not sizes:
        return 0
    reachable = np.zeros(free_points + 1, dtype=bool)
    reachable[0] = True
    for size in sizes:
        for total in range(size, free_points + 1):
            reachable[total] |= reachable[total - size]
    return int(np.flatnonzero(reachable).max())


def _effective_points(pairs: pd.DataFrame, workers: pd.DataFrame) -> dict[str, int]:
    sizes = pairs.groupby("worker_id")["points"].unique()
    free = workers.set_index("worker_id")["free_points"]
    return {
        worker_id: _reachable(int(free[worker_id]), sorted(int(p) for p in points))
        for worker_id, points in sizes.items()
    }


def _patterns(
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


def _pattern_sets(pairs: pd.DataFrame, capacity: dict[str, int]) -> dict[str, tuple]:
    """worker_id -> (sizes, count vectors) for workers whose patterns are few enough to list."""
    counts = pairs.groupby(["worker_id", "points"]).size()
    found = {}
    for worker_id, per_size in counts.groupby(level="worker_id"):
        sizes = [int(size) for size in per_size.index.get_level_values("points")]
        patterns = _patterns(capacity[worker_id], sizes, [int(n) for n in per_size])
        if patterns is not None:
            found[worker_id] = (sizes, patterns)
    return found


@dataclass(frozen=True)
class _Relaxation:
    bound: float  # proven upper bound on the component's objective (inf if the LP failed)
    reduced_cost: np.ndarray  # per pair, <= 0: objective lost by forcing the pair in
    start: np.ndarray  # per pair, bool: a feasible allocation rounded from the relaxation


def _lp_sum(variables: list, coefficients: list | None = None):
    if coefficients is None:
        return model_builder.LinearExpr.sum(variables)
    return model_builder.LinearExpr.weighted_sum(variables, coefficients)


def _relaxation(
    pairs: pd.DataFrame, groups: _Groups, capacity: dict[str, int], patterns: dict[str, tuple]
) -> _Relaxation:
    """GLOP on the pattern relaxation. The bound is rebuilt from the (clipped) duals as a
    Lagrangian bound, valid for any non-negative prices, so LP tolerances cannot break it."""
    model = model_builder.Model()
    x = model.new_num_var_series(
        name="x", index=pairs.index, lower_bounds=0, upper_bounds=1
    ).tolist()
    rows: dict[str, dict] = {"household": {}, "slot": {}, "capacity": {}}
    for household_id, members in groups.households.items():
        rows["household"][household_id] = model.add(_lp_sum([x[i] for i in members]) <= 1)
    weights = {}
    for worker_id, (sizes, vectors) in patterns.items():
        weights[worker_id] = [model.new_num_var(0, 1, "") for _ in vectors]
        model.add(_lp_sum(weights[worker_id]) == 1)
        for position, size in enumerate(sizes):
            members = groups.slots[(worker_id, size)]
            rows["slot"][(worker_id, size)] = model.add(
                _lp_sum([x[i] for i in members])
                - _lp_sum(weights[worker_id], [vector[position] for vector in vectors])
                <= 0
            )
    points = pairs["points"].to_numpy()
    for worker_id, members in groups.workers.items():
        if worker_id not in patterns:
            rows["capacity"][worker_id] = model.add(
                _lp_sum([x[i] for i in members], points[members].tolist()) <= capacity[worker_id]
            )
    model.maximize(_lp_sum(x, pairs["value"].tolist()))
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
    groups: _Groups,
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
    return _greedy_fill(pairs, capacity, start)


def _greedy_fill(pairs: pd.DataFrame, capacity: dict[str, int], start: np.ndarray) -> np.ndarray:
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
    groups: _Groups,
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
    built: _Model, pairs: pd.DataFrame, groups: _Groups, workers: pd.DataFrame
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


def _run(
    built: _Model,
    chosen: np.ndarray,
    settings: AllocationSettings,
    *,
    stage: str,
    work: float,
    deadline: float,
    gap: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One CP-SAT run from a hint; keeps `chosen` when no better allocation is found."""
    started = time.perf_counter()
    built.model.clear_hints()
    for variable, flag in zip(built.x.tolist(), chosen.tolist(), strict=True):
        built.model.add_hint(variable, bool(flag))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # deterministic; parallelism is across components
    solver.parameters.random_seed = settings.seed
    solver.parameters.relative_gap_limit = gap
    solver.parameters.max_deterministic_time = max(0.01, work * STAGE_SHARE[stage])
    solver.parameters.max_time_in_seconds = max(0.05, deadline - started)
    status = solver.solve(built.model)
    record: dict[str, Any] = {
        "status": solver.status_name(status),
        "seconds": round(time.perf_counter() - started, 3),
        "work": round(solver.deterministic_time, 3),
    }
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return chosen, record | {
            "finished": False,
            "clock_stopped": time.perf_counter() >= deadline,
        }
    objective, bound = solver.objective_value, solver.best_objective_bound
    record |= {
        "objective": objective,
        "bound": bound,
        "finished": status == cp_model.OPTIMAL
        or abs(bound - objective) <= gap * max(1.0, abs(objective)) + 1e-9,
        "clock_stopped": time.perf_counter() >= deadline - 0.01,
    }
    if built.highest is not None:
        record["highest"] = int(solver.value(built.highest))
    return solver.boolean_values(built.x).to_numpy(dtype=bool), record


def _shrink(component: _Component, settings: AllocationSettings):
    """Tighten capacity, bound, fix pairs by reduced cost and build a start (see module doc)."""
    pairs = component.pairs
    capacity = _effective_points(pairs, component.workers)
    relaxation = _relaxation(pairs, _Groups.of(pairs), capacity, _pattern_sets(pairs, capacity))
    start = (
        relaxation.start
        if relaxation.start.any()
        else _greedy_fill(pairs, capacity, np.zeros(len(pairs), dtype=bool))
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


def _solve_component(
    component: _Component, settings: AllocationSettings, deadline: float
) -> np.ndarray:
    """The three CP-SAT stages on one component; returns the chosen mask over its pairs."""
    began = time.perf_counter()
    # The clock is only a safety net (a slow or busy machine): each component keeps to its share.
    deadline = min(deadline, began + component.work / WORK_PER_SECOND + 0.5)
    keep, chosen, upper = _shrink(component, settings)
    pairs = component.pairs.loc[keep].reset_index(drop=True)
    groups = _Groups.of(pairs)
    capacity = _effective_points(pairs, component.workers)
    built = _build_model(pairs, groups, capacity, _pattern_sets(pairs, capacity), upper)
    run = {"settings": settings, "work": component.work, "deadline": deadline}
    built.model.maximize(built.value)
    chosen, first = _run(built, chosen, stage="value", gap=settings.relative_gap, **run)
    scaled = _scaled(pairs["value"])
    achieved = int(scaled[chosen].sum())
    bound = max(achieved, min(first.get("bound", math.inf), math.floor(upper * VALUE_SCALE)))
    stages = {"value": first}
    if math.isfinite(bound):
        built.model.add(
            built.value >= min(achieved, math.ceil((1 - settings.relative_gap) * bound))
        )
    _add_highest_utilisation(built, pairs, groups, component.workers)
    built.model.minimize(built.highest)
    chosen, stages["balance"] = _run(built, chosen, stage="balance", gap=0.0, **run)
    if "highest" in stages["balance"]:
        built.model.add(built.highest <= stages["balance"]["highest"])
        built.model.maximize(built.value)
        chosen, stages["refine"] = _run(
            built, chosen, stage="refine", gap=settings.relative_gap / 10, **run
        )
    component.stats.update(
        stages=stages,
        bound_scaled=float(bound),
        objective_scaled=int(scaled[chosen].sum()),
        seconds=round(time.perf_counter() - began, 3),
    )
    mask = np.zeros(len(component.pairs), dtype=bool)
    mask[np.flatnonzero(keep)[chosen]] = True
    return mask


def _work_budgets(sizes: pd.Series, settings: AllocationSettings) -> pd.Series:
    """Work units per component: its share of the pairs of the work all threads can do in the
    time limit. Depends only on the input, never on the clock, so runs repeat exactly."""
    parallel = min(settings.num_workers, len(sizes))
    total = settings.time_limit_s * parallel * WORK_PER_SECOND
    return (sizes / max(1, sizes.sum()) * total).clip(upper=settings.time_limit_s * WORK_PER_SECOND)


def solve_allocation(
    pairs: pd.DataFrame, *, workers: pd.DataFrame, settings: AllocationSettings
) -> tuple[pd.Series, list[dict[str, Any]]]:
    """Choose pairs: at most one worker per household, within every worker's free points.

    pairs: household_id, worker_id, component, rank, points, value (one row per allowed pair).
    workers: worker_id, capacity_points, base_points (open + locked), free_points.
    Returns a boolean mask over pairs.index and one statistics record per component.
    """
    chosen = pd.Series(False, index=pairs.index)
    if pairs.empty:
        return chosen, []
    sizes = pairs.groupby("component").size().sort_values(ascending=False, kind="stable")
    budgets = _work_budgets(sizes, settings)
    components = []
    for label in sizes.index:
        mine = pairs.loc[pairs["component"] == label]
        components.append(
            _Component(
                label,
                mine.reset_index(drop=True),
                workers.loc[workers["worker_id"].isin(mine["worker_id"])].reset_index(drop=True),
                float(budgets[label]),
                {"component": label},
            )
        )
    deadline = time.perf_counter() + settings.time_limit_s
    with ThreadPoolExecutor(max_workers=settings.num_workers) as pool:
        masks = list(pool.map(lambda part: _solve_component(part, settings, deadline), components))
    for label, mask in zip(sizes.index, masks, strict=True):
        chosen.loc[pairs.index[(pairs["component"] == label).to_numpy()][mask]] = True
    return chosen, [part.stats for part in components]
