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

import copy
import hashlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from allocation import AllocationSettings
from experiments import _simulation_features as live
from experiments._simulation_costs import cost_avoided_by_agency, load_unit_costs
from experiments._simulation_policies import (
    POLICIES,
    POLICY_NAMES,
    WeekInputs,
    allocate,
    candidate_scores,
    check_policy,
    seen_workers,
)
from experiments.city import CitySimulator
from experiments.outcomes import WardIndex, rollout_wards, ward_index, ward_week_outcomes
from features.contract import EVENT_TYPES, SOURCES

ROLLOUTS: tuple[str, ...] = ("all", "staggered")
ALLOCATION_NONE = pd.DataFrame(
    {
        "household_id": pd.Series(dtype="str"),
        "worker_id": pd.Series(dtype="str"),
        "complexity_points": pd.Series(dtype=np.int64),
    }
)
PER_CASE_BAND_GBP: tuple[float, float] = (6_200.0, 14_500.0)
# Seconds are kept per stage of the run weeks; the follow-up (steps, outcomes and its exact
# expectation) is one stage of its own.
STAGES: tuple[str, ...] = ("features", "scoring", "allocation", "step", "outcomes", "follow_up")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SimulationSettings:
    """What is simulated; every field is logged with the results."""

    weeks: int = 52
    households: int = 110_000
    seeds: tuple[int, ...] = (0, 1, 2)
    policies: tuple[str, ...] = POLICIES
    end: date = date(2025, 3, 30)  # last day of the history; week 0 starts the day after
    history_weeks: int = 182
    rollout: str = "all"
    late_start_week: int = 26
    pre_weeks: int = 26
    follow_up_weeks: int = 26
    top_n: int = 500
    time_limit_s: float = 2.0
    capacity_share: float = 1.0
    case_effect: float = 0.2
    rollout_seed: int = 0

    def __post_init__(self) -> None:
        for policy in self.policies:
            check_policy(policy)
        problems = [
            (self.weeks < 1, "weeks must be at least 1"),
            (not self.seeds, "at least one seed is needed"),
            (self.rollout not in ROLLOUTS, f"rollout must be one of {', '.join(ROLLOUTS)}"),
            (
                self.rollout == "staggered" and not 1 <= self.late_start_week <= self.weeks,
                "late_start_week must be within the simulated weeks",
            ),
            (not 4 <= self.pre_weeks <= self.history_weeks, "pre_weeks must be 4..history_weeks"),
            (self.follow_up_weeks < 0, "follow_up_weeks must be at least 0"),
            (not 0.0 <= self.capacity_share <= 1.0, "capacity_share must be in [0, 1]"),
            (self.top_n < 1, "top_n must be at least 1"),
        ]
        messages = [message for bad, message in problems if bad]
        if messages:
            raise ValueError("simulation settings: " + "; ".join(messages))

    @property
    def start(self) -> date:
        return self.end + timedelta(days=1)

    def run_policies(self) -> tuple[str, ...]:
        """The policies to run, the "none" baseline always included (last)."""
        return tuple(policy for policy in POLICIES if policy in self.policies or policy == "none")

    def as_dict(self) -> dict[str, object]:
        values = asdict(self)
        return values | {"end": self.end.isoformat(), "seeds": list(self.seeds)}

    def history_key(self) -> tuple:
        """What a seed's history depends on (a history can serve any settings with this key)."""
        return (self.households, self.end, self.history_weeks, self.pre_weeks, self.case_effect)


@dataclass
class History:
    """One seed's city at the end of its history, ready to be copied for each policy."""

    seed: int
    simulator: CitySimulator
    index: WardIndex
    features: live.LiveHistory
    pre_outcomes: pd.DataFrame
    pre_expected_crises: float
    key: tuple  # SimulationSettings.history_key() of the settings it was run with


@dataclass(frozen=True)
class PolicyRun:
    """What one policy did to one seed's city."""

    policy: str
    seed: int
    weekly: pd.DataFrame
    events: pd.Series  # events that occurred in the simulated weeks, by event type
    outcomes: pd.DataFrame
    households_helped: int
    cases_opened: pd.DataFrame  # household_id, worker_id, complexity_points, week (in memory only)
    expected_crises_after_run: float  # exact, over follow_up_weeks from the state the run ends in


@dataclass(frozen=True)
class SimulationResult:
    """Every policy x seed: per-seed metrics, costs, events, weekly series and outcome panels."""

    settings: SimulationSettings
    runs: pd.DataFrame
    costs: pd.DataFrame
    events: pd.DataFrame
    weekly: pd.DataFrame
    outcomes: pd.DataFrame
    early_wards: tuple[str, ...]
    model: dict[str, object] = field(default_factory=dict)


# --- history -------------------------------------------------------------------------------------


def city_tables(simulator: CitySimulator) -> dict[str, pd.DataFrame]:
    """The contract tables of a simulator as they stand (what partners would share today)."""
    return {
        "households": simulator.households(),
        "people": simulator.people(),
        "events": simulator.events(known_by=simulator.today),
        "workers": simulator.workers(),
        "cases": simulator.cases(),
    }


def run_history(settings: SimulationSettings, *, seed: int) -> History:
    """The city for `history_weeks` up to `end` under its usual practice, pre-period recorded."""
    start = settings.end - timedelta(weeks=settings.history_weeks) + timedelta(days=1)
    simulator = CitySimulator(
        households=settings.households, seed=seed, start=start, case_effect=settings.case_effect
    )
    index = ward_index(simulator.households(as_at=settings.end))
    rows, first_pre = [], settings.history_weeks - settings.pre_weeks
    for week in range(settings.history_weeks):
        events = simulator.step()
        if week >= first_pre:
            rows.append(
                ward_week_outcomes(
                    index=index,
                    events=events,
                    hidden_state=simulator.hidden_state(),
                    week=week - settings.history_weeks,
                )
            )
    expected = float(simulator.expected_crises()[first_pre:].sum())
    tables = city_tables(simulator)
    features = live.start_history(
        households=tables["households"],
        # Every recorded event, also those partners share after today: features filter on
        # known_at, and later weeks only add the events that occur in them.
        events=simulator.events(),
        cases=tables["cases"],
        as_of=simulator.today,
    )
    return History(
        seed=seed,
        simulator=simulator,
        index=index,
        features=features,
        pre_outcomes=pd.concat(rows, ignore_index=True),
        pre_expected_crises=expected,
        key=settings.history_key(),
    )


def train_simulation_model(history: History, *, cache_dir: Path | None = None, train_settings=None):
    """The escalation model trained on a history's extract (one fold + final); cached on disk.

    train_settings (models.TrainSettings) defaults to the product's own with one fold. Returns
    (model, info). Training is not part of a simulation's weekly budget.
    """
    from models import TrainSettings, fit_and_evaluate, load_model, save_model

    default = TrainSettings(folds=1)
    train_settings = train_settings or default
    simulator = history.simulator
    key = f"city-{simulator.households_count}-seed{history.seed}-{simulator.today.isoformat()}"
    if train_settings != default:
        key += "-" + hashlib.sha256(repr(train_settings).encode()).hexdigest()[:10]
    if cache_dir is not None and (Path(cache_dir) / key).is_dir():
        model, _ = load_model(Path(cache_dir) / key)
        return model, {"source": "cache", "cache_key": key}
    started = time.perf_counter()
    outcome = fit_and_evaluate(
        tables=city_tables(simulator),
        as_of=pd.Timestamp(simulator.today),
        settings=train_settings,
    )
    seconds = time.perf_counter() - started
    if cache_dir is not None:
        save_model(outcome.model, Path(cache_dir) / key, horizon_weeks=26)
    holdout = outcome.metrics.query("fold == 'holdout' and model == 'model'")
    auc = float(holdout["auc"].iloc[0]) if len(holdout) and "auc" in holdout else float("nan")
    return outcome.model, {
        "source": "trained",
        "cache_key": key,
        "train_seconds": seconds,
        "holdout_auc": auc,
    }


# --- the weekly loop -----------------------------------------------------------------------------


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


# --- many seeds and policies ----------------------------------------------------------------


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
        history = (histories or {}).get(seed)
        if history is None:
            say(f"seed {seed}: {settings.history_weeks} weeks of history")
            history = run_history(settings, seed=seed)
        elif history.key != settings.history_key() or history.seed != seed:
            raise ValueError(f"the history given for seed {seed} was run with other settings")
        if model is None and set(settings.run_policies()) != {"none"}:
            say("training the escalation model on the history")
            model, info = train_simulation_model(history, cache_dir=cache_dir)
        if settings.rollout == "staggered":
            early_wards = rollout_wards(history.index, seed=settings.rollout_seed)
        runs = {}
        for policy in settings.run_policies():
            started = time.perf_counter()
            runs[policy], seconds = run_policy(
                history, policy=policy, settings=settings, model=model, early_wards=early_wards
            )
            say(f"seed {seed}: {policy} in {time.perf_counter() - started:.1f} s")
            info.setdefault("stage_seconds", {})[f"{policy}/{seed}"] = seconds
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


# --- summaries -----------------------------------------------------------------------------------

SUMMARY_METRICS: tuple[str, ...] = (
    "crises_prevented",
    "expected_crises_prevented",
    "expected_crises_prevented_in_run",
    "households_helped",
    "cases_opened",
    "utilisation",
    "cost_avoided",
    "cost_avoided_per_case",
    "expected_crisis_cost_avoided",
    "expected_crisis_cost_avoided_per_case",
)


def mean_interval(values: pd.Series, *, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t interval over seeds (NaN bounds with a single seed)."""
    values = values.dropna().astype(np.float64)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    spread = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1)) / np.sqrt(
        len(values)
    )
    return mean, mean - spread, mean + spread


def policy_table(result: SimulationResult) -> pd.DataFrame:
    """One row per policy: each metric's mean over seeds and its 95% interval."""
    rows = []
    for policy, group in result.runs.groupby("policy", sort=False):
        row: dict[str, object] = {
            "policy": policy,
            "name": POLICY_NAMES[policy],
            "seeds": len(group),
        }
        for metric in SUMMARY_METRICS:
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = mean_interval(group[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(result: SimulationResult) -> pd.DataFrame:
    """Cost avoided by policy and agency (mean over seeds, 95% interval), plus each total."""
    rows = []
    for (policy, agency), group in result.costs.groupby(["policy", "agency"], sort=False):
        mean, low, high = mean_interval(group["cost_avoided"])
        rows.append(
            {"policy": policy, "agency": agency, "cost_avoided": mean, "low": low, "high": high}
        )
    table = pd.DataFrame(rows)
    order = {agency: position for position, agency in enumerate(SOURCES)}
    return table.sort_values(
        ["policy", "agency"],
        key=lambda column: (
            column.map(order)
            if column.name == "agency"
            else column.map({name: position for position, name in enumerate(POLICIES)})
        ),
    ).reset_index(drop=True)


def _band_position(value: float) -> str:
    band_low, band_high = PER_CASE_BAND_GBP
    if not np.isfinite(value):
        return "no cases were opened"
    if value < band_low:
        return "below the band"
    return "above the band" if value > band_high else "within the band"


def per_case_check(result: SimulationResult, *, policy: str = "product") -> dict[str, object]:
    """Cost avoided per case opened against the GBP 6,200-14,500 band of the programme's seeds.

    `per_case` is on every event avoided (realised counts, common random numbers); `expected_*`
    is the crisis part alone on the expected count of crises (no event noise).
    """
    runs = result.runs.loc[result.runs["policy"] == policy]
    mean, low, high = mean_interval(runs["cost_avoided_per_case"])
    expected, expected_low, expected_high = mean_interval(
        runs["expected_crisis_cost_avoided_per_case"]
    )
    band_low, band_high = PER_CASE_BAND_GBP
    return {
        "policy": policy,
        "per_case": mean,
        "low": low,
        "high": high,
        "position": _band_position(mean),
        "expected_per_case": expected,
        "expected_low": expected_low,
        "expected_high": expected_high,
        "expected_position": _band_position(expected),
        "band_low": band_low,
        "band_high": band_high,
        "follow_up_weeks": result.settings.follow_up_weeks,
    }


def write_simulation(result: SimulationResult, out: Path) -> dict[str, Path]:
    """Write the results (CSV, JSON, plots) into `out`; see experiments/_simulation_report.py."""
    from experiments._simulation_costs import cost_sources
    from experiments._simulation_report import write_results

    return write_results(
        result,
        Path(out),
        policies=policy_table(result),
        costs=cost_table(result),
        per_case=per_case_check(result),
        cost_sources=cost_sources(),
    )


def read_simulation_summary(folder: Path) -> dict | None:
    """summary.json of the latest simulation written into `folder`, or None."""
    from experiments._simulation_report import read_summary

    return read_summary(Path(folder))


def tracking_runs(result: SimulationResult) -> list[dict[str, object]]:
    """One MLflow run per policy (its seeds together): run name, params, metrics, tags."""
    settings = result.settings.as_dict()
    runs = []
    for row in policy_table(result).to_dict(orient="records"):
        metrics = {
            key: value
            for key, value in row.items()
            if key not in ("policy", "name")
            and isinstance(value, int | float)
            and np.isfinite(value)
        }
        runs.append(
            {
                "run_name": f"simulate-{row['policy']}-{settings['weeks']}w",
                "params": {key: str(value) for key, value in settings.items()}
                | {"policy": row["policy"]},
                "metrics": metrics,
                "tags": {"policy": str(row["policy"]), "kind": "policy-simulation"},
            }
        )
    return runs
