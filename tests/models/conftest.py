"""Shared fixtures: a small synthetic city, models fitted on it once, and a fresh home per test.

The city comes from the project's own simulator (experiments.city), so the tests see the same kind
of data as the demo. Fitting is the slow part: the good and the deliberately weak outcome are
fitted once per session, and each test logs them into its own temporary REBALANCE_HOME.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.build import features_as_of, prepare_tables
from features.labels import build_labels
from models._templates import load_templates
from models.explain import explain_households


@pytest.fixture(scope="session")
def trained_outcome(fitted_outcome):
    return fitted_outcome


@pytest.fixture(scope="session")
def weak_outcome(weak_fitted_outcome):
    return weak_fitted_outcome


# --- explanations: a booster trained on three dates, features this week and last ----------------

AS_OF = pd.Timestamp("2025-06-30")
PREVIOUS = AS_OF - pd.Timedelta(days=7)
TRAIN_DATES = ("2024-06-03", "2024-09-02", "2024-12-02")
PARAMS = {
    "objective": "binary",
    "num_leaves": 15,
    "learning_rate": 0.1,
    "min_child_samples": 20,
    "max_bin": 63,
    "num_threads": 1,
    "seed": 0,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}
TEMPLATES = load_templates()


def calibrator(raw_score: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(0.8 * raw_score - 0.3)))


@pytest.fixture(scope="session")
def prepared(small_city):
    return prepare_tables(small_city)


@pytest.fixture(scope="session")
def training(small_city, prepared) -> tuple[pd.DataFrame, pd.Series]:
    frames = [features_as_of(prepared, as_of=date) for date in TRAIN_DATES]
    labels = [
        build_labels(small_city["events"], household_ids=frame.index, as_of=date)
        for frame, date in zip(frames, TRAIN_DATES, strict=True)
    ]
    return pd.concat(frames), pd.concat(labels)


def train_booster(training, *, rounds: int, **params) -> lgb.Booster:
    features, labels = training
    data = lgb.Dataset(features.to_numpy(np.float32), labels, feature_name=list(features.columns))
    return lgb.train(PARAMS | params, data, num_boost_round=rounds)


@pytest.fixture(scope="session")
def booster(training) -> lgb.Booster:
    return train_booster(training, rounds=60)


@pytest.fixture(scope="session")
def features_now(prepared) -> pd.DataFrame:
    return features_as_of(prepared, as_of=AS_OF)


@pytest.fixture(scope="session")
def features_before(prepared) -> pd.DataFrame:
    return features_as_of(prepared, as_of=PREVIOUS)


@pytest.fixture(scope="session")
def explained(booster, features_now, small_city) -> pd.DataFrame:
    return explain_households(
        booster=booster,
        features=features_now,
        tables=small_city,
        as_of=AS_OF,
        calibrator=calibrator,
    )
