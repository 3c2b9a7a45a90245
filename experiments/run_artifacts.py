"""The files a training run logs: the model, metrics tables, plots, the bias audit, the model card.

Everything goes into one folder that experiments.registry logs as the run's artifacts. No
household-level data: only aggregates, plots and the model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from experiments.fairness import FairnessGate, audit_chart, fairness_gate
from experiments.markdown import render
from experiments.model_card import render_model_card
from experiments.plots import calibration_plot, feature_importance_plot, precision_at_k_plot
from experiments.shap_plots import global_explanation_plots
from experiments.training import AuditedOutcome
from models import TrainingOutcome, TrainSettings, save_model
from models.explain import effect_direction_checks

FAIRNESS_TABLE = "fairness_audit.csv"


def _folds_for_card(outcome: TrainingOutcome) -> list[dict[str, str]]:
    def dates(values) -> str:
        return ", ".join(str(value.date()) for value in values)

    return [
        {
            "number": str(fold.number),
            "tree_as_of": dates(fold.window.tree_as_of),
            "calibration_as_of": str(fold.window.calibration_as_of.date()),
            "test_as_of": str(fold.test_as_of.date()),
        }
        for fold in outcome.folds
    ]


def write_run_artifacts(
    outcome: AuditedOutcome,
    *,
    directory: Path,
    snapshot_id: str,
    settings: TrainSettings,
    explain_features: pd.DataFrame | None = None,
    fairness: FairnessGate | None = None,
) -> Path:
    """The run's files: model/, plots/, tables as CSV, the feature list, the bias audit and the
    model card (its fairness verdict judged with `fairness`, default the product's policy)."""
    fairness = fairness or FairnessGate()
    save_model(outcome.model, directory / "model", horizon_weeks=settings.horizon_weeks)
    outcome.metrics.to_csv(directory / "metrics.csv", index=False)
    outcome.calibration.to_csv(directory / "calibration.csv", index=False)
    outcome.precision_curves.to_csv(directory / "precision_at_k.csv", index=False)
    outcome.importance.to_csv(directory / "feature_importance.csv", index=False)
    if outcome.truth is not None:
        outcome.truth.to_csv(directory / "truth_comparison.csv", index=False)
    folds = _folds_for_card(outcome)
    (directory / "features.json").write_text(json.dumps(outcome.model.feature_names_, indent=1))
    (directory / "folds.json").write_text(json.dumps(folds, indent=1))
    pooled = outcome.calibration.loc[outcome.calibration["fold"] == "all"]
    calibration_plot(pooled, path=directory / "plots" / "calibration.png")
    precision_at_k_plot(outcome.precision_curves, path=directory / "plots" / "precision_at_k.png")
    feature_importance_plot(outcome.importance, path=directory / "plots" / "feature_importance.png")
    verdict = None
    if outcome.fairness is not None:
        outcome.fairness.to_csv(directory / FAIRNESS_TABLE, index=False)
        audit_chart(outcome.fairness, settings=fairness).savefig(
            directory / "plots" / "fairness_audit.png", dpi=80
        )
        verdict = fairness_gate(outcome.fairness, settings=fairness)
    (directory / "data_summary.json").write_text(json.dumps(outcome.data_summary, indent=1))
    card = render_model_card(
        model_name=settings.model_name,
        snapshot_id=snapshot_id,
        data_summary=outcome.data_summary,
        settings=settings.as_params(),
        folds=folds,
        metrics=outcome.metrics,
        churn=outcome.churn,
        truth=outcome.truth,
        fairness=outcome.fairness,
        fairness_gate=verdict,
        gate_settings=fairness,
    )
    if explain_features is not None:
        card += _global_explanation(outcome, features=explain_features, directory=directory)
    (directory / "model_card.md").write_text(card, encoding="utf-8")
    return directory


def _global_explanation(
    outcome: TrainingOutcome, *, features: pd.DataFrame, directory: Path
) -> str:
    """SHAP summary and dependence plots, and the effect-direction check as a model card section."""
    booster = outcome.model.booster_
    global_explanation_plots(booster, features, directory / "plots" / "shap")
    checks = effect_direction_checks(booster=booster, features=features)
    checks.to_csv(directory / "effect_directions.csv", index=False)
    passed = int((checks["status"] == "pass").sum())
    failed = int((checks["status"] == "fail").sum())
    cells = checks.map(lambda value: f"{value:.3f}" if isinstance(value, float) else str(value))
    return render(
        "effect_directions.md.j2",
        households=len(features),
        passed=passed,
        failed=failed,
        untested=len(checks) - passed - failed,
        columns=list(checks.columns),
        rows=[list(row) for row in cells.itertuples(index=False)],
    )
