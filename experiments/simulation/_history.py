"""A seed's history: the city run under its usual referral practice, and the model trained on it."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd

import experiments.simulation._features as live
from experiments.city import CitySimulator
from experiments.simulation._outcomes import (
    ward_index,
    ward_week_outcomes,
)
from experiments.simulation._settings import History, SimulationSettings
from models import TrainSettings, fit_and_evaluate, load_model, save_model


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
