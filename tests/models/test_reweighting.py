"""Reweighting as a training mitigation: example weights in the estimator and weights by group."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from models import EscalationModel, TrainSettings
from models._examples import Examples, FeatureCache, TrainingData
from models._reweighting import example_weights

FAST = {"n_estimators": 30, "early_stopping_rounds": 10, "num_threads": 1, "min_child_samples": 20}


# --- sample weights in the estimator ---------------------------------------------------------


def _data(rows: int, *, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {"arrest_count_52w": rng.poisson(0.7, rows), "agencies_26w": rng.integers(0, 5, rows)}
    )
    signal = 0.8 * features["arrest_count_52w"] + 0.4 * features["agencies_26w"] - 3.0
    return features, (rng.random(rows) < 1 / (1 + np.exp(-signal))).astype(int)


def _fit(**weights) -> EscalationModel:
    (X, y), (X_valid, y_valid), (X_calib, y_calib) = (
        _data(n, seed=s) for n, s in [(3000, 1), (800, 2), (2000, 3)]
    )
    return EscalationModel(**FAST).fit(
        X, y, X_valid=X_valid, y_valid=y_valid, X_calib=X_calib, y_calib=y_calib, **weights
    )


def test_sample_weights_change_what_the_trees_learn():
    X, y = _data(3000, seed=1)
    plain = _fit()
    # Positives count five times: the trees' raw scores rise everywhere.
    heavier = _fit(sample_weight=np.where(y == 1, 5.0, 1.0))
    assert heavier.predict_raw(X).mean() > plain.predict_raw(X).mean() + 0.5
    same = _fit(sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(same.predict_raw(X), plain.predict_raw(X))


def test_weighted_calibration_equals_calibration_on_repeated_examples():
    X_calib, y_calib = _data(2000, seed=3)
    weights = np.where(np.arange(len(y_calib)) % 2 == 0, 2.0, 1.0)
    weighted = _fit(calib_sample_weight=weights)
    repeated = EscalationModel(**FAST)
    X, y = _data(3000, seed=1)
    X_valid, y_valid = _data(800, seed=2)
    twice = np.repeat(np.arange(len(y_calib)), weights.astype(int))
    repeated.fit(
        X,
        y,
        X_valid=X_valid,
        y_valid=y_valid,
        X_calib=X_calib.iloc[twice],
        y_calib=y_calib[twice],
    )
    grid = np.linspace(-4, 2, 50)
    np.testing.assert_allclose(
        weighted.calibrator_.predict(grid), repeated.calibrator_.predict(grid), atol=1e-6
    )


def test_bad_weights_are_refused():
    y = _data(3000, seed=1)[1]
    with pytest.raises(ValueError, match="sample_weight has 10 weights for 3000 examples"):
        _fit(sample_weight=np.ones(10))
    with pytest.raises(ValueError, match="non-negative"):
        _fit(sample_weight=np.where(y == 1, -1.0, 1.0))


# --- reweighting by group ---------------------------------------------------------------


def _training_data(groups: pd.Series) -> TrainingData:
    ids = pd.Index(groups.index.astype("str"))
    cache = FeatureCache(household_ids=ids, feature_names=[], matrices={})
    return TrainingData(cache=cache, crisis_events=None, roles=None, workers=None, cases=None)


def test_reweighting_makes_group_and_outcome_independent_at_full_strength():
    # Group a: 600 examples, 20% escalate; group b: 400 examples, 5% escalate.
    group = pd.Series(["a"] * 600 + ["b"] * 400, index=[f"H{i:04d}" for i in range(1000)])
    labels = np.r_[np.ones(120), np.zeros(480), np.ones(20), np.zeros(380)].astype(int)
    data = _training_data(group)
    examples = Examples(matrix=np.zeros((1000, 0)), labels=labels, households=np.arange(1000))
    groups = pd.DataFrame({"household_id": group.index, "ethnicity": group.to_numpy()})
    settings = TrainSettings(reweight_attribute="ethnicity")
    weights = example_weights(data, examples, groups=groups, settings=settings)
    assert weights.mean() == pytest.approx(1.0)
    # P(g) P(y) / P(g, y): b's escalations weigh 0.4 * 0.14 / 0.02 = 2.8 (before the mean-1
    # rescaling, which here is exact: the weights already average 1).
    assert weights[600] == pytest.approx(0.4 * 0.14 / 0.02)
    assert weights[0] == pytest.approx(0.6 * 0.14 / 0.12)
    positive_share = {
        name: weights[(group == name).to_numpy() & (labels == 1)].sum()
        / weights[(group == name).to_numpy()].sum()
        for name in ("a", "b")
    }
    assert positive_share["a"] == pytest.approx(positive_share["b"]) == pytest.approx(0.14)
    tempered = example_weights(
        data, examples, groups=groups, settings=dataclasses.replace(settings, reweight_strength=0.5)
    )
    expected = np.sqrt(weights) / np.sqrt(weights).mean()
    np.testing.assert_allclose(tempered, expected)
    off = dataclasses.replace(settings, reweight_strength=0.0)
    np.testing.assert_allclose(example_weights(data, examples, groups=groups, settings=off), 1.0)


def test_reweighting_settings_are_checked():
    with pytest.raises(ValueError, match="reweight_attribute must be one of"):
        TrainSettings(reweight_attribute="religion")
    with pytest.raises(ValueError, match="reweight_strength"):
        TrainSettings(reweight_attribute="age_band", reweight_strength=2.0)
