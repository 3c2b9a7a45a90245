"""Does each reviewed main effect push the risk the expected way? (a table for the model card)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from features.build import ARREARS_TYPES, TREND_WEEKS
from features.contract import EVENT_TYPES
from models._attributions import feature_names_of, group_attributions, shap_attributions
from models._reason_groups import FEATURE_GROUPS


@dataclass(frozen=True)
class ExpectedEffect:
    """A reviewed expectation: the higher `measure`, the more `name` pushes the risk up
    (`direction` +1) or down (-1). `name` is a feature (its own SHAP value) or a reason group
    (the group's summed SHAP value: the main effect of the whole indicator)."""

    name: str
    measure: str
    direction: int


def _expected_effects() -> tuple[ExpectedEffect, ...]:
    balances = [f"{name}_balance_latest" for name in ARREARS_TYPES]
    rises = [f"{name}_change_{TREND_WEEKS}w" for name in ARREARS_TYPES]
    features = [ExpectedEffect(name, name, 1) for name in (*balances, *rises, "agencies_26w")]
    # Per indicator, not per window: given the 13-week count, a higher 52-week count means older
    # records, and the model may rightly weigh those less; the indicator as a whole should not.
    measures = {name: f"{name}_count_52w" for name in EVENT_TYPES}
    measures |= {name: f"{name}_balance_latest" for name in ARREARS_TYPES}
    measures["school_absence"] = "school_absence_sessions_52w"
    indicators = [ExpectedEffect(group, measure, 1) for group, measure in measures.items()]
    return (*features, *indicators, ExpectedEffect("agencies", "agencies_26w", 1))


# Reviewed: more arrears, rising arrears, more agencies and more records of any kind in the last
# year never lower the risk.
EXPECTED_EFFECTS: tuple[ExpectedEffect, ...] = _expected_effects()


def _spearman(values: np.ndarray, attributions: np.ndarray) -> float:
    """Spearman's rank correlation (scipy); NaN when either side is constant."""
    if np.unique(values).size < 2 or np.unique(attributions).size < 2:
        return float("nan")
    return float(spearmanr(values, attributions).statistic)


def _effect_row(effect: ExpectedEffect, values: np.ndarray, pushes: np.ndarray) -> dict:
    known = ~np.isnan(values)
    correlation = _spearman(values[known], pushes[known])
    status = "not tested"
    if not np.isnan(correlation):
        status = "pass" if effect.direction * correlation >= 0 else "fail"
    return {
        "name": effect.name,
        "level": "feature" if effect.name == effect.measure else "indicator",
        "measure": effect.measure,
        "expected": "higher, more risk" if effect.direction > 0 else "higher, less risk",
        "correlation": correlation,
        "rows": int(known.sum()),
        "status": status,
    }


def effect_direction_checks(
    *, booster, features: pd.DataFrame, attributions: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Does each reviewed main effect push risk the expected way? (a table for the model card)

    For each of EXPECTED_EFFECTS the model uses: the Spearman correlation between the measure's
    value (missing values left out) and the SHAP value of the feature or of the whole reason
    group, and its status: "pass" when the sign matches, "fail" when not, "not tested" when
    either never varies. A failure is for a person to look at before the model is promoted.
    """
    if attributions is None:
        attributions = shap_attributions(booster=booster, features=features)
    by_group = group_attributions(attributions)
    used = set(feature_names_of(booster))
    groups_used = {FEATURE_GROUPS[name] for name in used}
    rows = []
    for effect in EXPECTED_EFFECTS:
        pushes = attributions.get(effect.name) if effect.name in used else None
        if effect.name in groups_used and effect.name not in used:
            pushes = by_group[effect.name]
        if pushes is None or effect.measure not in features.columns:
            continue
        values = features[effect.measure].to_numpy(np.float64)
        rows.append(_effect_row(effect, values, pushes.to_numpy()))
    columns = ["name", "level", "measure", "expected", "correlation", "rows", "status"]
    return pd.DataFrame(rows, columns=columns)
