"""Benchmark: training on the synthetic city (all folds), and the model against the true risk.

Generates the city (not timed), then times `experiments.training.fit_and_audit` with the default
settings (temporal cross-validation with baselines, the final model, churn, the truth comparison
and the holdout's bias audit) and,
separately, logging the run to MLflow in a temporary home. Budget: 180 s for training on the
110k city on 2 cores. Prints the headline metrics and the model/truth AUC ratio (target >= 0.95).

    .venv/bin/python bench/bench_train.py [--households 110000] [--seed 0] [--no-logging]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date

import yaml

from experiments.city import generate_city
from experiments.registry import log_outcome
from experiments.training import fit_and_audit
from models import settings_from_mapping

END = date(2025, 6, 30)
BUDGET_SECONDS = 180.0


def _print_metrics(outcome) -> None:
    metrics = outcome.metrics
    columns = ["auc", "average_precision", "brier", "ece", "precision_at_capacity"]
    for fold in ("all", "holdout"):
        print(f"\n{fold} folds:" if fold == "all" else "\nlatest holdout:")
        print(metrics.loc[metrics["fold"] == fold].set_index("model")[columns].round(4))
    summary, churn = outcome.data_summary, outcome.churn
    print(
        f"\nfinal model: {summary['trees']} trees, {summary['features']} features, "
        f"{summary['calibration_method']} calibration; churn (top-k overlap a week apart): "
        f"{churn['overlap_at_capacity']:.3f} at capacity k={churn['k_capacity']:.0f}"
    )
    if outcome.truth is not None:
        truth = outcome.truth.set_index("scorer")
        print(
            f"vs truth as of {truth['as_of'].iloc[0].date()}: AUC model "
            f"{truth.loc['model', 'auc']:.4f} / truth {truth.loc['truth', 'auc']:.4f} = "
            f"{truth.loc['model', 'auc_ratio_to_truth']:.3f} (target >= 0.95); precision at "
            f"capacity {truth.loc['model', 'precision_at_capacity']:.3f} / "
            f"{truth.loc['truth', 'precision_at_capacity']:.3f}"
        )


def _override(text: str) -> tuple[str, object]:
    name, _, value = text.partition("=")
    return name.strip(), yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=110_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-logging", action="store_true", help="skip the MLflow part")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a training setting (e.g. learning_rate=0.05); repeatable",
    )
    arguments = parser.parse_args()
    started = time.perf_counter()
    city = generate_city(households=arguments.households, seed=arguments.seed, end=END)
    tables = {name: table for name, table in city.tables().items() if name != "truth"}
    print(f"city: {len(tables['households']):,} households, {len(tables['events']):,} events")
    print(f"  (generated in {time.perf_counter() - started:.1f} s, not timed below)")
    settings = settings_from_mapping(dict(_override(text) for text in arguments.set))
    if arguments.set:
        print(f"settings overridden: {', '.join(arguments.set)}")
    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = fit_and_audit(tables=tables, as_of=END, settings=settings, truth=city.truth)
    train_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    verdict = "within" if train_seconds <= BUDGET_SECONDS else "OVER"
    print(
        f"training ({settings.folds} folds + final model, num_threads={settings.num_threads}): "
        f"{train_seconds:.1f} s wall ({verdict} the {BUDGET_SECONDS:.0f} s budget), "
        f"{cpu_seconds:.1f} s CPU (on a busy machine wall time overstates it)"
    )
    _print_metrics(outcome)
    if arguments.no_logging:
        return
    with tempfile.TemporaryDirectory() as home:
        started = time.perf_counter()
        result = log_outcome(outcome, snapshot_id="bench", settings=settings, home=home)
        print(
            f"\nMLflow logging (new SQLite store, incl. import and schema creation): "
            f"{time.perf_counter() - started:.1f} s -> version {result.model_version}"
        )


if __name__ == "__main__":
    main()
