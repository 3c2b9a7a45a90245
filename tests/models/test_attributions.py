"""Exact TreeSHAP attributions: the pattern engine against LightGBM and shap, split edges,
categorical splits and category columns, group sums."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from experiments.shap_plots import reference_shap_values
from models.explain import (
    BASE_VALUE,
    attribution_matrix,
    explain_household,
    explain_households,
    group_attributions,
    model_input,
    shap_attributions,
)
from tests.models.conftest import AS_OF, PARAMS, TEMPLATES, train_booster

# --- exact TreeSHAP ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patterns", "lightgbm", "auto"])
def test_attributions_add_up_to_the_raw_score(booster, features_now, method):
    attributions = shap_attributions(booster=booster, features=features_now, method=method)
    raw = booster.predict(features_now[booster.feature_name()].to_numpy(np.float32), raw_score=True)
    assert np.abs(attributions.sum(axis=1).to_numpy() - raw).max() < 1e-6
    assert attributions[BASE_VALUE].nunique() == 1


def test_pattern_engine_equals_lightgbm_treeshap(booster, features_now):
    matrix = features_now[booster.feature_name()].to_numpy(np.float32)
    fast = attribution_matrix(booster, matrix, method="patterns")
    reference = booster.predict(matrix, pred_contrib=True)
    assert np.abs(fast - reference).max() < 1e-9


def test_pattern_engine_equals_shap_tree_explainer(booster, features_now):
    rows = features_now.iloc[::5]
    reference, expected_value = reference_shap_values(booster, rows)
    fast = shap_attributions(booster=booster, features=rows, method="patterns")
    assert np.abs(fast[booster.feature_name()].to_numpy() - reference).max() < 1e-6
    assert fast[BASE_VALUE].iloc[0] == pytest.approx(expected_value, abs=1e-9)


def _thresholds(booster) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}

    def walk(node):
        if "split_index" in node:
            found.setdefault(node["split_feature"], []).append(node["threshold"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return found


def _edge_rows(booster, n_rows: int, seed: int) -> np.ndarray:
    """Rows whose values sit exactly on, just beside, or far from split thresholds, plus NaN,
    0, -0 and values inside LightGBM's zero band: where an inexact engine would go wrong."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0, 50, size=(n_rows, booster.num_feature()))
    for feature, thresholds in _thresholds(booster).items():
        edges = np.array(thresholds)
        candidates = np.concatenate(
            [
                edges,
                np.nextafter(edges, np.inf),
                np.nextafter(edges, -np.inf),
                [np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-30],
            ]
        )
        chosen = rng.random(n_rows) < 0.8
        matrix[chosen, feature] = rng.choice(candidates, chosen.sum())
    return matrix


@pytest.mark.parametrize("missing", ["default", "zero_as_missing"])
def test_pattern_engine_is_exact_on_split_edges(booster, training, missing):
    model = (
        booster
        if missing == "default"
        else train_booster(training, rounds=20, zero_as_missing=True)
    )
    matrix = _edge_rows(model, 600, seed=1)
    fast = attribution_matrix(model, matrix, method="patterns")
    assert np.abs(fast - model.predict(matrix, pred_contrib=True)).max() < 1e-9
    assert np.abs(fast.sum(axis=1) - model.predict(matrix, raw_score=True)).max() < 1e-9


def test_categorical_splits_fall_back_to_lightgbm():
    rng = np.random.default_rng(0)
    matrix = np.column_stack([rng.integers(0, 5, 2000), rng.normal(size=2000)])
    labels = (matrix[:, 0] == 3) ^ (rng.random(2000) < 0.1)
    data = lgb.Dataset(matrix, labels, categorical_feature=[0], params={"verbosity": -1})
    model = lgb.train(PARAMS | {"min_child_samples": 5}, data, num_boost_round=5)
    with pytest.raises(ValueError, match="categorical"):
        attribution_matrix(model, matrix, method="patterns")
    auto = attribution_matrix(model, matrix)
    assert np.abs(auto.sum(axis=1) - model.predict(matrix, raw_score=True)).max() < 1e-6


def _categorical_model(rows: int = 2000) -> tuple[lgb.Booster, pd.DataFrame]:
    """A model trained on a frame whose category column holds integers other than their codes
    (categories 10..50 are codes 0..4)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "tenure": pd.Categorical(rng.choice([10, 20, 30, 40, 50], rows)),
            "x": rng.normal(size=rows),
        }
    )
    labels = (frame["tenure"].astype(int) == 40) ^ (rng.random(rows) < 0.1)
    data = lgb.Dataset(frame, labels, params={"verbosity": -1})
    return lgb.train(PARAMS | {"min_child_samples": 5}, data, num_boost_round=5), frame


@pytest.mark.parametrize("method", ["auto", "lightgbm"])
def test_integer_categories_are_explained_at_their_training_codes(method):
    model, frame = _categorical_model()
    attributions = shap_attributions(booster=model, features=frame, method=method)
    reference = model.predict(frame, pred_contrib=True)
    assert np.abs(attributions.to_numpy() - reference).max() < 1e-9
    raw = model.predict(frame, raw_score=True)
    assert np.abs(attributions.sum(axis=1).to_numpy() - raw).max() < 1e-9
    # A category the model never saw is missing, as LightGBM reads it.
    unseen = frame.assign(tenure=pd.Categorical([60] * len(frame)))
    unseen_raw = model.predict(unseen, raw_score=True)
    unseen_sums = shap_attributions(booster=model, features=unseen).sum(axis=1).to_numpy()
    assert np.abs(unseen_sums - unseen_raw).max() < 1e-9


def test_category_columns_the_model_does_not_know_are_refused_by_name():
    model, frame = _categorical_model()
    with pytest.raises(ValueError, match="category columns.*tenure"):
        shap_attributions(booster=model, features=frame.assign(x=frame["x"].astype("category")))
    with pytest.raises(ValueError, match="trained with 1 pandas category columns"):
        shap_attributions(booster=model, features=frame.astype({"tenure": int}))
    numeric = lgb.train(PARAMS, lgb.Dataset(frame.astype({"tenure": int}), frame["x"] > 0), 2)
    with pytest.raises(ValueError, match="tenure"):
        shap_attributions(booster=numeric, features=frame)
    with pytest.raises(ValueError, match="category column 'tenure'.*pass the booster"):
        model_input(frame, ["tenure", "x"])


def _split_kinds(model: lgb.Booster, feature: int) -> set[str]:
    kinds = set()

    def walk(node):
        if "split_index" in node:
            if node["split_feature"] == feature:
                kinds.add(node["decision_type"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return kinds


def test_a_household_with_a_category_feature_matches_the_batch(training, features_now, small_city):
    features, labels = training
    # Categories in reverse, so that no code equals its value.
    reversed_codes = pd.CategoricalDtype(sorted(features["agencies_26w"].unique(), reverse=True))
    frame = features.astype({"agencies_26w": reversed_codes})
    model = lgb.train(PARAMS, lgb.Dataset(frame, labels), num_boost_round=20)
    assert _split_kinds(model, model.feature_name().index("agencies_26w")) == {"=="}
    now = features_now.astype({"agencies_26w": reversed_codes})
    batch = explain_households(booster=model, features=now, tables=small_city, as_of=AS_OF)
    expected = 1 / (1 + np.exp(-model.predict(now[model.feature_name()], raw_score=True)))
    assert np.abs(batch["risk"].to_numpy() - expected).max() < 1e-9
    assert batch["reasons"].str.contains("agenc").any()
    for household_id in now.index[now["agencies_26w"].astype(float) > 1][:3]:
        one = explain_household(
            booster=model, household_id=household_id, features=now, records=small_city, as_of=AS_OF
        )
        row = batch.set_index("household_id").loc[household_id]
        assert one["risk"] == pytest.approx(row["risk"], abs=1e-12)
        shown = TEMPLATES.separator.join(reason["text"] for reason in one["reasons"])
        assert (shown or one["no_strong_reason"]) == row["reasons"]


def test_group_contribution_is_the_sum_of_its_features(booster, features_now):
    attributions = shap_attributions(booster=booster, features=features_now)
    by_group = group_attributions(attributions)
    police = [name for name in booster.feature_name() if name.startswith("police_callout_")]
    assert np.allclose(by_group["police_callout"], attributions[police].sum(axis=1))
    assert np.allclose(by_group.sum(axis=1) + attributions[BASE_VALUE], attributions.sum(axis=1))
