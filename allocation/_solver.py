"""The optimiser: OR-Tools CP-SAT (with a GLOP linear relaxation to bound and shrink the problem).

The only module that imports ortools. The problem is one table of candidate (household, worker)
pairs with one boolean per row, in the style of OR-Tools' assignment_sat.py: constraints are built
by groupby, the objective is a dot product and the solution is read back as a mask.

Each component (a locality, or localities joined by neighbour rules) is solved on its own:
1. capacity is tightened to the largest load the cases' points can add up to;
2. a linear relaxation in which each worker picks a "pattern" (how many cases of each size it takes)
   gives a proven upper bound and reduced costs; pairs that cannot appear in any allocation within
   the tolerance are removed (reduced-cost fixing);
3. CP-SAT, started from a rounded relaxation, maximises the objective to within relative_gap;
4. among allocations within the tolerance, CP-SAT minimises the highest utilisation;
5. within that utilisation, CP-SAT re-maximises the objective (to a tenth of the tolerance).
Each CP-SAT run is single-threaded with a fixed seed, so it is deterministic unless cut short by
the clock; settings.num_workers components are solved at the same time, one per thread.
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

VALUE_SCALE = 1_000_000  # objective coefficients are value x 1e6, rounded
UTILISATION_SCALE = 10_000  # utilisation in basis points
MAX_PATTERNS_PER_WORKER = 2_000
STAGE_SHARES = {"value": 0.6, "balance": 0.4, "refine": 1.0}  # of the budget left at each stage

__all__ = ["ORTOOLS_VERSION", "solve_allocation"]


@dataclass
class _Component:
    """One independent sub-problem: its pairs, its workers and what was learned solving it."""

    label: str
    pairs: pd.DataFrame
    workers: pd.DataFrame  # worker_id, capacity_points, base_points, free_points
    budget_s: float
    stats: dict[str, Any] = field(default_factory=dict)


def _reachable_capacity(free_points: int, sizes: list[int]) -> int:
    """Largest total <= free_points that cases of these sizes can add up to."""
    if free_points <= 0 or not sizes:
        return 0
    reachable = np.zeros(free_points + 1, dtype=bool)
    reachable[0] = True
    for size in sizes:
        for total in range(size, free_points + 1):
            reachable[total] |= reachable[total - size]
    return int(np.flatnonzero(reachable).max())


def _effective_workers(pairs: pd.DataFrame, workers: pd.DataFrame) -> pd.DataFrame:
    """Workers of the component with free points tightened to a reachable load (exact)."""
    sizes = pairs.groupby("worker_id")["points"].agg(lambda points: sorted(set(points)))
    present = workers.loc[workers["worker_id"].isin(sizes.index)]
    effective = [
        _reachable_capacity(int(free), sizes[worker_id])
        for worker_id, free in zip(present["worker_id"], present["free_points"], strict=True)
    ]
    return present.assign(effective_points=effective).reset_index(drop=True)


def _patterns(capacity: int, sizes: list[int], available: list[int]) -> list[tuple[int, ...]] | None:
    """Every count vector (cases per size) that fits capacity; None when there are too many."""
    found: list[tuple[int, ...]] = []

    def extend(position: int, left: int, counts: list[int]) -> bool:
        if position == len(sizes):
            found.append(tuple(counts))
            return len(found) <= MAX_PATTERNS_PER_WORKER
        for count in range(min(left // sizes[position], available[position]) + 1):
            if not extend(position + 1, left - count * sizes[position], [*counts, count]):
                return False
        return True

    return found if extend(0, capacity, []) else None


def _pattern_table(pairs: pd.DataFrame, workers: pd.DataFrame) -> pd.DataFrame:
    """Long table (worker_id, pattern, points, count) for workers whose patterns are enumerable."""
    rows = []
    for worker_id, capacity in zip(workers["worker_id"], workers["effective_points"], strict=True):
        mine = pairs.loc[pairs["worker_id"] == worker_id, "points"].value_counts().sort_index()
        sizes, available = mine.index.tolist(), mine.tolist()
        patterns = _patterns(int(capacity), sizes, available)
        for number, counts in enumerate(patterns or []):
            rows += [(worker_id, number, size, count) for size, count in zip(sizes, counts,
                                                                             strict=True)]
    return pd.DataFrame(rows, columns=["worker_id", "pattern", "points", "count"]).astype(
        {"worker_id": "str", "pattern": "int64", "points": "int64", "count": "int64"}
    )


def _keyed(patterns: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Distinct (worker_id, pattern) keys numbered 0..n-1, and the pattern table with its key."""
    keys = patterns[["worker_id", "pattern"]].drop_duplicates().reset_index(drop=True)
    keyed = patterns.merge(keys.reset_index(names="key"), on=["worker_id", "pattern"])
    return keys, keyed


@dataclass(frozen=True)
class _Relaxation:
    """What the linear relaxation tells us."""

    bound: float  # proven upper bound on the component's objective
    reduced_cost: pd.Series  # per pair: value lost (<= 0) by forcing the pair in
    pattern_choice: pd.DataFrame  # worker_id, pattern: each worker's heaviest pattern
    optimal: bool


def _lp_sum(variables: pd.Series, coefficients: list | None = None):
    if coefficients is None:
        return model_builder.LinearExpr.sum(variables.tolist())
    return model_builder.LinearExpr.weighted_sum(variables.tolist(), coefficients)


def _relaxation(pairs: pd.DataFrame, workers: pd.DataFrame,
                patterns: pd.DataFrame) -> _Relaxation:
    """GLOP on the pattern relaxation; the bound is rebuilt from (clipped) duals, so it is valid."""
    model = model_builder.Model()
    x = model.new_num_var_series(name="x", index=pairs.index, lower_bounds=0, upper_bounds=1)
    keys, keyed = _keyed(patterns)
    weight = model.new_num_var_series(name="p", index=keys.index, lower_bounds=0, upper_bounds=1)
    rows = {"household": {}, "slot": {}, "capacity": {}}
    for household_id, members in pairs.groupby("household_id").groups.items():
        rows["household"][household_id] = model.add(_lp_sum(x[members]) <= 1)
    for _, members in keys.groupby("worker_id").groups.items():
        model.add(_lp_sum(weight[members]) == 1)
    slots = pairs.groupby(["worker_id", "points"]).groups
    for slot, members in keyed.groupby(["worker_id", "points"]):
        rows["slot"][slot] = model.add(
            _lp_sum(x[slots[slot]]) - _lp_sum(weight[members["key"]], members["count"].tolist())
            <= 0)
    by_worker = pairs.groupby("worker_id").groups
    plain = workers.loc[~workers["worker_id"].isin(keys["worker_id"])]
    for worker_id, capacity in zip(plain["worker_id"], plain["effective_points"], strict=True):
        members = by_worker[worker_id]
        rows["capacity"][worker_id] = model.add(
            _lp_sum(x[members], pairs.loc[members, "points"].tolist()) <= int(capacity))
    model.maximize(_lp_sum(x, pairs["value"].tolist()))
    solver = model_builder.Solver("glop")
    if solver.solve(model) != model_builder.SolveStatus.OPTIMAL:
        return _Relaxation(math.inf, pd.Series(0.0, index=pairs.index), keys.head(0), False)
    prices = {kind: {key: max(0.0, float(solver.dual_value(row))) for key, row in found.items()}
              for kind, found in rows.items()}
    choice = keys.assign(weight=solver.values(weight).to_numpy()).sort_values(
        ["worker_id", "weight", "pattern"], ascending=[True, False, True]
    ).drop_duplicates("worker_id")[["worker_id", "pattern"]]
    return _bound_from_prices(pairs, workers, keyed, prices, choice)


def _bound_from_prices(pairs: pd.DataFrame, workers: pd.DataFrame, keyed: pd.DataFrame,
                       prices: dict[str, dict], choice: pd.DataFrame) -> _Relaxation:
    """Lagrangian bound: valid for any non-negative prices, so GLOP's tolerances cannot break it.

    For any allocation x: value(x) <= sum(household prices) + sum over workers of the best pattern's
    worth (or capacity x price) + sum over chosen pairs of their reduced cost.
    """
    slot, capacity = prices["slot"], prices["capacity"]
    pair_price = [
        slot[(w, p)] if (w, p) in slot else capacity.get(w, 0.0) * p
        for w, p in zip(pairs["worker_id"], pairs["points"], strict=True)
    ]
    reduced = (pairs["value"] - pairs["household_id"].map(prices["household"]).fillna(0.0)
               - np.asarray(pair_price, dtype="float64"))
    worth = keyed["count"] * [slot.get((w, p), 0.0) for w, p in
                              zip(keyed["worker_id"], keyed["points"], strict=True)]
    best_pattern = worth.groupby([keyed["worker_id"], keyed["pattern"]]).sum().groupby(
        level=0).max().sum()
    capacity_worth = sum(capacity.get(w, 0.0) * c for w, c in
                         zip(workers["worker_id"], workers["effective_points"], strict=True))
    bound = (sum(prices["household"].values()) + best_pattern + capacity_worth
             + reduced.clip(lower=0.0).sum())
    return _Relaxation(float(bound), reduced.clip(upper=0.0), choice, True)


def _rounded_allocation(pairs: pd.DataFrame, workers: pd.DataFrame, patterns: pd.DataFrame,
                        relaxation: _Relaxation) -> pd.Series:
    """A good first allocation: each worker takes its heaviest pattern, a transport LP fills the
    slots (integral: the slot matrix is totally unimodular), then a greedy pass fills the rest."""
    slots = patterns.merge(relaxation.pattern_choice, on=["worker_id", "pattern"])
    model = model_builder.Model()
    x = model.new_num_var_series(name="x", index=pairs.index, lower_bounds=0, upper_bounds=1)
    for _, members in pairs.groupby("household_id").groups.items():
        model.add(_lp_sum(x[members]) <= 1)
    by_slot = pairs.groupby(["worker_id", "points"]).groups
    for worker_id, size, count in zip(slots["worker_id"], slots["points"], slots["count"],
                                      strict=True):
        model.add(_lp_sum(x[by_slot[(worker_id, size)]]) <= int(count))
    by_worker = pairs.groupby("worker_id").groups
    for worker_id, capacity in zip(workers["worker_id"], workers["effective_points"], strict=True):
        members = by_worker[worker_id]
        model.add(_lp_sum(x[members], pairs.loc[members, "points"].tolist()) <= int(capacity))
    model.maximize(_lp_sum(x, pairs["value"].tolist()))
    solver = model_builder.Solver("glop")
    solved = solver.solve(model) == model_builder.SolveStatus.OPTIMAL
    start = solver.values(x) > 1 - 1e-6 if solved else pd.Series(False, index=pairs.index)
    return _greedy_fill(pairs, workers, start)


def _greedy_fill(pairs: pd.DataFrame, workers: pd.DataFrame, start: pd.Series) -> pd.Series:
    """Keep the feasible part of `start`, then add pairs by value while they fit."""
    free = dict(zip(workers["worker_id"], workers["effective_points"], strict=True))
    order = pairs.assign(first=start.astype("int64")).sort_values(
        ["first", "value", "rank", "worker_id"], ascending=[False, False, True, True], kind="stable"
    )
    placed, chosen = set(), []
    for index, household_id, worker_id, points in zip(
        order.index, order["household_id"], order["worker_id"], order["points"], strict=True
    ):
        if household_id in placed or free[worker_id] < points:
            continue
        placed.add(household_id)
        free[worker_id] -= points
        chosen.append(index)
    return pd.Series(pairs.index.isin(chosen), index=pairs.index)


def _scaled(values: pd.Series) -> list[int]:
    return [int(v) for v in np.rint(values.to_numpy(dtype="float64") * VALUE_SCALE)]


def _cp_sum(variables: pd.Series, coefficients: list | None = None):
    if coefficients is None:
        return cp_model.LinearExpr.sum(variables.tolist())
    return cp_model.LinearExpr.weighted_sum(variables.tolist(), coefficients)


@dataclass
class _Model:
    """The CP-SAT model of one component and its handles."""

    model: cp_model.CpModel
    x: pd.Series  # one boolean per pair
    value: Any  # scaled objective expression
    highest: Any = None  # highest utilisation (basis points), added by the balance stage


def _build_model(pairs: pd.DataFrame, workers: pd.DataFrame, patterns: pd.DataFrame,
                 upper_bound: float) -> _Model:
    """x per pair, at most one worker per household, capacity, pattern choice, objective bound."""
    model = cp_model.CpModel()
    x = model.new_bool_var_series(name="x", index=pairs.index)
    for _, members in pairs.groupby("household_id").groups.items():
        model.add_at_most_one(x[members].tolist())
    by_worker = pairs.groupby("worker_id").groups
    for worker_id, capacity in zip(workers["worker_id"], workers["effective_points"], strict=True):
        members = by_worker[worker_id]
        model.add(_cp_sum(x[members], pairs.loc[members, "points"].tolist()) <= int(capacity))
    keys, keyed = _keyed(patterns)
    choose = model.new_bool_var_series(name="pattern", index=keys.index)
    for _, members in keys.groupby("worker_id").groups.items():
        model.add_exactly_one(choose[members].tolist())
    by_slot = pairs.groupby(["worker_id", "points"]).groups
    for slot, members in keyed.groupby(["worker_id", "points"]):
        model.add(_cp_sum(x[by_slot[slot]])
                  <= _cp_sum(choose[members["key"]], members["count"].tolist()))
    value = _cp_sum(x, _scaled(pairs["value"]))
    if math.isfinite(upper_bound):
        # Each scaled coefficient may round up by 0.5, hence the allowance per household.
        slack = 0.5 * pairs["household_id"].nunique() + 1
        model.add(value <= int(math.floor(upper_bound * VALUE_SCALE * (1 + 1e-9) + slack)))
    return _Model(model, x, value)


def _add_highest_utilisation(built: _Model, pairs: pd.DataFrame, workers: pd.DataFrame) -> None:
    """highest >= utilisation (basis points) of every worker who can take a case here."""
    already = (UTILISATION_SCALE * workers["base_points"] // workers["capacity_points"]).max()
    built.highest = built.model.new_int_var(
        int(min(max(already, 0), UTILISATION_SCALE)), UTILISATION_SCALE, "highest")
    by_worker = pairs.groupby("worker_id").groups
    for worker_id, capacity, base in zip(workers["worker_id"], workers["capacity_points"],
                                         workers["base_points"], strict=True):
        members = by_worker[worker_id]
        load = _cp_sum(built.x[members],
                       (UTILISATION_SCALE * pairs.loc[members, "points"]).tolist())
        built.model.add(load + UTILISATION_SCALE * int(base) <= built.highest * int(capacity))


def _run(built: _Model, chosen: pd.Series, settings: AllocationSettings, *, seconds: float,
         gap: float) -> tuple[pd.Series, dict[str, Any]]:
    """One deterministic CP-SAT run from a hint; keeps `chosen` if nothing better is found."""
    started = time.perf_counter()
    built.model.clear_hints()
    for variable, flag in zip(built.x.tolist(), chosen.tolist(), strict=True):
        built.model.add_hint(variable, bool(flag))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1  # deterministic; parallelism is across components
    solver.parameters.random_seed = settings.seed
    solver.parameters.relative_gap_limit = gap
    solver.parameters.max_time_in_seconds = max(0.05, seconds)
    status = solver.solve(built.model)
    found = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    record = {"status": solver.status_name(status),
              "seconds": round(time.perf_counter() - started, 3)}
    if not found:
        return chosen, record | {"finished": False}
    objective, bound = solver.objective_value, solver.best_objective_bound
    finished = status == cp_model.OPTIMAL or abs(bound - objective) <= gap * max(
        1.0, abs(objective)) + 1e-9
    record |= {"objective": objective, "bound": bound, "finished": bool(finished)}
    if built.highest is not None:
        record["highest"] = int(solver.value(built.highest))
    return solver.boolean_values(built.x), record


def _chosen_value(pairs: pd.DataFrame, chosen: pd.Series) -> int:
    return int(np.asarray(_scaled(pairs["value"]), dtype="int64")[chosen.to_numpy()].sum())


def _shrink(component: _Component, settings: AllocationSettings):
    """Tighten, bound and shrink the component; returns kept pairs, workers, patterns, start, bound."""
    workers = _effective_workers(component.pairs, component.workers)
    patterns = _pattern_table(component.pairs, workers)
    relaxation = _relaxation(component.pairs, workers, patterns)
    if relaxation.optimal:
        start = _rounded_allocation(component.pairs, workers, patterns, relaxation)
    else:
        start = _greedy_fill(component.pairs, workers,
                             pd.Series(False, index=component.pairs.index))
    first = float(component.pairs.loc[start, "value"].sum())
    # Reduced-cost fixing: a pair whose forced inclusion caps the objective below the tolerance
    # band's floor cannot be in any allocation the later stages may return.
    floor = (1 - settings.relative_gap) * first - 1e-9 * max(1.0, relaxation.bound)
    keep = start | (relaxation.bound + relaxation.reduced_cost >= floor)
    kept = component.pairs.loc[keep]
    kept_workers = workers.loc[workers["worker_id"].isin(kept["worker_id"])].reset_index(drop=True)
    component.stats.update(pairs=len(component.pairs), pairs_kept=len(kept),
                           relaxation_bound=relaxation.bound, first_objective=first)
    return kept, kept_workers, _pattern_table(kept, kept_workers), start[keep], relaxation.bound


def _solve_component(component: _Component, settings: AllocationSettings) -> pd.Series:
    """The three stages on one component; returns the chosen mask over component.pairs."""
    began = time.perf_counter()
    deadline = began + component.budget_s

    def seconds(share: float) -> float:
        return max(0.05, (deadline - time.perf_counter()) * share)

    pairs, workers, patterns, chosen, upper = _shrink(component, settings)
    built = _build_model(pairs, workers, patterns, upper)
    built.model.maximize(built.value)
    chosen, first = _run(built, chosen, settings, seconds=seconds(STAGE_SHARES["value"]),
                         gap=settings.relative_gap)
    achieved = _chosen_value(pairs, chosen)
    bound = max(achieved, min(first.get("bound", math.inf), upper * VALUE_SCALE))
    stages = {"value": first}
    if math.isfinite(bound):
        built.model.add(built.value >= min(achieved,
                                           math.ceil((1 - settings.relative_gap) * bound)))
    _add_highest_utilisation(built, pairs, workers)
    built.model.minimize(built.highest)
    chosen, stages["balance"] = _run(built, chosen, settings,
                                     seconds=seconds(STAGE_SHARES["balance"]), gap=0.0)
    if "highest" in stages["balance"]:
        built.model.add(built.highest <= stages["balance"]["highest"])
        built.model.maximize(built.value)
        chosen, stages["refine"] = _run(built, chosen, settings,
                                        seconds=seconds(STAGE_SHARES["refine"]),
                                        gap=settings.relative_gap / 10)
    component.stats.update(stages=stages, bound_scaled=float(bound),
                           objective_scaled=_chosen_value(pairs, chosen),
                           seconds=round(time.perf_counter() - began, 3))
    return pd.Series(component.pairs.index.isin(pairs.index[chosen.to_numpy()]),
                     index=component.pairs.index)


def _budgets(sizes: pd.Series, settings: AllocationSettings) -> pd.Series:
    """Seconds per component: its share of the pairs, times the threads that run side by side."""
    parallel = min(settings.num_workers, len(sizes))
    share = sizes / max(1, sizes.sum()) * settings.time_limit_s * parallel
    return share.clip(upper=settings.time_limit_s)


def solve_allocation(
    pairs: pd.DataFrame, *, workers: pd.DataFrame, settings: AllocationSettings
) -> tuple[pd.Series, list[dict[str, Any]]]:
    """Choose pairs: at most one worker per household, within every worker's free points.

    pairs: household_id, worker_id, component, rank, points, value (one row per allowed pair).
    workers: worker_id, capacity_points, base_points (open + locked), free_points.
    Returns a boolean mask over pairs.index and one statistics record per component.
    """
    if pairs.empty:
        return pd.Series(False, index=pairs.index), []
    sizes = pairs.groupby("component").size().sort_values(ascending=False, kind="stable")
    budgets = _budgets(sizes, settings)
    components = [
        _Component(label, pairs.loc[pairs["component"] == label],
                   workers.loc[workers["worker_id"].isin(pairs.loc[pairs["component"] == label,
                                                                    "worker_id"])],
                   float(budgets[label]), {"component": label})
        for label in sizes.index
    ]
    with ThreadPoolExecutor(max_workers=settings.num_workers) as pool:
        masks = list(pool.map(lambda part: _solve_component(part, settings), components))
    chosen = pd.concat(masks).reindex(pairs.index, fill_value=False)
    return chosen, [part.stats for part in components]
