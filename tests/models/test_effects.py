"""The reviewed effect directions for the model card."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.explain import (
    effect_direction_checks,
)
from tests.models.conftest import PARAMS

# --- model card: effect directions and global plots ----------------------------------------------


def test_effect_direction_checks_flag_a_reversed_effect():
    rng = np.random.default_rng(0)
    arrears = rng.gamma(2.0, 400.0, 4000)
    # A (wrong) model that learned "more arrears, less risk".
    labels = rng.random(4000) < 0.5 / (1 + arrears / 300)
    features = pd.DataFrame(
        {"rent_arrears_balance_latest": arrears, "adults": rng.integers(1, 4, 4000)}
    )
    data = lgb.Dataset(features.to_numpy(), labels, feature_name=list(features.columns))
    model = lgb.train(PARAMS, data, num_boost_round=30)
    table = effect_direction_checks(booster=model, features=features).set_index("name")
    assert table.loc["rent_arrears_balance_latest", "status"] == "fail"
    assert table.loc["rent_arrears_balance_latest", "correlation"] < 0
    assert table.loc["rent_arrears", "level"] == "indicator"
    assert table.loc["rent_arrears", "status"] == "fail"
    assert "adults" not in table.index  # not on the reviewed list


def test_effect_direction_checks_on_the_model(booster, features_now):
    table = effect_direction_checks(booster=booster, features=features_now)
    assert set(table["status"]) <= {"pass", "fail", "not tested"}
    tested = table.loc[table["status"] != "not tested"]
    signs = np.where(tested["expected"] == "higher, more risk", 1, -1)
    assert ((signs * tested["correlation"] >= 0) == (tested["status"] == "pass")).all()
    assert {"feature", "indicator"} <= set(tested["level"])
    police = table.set_index("name").loc["police_callout"]
    assert police["measure"] == "police_callout_count_52w"
