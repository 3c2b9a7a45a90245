"""Benchmark: exact TreeSHAP reasons for every household, against LightGBM's own and shap.

Setup (not timed): generate the city, fit the escalation model (production settings, one fold),
build features as of the end date and a week earlier. Timed, in one run on the same model and
rows:
  - `explain_households` for every household: attributions, reasons, needs, bands
    (budget 10 s; cold = on a freshly loaded booster, so it includes compiling the pattern tables);
  - our pattern engine (`shap_attributions(method="patterns")`) against LightGBM's own
    `booster.predict(X, pred_contrib=True)` (`method="lightgbm"`) for every household, cold and
    warm: the engine earns its place only if at least 3x faster with identical values (max abs
    difference under 1e-6), else explanations use pred_contrib (issue 13);
  - `shap.TreeExplainer(booster).shap_values(X)` (requirement: ours at least 10x faster, and the
    same attributions: max abs difference under 1e-6);
  - `explain_household` for single households, with what changed and the timeline (budget 20 ms).

    .venv/bin/python bench/bench_explain.py [--households 110000] [--seed 0] [--shap-rows N]

--shap-rows times shap and ours on the first N households only (shap takes minutes on the city).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import lightgbm as lgb  # noqa: E402

from experiments.city import generate_city  # noqa: E402
from experiments.shap_plots import reference_shap_values  # noqa: E402
from features.build import features_as_of, prepare_tables  # noqa: E402
from models import TrainSettings, fit_and_evaluate  # noqa: E402
from models.explain import (  # noqa: E402
    explain_household,
    explain_households,
    index_records,
    shap_attributions,
)

END = date(2025, 6, 30)
BATCH_BUDGET_SECONDS = 10.0
SINGLE_BUDGET_MS = 20.0
MIN_SPEEDUP = 10.0
MIN_SPEEDUP_OVER_LIGHTGBM = 3.0
SINGLE_SAMPLE = 200


def _timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _fresh(booster: lgb.Booster) -> lgb.Booster:
    # A new Booster object has no compiled pattern tables cached: timings on it are cold.
    return lgb.Booster(model_str=booster.model_to_string())


def _setup(households: int, seed: int):
    city = generate_city(households=households, seed=seed, end=END)
    tables = {name: table for name, table in city.tables().items() if name != "truth"}
    model, train_seconds = _timed(
        lambda: fit_and_evaluate(tables=tables, as_of=END, settings=TrainSettings(folds=1)).model
    )
    prepared = prepare_tables(tables)
    features = features_as_of(prepared, as_of=END)
    previous = features_as_of(prepared, as_of=pd.Timestamp(END) - pd.Timedelta(days=7))
    return tables, model, features, previous, train_seconds


def _single_household_ms(model, tables, features, previous, *, seed: int) -> np.ndarray:
    records = index_records(tables)
    chosen = np.random.default_rng(seed).choice(features.index.to_numpy(), SINGLE_SAMPLE)
    common = {
        "booster": model.booster_,
        "features": features,
        "previous_features": previous,
        "records": records,
        "as_of": END,
        "calibrator": model.calibrator_.predict,
    }
    explain_household(household_id=chosen[0], **common)
    times = []
    for household_id in chosen:
        _, seconds = _timed(explain_household, household_id=household_id, **common)
        times.append(seconds * 1000)
    return np.array(times)


def _verdict(ok: bool) -> str:
    return "ok" if ok else "FAILS"


def _cold_and_warm(booster: lgb.Booster, features: pd.DataFrame, method: str):
    booster = _fresh(booster)
    values, cold = _timed(shap_attributions, booster=booster, features=features, method=method)
    _, warm = _timed(shap_attributions, booster=booster, features=features, method=method)
    return values, cold, warm


def _engine_against_lightgbm(booster: lgb.Booster, features: pd.DataFrame) -> None:
    """Our pattern engine against LightGBM's own pred_contrib, every household, same process."""
    ours, ours_cold, ours_warm = _cold_and_warm(booster, features, "patterns")
    lightgbm, lgb_cold, lgb_warm = _cold_and_warm(booster, features, "lightgbm")
    difference = np.abs(ours.to_numpy() - lightgbm.to_numpy()).max()
    speedup = lgb_cold / ours_cold
    print(
        f"attributions for {len(features):,} households: ours {ours_cold:6.2f} s cold "
        f"({ours_warm:.2f} s warm); LightGBM pred_contrib {lgb_cold:6.2f} s cold "
        f"({lgb_warm:.2f} s warm); speed-up {speedup:.1f}x cold, {lgb_warm / ours_warm:.1f}x warm"
    )
    keep = speedup >= MIN_SPEEDUP_OVER_LIGHTGBM and difference < 1e-6
    print(
        f"  max |ours - pred_contrib| = {difference:.2e}; keep the engine (need "
        f">= {MIN_SPEEDUP_OVER_LIGHTGBM:.0f}x and < 1e-6): {'yes' if keep else 'NO'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shap-rows", type=int, default=None)
    arguments = parser.parse_args()
    tables, model, features, previous, train_seconds = _setup(arguments.households, arguments.seed)
    booster = model.booster_
    leaves = booster.dump_model()["tree_info"]
    print(
        f"city: {len(features):,} households as of {END}; model: {len(leaves)} trees, "
        f"{sum(tree['num_leaves'] for tree in leaves):,} leaves (fitted in {train_seconds:.0f} s)"
    )

    batch_args = {"features": features, "tables": tables, "as_of": END}
    batch_args["calibrator"] = model.calibrator_.predict
    explained, batch_cold = _timed(explain_households, booster=_fresh(booster), **batch_args)
    warm_booster = _fresh(booster)
    explain_households(booster=warm_booster, **batch_args)
    _, batch_warm = _timed(explain_households, booster=warm_booster, **batch_args)
    print(
        f"explain_households, every household: {batch_cold:6.2f} s cold, {batch_warm:6.2f} s warm "
        f"(budget {BATCH_BUDGET_SECONDS:.0f} s: {_verdict(batch_cold <= BATCH_BUDGET_SECONDS)})"
    )
    print(
        f"  with a strong reason: {(explained['strong_reasons'] > 0).mean():.1%}; "
        f"reasons per household: {explained['strong_reasons'].mean():.2f}; "
        f"bands: {explained['band'].value_counts().to_dict()}"
    )

    _engine_against_lightgbm(booster, features)

    rows = features if arguments.shap_rows is None else features.iloc[: arguments.shap_rows]
    ours, ours_cold = _timed(shap_attributions, booster=_fresh(booster), features=rows)
    _, ours_warm = _timed(shap_attributions, booster=warm_booster, features=rows)
    (reference, expected_value), shap_seconds = _timed(reference_shap_values, booster, rows)
    difference = np.abs(ours[booster.feature_name()].to_numpy() - reference).max()
    difference = max(difference, abs(ours["base_value"].iloc[0] - expected_value))
    speedup = shap_seconds / ours_cold
    fast_enough = _verdict(speedup >= MIN_SPEEDUP)
    print(
        f"attributions for {len(rows):,} households: ours {ours_cold:6.2f} s cold "
        f"({ours_warm:.2f} s warm); shap.TreeExplainer {shap_seconds:7.2f} s; "
        f"speed-up {speedup:.0f}x cold (need {MIN_SPEEDUP:.0f}x: {fast_enough})"
    )
    print(f"  max |ours - shap| = {difference:.2e} (need < 1e-6: {_verdict(difference < 1e-6)})")

    single = _single_household_ms(model, tables, features, previous, seed=arguments.seed)
    p95 = np.percentile(single, 95)
    print(
        f"explain_household ({SINGLE_SAMPLE} households, with what changed and timeline): "
        f"p50 {np.median(single):.1f} ms, p95 {p95:.1f} ms, max {single.max():.1f} ms "
        f"(budget {SINGLE_BUDGET_MS:.0f} ms at p95: {_verdict(p95 <= SINGLE_BUDGET_MS)})"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
