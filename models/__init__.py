"""The household escalation model: temporal validation, calibration, baselines, metrics, scoring.

Fit and evaluate (`fit_and_evaluate`), save and load (`save_model`, `load_model`) and score
(`score_households`, `write_scores`). The pieces (estimator, temporal plan, metrics, baselines,
reweighting) are exported for notebooks, benchmarks and tests. Reasons and needs: models.explain.
models knows nothing of MLflow or of protected characteristics: the registry, the promotion gates
and the bias audit live in the layer above; groups for reweighting are given to training
(features.groups makes them).
"""

from models import _openmp  # noqa: F401  (must run before LightGBM loads)
from models._baselines import (
    PROBLEM_INDICATORS,
    PriorRate,
    ProblemIndicatorRule,
    logistic_baseline,
    problem_indicator_count,
)
from models._calibrate import Calibrator, fit_calibrator
from models._estimator import EscalationModel
from models._evaluate import fold_predictions
from models._examples import GroupsAsOf
from models._metrics import (
    calibration_table,
    capacity_k,
    expected_calibration_error,
    precision_recall_at_k,
    ranking_order,
    score_metrics,
    top_k_overlap,
)
from models._persist import ChampionModel, load_model, save_model
from models._plan import Fold, TrainingWindow, fold_plan, training_window
from models._reweighting import group_sample_weights
from models._score import (
    SCORE_COLUMNS,
    read_scores,
    score_features,
    score_households,
    write_scores,
)
from models._settings import MODEL_NAME, TrainSettings, settings_from_file, settings_from_mapping
from models._train import (
    HoldoutPredictions,
    TrainingOutcome,
    fit_and_evaluate,
    holdout_predictions,
)

__all__ = [
    "MODEL_NAME",
    "PROBLEM_INDICATORS",
    "SCORE_COLUMNS",
    "Calibrator",
    "ChampionModel",
    "EscalationModel",
    "Fold",
    "GroupsAsOf",
    "HoldoutPredictions",
    "PriorRate",
    "ProblemIndicatorRule",
    "TrainSettings",
    "TrainingOutcome",
    "TrainingWindow",
    "calibration_table",
    "capacity_k",
    "expected_calibration_error",
    "fit_and_evaluate",
    "fit_calibrator",
    "fold_plan",
    "fold_predictions",
    "group_sample_weights",
    "holdout_predictions",
    "load_model",
    "logistic_baseline",
    "precision_recall_at_k",
    "problem_indicator_count",
    "ranking_order",
    "read_scores",
    "save_model",
    "score_features",
    "score_households",
    "score_metrics",
    "settings_from_file",
    "settings_from_mapping",
    "top_k_overlap",
    "training_window",
    "write_scores",
]
