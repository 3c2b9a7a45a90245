"""The fairness gate: when a model's bias audit is fair enough to promote, and why not.

The gate judges an audit table (experiments.fairness._audit) under a council's policy; its
failures name each attribute, group and metric in a sentence a manager can read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from experiments.fairness._audit import GATE_METRICS, METRIC_LABELS
from experiments.fairness._statistics import holm_adjusted
from features.groups import AUDIT_ATTRIBUTES


@dataclass(frozen=True)
class FairnessGate:
    """When a model's audit is fair enough to promote: ratio bounds, who is judged, and how sure.

    The defaults are the product's policy (docs/fairness.md gives the reasoning): false negative
    rate, recall at k and calibration by group (predicted/observed) within 0.80-1.25 of the
    reference group, for groups of at least 100 households and 10 escalations; a ratio outside
    the bounds fails when the gap is significant at 95% after a Holm correction for the number of
    comparisons. `confidence=None` judges the bare ratios.
    """

    min_ratio: float = 0.8
    max_ratio: float = 1.25
    metrics: tuple[str, ...] = ("false_negative_rate", "recall_at_k", "predicted_to_observed")
    attributes: tuple[str, ...] = AUDIT_ATTRIBUTES
    min_households: int = 100
    min_positives: int = 10
    # An out-of-bounds ratio fails only if the group's rate differs from the reference's at this
    # confidence (two-proportion test; delta method for calibration): noise is excused.
    confidence: float | None = 0.95
    # "holm": the p-values of every judged (group, metric) are corrected together, so a gate
    # over ~50 comparisons does not fail a fair model by chance; "none": each on its own.
    correction: str = "holm"

    def __post_init__(self) -> None:
        if not 0 < self.min_ratio <= 1 <= self.max_ratio:
            raise ValueError("fairness gate needs 0 < min_ratio <= 1 <= max_ratio")
        unknown = sorted(set(self.metrics) - set(GATE_METRICS))
        if unknown or not self.metrics:
            raise ValueError(f"fairness gate metrics must be among {GATE_METRICS}: {unknown}")
        unknown_attributes = sorted(set(self.attributes) - set(AUDIT_ATTRIBUTES))
        if unknown_attributes or not self.attributes:
            raise ValueError(
                f"fairness gate attributes must be among {AUDIT_ATTRIBUTES}: {unknown_attributes}"
            )
        if self.min_households < 1 or self.min_positives < 1:
            raise ValueError("fairness gate min_households and min_positives must be at least 1")
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise ValueError("fairness gate confidence must be between 0 and 1, or None")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"fairness gate correction must be one of {CORRECTIONS}")


CORRECTIONS: tuple[str, ...] = ("holm", "none")


def fairness_gate_from_mapping(values: Mapping[str, object]) -> FairnessGate:
    """FairnessGate from a configuration mapping (rebalance.toml [fairness]); unknown keys fail.

    `confidence = "none"` (TOML has no null) judges the bare ratios.
    """
    known = {item.name for item in dataclasses.fields(FairnessGate)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"[fairness]: unknown setting(s) {', '.join(unknown)}")
    converted = {
        name: tuple(value) if isinstance(value, list) else value for name, value in values.items()
    }
    if str(converted.get("confidence", "")).lower() == "none":
        converted["confidence"] = None
    try:
        return FairnessGate(**converted)
    except (TypeError, ValueError) as error:
        raise ValueError(f"[fairness]: {error}") from None


def gate_policy_text(settings: FairnessGate) -> str:
    """The policy in one sentence, for messages, the model card and the record."""
    metrics = ", ".join(METRIC_LABELS[metric] for metric in settings.metrics)
    text = (
        f"{metrics} within {settings.min_ratio:.2f}-{settings.max_ratio:.2f} of the reference "
        f"group, for groups of at least {settings.min_households} households and "
        f"{settings.min_positives} escalations"
    )
    if settings.confidence is None:
        return text
    corrected = ", Holm-corrected over every comparison" if settings.correction == "holm" else ""
    return text + (
        f"; a ratio outside the bounds fails when its gap is significant at "
        f"{settings.confidence:.0%}{corrected}"
    )


@dataclass(frozen=True)
class GateResult:
    """The verdict of one promotion gate; failures are JSON-ready dicts."""

    name: str
    passed: bool
    message: str
    failures: list[dict[str, object]] = field(default_factory=list)
    # Failures a council acceptance covers (failure | acceptance), and acceptances that covered
    # nothing (stale, expired), when acceptances were applied (`apply_acceptances`).
    accepted: list[dict[str, object]] = field(default_factory=list)
    unused_acceptances: list[dict[str, object]] = field(default_factory=list)


def gated_rows(audit: pd.DataFrame, *, settings: FairnessGate) -> pd.Series:
    """True for audit rows large enough (households and positives) for the gate to judge."""
    return (
        audit["attribute"].isin(settings.attributes)
        & (audit["households"] >= settings.min_households)
        & (audit["positives"] >= settings.min_positives)
    )


def fairness_gate(audit: pd.DataFrame, *, settings: FairnessGate) -> GateResult:
    """Pass when every large-enough group is within the ratio bounds of its reference group.

    Small groups stay in the audit table but are not gated (their ratios are too noisy). An
    attribute whose reference group is itself too small cannot be judged, and fails. With
    `settings.confidence`, out-of-bounds ratios whose gap is not significant (after the Holm
    correction, by default) are not failures.
    """
    large = gated_rows(audit, settings=settings)
    in_scope = audit.loc[audit["attribute"].isin(settings.attributes)]
    failures = _reference_failures(in_scope, large=large, settings=settings)
    judged = audit.loc[large & ~audit["is_reference"]]
    adjusted = adjusted_p_values(judged, settings=settings)
    for index, row in judged.iterrows():
        failures.extend(_ratio_failures(row.to_dict(), p_values=adjusted[index], settings=settings))
    if failures:
        return GateResult("fairness", False, "; ".join(f["text"] for f in failures), failures)
    small = int((~large & audit["attribute"].isin(settings.attributes)).sum())
    message = (
        f"all {len(judged)} judged groups pass ({gate_policy_text(settings)}); "
        f"{small} smaller groups reported, not gated"
    )
    return GateResult("fairness", True, message, [])


def adjusted_p_values(judged: pd.DataFrame, *, settings: FairnessGate) -> dict:
    """Per judged row, each gated metric's p-value, Holm-adjusted over all of them if asked.

    Holm's step-down keeps the chance of any false alarm within 1 - confidence.
    """
    cells = [
        (index, metric, float(judged.at[index, f"{metric}_p_value"]))
        for index in judged.index
        for metric in settings.metrics
    ]
    values = np.array([p for _, _, p in cells], dtype="float64")
    if settings.correction == "holm":
        values = holm_adjusted(values)
    adjusted: dict = {index: {} for index in judged.index}
    for (index, metric, _), value in zip(cells, values, strict=True):
        adjusted[index][metric] = float(value)
    return adjusted


def _reference_failures(
    in_scope: pd.DataFrame, *, large: pd.Series, settings: FairnessGate
) -> list[dict[str, object]]:
    failures = []
    for attribute in settings.attributes:
        rows = in_scope.loc[in_scope["attribute"] == attribute]
        if rows.empty:
            failures.append(_failure(attribute, "", "", np.nan, np.nan, "is not in the audit"))
            continue
        reference = rows.loc[rows["is_reference"]].iloc[0]
        if not large.loc[reference.name]:
            text = (
                f"reference group has {int(reference['households'])} households and "
                f"{int(reference['positives'])} positives, too few to judge the attribute"
            )
            failures.append(_failure(attribute, reference["group"], "", np.nan, np.nan, text))
    return failures


def _ratio_failures(
    row: dict[str, object], *, p_values: Mapping[str, float], settings: FairnessGate
) -> list[dict[str, object]]:
    failures = []
    for metric in settings.metrics:
        ratio = float(row[f"{metric}_ratio"])
        label = METRIC_LABELS[metric]
        if np.isnan(ratio):
            text = f"{label} ratio cannot be computed"
            failures.append(_failure(row["attribute"], row["group"], metric, ratio, np.nan, text))
            continue
        p_value = p_values[metric]
        significant = settings.confidence is None or not p_value > 1 - settings.confidence
        if settings.min_ratio <= ratio <= settings.max_ratio or not significant:
            continue
        side, bound = ("below", settings.min_ratio)
        if ratio > settings.max_ratio:
            side, bound = ("above", settings.max_ratio)
        # Enough decimals that the ratio never prints as equal to the bound it breaks.
        decimals = 2 if round(ratio, 2) != round(bound, 2) else 3
        text = f"{label} ratio {ratio:.{decimals}f} is {side} {bound:.2f}"
        if settings.confidence is not None:
            adjusted = "adjusted p" if settings.correction == "holm" else "p"
            text += f" ({adjusted} = {_p_text(p_value)})"
        failure = _failure(row["attribute"], row["group"], metric, ratio, bound, text)
        failures.append(failure | {"p_value": None if np.isnan(p_value) else float(p_value)})
    return failures


def _p_text(p_value: float) -> str:
    return "<0.001" if p_value < 0.001 else f"{p_value:.3f}"


def _failure(attribute, group, metric, ratio, bound, text) -> dict[str, object]:
    prefix = f"{attribute}={group}" if group else str(attribute)
    return {
        "attribute": str(attribute),
        "group": str(group),
        "metric": metric,
        # None rather than NaN, so the failures serialise as strict JSON.
        "ratio": None if np.isnan(ratio) else float(ratio),
        "bound": None if np.isnan(bound) else float(bound),
        "text": f"{prefix}: {text}",
    }
