"""The household escalation model: temporal validation, calibration, baselines, metrics, scoring.

Train (`train`: every run is audited for bias), promote (`promote`: the fairness gate among the
others) and score with the champion (`load_champion`,
`score_households`, `write_scores`). The pieces (estimator, temporal plan, metrics, baselines,
gates) are exported for notebooks, benchmarks and tests. Reasons and needs: models.explain.
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
from models._gates import PROMOTION_GATES, Gate, GateResult, evaluate_gates, promotion_gates
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
from models._registry import (
    PromotionDecision,
    TrainResult,
    governance_dir,
    load_champion,
    log_outcome,
    promote,
    train,
)
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
    fold_predictions,
    holdout_predictions,
)

__all__ = [
    "MODEL_NAME",
    "PROBLEM_INDICATORS",
    "PROMOTION_GATES",
    "SCORE_COLUMNS",
    "Calibrator",
    "ChampionModel",
    "EscalationModel",
    "Fold",
    "Gate",
    "GateResult",
    "HoldoutPredictions",
    "PriorRate",
    "ProblemIndicatorRule",
    "PromotionDecision",
    "TrainResult",
    "TrainSettings",
    "TrainingOutcome",
    "TrainingWindow",
    "calibration_table",
    "capacity_k",
    "evaluate_gates",
    "expected_calibration_error",
    "fit_and_evaluate",
    "fit_calibrator",
    "fold_plan",
    "fold_predictions",
    "governance_dir",
    "holdout_predictions",
    "load_champion",
    "load_model",
    "log_outcome",
    "logistic_baseline",
    "precision_recall_at_k",
    "problem_indicator_count",
    "promote",
    "promotion_gates",
    "ranking_order",
    "read_scores",
    "save_model",
    "score_features",
    "score_households",
    "score_metrics",
    "settings_from_file",
    "settings_from_mapping",
    "top_k_overlap",
    "train",
    "training_window",
    "write_scores",
]
