"""Temporal cross-validation, baselines on the same splits, and the final model.

`fit_and_evaluate` is the pure part of a training run (no tracking, no audit): it builds features
once per as-of date of the plan, fits every fold's model and baselines, scores them on the fold's
test date, fits the final model on the latest trainable window and measures list churn and, on the
synthetic city, the gap to the true risk. It returns the holdout's predictions with household ids
and its capacity k, for a bias audit run by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.labels import build_labels
from models._baselines import PriorRate, ProblemIndicatorRule, logistic_baseline
from models._estimator import EscalationModel
from models._evaluate import (
    CHURN_GAP_WEEKS,
    FoldEvaluation,
    calibration_frame,
    fold_predictions,
    list_churn,
    metrics_frame,
    precision_curves_frame,
    predictions,
    truth_comparison,
)
from models._examples import (
    GroupsAsOf,
    TrainingData,
    WindowExamples,
    checked_evaluation_as_of,
    training_data,
    window_examples,
)
from models._metrics import capacity_k
from models._plan import (
    Fold,
    TrainingWindow,
    check_history,
    fold_plan,
    plan_as_of_dates,
    training_window,
)
from models._reweighting import example_weights, reweight_groups
from models._settings import TrainSettings


@dataclass(frozen=True)
class TrainingOutcome:
    """Everything a training run produces before it is logged."""

    model: EscalationModel
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    precision_curves: pd.DataFrame
    importance: pd.DataFrame
    churn: dict[str, float]
    truth: pd.DataFrame | None
    folds: tuple[Fold, ...]
    final_window: TrainingWindow
    data_summary: dict[str, object]
    # The latest fold's predictions (household_id, score, rank_score, label): household-level,
    # kept in memory for an audit and never logged.
    holdout_predictions: pd.DataFrame | None = None
    # The latest fold's capacity k (households key workers can take on its test date).
    holdout_k_capacity: int | None = None
    # Every household's features as of the holdout date (the model's float32 input), for the
    # run's global explanation: already built for the fold, so not built again.
    holdout_features: pd.DataFrame | None = None

    @property
    def holdout(self) -> Fold:
        return self.folds[-1]

    def flat_metrics(self) -> dict[str, float]:
        """Flat metric names: `<model>_<metric>` (all folds), `holdout_...` and `foldN_...`."""
        flat = {}
        for row in self.metrics.to_dict("records"):
            prefix = {"all": "", "holdout": "holdout_"}.get(row["fold"], f"fold{row['fold']}_")
            flat |= {
                f"{prefix}{row['model']}_{name}": value
                for name, value in row.items()
                if name not in ("fold", "model", "test_as_of") and pd.notna(value)
            }
        flat |= {f"churn_{name}": value for name, value in self.churn.items() if pd.notna(value)}
        if self.truth is not None:
            flat |= {
                f"truth_{row['scorer']}_{name}": value
                for row in self.truth.to_dict("records")
                for name, value in row.items()
                if name not in ("scorer", "as_of") and pd.notna(value)
            }
        return flat


def _require_both_classes(labels: np.ndarray, *, what: str) -> None:
    if len(labels) == 0 or labels.min() == labels.max():
        raise ValueError(
            f"{what} does not have both escalated and non-escalated households: "
            "check the crisis types, the horizon and the as-of date, or use a larger extract"
        )


def fit_escalation_model(
    data: TrainingData,
    examples: WindowExamples,
    *,
    settings: TrainSettings,
    as_of: pd.Timestamp | None = None,
) -> EscalationModel:
    """Trees on the tree households' earlier dates; stopping and calibration on the latest date.

    With `settings.reweight_attribute`, the trees and the stopping set are weighted by group
    (groups as of `as_of`, the window's calibration date by default); calibration is not.
    """
    tree = examples.tree.rows(data.roles[examples.tree.households] == "trees")
    late_roles = data.roles[examples.late.households]
    stopping = examples.late.rows(late_roles == "stopping")
    calibration = examples.late.rows(late_roles == "calibration")
    _require_both_classes(tree.labels, what="the training households")
    _require_both_classes(stopping.labels, what="the early-stopping households")
    _require_both_classes(calibration.labels, what="the calibration households")
    weights = {}
    if settings.reweight_attribute:
        groups = reweight_groups(data, as_of=as_of, settings=settings)
        weights = {
            "sample_weight": example_weights(data, tree, groups=groups, settings=settings),
            "valid_sample_weight": example_weights(
                data, stopping, groups=groups, settings=settings
            ),
        }
    return EscalationModel(**settings.model_params()).fit(
        data.frame(tree.matrix),
        tree.labels,
        X_valid=data.frame(stopping.matrix),
        y_valid=stopping.labels,
        X_calib=data.frame(calibration.matrix),
        y_calib=calibration.labels,
        **weights,
    )


def fit_baselines(
    data: TrainingData, examples: WindowExamples, *, settings: TrainSettings
) -> dict[str, object]:
    """The three baselines on every example of the window (the logistic one on a sample)."""
    X_all = data.frame(np.concatenate([examples.tree.matrix, examples.late.matrix]))
    y_all = np.concatenate([examples.tree.labels, examples.late.labels])
    # A linear model on ~150 features gains nothing from more rows than this, and on a large
    # city the full window would make the baseline slower to fit than the model itself.
    sample = np.sort(
        np.random.default_rng(settings.seed).permutation(len(y_all))[: settings.logistic_max_rows]
    )
    return {
        "logistic": logistic_baseline(seed=settings.seed).fit(X_all.iloc[sample], y_all[sample]),
        "rule": ProblemIndicatorRule().fit(X_all, y_all),
        "prior": PriorRate().fit(X_all, y_all),
    }


def evaluate_fold(data: TrainingData, *, fold: Fold, settings: TrainSettings) -> FoldEvaluation:
    """Fit on the fold's window, score its test date, with outcomes known by the evaluation date."""
    examples = window_examples(
        data.cache, data.crisis_events, window=fold.window, settings=settings
    )
    fitted = {
        "model": fit_escalation_model(
            data, examples, settings=settings, as_of=fold.window.calibration_as_of
        ),
        **fit_baselines(data, examples, settings=settings),
    }
    labels = build_labels(
        data.crisis_events,
        household_ids=data.cache.household_ids,
        as_of=fold.test_as_of,
        horizon_weeks=settings.horizon_weeks,
        crisis_types=settings.crisis_types,
        known_by=fold.labels_known_by,
    ).to_numpy()
    return FoldEvaluation(
        fold=fold,
        labels=labels,
        household_ids=data.cache.household_ids.to_numpy(dtype=object),
        predicted=predictions(fitted, data.cache[fold.test_as_of]),
        k_capacity=capacity_k(workers=data.workers, cases=data.cases, as_of=fold.test_as_of),
    )


@dataclass(frozen=True)
class HoldoutPredictions:
    """One test date's holdout predictions (see fold_predictions) and its capacity k."""

    as_of: pd.Timestamp
    predictions: pd.DataFrame
    k_capacity: int


def holdout_predictions(
    *,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    settings: TrainSettings,
    last: int | None = None,
    groups_as_of: GroupsAsOf | None = None,
) -> list[HoldoutPredictions]:
    """Holdout predictions at the rolling-origin test dates (the `last` few), oldest first.

    Exactly the training run's own fold evaluation: each date is scored by a model trained,
    stopped and calibrated only on what was known then; labels are the crises recorded by the
    evaluation date.
    """
    evaluation_as_of = checked_evaluation_as_of(tables, as_of)
    folds = fold_plan(evaluation_as_of=evaluation_as_of, settings=settings)
    check_history(
        folds=folds, first_event_day=tables["events"]["occurred_at"].min(), settings=settings
    )
    folds = folds[-last:] if last else folds
    dates = sorted({day for fold in folds for day in (*fold.window.as_of_dates, fold.test_as_of)})
    data = training_data(tables, as_of_dates=dates, settings=settings, groups_as_of=groups_as_of)
    evaluations = [evaluate_fold(data, fold=fold, settings=settings) for fold in folds]
    return [
        HoldoutPredictions(
            as_of=evaluation.fold.test_as_of,
            predictions=fold_predictions(evaluation),
            k_capacity=evaluation.k_capacity,
        )
        for evaluation in evaluations
    ]


def fit_and_evaluate(
    *,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    settings: TrainSettings,
    truth: pd.DataFrame | None = None,
    groups_as_of: GroupsAsOf | None = None,
) -> TrainingOutcome:
    """Cross-validate, compare with baselines (and truth), and fit the final escalation model.

    `groups_as_of` gives each household's groups as of a date, for `settings.reweight_attribute`
    (features.groups makes it from the households and people tables).
    """
    evaluation_as_of = checked_evaluation_as_of(tables, as_of)
    folds = fold_plan(evaluation_as_of=evaluation_as_of, settings=settings)
    final_window = training_window(evaluation_as_of=evaluation_as_of, settings=settings)
    check_history(
        folds=folds, first_event_day=tables["events"]["occurred_at"].min(), settings=settings
    )
    data = training_data(
        tables,
        as_of_dates=sorted(
            set(plan_as_of_dates(folds, final_window))
            | {evaluation_as_of, evaluation_as_of - pd.Timedelta(weeks=CHURN_GAP_WEEKS)}
        ),
        settings=settings,
        groups_as_of=groups_as_of,
    )
    evaluations = [evaluate_fold(data, fold=fold, settings=settings) for fold in folds]
    final_examples = window_examples(
        data.cache, data.crisis_events, window=final_window, settings=settings
    )
    model = fit_escalation_model(
        data, final_examples, settings=settings, as_of=final_window.calibration_as_of
    )
    return TrainingOutcome(
        model=model,
        metrics=metrics_frame(evaluations, settings=settings),
        calibration=calibration_frame(evaluations, settings=settings),
        precision_curves=precision_curves_frame(evaluations[-1]),
        importance=model.feature_importance(),
        churn=list_churn(model, data, evaluation_as_of=evaluation_as_of),
        truth=None if truth is None else truth_comparison(truth, evaluations, settings=settings),
        folds=folds,
        final_window=final_window,
        data_summary=data_summary(tables, model=model, evaluation_as_of=evaluation_as_of),
        holdout_predictions=fold_predictions(evaluations[-1]),
        holdout_k_capacity=evaluations[-1].k_capacity,
        holdout_features=data.cache[folds[-1].test_as_of],
    )


def data_summary(
    tables: Mapping[str, pd.DataFrame], *, model: EscalationModel, evaluation_as_of: pd.Timestamp
) -> dict[str, object]:
    """Plain facts about the data and the final model, for the run log and the model card."""
    events = tables["events"]
    return {
        "evaluation_as_of": str(evaluation_as_of.date()),
        "households": len(tables["households"]),
        "events": len(events),
        "first_event": str(events["occurred_at"].min().date()),
        "last_known": str(events["known_at"].max().date()),
        "active_workers": int(tables["workers"]["active"].sum()),
        "features": len(model.feature_names_),
        "trees": model.best_iteration_,
        "calibration_method": model.calibrator_.method,
    }
