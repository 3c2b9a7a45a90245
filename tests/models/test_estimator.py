"""The estimator: deterministic fits, exact save/load, calibration choice, no protected features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import EscalationModel, fit_calibrator, load_model, save_model
from models._calibrate import choose_calibration_method

FAST = {"n_estimators": 40, "early_stopping_rounds": 10, "num_threads": 1, "min_child_samples": 20}


def _data(rows: int, *, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {
            "arrest_count_52w": rng.poisson(0.5, rows),
            "rent_arrears_balance_latest": np.where(
                rng.random(rows) < 0.3, rng.gamma(2, 300, rows), np.nan
            ),
            "agencies_26w": rng.integers(0, 5, rows),
            "children": rng.integers(0, 4, rows),
        }
    )
    signal = (
        0.8 * features["arrest_count_52w"]
        + 0.002 * features["rent_arrears_balance_latest"].fillna(0)
        + 0.5 * features["agencies_26w"]
        - 3.0
    )
    labels = (rng.random(rows) < 1 / (1 + np.exp(-signal))).astype(int)
    return features, labels


def _fitted(seed: int = 0, **params) -> EscalationModel:
    X, y = _data(3000, seed=1)
    X_valid, y_valid = _data(800, seed=2)
    X_calib, y_calib = _data(800, seed=3)
    return EscalationModel(**(FAST | params), seed=seed).fit(
        X, y, X_valid=X_valid, y_valid=y_valid, X_calib=X_calib, y_calib=y_calib
    )


def test_same_data_and_seed_give_identical_models():
    X, _ = _data(500, seed=9)
    first, second = _fitted(), _fitted()
    assert first.booster_.model_to_string() == second.booster_.model_to_string()
    np.testing.assert_array_equal(first.predict_risk(X), second.predict_risk(X))


def test_a_saved_model_scores_exactly_like_the_fitted_one(tmp_path):
    model = _fitted()
    X, _ = _data(500, seed=9)
    save_model(model, tmp_path / "model", horizon_weeks=26)
    loaded, metadata = load_model(tmp_path / "model")
    np.testing.assert_array_equal(loaded.predict_raw(X), model.predict_raw(X))
    np.testing.assert_array_equal(loaded.predict_risk(X), model.predict_risk(X))
    pd.testing.assert_frame_equal(loaded.contributions(X), model.contributions(X))
    assert loaded.feature_names_ == model.feature_names_
    assert metadata["horizon_weeks"] == 26


def test_scoring_reorders_columns_by_name_and_refuses_missing_ones():
    model = _fitted()
    X, _ = _data(200, seed=9)
    np.testing.assert_array_equal(model.predict_raw(X[X.columns[::-1]]), model.predict_raw(X))
    with pytest.raises(ValueError, match="agencies_26w"):
        model.predict_raw(X.drop(columns="agencies_26w"))


def test_contributions_add_up_to_the_raw_score():
    model = _fitted()
    X, _ = _data(300, seed=9)
    np.testing.assert_allclose(
        model.contributions(X).sum(axis=1), model.predict_raw(X), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("protected", ["birth_year", "sex_female", "ethnicity_asian", "age"])
def test_protected_characteristics_are_refused_as_features(protected):
    X, y = _data(300, seed=1)
    with pytest.raises(ValueError, match="protected"):
        EscalationModel(**FAST).fit(
            X.assign(**{protected: 1}), y, X_valid=X, y_valid=y, X_calib=X, y_calib=y
        )


def test_calibration_method_follows_the_size_of_the_smaller_class():
    few_events = np.array([1] * 999 + [0] * 50_000)
    many_events = np.array([1] * 1000 + [0] * 1000)
    assert choose_calibration_method(few_events, isotonic_min_class_count=1000) == "sigmoid"
    assert choose_calibration_method(many_events, isotonic_min_class_count=1000) == "isotonic"


@pytest.mark.parametrize("minimum", [10, 10_000])
def test_calibrators_are_monotone_probabilities(minimum):
    rng = np.random.default_rng(0)
    raw = rng.normal(size=5000)
    labels = (rng.random(5000) < 1 / (1 + np.exp(-(2 * raw - 2)))).astype(int)
    calibrator = fit_calibrator(raw, labels, isotonic_min_class_count=minimum)
    grid = np.linspace(-6, 6, 500)
    risk = calibrator.predict(grid)
    assert calibrator.method == ("isotonic" if minimum == 10 else "sigmoid")
    assert np.all(np.diff(risk) >= 0)
    assert risk.min() >= 0 and risk.max() <= 1
    assert abs(calibrator.predict(raw).mean() - labels.mean()) < 0.01
