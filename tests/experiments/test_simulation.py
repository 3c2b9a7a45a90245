"""The policy simulation: the oracle, the baseline, costs, capacity, roll-out, determinism,
common random numbers, the exact expectations and the incremental features.

Two small cities (3,000 households, 104 weeks of history) are run once per module: each seed's
history, one model trained on seed 0's, and a 4-week simulation with its 26-week follow-up under
the product, the oracle and no new cases. Most tests read that run; a few re-run a piece of it.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

import experiments.simulation._features as live
from experiments.city._draws import KeyedDraws
from experiments.simulation import (
    SimulationSettings,
    city_tables,
    cost_table,
    per_case_check,
    policy_table,
    run_history,
    run_policy,
    simulate,
    train_simulation_model,
)
from experiments.simulation._outcomes import rollout_wards
from features.build import features_as_of, prepare_tables
from models import TrainSettings

SMALL = SimulationSettings(
    weeks=4,
    households=3000,
    seeds=(0, 1),
    policies=("product", "oracle", "none"),
    history_weeks=78,
    pre_weeks=8,
    follow_up_weeks=26,
    top_n=60,
    time_limit_s=1.0,
)


@pytest.fixture(scope="module")
def histories():
    return {seed: run_history(SMALL, seed=seed) for seed in SMALL.seeds}


@pytest.fixture(scope="module")
def model(histories):
    # Fewer trees and as-of dates than the product's training: a model, quicker to train.
    light = TrainSettings(folds=1, history_dates=2, n_estimators=100)
    return train_simulation_model(histories[0], train_settings=light)[0]


@pytest.fixture(scope="module")
def result(histories, model):
    return simulate(SMALL, model=model, histories=histories)


@pytest.fixture(scope="module")
def product_run(histories, model):
    """The product on seed 0 again, without the follow-up."""
    settings = replace(SMALL, follow_up_weeks=0)
    return run_policy(
        histories[0], policy="product", settings=settings, model=model, early_wards=()
    )[0]


def _runs(result, metric: str) -> pd.Series:
    return result.runs.set_index(["policy", "seed"])[metric]


def test_oracle_prevents_at_least_as_much_as_the_product_on_every_seed(result):
    # Paired on each seed's city with common random numbers; the measure is the run's expected
    # crises plus the exact expectation of the 26 follow-up weeks (docs/impact.md).
    prevented = _runs(result, "expected_crises_prevented")
    for seed in SMALL.seeds:
        assert prevented["product", seed] > 0
        assert prevented["oracle", seed] >= prevented["product", seed]
    assert (_runs(result, "weeks_not_reproducible") == 0).all()


def test_no_key_workers_prevents_nothing(histories, model):
    settings = replace(SMALL, seeds=(0,), weeks=2, follow_up_weeks=3, capacity_share=0.0)
    nobody = simulate(settings, model=model, histories=histories).runs.set_index("policy")
    for policy in ("product", "oracle"):
        assert nobody.loc[policy, "cases_opened"] == 0
        assert nobody.loc[policy, "crises_prevented"] == 0
        assert nobody.loc[policy, "expected_crises_prevented"] == 0.0
        assert nobody.loc[policy, "cost_avoided"] == 0.0


def test_costs_add_up_across_agencies(result):
    by_run = result.costs.groupby(["policy", "seed"])["cost_avoided"].sum()
    runs = _runs(result, "cost_avoided")
    assert np.allclose(by_run.reindex(runs.index).to_numpy(), runs.to_numpy())
    table = cost_table(result).groupby("policy")["cost_avoided"].sum()
    summary = policy_table(result).set_index("policy")["cost_avoided"]
    assert np.allclose(table.reindex(summary.index).to_numpy(), summary.to_numpy())
    assert (result.costs.loc[result.costs["policy"] == "none", "cost_avoided"] == 0).all()
    check = per_case_check(result)
    product = result.runs.loc[result.runs["policy"] == "product"]
    per_case = product["cost_avoided"] / product["cases_opened"]
    assert check["per_case"] == pytest.approx(per_case.mean())
    assert check["expected_per_case"] > 0
    assert check["position"] in ("below the band", "within the band", "above the band")


def test_capacity_is_never_exceeded_and_cases_are_opened_only_in_the_run(result):
    weekly = result.weekly
    assert (weekly["utilisation"] <= 1.0 + 1e-12).all()
    opened = weekly.groupby("policy")["new_cases"].sum()
    assert opened["none"] == 0 and opened["product"] > 0 and opened["oracle"] > 0
    assert (weekly.loc[weekly["phase"] == "follow_up", "new_cases"] == 0).all()
    assert len(weekly) == len(SMALL.seeds) * 3 * (SMALL.weeks + SMALL.follow_up_weeks)
    assert (_runs(result, "households_helped") <= _runs(result, "cases_opened")).all()


def test_same_seed_same_results(result, product_run):
    first = result.weekly.query("policy == 'product' and seed == 0 and phase == 'run'")
    pd.testing.assert_frame_equal(
        product_run.weekly, first.drop(columns=["policy", "seed"]).reset_index(drop=True)
    )
    outcomes = result.outcomes.query("policy == 'product' and seed == 0 and 0 <= week < 4")
    pd.testing.assert_frame_equal(
        product_run.outcomes, outcomes.drop(columns=["policy", "seed"]).reset_index(drop=True)
    )


def _in_wards(run, *, history, wards) -> np.ndarray:
    rows = history.index.household_ids.get_indexer(run.cases_opened["household_id"])
    return np.isin(history.index.wards[history.index.ward_code[rows]], wards)


def test_staggered_rollout_holds_late_wards_back(histories, model, product_run):
    history = histories[0]
    settings = replace(SMALL, follow_up_weeks=0, rollout="staggered", late_start_week=2)
    early = rollout_wards(history.index, seed=0)
    cases_before = history.simulator.cases()
    run, _ = run_policy(
        history, policy="product", settings=settings, model=model, early_wards=early
    )
    before_start = run.cases_opened["week"].to_numpy() < settings.late_start_week
    assert before_start.any() and _in_wards(run, history=history, wards=early)[before_start].all()
    # Without the roll-out the same weeks gave late wards cases: the hold-back is what bites.
    everywhere = product_run.cases_opened["week"].to_numpy() < settings.late_start_week
    assert not _in_wards(product_run, history=history, wards=early)[everywhere].all()
    pd.testing.assert_frame_equal(history.simulator.cases(), cases_before)  # history untouched


def _stepped(history, *, allocations: pd.DataFrame, weeks: int, keyed: bool) -> pd.DataFrame:
    simulator = copy.deepcopy(history.simulator)
    simulator.stop_background_referrals()
    if keyed:
        simulator.use_common_random_numbers()
    frames = [simulator.step(allocations)] + [simulator.step() for _ in range(weeks - 1)]
    return pd.concat(frames, ignore_index=True).drop(columns="event_id")


def test_common_random_numbers_policies_differ_only_where_their_cases_differ(histories):
    history = histories[1]
    simulator = history.simulator
    hidden, workers = simulator.hidden_state(), simulator.workers()
    cases = simulator.cases()
    # Three households in crisis-prone states get a case in one copy and not in the other.
    chosen = hidden.loc[~hidden["case_open"]].nlargest(3, "p_escalation")["household_id"]
    load = cases.loc[cases["closed_at"].isna()].groupby("worker_id")["complexity_points"].sum()
    room = workers.set_index("worker_id")["capacity_points"].sub(load, fill_value=0)
    active = workers.loc[workers["active"], "worker_id"]
    worker = room.reindex(active).idxmax()
    allocations = pd.DataFrame(
        {"household_id": chosen.to_numpy(), "worker_id": worker, "complexity_points": 8}
    )
    touched = set(chosen) | set(cases["household_id"])  # leavers' cases move by workers' room
    for keyed in (True, False):
        treated = _stepped(history, allocations=allocations, weeks=8, keyed=keyed)
        untreated = _stepped(history, allocations=allocations.iloc[:0], weeks=8, keyed=keyed)
        others = [
            frame.loc[~frame["household_id"].isin(touched)]
            .sort_values(list(frame.columns))
            .reset_index(drop=True)
            for frame in (treated, untreated)
        ]
        same = len(others[0]) == len(others[1]) and others[0].equals(others[1])
        # Keyed draws: households no policy touched live exactly the same weeks; sequential
        # draws shift everyone's luck as soon as the case households' events differ.
        assert same == keyed


def test_keyed_draws_depend_only_on_their_key_and_have_the_right_distribution():
    draws = KeyedDraws(seed=7, week=3)
    units = np.arange(200_000)
    uniform = draws.random(units, stream="rent_missed")
    assert np.array_equal(draws.random(units[::7], stream="rent_missed"), uniform[::7])
    assert not np.array_equal(draws.random(units, stream="rent_amount"), uniform)
    assert not np.array_equal(
        KeyedDraws(seed=7, week=4).random(units, stream="rent_missed"), uniform
    )
    assert abs(uniform.mean() - 0.5) < 0.005 and abs(uniform.var() - 1 / 12) < 0.002
    rates = np.full(len(units), 0.7)
    counts = draws.poisson(rates, stream="incident_count")
    assert abs(counts.mean() - 0.7) < 0.01 and abs(counts.var() - 0.7) < 0.02
    # A higher rate never gives fewer events from the same uniform (counts are coupled).
    assert (draws.poisson(rates * 1.2, stream="incident_count") >= counts).all()
    missed = draws.binomial(10, np.full(len(units), 0.1), units, stream="school_missed")
    assert abs(missed.mean() - 1.0) < 0.02 and abs(missed.var() - 0.9) < 0.03
    assert missed.max() <= 10


def test_expected_crises_ahead_are_exact_and_case_benefit_is_their_difference(histories):
    simulator = copy.deepcopy(histories[0].simulator)
    simulator.stop_background_referrals()
    hidden = simulator.hidden_state()
    # One week ahead the expected count is this week's crisis probability; over 26 weeks it is at
    # least the chance of one or more crises (p_escalation) and at least the one-week figure.
    one_week = simulator.expected_crises_ahead(horizon_weeks=1)
    assert np.allclose(one_week, hidden["crisis_probability_week"])
    ahead = simulator.expected_crises_ahead()
    assert (ahead >= hidden["p_escalation"] - 1e-12).all() and (ahead > one_week).all()
    free = ~hidden["case_open"].to_numpy()
    benefit = simulator.case_benefit(horizon_weeks=1)
    expected = hidden["crisis_probability_week"].to_numpy() * simulator.dynamics.case_effect
    assert np.allclose(benefit[free], expected[free]) and (benefit[~free] == 0).all()
    benefit = simulator.case_benefit()
    assert (benefit >= 0).all() and (benefit[free] > benefit[free].max() / 1e6).mean() > 0.99


def test_incremental_features_equal_features_from_the_full_history(histories):
    history = histories[0]
    simulator = copy.deepcopy(history.simulator)
    state = history.features
    for _ in range(6):
        state = live.add_events(state, events=simulator.step())
    as_of = simulator.today
    tables = city_tables(simulator)
    state, incremental = live.live_features(
        state, as_of=as_of, cases=tables["cases"], compact_every_days=1
    )
    full = features_as_of(prepare_tables(tables), as_of=pd.Timestamp(as_of))
    assert len(state.prepared.encoded_events) < len(prepare_tables(tables).encoded_events)
    pd.testing.assert_frame_equal(incremental, full)
    assert as_of == SMALL.end + timedelta(weeks=6)
