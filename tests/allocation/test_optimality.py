"""The optimiser against an independent brute force, and every hard rule on random instances.

The reference here re-derives candidates, points, eligibility and values from the issue's rules
with its own code (nothing from allocation._*), then finds the best allocation by exhaustive
enumeration (tiny instances) or scipy.optimize.milp (small ones).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from allocation import AllocationSettings, greedy_allocation, propose_allocation
from features.contract import SKILLS, table_dtypes

LOCALITIES = ("Tunstall", "Longton")
SETTINGS = AllocationSettings(top_n=6, time_limit_s=5)


def make_instance(seed: int, *, households: int, workers: int, cases: int = 3):
    """A small random week: scores, workers and cases in canonical form."""
    rng = np.random.default_rng(seed)
    risk = rng.uniform(0.05, 0.9, size=households).round(4)
    order = np.argsort(-risk, kind="stable")
    rank = np.empty(households, dtype="int64")
    rank[order] = np.arange(1, households + 1)
    needs = [
        ";".join(
            sorted(rng.choice(SKILLS, size=rng.integers(0, 4), replace=False), key=SKILLS.index)
        )
        for _ in range(households)
    ]
    scores = pd.DataFrame(
        {
            "household_id": [f"H{n:02d}" for n in range(households)],
            "locality": rng.choice(LOCALITIES, size=households),
            "risk": risk,
            "rank": rank,
            "needs": needs,
        }
    ).astype({"household_id": "str", "locality": "str", "needs": "str"})
    staff = pd.DataFrame(
        {
            "worker_id": [f"W{n}" for n in range(workers)],
            "locality": rng.choice(LOCALITIES, size=workers),
            "skills": [
                ";".join(
                    sorted(
                        rng.choice(SKILLS, size=rng.integers(1, 5), replace=False), key=SKILLS.index
                    )
                )
                for _ in range(workers)
            ],
            "capacity_points": rng.choice([30, 40, 60], size=workers),
            "active": rng.random(workers) > 0.2,
        }
    ).astype(table_dtypes("workers"))
    holders = rng.choice(households, size=cases, replace=False)
    open_cases = pd.DataFrame(
        {
            "case_id": [f"C{n}" for n in range(cases)],
            "household_id": scores["household_id"].to_numpy()[holders],
            "worker_id": rng.choice(staff["worker_id"], size=cases),
            "opened_at": pd.Timestamp("2024-06-01"),
            "closed_at": pd.NaT,
            "complexity_points": rng.choice([8, 12, 16, 24], size=cases),
            "close_reason": np.nan,
        }
    ).astype(table_dtypes("cases"))
    return scores, staff, open_cases


def reference_problem(scores, workers, cases, settings):
    """Candidates, per-pair values and free points, straight from the issue's rules."""
    open_cases = cases.loc[cases["closed_at"].isna()]
    free = workers.set_index("worker_id")["capacity_points"] - open_cases.groupby("worker_id")[
        "complexity_points"
    ].sum().reindex(workers["worker_id"]).fillna(0)
    waiting = scores.loc[~scores["household_id"].isin(open_cases["household_id"])]
    candidates = waiting.sort_values(["rank", "household_id"]).head(settings.top_n)
    options = {}
    for household in candidates.itertuples():
        needs = set(filter(None, household.needs.split(";")))
        points = min(
            settings.base_points + settings.points_per_need * len(needs), settings.max_points
        )
        for worker in workers.itertuples():
            if not worker.active or worker.locality != household.locality:
                continue
            skills = set(worker.skills.split(";"))
            if "domestic_abuse" in needs and "domestic_abuse" not in skills:
                continue
            value = household.risk * (
                1 + settings.skill_bonus * len(needs & skills) / max(1, len(needs))
            )
            options[(household.household_id, worker.worker_id)] = (points, value)
    return candidates, options, free.to_dict()


def brute_force(options: dict, free: dict) -> float:
    households = sorted({h for h, _ in options})
    choices = [[None] + [w for (h2, w) in options if h2 == h] for h in households]
    best = 0.0
    for picks in itertools.product(*choices):
        load: dict[str, int] = {}
        total = 0.0
        for household, worker in zip(households, picks, strict=True):
            if worker is not None:
                points, value = options[(household, worker)]
                load[worker] = load.get(worker, 0) + points
                total += value
        if all(points <= free[worker] for worker, points in load.items()):
            best = max(best, total)
    return best


def milp_optimum(options: dict, free: dict) -> float:
    keys = list(options)
    households = sorted({h for h, _ in keys})
    workers = sorted({w for _, w in keys})
    one_each = np.array(
        [[1.0 if h == household else 0.0 for h, _ in keys] for household in households]
    )
    loads = np.array(
        [[options[(h, w)][0] if w == worker else 0.0 for h, w in keys] for worker in workers]
    )
    result = milp(
        -np.array([options[key][1] for key in keys]),
        constraints=[
            LinearConstraint(one_each, 0, 1),
            LinearConstraint(loads, 0, [max(0, free[w]) for w in workers]),
        ],
        integrality=np.ones(len(keys)),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 1e-9},
    )
    return -result.fun if options else 0.0


def assert_rules_hold(proposal, scores, workers, cases) -> None:
    """Every hard rule of the issue, checked on the proposal itself."""
    rows = proposal.rows
    assigned = rows.loc[rows["status"] == "assigned"].merge(
        workers.rename(columns={"locality": "worker_locality"}), on="worker_id"
    )
    open_cases = cases.loc[cases["closed_at"].isna()]
    # At most one worker per candidate, no candidate with an open case.
    assert rows["household_id"].is_unique
    assert not rows["household_id"].isin(open_cases["household_id"]).any()
    # Only active workers, own locality, safeguarding.
    assert assigned["active"].all()
    assert (assigned["locality"] == assigned["worker_locality"]).all()
    needs_da = assigned["needs"].str.contains("domestic_abuse")
    assert assigned.loc[needs_da, "skills"].str.contains("domestic_abuse").all()
    # Capacity: open load plus new points never above capacity (for anyone given new work).
    open_load = open_cases.groupby("worker_id")["complexity_points"].sum()
    new_load = assigned.groupby("worker_id")["points"].sum()
    for worker_id, points in new_load.items():
        capacity = int(workers.set_index("worker_id").at[worker_id, "capacity_points"])
        assert open_load.get(worker_id, 0) + points <= capacity
    # Open cases listed as continuing, untouched.
    assert set(proposal.continuing["case_id"]) == set(open_cases["case_id"])
    pd.testing.assert_series_equal(
        proposal.continuing.set_index("case_id")["worker_id"].sort_index(),
        open_cases.set_index("case_id")["worker_id"].sort_index(),
        check_names=False,
    )
    # Waitlisted rows carry no worker and no value; values match the objective.
    waiting = rows.loc[rows["status"] == "waitlisted"]
    assert waiting["worker_id"].isna().all() and (waiting["value"] == 0).all()
    assert proposal.summary["objective"] == pytest.approx(rows["value"].sum())


@pytest.mark.parametrize("seed", range(12))
def test_matches_exhaustive_enumeration_on_tiny_instances(seed):
    scores, workers, cases = make_instance(seed, households=9, workers=3)
    proposal = propose_allocation(scores=scores, workers=workers, cases=cases, settings=SETTINGS)
    _, options, free = reference_problem(scores, workers, cases, SETTINGS)
    best = brute_force(options, free)
    objective = proposal.summary["objective"]
    assert objective <= best + 1e-9
    assert objective >= (1 - SETTINGS.relative_gap) * best - 1e-9
    assert proposal.summary["best_bound"] >= best - 1e-6
    assert_rules_hold(proposal, scores, workers, cases)


@pytest.mark.parametrize("seed", range(8))
def test_matches_milp_on_small_instances(seed):
    settings = AllocationSettings(top_n=25, time_limit_s=5)
    scores, workers, cases = make_instance(100 + seed, households=40, workers=7, cases=8)
    proposal = propose_allocation(scores=scores, workers=workers, cases=cases, settings=settings)
    candidates, options, free = reference_problem(scores, workers, cases, settings)
    best = milp_optimum(options, free)
    assert set(proposal.rows["household_id"]) == set(candidates["household_id"])
    assert proposal.summary["objective"] == pytest.approx(best, rel=settings.relative_gap)
    assert proposal.summary["objective"] <= best + 1e-9
    assert proposal.summary["gap"] <= settings.relative_gap + 1e-9
    assert_rules_hold(proposal, scores, workers, cases)


@pytest.mark.parametrize("seed", range(6))
def test_optimiser_never_worse_than_the_by_hand_rule(seed):
    settings = AllocationSettings(top_n=25, time_limit_s=5)
    scores, workers, cases = make_instance(200 + seed, households=40, workers=6, cases=6)
    inputs = {"scores": scores, "workers": workers, "cases": cases, "settings": settings}
    optimised = propose_allocation(**inputs).summary["objective"]
    by_hand = greedy_allocation(**inputs)
    assert optimised >= (1 - settings.relative_gap) * by_hand.summary["objective"]
    assert_rules_hold(by_hand, scores, workers, cases)


def test_inactive_workers_get_nothing_and_keep_their_open_cases():
    scores, workers, cases = make_instance(7, households=30, workers=5, cases=6)
    workers = workers.assign(active=[False, True, True, False, True])
    proposal = propose_allocation(
        scores=scores,
        workers=workers,
        cases=cases,
        settings=AllocationSettings(top_n=20, time_limit_s=5),
    )
    inactive = set(workers.loc[~workers["active"], "worker_id"])
    assert not proposal.rows["worker_id"].isin(inactive).any()
    summary = proposal.workers.set_index("worker_id")
    assert (summary.loc[sorted(inactive), "new_cases"] == 0).all()
    held = cases.loc[cases["worker_id"].isin(inactive), "case_id"]
    assert set(held) <= set(proposal.continuing["case_id"])
