"""Policy simulation: the synthetic city run forward week by week under an allocation policy.

For each seed a city is run for `history_weeks` under its usual referral practice (what the
model is trained on and what the difference-in-differences calls "before"). From that moment each
policy gets an identical copy of the city (same hidden state) whose draws are common random
numbers (each a function of seed, week and household: policies are compared on the same
households and the same luck), background referrals stop, and every week:

1. features as of the last day simulated (incremental: new events are encoded once),
2. the policy orders the households with no open case (model risk, the true benefit of a case,
   referral queue or a lottery) and the first `top_n` get their needs from the model's reasons,
3. the product's allocation rules place them (`propose_allocation` for the optimiser policies,
   `greedy_allocation` for the others) on the workers' free points,
4. the city steps one week with those cases opened on its first day.

Then `follow_up_weeks` without new allocations: opened cases run on. Cases close as the city's
dynamics say (docs/synthetic-city.md); an open case lowers the crisis probability by
`case_effect`. "none" opens no new case and is the baseline every other policy is measured
against. See docs/impact.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from experiments.simulation._costs import cost_avoided_by_agency, load_unit_costs
from experiments.simulation._history import run_history, train_simulation_model
from experiments.simulation._loop import run_policy
from experiments.simulation._outcomes import (
    rollout_wards,
)
from experiments.simulation._settings import (
    History,
    PolicyRun,
    Progress,
    SimulationResult,
    SimulationSettings,
)
from features.contract import EVENT_TYPES


def _mean_crisis_cost(baseline: PolicyRun, *, unit_costs: pd.DataFrame) -> float:
    """GBP per crisis at the baseline's mix of crisis types (all agencies)."""
    crisis_types = [name for name, kind in EVENT_TYPES.items() if kind.crisis]
    crisis_costs = unit_costs.loc[crisis_types].sum(axis=1)
    baseline_crises = baseline.events.reindex(crisis_types, fill_value=0)
    return float((baseline_crises * crisis_costs).sum() / max(int(baseline_crises.sum()), 1))


def _run_row(run: PolicyRun, baseline: PolicyRun, *, unit_costs: pd.DataFrame) -> tuple[dict, dict]:
    """Per-seed metrics of a run against the same seed's baseline, and its cost by agency.

    Crises, events and costs count the run and its follow-up (a case's benefit outlives the week
    it was opened in); utilisation is over the run weeks, when allocations are made.
    """
    by_agency = cost_avoided_by_agency(
        baseline_events=baseline.events, policy_events=run.events, unit_costs=unit_costs
    )
    cases_opened, total = int(run.weekly["new_cases"].sum()), float(by_agency.sum())
    in_run = (run.weekly["phase"] == "run").to_numpy()
    weekly_expected = baseline.weekly["expected_crises"] - run.weekly["expected_crises"]
    expected = float(weekly_expected[in_run].sum()) + (
        baseline.expected_crises_after_run - run.expected_crises_after_run
    )
    expected_cost = expected * _mean_crisis_cost(baseline, unit_costs=unit_costs)
    row = {
        "policy": run.policy,
        "seed": run.seed,
        "crises": int(run.weekly["crises"].sum()),
        "expected_crises": float(run.weekly.loc[in_run, "expected_crises"].sum())
        + run.expected_crises_after_run,
        "crises_prevented": int(baseline.weekly["crises"].sum() - run.weekly["crises"].sum()),
        "expected_crises_prevented": expected,
        "expected_crises_prevented_in_run": float(weekly_expected[in_run].sum()),
        "households_helped": run.households_helped,
        "cases_opened": cases_opened,
        "utilisation": float(run.weekly.loc[in_run, "utilisation"].mean()),
        "cost_avoided": total,
        "cost_avoided_per_case": total / cases_opened if cases_opened else float("nan"),
        "expected_crisis_cost_avoided": expected_cost,
        "expected_crisis_cost_avoided_per_case": (
            expected_cost / cases_opened if cases_opened else float("nan")
        ),
        "weeks_not_reproducible": int((~run.weekly["reproducible"]).sum()),
    }
    return row, by_agency.to_dict()


def simulate(
    settings: SimulationSettings,
    *,
    model=None,
    model_info: dict | None = None,
    cache_dir: Path | None = None,
    unit_costs: pd.DataFrame | None = None,
    progress: Progress | None = None,
    histories: dict[int, History] | None = None,
) -> SimulationResult:
    """Every policy on every seed (policies share each seed's city: paired comparisons).

    Without a model, one is trained on the first seed's history (and cached in cache_dir) and
    used for every seed, as a council would use one model across years. `histories` (by seed)
    reuses seeds' histories already run with the same history settings (they are not changed).
    """
    say = progress or (lambda message: None)
    unit_costs = load_unit_costs() if unit_costs is None else unit_costs
    early_wards: tuple[str, ...] = ()
    rows, costs, events, weekly, outcomes = [], [], [], [], []
    info = dict(model_info or {})
    for seed in settings.seeds:
        history = _history_of(seed, settings=settings, histories=histories or {}, say=say)
        if model is None and set(settings.run_policies()) != {"none"}:
            say("training the escalation model on the history")
            model, info = train_simulation_model(history, cache_dir=cache_dir)
        if settings.rollout == "staggered":
            early_wards = rollout_wards(history.index, seed=settings.rollout_seed)
        runs = _run_policies(
            history, settings=settings, model=model, early_wards=early_wards, info=info, say=say
        )
        for policy, run in runs.items():
            row, by_agency = _run_row(run, runs["none"], unit_costs=unit_costs)
            rows.append(row)
            costs += [
                {"policy": policy, "seed": seed, "agency": agency, "cost_avoided": value}
                for agency, value in by_agency.items()
            ]
            events.append(
                run.events.rename("events")
                .rename_axis("event_type")
                .reset_index()
                .assign(policy=policy, seed=seed)
            )
            weekly.append(run.weekly.assign(policy=policy, seed=seed))
            outcomes.append(
                pd.concat([history.pre_outcomes, run.outcomes], ignore_index=True).assign(
                    policy=policy, seed=seed
                )
            )
    return SimulationResult(
        settings=settings,
        runs=pd.DataFrame(rows),
        costs=pd.DataFrame(costs),
        events=pd.concat(events, ignore_index=True),
        weekly=pd.concat(weekly, ignore_index=True),
        outcomes=pd.concat(outcomes, ignore_index=True),
        early_wards=early_wards,
        model=info,
    )


def _history_of(
    seed: int, *, settings: SimulationSettings, histories: dict[int, History], say: Progress
) -> History:
    """The seed's history: the one given (checked against the settings) or a new run."""
    history = histories.get(seed)
    if history is None:
        say(f"seed {seed}: {settings.history_weeks} weeks of history")
        return run_history(settings, seed=seed)
    if history.key != settings.history_key() or history.seed != seed:
        raise ValueError(f"the history given for seed {seed} was run with other settings")
    return history


def _run_policies(
    history: History,
    *,
    settings: SimulationSettings,
    model,
    early_wards: tuple[str, ...],
    info: dict,
    say: Progress,
) -> dict[str, PolicyRun]:
    """Every policy on one seed's city; each run's stage seconds go into `info`."""
    runs = {}
    for policy in settings.run_policies():
        started = time.perf_counter()
        runs[policy], seconds = run_policy(
            history, policy=policy, settings=settings, model=model, early_wards=early_wards
        )
        say(f"seed {history.seed}: {policy} in {time.perf_counter() - started:.1f} s")
        info.setdefault("stage_seconds", {})[f"{policy}/{history.seed}"] = seconds
    return runs
