"""Exact TreeSHAP attributions of a LightGBM booster in log-odds, and the booster's input.

Per household the attributions add up, with the base value, to the booster's raw score. Many rows
go through our pattern engine (models._forest, models._patterns), which measured 4.7-25x faster
(median 16x) than LightGBM's own `pred_contrib` on the 110k model, with the same values to 2.4e-15
(docs/performance.md, issue 13); a handful of rows, or a model the engine cannot compile
(categorical splits), go to `pred_contrib`.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from models._forest import compiled_forest, iterations
from models._patterns import pattern_attributions
from models._reason_groups import GROUP_KEYS, group_contributions

BASE_VALUE = "base_value"
# Up to this many rows LightGBM's own pred_contrib is quicker than the pattern tables.
DIRECT_ROWS = 64
ATTRIBUTION_METHODS: tuple[str, ...] = ("auto", "patterns", "lightgbm")
_FEATURE_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def feature_names_of(booster) -> list[str]:
    """The booster's feature names (cached: LightGBM builds them afresh on every call)."""
    if booster not in _FEATURE_NAMES:
        _FEATURE_NAMES[booster] = tuple(booster.feature_name())
    return list(_FEATURE_NAMES[booster])


def model_input(features: pd.DataFrame, feature_names: list[str], *, booster=None) -> np.ndarray:
    """The booster's input: the named columns in order, as float32, as the model is trained and
    scored (models._estimator.feature_matrix), so attributions add up to the scores it gives.

    A pandas category column goes in as the code of its category among the categories the booster
    was trained with (`booster.pandas_categorical`, in column order), as LightGBM itself does when
    it predicts from a frame; an unknown category is missing. Without the booster, or when the
    columns do not match its training categories, a category column is refused by name.
    """
    missing = [name for name in feature_names if name not in features.columns]
    if missing:
        raise ValueError(f"the features lack the model's columns: {missing[:10]}")
    frame = features[feature_names]
    if has_categories(frame, booster):
        frame = frame.assign(**_category_codes(frame, booster))
    return frame.to_numpy(dtype=np.float32)


def _category_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name, dtype in frame.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)]


def has_categories(features: pd.DataFrame, booster) -> bool:
    """Whether the features hold a category column or the booster was trained with some."""
    trained = None if booster is None else booster.pandas_categorical
    # Over the distinct dtypes: a frame of 170 columns has two or three.
    return bool(trained) or any(isinstance(d, pd.CategoricalDtype) for d in set(features.dtypes))


def _category_codes(frame: pd.DataFrame, booster) -> dict[str, np.ndarray]:
    """Each category column as the codes of the booster's training categories (NaN if unknown)."""
    categorical = _category_columns(frame)
    if booster is None:
        raise ValueError(
            f"category column {categorical[0]!r}: its codes depend on the categories the model "
            "was trained with; pass the booster"
        )
    trained = booster.pandas_categorical or []
    if len(trained) != len(categorical):
        raise ValueError(
            f"the model was trained with {len(trained)} pandas category columns, the features "
            f"have {len(categorical)} ({categorical}): a category column must stay one, or its "
            "splits would be read at the wrong codes"
        )
    codes = {}
    for name, categories in zip(categorical, trained, strict=True):
        code = frame[name].cat.set_categories(categories).cat.codes.to_numpy()
        codes[name] = np.where(code >= 0, code, np.nan)
    return codes


def attribution_matrix(booster, matrix: np.ndarray, *, method: str = "auto") -> np.ndarray:
    """(rows x features + 1) exact TreeSHAP values, the last column the base value."""
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"method must be one of {ATTRIBUTION_METHODS}, got {method!r}")
    direct = method == "lightgbm" or (method == "auto" and len(matrix) <= DIRECT_ROWS)
    forest = None if direct else compiled_forest(booster)
    if method == "patterns" and forest is None:
        raise ValueError("this booster has categorical splits, linear leaves or huge leaf paths")
    if forest is not None:
        return pattern_attributions(forest, matrix)
    # One thread for a few rows: waking a thread pool costs more than the work.
    threads = {"num_threads": 1} if len(matrix) <= DIRECT_ROWS else {}
    return booster.predict(
        np.ascontiguousarray(matrix),
        pred_contrib=True,
        num_iteration=iterations(booster),
        **threads,
    )


def shap_attributions(*, booster, features: pd.DataFrame, method: str = "auto") -> pd.DataFrame:
    """Exact TreeSHAP attributions in log-odds, one row per household, plus BASE_VALUE.

    Each row (base value included) sums to the booster's raw score for that household.
    """
    feature_names = feature_names_of(booster)
    matrix = model_input(features, feature_names, booster=booster)
    values = attribution_matrix(booster, matrix, method=method)
    return pd.DataFrame(values, index=features.index, columns=[*feature_names, BASE_VALUE])


def group_attributions(attributions: pd.DataFrame) -> pd.DataFrame:
    """Attributions summed per reason group (households x groups, in template order); the base
    value is left out. A group's sum is the contribution its reason reports."""
    names = [name for name in attributions.columns if name != BASE_VALUE]
    by_group = group_contributions(attributions[names].to_numpy(), names)
    return pd.DataFrame(by_group, index=attributions.index, columns=list(GROUP_KEYS))
