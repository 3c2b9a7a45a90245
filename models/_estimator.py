"""The escalation model: gradient-boosted trees (LightGBM) plus a probability calibrator.

Trees are fitted on the older training dates, stopped early on half of the households of the
latest date and calibrated on the other half, so neither the stopping point nor the calibration
has seen the trees' own examples. Training is deterministic: fixed seed, fixed histogram
layout, fixed threads.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from features.contract import PROTECTED_COLUMNS
from models._calibrate import Calibrator, fit_calibrator

# Age is derived from birth_year; neither may reach the model under any name.
PROTECTED_FEATURE_MARKERS: tuple[str, ...] = (*PROTECTED_COLUMNS, "age")


def check_no_protected_features(feature_names: list[str]) -> None:
    """Refuse any feature named after a protected characteristic (fairness audit only)."""
    protected = [
        name
        for name in feature_names
        if any(f"_{marker}_" in f"_{name}_" for marker in PROTECTED_FEATURE_MARKERS)
    ]
    if protected:
        raise ValueError(f"protected characteristics cannot be model features: {protected}")


def feature_matrix(features: pd.DataFrame, feature_names: list[str]) -> np.ndarray:
    """The model's input: the named columns, in order, as float32 (training and scoring alike)."""
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise ValueError(f"feature frame lacks the model's features: {missing[:10]}")
    return np.ascontiguousarray(features[feature_names].to_numpy(dtype=np.float32))


class EscalationModel(ClassifierMixin, BaseEstimator):
    """LightGBM escalation classifier with calibrated probabilities (scikit-learn contract)."""

    def __init__(
        self,
        *,
        num_leaves: int = 15,
        learning_rate: float = 0.1,
        n_estimators: int = 400,
        early_stopping_rounds: int = 30,
        min_child_samples: int = 200,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.5,
        lambda_l2: float = 1.0,
        max_bin: int = 63,
        isotonic_min_class_count: int = 1000,
        num_threads: int = 2,
        seed: int = 0,
    ) -> None:
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.max_bin = max_bin
        self.isotonic_min_class_count = isotonic_min_class_count
        self.num_threads = num_threads
        self.seed = seed

    def lightgbm_params(self) -> dict[str, object]:
        """The booster parameters, fixed for reproducible training."""
        return {
            "objective": "binary",
            "metric": "binary_logloss",
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "lambda_l2": self.lambda_l2,
            "max_bin": self.max_bin,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }

    def fit(
        self,
        X: pd.DataFrame,
        y,
        *,
        X_valid: pd.DataFrame,
        y_valid,
        X_calib: pd.DataFrame,
        y_calib,
        sample_weight=None,
        valid_sample_weight=None,
        calib_sample_weight=None,
    ) -> EscalationModel:
        """Fit trees on (X, y), stop early on the validation set, calibrate on the third set.

        Each set may carry example weights (e.g. group reweighting against under-recorded
        groups). The training pipeline weights the trees and the stopping set but calibrates
        unweighted, so the risk shown to a manager stays the observed chance.
        """
        feature_names = [str(name) for name in X.columns]
        check_no_protected_features(feature_names)
        train_set = lgb.Dataset(
            feature_matrix(X, feature_names),
            label=np.asarray(y, dtype=np.float64),
            weight=_checked_weights(sample_weight, rows=len(X), what="sample_weight"),
            feature_name=feature_names,
            params={"max_bin": self.max_bin, "verbosity": -1},
        )
        valid_set = train_set.create_valid(
            feature_matrix(X_valid, feature_names),
            label=np.asarray(y_valid, dtype=np.float64),
            weight=_checked_weights(
                valid_sample_weight, rows=len(X_valid), what="valid_sample_weight"
            ),
        )
        booster = lgb.train(
            self.lightgbm_params(),
            train_set,
            num_boost_round=self.n_estimators,
            valid_sets=[valid_set],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        # Keep only the chosen trees, via the text form: fitted and reloaded models then agree.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(self.best_iteration_))
        self.feature_names_ = feature_names
        self.n_features_in_ = len(feature_names)
        self.classes_ = np.array([0, 1])
        self.calibrator_ = fit_calibrator(
            self.predict_raw(X_calib),
            np.asarray(y_calib),
            sample_weight=_checked_weights(
                calib_sample_weight, rows=len(X_calib), what="calib_sample_weight"
            ),
            isotonic_min_class_count=self.isotonic_min_class_count,
        )
        return self

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated booster scores (log-odds); the ranking score."""
        matrix = feature_matrix(X, self.feature_names_)
        return self.booster_.predict(matrix, raw_score=True, num_threads=self.num_threads)

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of escalation within the horizon."""
        return self.calibrator_.predict(self.predict_raw(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        risk = self.predict_risk(X)
        return np.column_stack([1.0 - risk, risk])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_risk(X) >= 0.5).astype(np.int64)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions (log-odds) per feature, plus the expected value column."""
        matrix = feature_matrix(X, self.feature_names_)
        values = self.booster_.predict(matrix, pred_contrib=True, num_threads=self.num_threads)
        return pd.DataFrame(values, index=X.index, columns=[*self.feature_names_, "expected_value"])

    def feature_importance(self) -> pd.DataFrame:
        """Total gain and split count per feature, largest gain first."""
        importance = pd.DataFrame(
            {
                "feature": self.feature_names_,
                "gain": self.booster_.feature_importance("gain"),
                "splits": self.booster_.feature_importance("split"),
            }
        )
        return importance.sort_values(["gain", "feature"], ascending=[False, True]).reset_index(
            drop=True
        )


def _checked_weights(weights, *, rows: int, what: str) -> np.ndarray | None:
    """Example weights as float64, refused unless one finite non-negative weight per row."""
    if weights is None:
        return None
    values = np.asarray(weights, dtype=np.float64).ravel()
    if len(values) != rows:
        raise ValueError(f"{what} has {len(values)} weights for {rows} examples")
    if not np.all(np.isfinite(values)) or values.min() < 0 or values.sum() <= 0:
        raise ValueError(f"{what} must be finite, non-negative and not all zero")
    return values


def restored_model(
    *, params: dict[str, object], booster_text: str, calibrator: Calibrator
) -> EscalationModel:
    """An EscalationModel rebuilt from its stored parts (booster text, calibrator, parameters)."""
    model = EscalationModel(**params)
    model.booster_ = lgb.Booster(model_str=booster_text)
    model.feature_names_ = list(model.booster_.feature_name())
    model.n_features_in_ = len(model.feature_names_)
    model.best_iteration_ = model.booster_.current_iteration()
    model.classes_ = np.array([0, 1])
    model.calibrator_ = calibrator
    return model
