"""Training runs and the champion in the MLflow registry.

- `train` cross-validates, fits and audits the model (experiments.training) and logs one MLflow
  run (parameters, data snapshot, features, metrics, plots, model card, the model files),
  registered as a new version of `household-escalation` with the alias `challenger`.
- Every run audits the latest holdout for bias (experiments.fairness): the table
  (`fairness_audit.csv`), the chart (`plots/fairness_audit.png`), the gate's inputs as metrics
  (`fairness/...`), the verdict as the tag `fairness_gate`, and a fairness section in the card.
- `load_champion` loads the version `champion` points at; scoring always uses it.
- Promotion (the gates, the audit log, the governance records) is experiments.promotion.

No household-level data goes into the tracking store: only aggregates, plots and the model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments import tracking
from experiments.fairness import FairnessGate, audit_metrics, fairness_gate
from experiments.fairness import GateResult as FairnessVerdict
from experiments.run_artifacts import write_run_artifacts
from experiments.training import AuditedOutcome, fit_and_audit
from models import MODEL_NAME, ChampionModel, TrainSettings, load_model


@dataclass(frozen=True)
class TrainResult:
    """A logged training run: where it is, and what it measured."""

    run_id: str
    model_name: str
    model_version: str
    metrics: pd.DataFrame
    outcome: AuditedOutcome
    # The bias audit's verdict under the policy the run was trained with (None: not audited).
    fairness_gate: FairnessVerdict | None = None

    def headline(self) -> dict[str, float]:
        """Holdout metrics of the model and baselines, for a one-screen summary."""
        holdout = self.metrics.loc[self.metrics["fold"] == "holdout"].set_index("model")
        columns = ["auc", "average_precision", "brier", "ece", "precision_at_capacity"]
        return {
            f"{model}_{column}": float(holdout.loc[model, column])
            for model in holdout.index
            for column in columns
        }


def _run_tags(
    outcome: AuditedOutcome, *, snapshot_id: str, verdict: FairnessVerdict | None
) -> dict[str, str]:
    tags = {
        "snapshot_id": snapshot_id,
        "evaluation_as_of": outcome.data_summary["evaluation_as_of"],
        "holdout_as_of": str(outcome.holdout.test_as_of.date()),
        "calibration_method": outcome.model.calibrator_.method,
    }
    if outcome.fairness is None or verdict is None:
        return tags | {"fairness_gate": "not audited"}
    return tags | {
        "fairness_gate": "passed" if verdict.passed else "failed",
        # Group names and rates only: aggregates, never a household.
        "fairness_gate_message": verdict.message[:4000],
        "fairness_k": str(int(outcome.fairness["k"].iloc[0])),
    }


def log_outcome(
    outcome: AuditedOutcome,
    *,
    snapshot_id: str,
    settings: TrainSettings,
    home: str | Path,
    tracking_uri: str | None = None,
    explain_features: pd.DataFrame | None = None,
    fairness: FairnessGate | None = None,
) -> TrainResult:
    """Log a fitted outcome as an MLflow run; its model becomes the new `challenger` version.

    With `explain_features` (the holdout households' features) the run also gets the global SHAP
    view and the effect-direction check in its model card. The bias audit is logged as a table,
    a chart, flat metrics and the `fairness_gate` tag (judged with `fairness`).
    """
    fairness = fairness or FairnessGate()
    uri = tracking.resolve_tracking_uri(home=home, tracking_uri=tracking_uri)
    verdict = (
        None if outcome.fairness is None else fairness_gate(outcome.fairness, settings=fairness)
    )
    tags = _run_tags(outcome, snapshot_id=snapshot_id, verdict=verdict)
    params = settings.as_params() | tags | {"feature_count": str(len(outcome.model.feature_names_))}
    with tempfile.TemporaryDirectory(prefix="rebalance-run-") as scratch:
        artifacts = write_run_artifacts(
            outcome,
            directory=Path(scratch),
            snapshot_id=snapshot_id,
            settings=settings,
            explain_features=explain_features,
            fairness=fairness,
        )
        registered = tracking.log_training_run(
            tracking_uri=uri,
            model_name=settings.model_name,
            run_name=f"escalation-{tags['evaluation_as_of']}",
            params=params,
            tags=tags,
            metrics=outcome.flat_metrics()
            | ({} if outcome.fairness is None else audit_metrics(outcome.fairness)),
            artifacts_dir=artifacts,
        )
    return TrainResult(
        run_id=registered.run_id,
        model_name=settings.model_name,
        model_version=registered.version,
        metrics=outcome.metrics,
        outcome=outcome,
        fairness_gate=verdict,
    )


def train(
    *,
    tables: Mapping[str, pd.DataFrame],
    snapshot_id: str,
    as_of,
    settings: TrainSettings,
    home: str | Path,
    tracking_uri: str | None = None,
    truth: pd.DataFrame | None = None,
    fairness: FairnessGate | None = None,
) -> TrainResult:
    """Cross-validate, fit, audit and log a model; the new version becomes the `challenger`."""
    outcome = fit_and_audit(tables=tables, as_of=as_of, settings=settings, truth=truth)
    return log_outcome(
        outcome,
        snapshot_id=snapshot_id,
        settings=settings,
        home=home,
        tracking_uri=tracking_uri,
        explain_features=outcome.holdout_features,
        fairness=fairness,
    )


def load_champion(
    *, home: str | Path, tracking_uri: str | None = None, model_name: str = MODEL_NAME
) -> ChampionModel:
    """The model version the `champion` alias points at, loaded for scoring."""
    uri = tracking.resolve_tracking_uri(home=home, tracking_uri=tracking_uri)
    champion = tracking.version_by_alias(
        tracking_uri=uri, model_name=model_name, alias=tracking.CHAMPION
    )
    if champion is None:
        raise LookupError(
            f"no champion version of {model_name} yet: train a model and promote it "
            "(`rebalance train --as-of DATE --promote`)"
        )
    with tempfile.TemporaryDirectory(prefix="rebalance-model-") as scratch:
        directory = tracking.download_run_artifacts(
            tracking_uri=uri,
            run_id=champion.run_id,
            path=tracking.MODEL_ARTIFACT_PATH,
            dst=Path(scratch),
        )
        estimator, metadata = load_model(directory)
    return ChampionModel(
        estimator=estimator,
        name=model_name,
        version=champion.version,
        run_id=champion.run_id,
        horizon_weeks=int(metadata["horizon_weeks"]),
    )
