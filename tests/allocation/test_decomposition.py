"""Solving each component on its own gives the objective of one joint model over all pairs, with
and without neighbour rules, and both match an independent MILP (scipy's HiGHS on the plain
per-pair formulation)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_matrix

from allocation import AllocationSettings, _stage_value, random_instance
from allocation._prepare import prepare
from allocation._solver import solve_allocation

NEIGHBOURS = {
    "none": {},
    "two-way": {"Tunstall": ["Burslem"], "Burslem": ["Tunstall"], "Longton": ["Fenton"]},
    "chain": {"Hanley": ["Stoke"], "Stoke": ["Fenton"], "Fenton": ["Longton"]},
}


def prepared_week(seed: int, neighbours: dict):
    instance = random_instance(seed=seed, households=4000, workers=24)
    settings = AllocationSettings(top_n=70, time_limit_s=10, neighbours=neighbours)
    return prepare(
        scores=instance.scores, workers=instance.workers, cases=instance.cases, settings=settings
    ), settings


def per_pair_milp(pairs, free_points: dict) -> float:
    """max sum value x, x binary per pair, one worker per household, free points per worker."""
    households = pairs["household_id"].factorize()[0]
    workers, names = pairs["worker_id"].factorize()
    columns = np.arange(len(pairs))
    one_each = csr_matrix((np.ones(len(pairs)), (households, columns)))
    loads = csr_matrix((pairs["points"].to_numpy(dtype=float), (workers, columns)))
    result = milp(
        -pairs["value"].to_numpy(),
        constraints=[
            LinearConstraint(one_each, 0, 1),
            LinearConstraint(loads, 0, [free_points[name] for name in names]),
        ],
        integrality=np.ones(len(pairs)),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 1e-9},
    )
    assert result.success
    return -result.fun


@pytest.mark.parametrize("neighbours", sorted(NEIGHBOURS))
@pytest.mark.parametrize("seed", [1, 2])
def test_components_reach_the_joint_optimum(seed, neighbours):
    prepared, settings = prepared_week(seed, NEIGHBOURS[neighbours])
    pairs, workers = prepared.pairs, prepared.workers
    split, parts = solve_allocation(pairs, workers=workers, settings=settings)
    joint, whole = solve_allocation(
        pairs.assign(component="all"), workers=workers, settings=settings
    )
    assert len(whole) == 1
    assert len(parts) == pairs["component"].nunique()
    if neighbours == "none":
        assert len(parts) == pairs["locality"].nunique()
    else:
        assert len(parts) < pairs["locality"].nunique()
    free = dict(zip(workers["worker_id"], workers["free_points"], strict=True))
    best = per_pair_milp(pairs, free)
    for chosen in (split, joint):
        objective = float(pairs.loc[chosen, "value"].sum())
        assert objective <= best + 1e-9
        assert objective >= (1 - 2e-5) * best
        # Every rule the solver is responsible for: one worker each, within free points.
        assert pairs.loc[chosen, "household_id"].is_unique
        load = pairs.loc[chosen].groupby("worker_id")["points"].sum()
        assert all(points <= free[worker_id] for worker_id, points in load.items())
    bound = sum(part["bound_scaled"] for part in parts) / 1e6
    assert bound >= best - 1e-9
    assert (bound - best) / bound <= settings.relative_gap


def test_neighbour_rules_merge_localities_into_one_component():
    prepared, _ = prepared_week(4, NEIGHBOURS["chain"])
    labels = prepared.pairs.groupby("locality")["component"].first()
    assert labels["Hanley"] == labels["Stoke"] == labels["Fenton"] == labels["Longton"]
    assert labels["Tunstall"] != labels["Hanley"]
    # A household still only goes to its own or a listed neighbour's workers.
    allowed = {(home, home) for home in labels.index} | {
        (home, other) for home, others in NEIGHBOURS["chain"].items() for other in others
    }
    used = set(zip(prepared.pairs["locality"], prepared.pairs["worker_locality"], strict=True))
    assert used <= allowed


def test_without_a_highs_proof_the_relaxation_bound_is_used(monkeypatch):
    prepared, settings = prepared_week(2, {})
    pairs, workers = prepared.pairs, prepared.workers
    solve = _stage_value.run_highs

    def unproved(model, settings, *, wall):
        return dataclasses.replace(solve(model, settings, wall=wall), status="X", proved=False)

    monkeypatch.setattr(_stage_value, "run_highs", unproved)
    chosen, parts = solve_allocation(pairs, workers=workers, settings=settings)
    free = dict(zip(workers["worker_id"], workers["free_points"], strict=True))
    best = per_pair_milp(pairs, free)
    bound = sum(part["bound_scaled"] for part in parts) / 1e6
    assert all(part["stages"]["value"]["status"] == "X" for part in parts)
    # The pattern relaxation is a valid bound, never below the optimum, and the allocation found
    # is still HiGHS' (feasible, within the free points).
    assert bound >= best - 1e-9
    objective = float(pairs.loc[chosen, "value"].sum())
    assert (1 - 2e-5) * best <= objective <= best + 1e-9
    load = pairs.loc[chosen].groupby("worker_id")["points"].sum()
    assert all(points <= free[worker_id] for worker_id, points in load.items())
