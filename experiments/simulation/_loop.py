"""The weekly loop of one policy on one seed's city: features, scores, allocation, a step."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

import experiments.simulation._features as live
from allocation import AllocationSettings
from experiments.city import CitySimulator
from experiments.simulation._outcomes import (
    WardIndex,
    ward_week_outcomes,
)
from experiments.simulation._policies import (
    POLICIES,
    WeekInputs,
    allocate,
    candidate_scores,
    seen_workers,
)
from experiments.simulation._settings import (
    ALLOCATION_NONE,
    STAGES,
    History,
    PolicyRun,
    SimulationSettings,
)
from features.contract import EVENT_TYPES


def _policy_rng(seed: int, policy: str) -> np.random.Generator:
    return np.random.default_rng([seed, 104_729, POLICIES.index(policy)])


def _refer(
    queue: np.ndarray,
    *,
    simulator: CitySimulator,
    hidden: pd.DataFrame,
    week: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """fcfs: the city's usual referral practice adds households to the queue (week referred)."""
    referral = np.array(simulator.dynamics.referral)[
        hidden["tier"].to_numpy(), hidden["acute"].to_numpy().astype(np.int64)
    ]
    chance = np.minimum(simulator.referral_scale * referral, 0.9)
    referred = (rng.random(len(queue)) < chance) & (queue < 0) & ~hidden["case_open"].to_numpy()
    return np.where(referred, week * len(queue) + np.arange(len(queue)), queue)


@dataclass
class _Loop:
    """One policy's copy of a city and what it has done so far (mutated week by week)."""

    policy: str
    simulator: CitySimulator
    index: WardIndex
    features: live.LiveHistory
    rng: np.random.Generator
    allocation: AllocationSettings
    locality: np.ndarray
    queue: np.ndarray
    counts: pd.Series
    seconds: dict[str, float]
    weekly: list[dict] = field(default_factory=list)
    outcomes: list[pd.DataFrame] = field(default_factory=list)
    opened: list[pd.DataFrame] = field(default_factory=list)


def _start_loop(history: History, *, policy: str, settings: SimulationSettings) -> _Loop:
    """A copy of the history's city on common random numbers, background referrals off."""
    simulator = copy.deepcopy(history.simulator)
    simulator.stop_background_referrals()
    simulator.use_common_random_numbers()
    return _Loop(
        policy=policy,
        simulator=simulator,
        index=history.index,
        features=history.features,
        rng=_policy_rng(history.seed, policy),
        allocation=AllocationSettings(
            top_n=settings.top_n,
            time_limit_s=settings.time_limit_s,
            num_workers=1,
            seed=history.seed,
        ),
        locality=simulator.households()["locality"].to_numpy(dtype=object),
        queue=np.full(len(history.index.household_ids), -1, dtype=np.int64),
        counts=pd.Series(0, index=list(EVENT_TYPES), dtype=np.int64),
        seconds=dict.fromkeys(STAGES, 0.0),
    )


def _decide(
    loop: _Loop, *, week: int, workers: pd.DataFrame, cases: pd.DataFrame, model, started
) -> tuple[pd.DataFrame, dict]:
    """This week's allocations under the loop's policy (features, scoring, allocation)."""
    simulator, clock = loop.simulator, time.perf_counter()
    as_of, hidden = simulator.today, simulator.hidden_state()
    loop.features, features = live.live_features(
        loop.features, as_of=as_of, cases=simulator.cases(as_at=as_of)
    )
    loop.seconds["features"] += time.perf_counter() - clock
    clock = time.perf_counter()
    if loop.policy == "fcfs":
        loop.queue = _refer(loop.queue, simulator=simulator, hidden=hidden, week=week, rng=loop.rng)
    raw = model.predict_raw(features) if loop.policy in ("product", "greedy") else None
    inputs = WeekInputs(
        household_ids=loop.index.household_ids.to_numpy(dtype=object),
        locality=loop.locality,
        eligible=~hidden["case_open"].to_numpy() & started[loop.index.ward_code],
        model_raw=raw,
        # fcfs and random use no risk: a flat one keeps only the skill match in the value.
        model_risk=model.calibrator_.predict(raw) if raw is not None else np.full(len(hidden), 0.5),
        true_benefit=simulator.case_benefit() if loop.policy == "oracle" else None,
        queue_order=loop.queue,
    )
    scores = candidate_scores(
        loop.policy,
        inputs,
        features=features,
        booster=model.booster_,
        as_of=as_of,
        top_n=loop.allocation.top_n,
        rng=loop.rng,
    )
    loop.seconds["scoring"] += time.perf_counter() - clock
    clock = time.perf_counter()
    decided = allocate(
        loop.policy, scores=scores, workers=workers, cases=cases, settings=loop.allocation
    )
    loop.seconds["allocation"] += time.perf_counter() - clock
    return decided


def _step(
    loop: _Loop,
    *,
    week: int,
    phase: str,
    workers: pd.DataFrame,
    cases: pd.DataFrame,
    allocations: pd.DataFrame,
    summary: dict,
) -> None:
    """Open the week's cases, step the city one week and record what happened."""
    clock, simulator, index = time.perf_counter(), loop.simulator, loop.index
    active = workers.loc[workers["active"]]
    open_cases = cases.loc[cases["closed_at"].isna() & cases["worker_id"].isin(active["worker_id"])]
    load = open_cases["complexity_points"].sum() + allocations["complexity_points"].sum()
    capacity = active["capacity_points"].sum()
    events = simulator.step(allocations)
    loop.queue[index.household_ids.get_indexer(allocations["household_id"])] = -1
    loop.opened.append(allocations.assign(week=week))
    loop.counts = loop.counts.add(events["event_type"].value_counts(), fill_value=0)
    loop.counts = loop.counts.astype(np.int64)
    loop.seconds["step" if phase == "run" else "follow_up"] += time.perf_counter() - clock
    clock = time.perf_counter()
    if loop.policy != "none" and phase == "run":
        loop.features = live.add_events(loop.features, events=events)
    loop.outcomes.append(
        ward_week_outcomes(
            index=index, events=events, hidden_state=simulator.hidden_state(), week=week
        )
    )
    loop.weekly.append(
        {
            "week": week,
            "phase": phase,
            "expected_crises": float(simulator.expected_crises()[-1]),
            "crises": len(simulator.crisis_weeks()[-1]),
            "new_cases": len(allocations),
            "points_assigned": int(allocations["complexity_points"].sum()),
            "utilisation": float(load / capacity) if capacity else 0.0,
            "solver_status": str(summary.get("status", "none")),
            "reproducible": bool(summary.get("reproducible", True)),
        }
    )
    loop.seconds["outcomes" if phase == "run" else "follow_up"] += time.perf_counter() - clock


def _week(
    loop: _Loop,
    *,
    week: int,
    phase: str,
    settings: SimulationSettings,
    model,
    early: np.ndarray,
) -> None:
    """One week: leavers' cases handed over, the policy's allocations (run weeks), a step."""
    loop.simulator.start_week()
    first_day = loop.simulator.today + timedelta(days=1)
    workers = seen_workers(
        loop.simulator.workers(as_at=first_day), capacity_share=settings.capacity_share
    )
    cases = loop.simulator.cases(as_at=first_day)
    started = early | (settings.rollout == "all") | (week >= settings.late_start_week)
    allocations, summary = ALLOCATION_NONE, {}
    if loop.policy != "none" and phase == "run":
        allocations, summary = _decide(
            loop, week=week, workers=workers, cases=cases, model=model, started=started
        )
    _step(
        loop,
        week=week,
        phase=phase,
        workers=workers,
        cases=cases,
        allocations=allocations,
        summary=summary,
    )


def run_policy(
    history: History,
    *,
    policy: str,
    settings: SimulationSettings,
    model,
    early_wards: tuple[str, ...],
) -> tuple[PolicyRun, dict[str, float]]:
    """Run one policy on a copy of the history's city for `weeks`, then `follow_up_weeks` with
    no new cases (opened cases run on).

    Returns the run and its seconds: wall per stage (STAGES), and CPU of the run weeks and of
    the follow-up (`cpu_run`, `cpu_follow_up`).
    """
    cpu = time.process_time()
    loop = _start_loop(history, policy=policy, settings=settings)
    early = np.isin(history.index.wards, early_wards)
    context = {"settings": settings, "model": model, "early": early}
    for week in range(settings.weeks):
        _week(loop, week=week, phase="run", **context)
    loop.seconds["cpu_run"], cpu = time.process_time() - cpu, time.process_time()
    # The exact expectation of the follow-up from the state the run ends in: no noise from
    # how long each case happens to stay open after the run.
    clock = time.perf_counter()
    crises_after_run = loop.simulator.expected_crises_ahead(horizon_weeks=settings.follow_up_weeks)
    loop.seconds["follow_up"] += time.perf_counter() - clock
    for week in range(settings.weeks, settings.weeks + settings.follow_up_weeks):
        _week(loop, week=week, phase="follow_up", **context)
    loop.seconds["cpu_follow_up"] = time.process_time() - cpu
    opened = pd.concat(loop.opened, ignore_index=True)
    run = PolicyRun(
        policy=policy,
        seed=history.seed,
        weekly=pd.DataFrame(loop.weekly),
        events=loop.counts,
        outcomes=pd.concat(loop.outcomes, ignore_index=True),
        households_helped=int(opened["household_id"].nunique()),
        cases_opened=opened,
        expected_crises_after_run=float(crises_after_run.sum()),
    )
    return run, loop.seconds
