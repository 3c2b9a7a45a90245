"""The bias audit: error rates at the top-k cut-off by household group, against a reference group.

Early help is assistive: the harm a risk score can do a group is to leave its households in need
unseen, so the audit centres on false negatives at the capacity cut-off k (the households key
workers can actually take) rather than on who is selected. Every rate is compared with a reference
group, by default the largest known group of the attribute. Nothing here modifies its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from experiments.fairness._statistics import (
    calibration_p_values,
    two_proportion_p_values,
    wilson_interval,
)
from features.groups import AUDIT_ATTRIBUTES, UNKNOWN, require_columns

GATE_METRICS: tuple[str, ...] = (
    "false_negative_rate",
    "recall_at_k",
    "selection_rate",
    "precision_at_k",
    "predicted_to_observed",
)
METRIC_LABELS: dict[str, str] = {
    "false_negative_rate": "false negative rate",
    "recall_at_k": "recall at k",
    "selection_rate": "selection rate",
    "precision_at_k": "precision at k",
    "predicted_to_observed": "predicted to observed",
}
PREDICTION_COLUMNS: tuple[str, ...] = ("household_id", "score", "label")
# Optional: the score the product ranks by (the booster's raw log-odds); `score` when absent.
RANK_COLUMN = "rank_score"
_LOGIT_CLIP = 1e-6


def bias_audit(
    *,
    predictions: pd.DataFrame,
    groups: pd.DataFrame,
    k: int | float,
    reference: str | Mapping[str, str] = "largest",
    attributes: Sequence[str] = AUDIT_ATTRIBUTES,
) -> pd.DataFrame:
    """Error rates at the top-k cut-off by group, and each group's ratio to its reference group.

    predictions: household_id, score (calibrated risk), label (1 = escalated) and optionally
    rank_score (what the list is ranked by, e.g. the booster's raw score; else score). k: the
    number of households selected, or a fraction of them when 0 < k < 1. Ties at the cut-off are
    broken by household_id. reference: "largest" (the largest group other than "unknown") or a
    mapping of attribute -> reference group. One row per attribute and group, largest first.
    """
    check_predictions(predictions)
    require_columns(groups, table="groups", columns=("household_id", *attributes))
    selected = selected_at_k(predictions, k=k_count(k, households=len(predictions)))
    scored = selected.merge(
        groups[["household_id", *attributes]], on="household_id", how="left", validate="1:1"
    )
    check_groups_cover(scored, attributes=attributes)
    frames = [
        attribute_audit(scored, attribute=attribute, reference=reference)
        for attribute in attributes
    ]
    return pd.concat(frames, ignore_index=True).assign(k=int(selected["selected"].sum()))


def k_count(k: int | float, *, households: int) -> int:
    """The number of households selected: k itself, or round(k * households) (at least 1)."""
    if isinstance(k, bool) or not isinstance(k, int | float | np.integer | np.floating):
        raise ValueError(f"k must be a number of households or a fraction, not {k!r}")
    if 0 < k < 1:
        # The same rounding as the training metrics' top-fraction lists, so the figures agree.
        return max(1, int(round(k * households)))
    if k < 1 or k != int(k) or k > households:
        raise ValueError(
            f"k must be a fraction in (0, 1) or a whole number 1..{households}, not {k}"
        )
    return int(k)


def selected_at_k(predictions: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """Predictions in ranking order with a `selected` flag for the top k, ties by household_id.

    The ranking is `rank_score` when given (as the weekly list ranks), else `score`; `log_odds`
    is the ranking on the log-odds scale, where group-aware cut-offs are set.
    """
    ranking = predictions[RANK_COLUMN] if RANK_COLUMN in predictions else predictions["score"]
    log_odds = ranking if RANK_COLUMN in predictions else logit(predictions["score"])
    ordered = (
        predictions[list(PREDICTION_COLUMNS)]
        .assign(ranking=ranking.astype("float64"), log_odds=np.asarray(log_odds, dtype="float64"))
        .sort_values(["ranking", "household_id"], ascending=[False, True], ignore_index=True)
    )
    label = ordered["label"].astype("int64")
    return ordered.assign(label=label, selected=np.arange(len(ordered)) < k)


def attribute_audit(
    scored: pd.DataFrame, *, attribute: str, reference: str | Mapping[str, str]
) -> pd.DataFrame:
    """The audit rows of one attribute, largest group first."""
    counts = (
        scored.assign(
            hit=scored["selected"] & (scored["label"] == 1),
            score_variance=scored["score"] * (1 - scored["score"]),
        )
        .groupby(attribute, sort=True)
        .agg(
            households=("household_id", "size"),
            positives=("label", "sum"),
            selected=("selected", "sum"),
            true_positives=("hit", "sum"),
            mean_predicted=("score", "mean"),
            expected_variance=("score_variance", "sum"),
        )
        .rename_axis("group")
        .reset_index()
        .sort_values(["households", "group"], ascending=[False, True], ignore_index=True)
    )
    reference_group = _reference_group(counts, attribute=attribute, reference=reference)
    rates = _group_rates(counts)
    return _with_ratios(rates, reference_group=reference_group).assign(attribute=attribute)[
        _AUDIT_COLUMNS
    ]


def _group_rates(counts: pd.DataFrame) -> pd.DataFrame:
    households = counts["households"].astype("float64")
    positives = counts["positives"].astype("float64")
    selected = counts["selected"].astype("float64")
    hits = counts["true_positives"].astype("float64")
    recall = hits / positives.where(positives > 0)
    low, high = wilson_interval(hits, positives)
    base_rate = positives / households
    return counts.assign(
        group=counts["group"].astype("str"),
        base_rate=base_rate,
        selection_rate=selected / households,
        false_negatives=counts["positives"] - counts["true_positives"],
        false_negative_rate=1.0 - recall,
        recall_at_k=recall,
        recall_at_k_low=low,
        recall_at_k_high=high,
        precision_at_k=hits / selected.where(selected > 0),
        calibration_gap=counts["mean_predicted"] - base_rate,
        predicted_to_observed=counts["mean_predicted"] / base_rate.where(positives > 0),
    )


# Each gated rate as successes / trials, for its two-proportion test against the reference.
_RATE_PARTS: dict[str, tuple[str, str]] = {
    "false_negative_rate": ("false_negatives", "positives"),
    "recall_at_k": ("true_positives", "positives"),
    "selection_rate": ("selected", "households"),
    "precision_at_k": ("true_positives", "selected"),
}


def _with_ratios(rates: pd.DataFrame, *, reference_group: str) -> pd.DataFrame:
    is_reference = rates["group"] == reference_group
    reference_row = rates.loc[is_reference].iloc[0]
    ratios = {
        f"{metric}_ratio": _ratio(rates[metric], float(reference_row[metric]))
        for metric in ("base_rate", *GATE_METRICS)
    }
    p_values = {
        f"{metric}_p_value": two_proportion_p_values(
            rates[hits], rates[trials], float(reference_row[hits]), float(reference_row[trials])
        )
        for metric, (hits, trials) in _RATE_PARTS.items()
    }
    p_values["predicted_to_observed_p_value"] = calibration_p_values(rates, reference_row)
    return rates.assign(
        reference_group=reference_group, is_reference=is_reference, **ratios, **p_values
    )


def _ratio(values: pd.Series, reference_value: float) -> pd.Series:
    """values / reference, with 0 / 0 read as parity (1.0) and x / 0 as infinity."""
    if np.isnan(reference_value):
        return pd.Series(np.nan, index=values.index)
    if reference_value == 0:
        ratio = pd.Series(np.where(values > 0, np.inf, np.nan), index=values.index)
        return ratio.mask((values == 0) & (reference_value == 0), 1.0)
    return values / reference_value


def _reference_group(
    counts: pd.DataFrame, *, attribute: str, reference: str | Mapping[str, str]
) -> str:
    if isinstance(reference, Mapping):
        if attribute not in reference:
            return _reference_group(counts, attribute=attribute, reference="largest")
        chosen = str(reference[attribute])
        if chosen not in set(counts["group"].astype("str")):
            raise ValueError(f"reference group {attribute}={chosen} is not in the audited data")
        return chosen
    if reference != "largest":
        raise ValueError(f'reference must be "largest" or a mapping, not {reference!r}')
    known = counts.loc[counts["group"] != UNKNOWN]
    return str((known if len(known) else counts)["group"].iloc[0])


def check_predictions(predictions: pd.DataFrame) -> None:
    require_columns(predictions, table="predictions", columns=PREDICTION_COLUMNS)
    if len(predictions) == 0:
        raise ValueError("predictions: no rows to audit")
    problems = {
        "household_id": predictions["household_id"].isna()
        | predictions["household_id"].duplicated(),
        "score": ~pd.to_numeric(predictions["score"], errors="coerce").between(0.0, 1.0),
        "label": ~predictions["label"].isin([0, 1]),
    }
    if RANK_COLUMN in predictions:
        rank_score = pd.to_numeric(predictions[RANK_COLUMN], errors="coerce")
        problems[RANK_COLUMN] = ~np.isfinite(rank_score.to_numpy(dtype="float64"))
    expectations = {
        "household_id": "a unique household_id",
        "score": "a probability between 0 and 1",
        "label": "0 or 1",
        RANK_COLUMN: "a finite number",
    }
    for column, bad in problems.items():
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 1
            expected = expectations[column]
            raise ValueError(
                f"predictions row {row}, column {column}: expected {expected} "
                f"({int(bad.sum())} such rows)"
            )


def check_groups_cover(scored: pd.DataFrame, *, attributes: Sequence[str]) -> None:
    missing = scored[list(attributes)].isna().any(axis=1)
    if missing.any():
        raise ValueError(
            f"groups: {int(missing.sum())} predicted households have no group "
            f"(first: {scored.loc[missing, 'household_id'].iloc[0]!r}); derive groups for the "
            "same households as the predictions"
        )


_AUDIT_COLUMNS: list[str] = [
    "attribute",
    "group",
    "reference_group",
    "is_reference",
    "households",
    "positives",
    "base_rate",
    "selected",
    "selection_rate",
    "true_positives",
    "false_negatives",
    "false_negative_rate",
    "recall_at_k",
    "recall_at_k_low",
    "recall_at_k_high",
    "precision_at_k",
    "mean_predicted",
    "calibration_gap",
    "predicted_to_observed",
    "base_rate_ratio",
    "selection_rate_ratio",
    "false_negative_rate_ratio",
    "recall_at_k_ratio",
    "precision_at_k_ratio",
    "predicted_to_observed_ratio",
    "false_negative_rate_p_value",
    "recall_at_k_p_value",
    "selection_rate_p_value",
    "precision_at_k_p_value",
    "predicted_to_observed_p_value",
]


def logit(probability) -> np.ndarray:
    clipped = np.clip(np.asarray(probability, dtype="float64"), _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))
