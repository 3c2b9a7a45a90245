"""The audit's statistics, from statsmodels and scipy: Wilson intervals, the pooled two-proportion
z-test, the delta-method test of a calibration ratio, and Holm's correction.

Every function takes and returns NaN where a figure cannot be computed (no trials), so the audit
table keeps one row per group whatever its size.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

CONFIDENCE = 0.95


def wilson_interval(successes: pd.Series, trials: pd.Series) -> tuple[pd.Series, pd.Series]:
    """95% Wilson score interval of a proportion (NaN where there are no trials)."""
    has_trials = trials > 0
    low = pd.Series(np.nan, index=trials.index)
    high = pd.Series(np.nan, index=trials.index)
    if has_trials.any():
        lower, upper = proportion_confint(
            successes[has_trials].to_numpy(dtype="float64"),
            trials[has_trials].to_numpy(dtype="float64"),
            alpha=1 - CONFIDENCE,
            method="wilson",
        )
        low[has_trials], high[has_trials] = lower, upper
    return low.clip(lower=0.0), high.clip(upper=1.0)


def two_proportion_p_values(
    hits: pd.Series, trials: pd.Series, reference_hits: float, reference_trials: float
) -> pd.Series:
    """Two-sided p-value of a pooled two-proportion z-test of each group against the reference.

    NaN where a group has no trials or the reference has none (e.g. no households selected);
    1 where both proportions are 0 or both are 1 (no spread and no gap).
    """
    p_values = pd.Series(np.nan, index=trials.index)
    if not reference_trials > 0:
        return p_values
    for index in trials.index[trials > 0]:
        count = np.array([hits[index], reference_hits], dtype="float64")
        observations = np.array([trials[index], reference_trials], dtype="float64")
        pooled = count.sum() / observations.sum()
        if pooled in (0.0, 1.0):
            p_values[index] = 1.0
            continue
        p_values[index] = proportions_ztest(count, observations)[1]
    return p_values


def calibration_p_values(rates: pd.DataFrame, reference_row: pd.Series) -> pd.Series:
    """Two-sided p-value that a group's predicted/observed ratio equals the reference's.

    On the log scale, with the delta method: the observed count O has variance sum p(1 - p)
    under the model, so log(E / O) has variance about sum p(1 - p) / O^2.
    """
    variance = rates["expected_variance"] / rates["positives"].where(rates["positives"] > 0) ** 2
    reference_variance = (
        reference_row["expected_variance"] / reference_row["positives"] ** 2
        if reference_row["positives"] > 0
        else np.nan
    )
    gap = np.log(rates["predicted_to_observed"]) - np.log(reference_row["predicted_to_observed"])
    z = gap.abs() / np.sqrt(variance + reference_variance)
    return pd.Series(2 * stats.norm.sf(z.to_numpy(dtype="float64")), index=rates.index)


def holm_adjusted(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment over the known p-values (NaN stays NaN)."""
    adjusted = np.array(p_values, dtype="float64")
    known = ~np.isnan(adjusted)
    if known.any():
        adjusted[known] = multipletests(adjusted[known], method="holm")[1]
    return adjusted
