"""Bias audit of escalation scores by protected characteristic and locality, and the fairness gate.

Early help is assistive: the harm a risk score can do a group is to leave its households in need
unseen, so the audit centres on false negatives at the capacity cut-off k (the households key
workers can actually take) rather than on who is selected. Every rate is compared with a reference
group, by default the largest known group of the attribute.

Protected characteristics are read here and nowhere else in the product: they describe households
for the audit, never for the model. Nothing in this module modifies its inputs.

Household groups (people are individuals, the score is per household):
- the household reference person is the oldest adult (18 or over in the as-of year; birth year
  only is shared, so age is as-of year minus birth year); when no adult is listed, the oldest
  member; ties by person_id;
- sex, ethnicity and age band are the reference person's; "unknown" when the household has no
  listed members or the value is missing;
- disability is "yes" when any member is recorded disabled, "no" when every member is recorded
  not disabled, otherwise "unknown".
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.figure import Figure

AUDIT_ATTRIBUTES: tuple[str, ...] = ("sex", "ethnicity", "disability", "age_band", "locality")
UNKNOWN = "unknown"
ADULT_AGE = 18
# Lower edges of the reference person's age bands; "under 18" only when no adult is listed.
AGE_BAND_EDGES: tuple[int, ...] = (0, 18, 25, 35, 50, 65)
AGE_BAND_NAMES: tuple[str, ...] = ("under 18", "18-24", "25-34", "35-49", "50-64", "65+")
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
_PEOPLE_COLUMNS: tuple[str, ...] = (
    "person_id",
    "household_id",
    "birth_year",
    "sex",
    "ethnicity",
    "disability",
)
_WILSON_Z = 1.959964  # two-sided 95%
_LOGIT_CLIP = 1e-6


# --- household groups -------------------------------------------------------------------------


def household_groups(*, households: pd.DataFrame, people: pd.DataFrame, as_of) -> pd.DataFrame:
    """One row per household: household_id, sex, ethnicity, disability, age_band, locality.

    Sorted by household_id; every value a string, "unknown" where the extract does not say.
    """
    _require_columns(households, table="households", columns=("household_id", "locality"))
    _require_columns(people, table="people", columns=_PEOPLE_COLUMNS)
    _check_people_households(people, households=households)
    members = _members_as_of(people, as_of_year=pd.Timestamp(as_of).year)
    groups = (
        households[["household_id", "locality"]]
        .merge(_reference_people(members), on="household_id", how="left", validate="1:1")
        .merge(_household_disability(members), on="household_id", how="left", validate="1:1")
    )
    columns = ["household_id", "sex", "ethnicity", "disability", "age_band", "locality"]
    return (
        groups[columns].fillna(UNKNOWN).astype("str").sort_values("household_id", ignore_index=True)
    )


def _members_as_of(people: pd.DataFrame, *, as_of_year: int) -> pd.DataFrame:
    """Members born by the as-of year, with their age in that year."""
    age = as_of_year - people["birth_year"].astype("int64")
    return people.loc[age >= 0, list(_PEOPLE_COLUMNS)].assign(age=age[age >= 0])


def _reference_people(members: pd.DataFrame) -> pd.DataFrame:
    """The oldest adult of each household (the oldest member when no adult is listed)."""
    ordered = members.assign(is_child=members["age"] < ADULT_AGE).sort_values(
        ["household_id", "is_child", "birth_year", "person_id"], kind="stable"
    )
    reference = ordered.drop_duplicates("household_id", keep="first")
    age_band = pd.cut(
        reference["age"],
        bins=[*AGE_BAND_EDGES, np.inf],
        labels=list(AGE_BAND_NAMES),
        right=False,
    ).astype("str")
    return reference[["household_id", "sex", "ethnicity"]].assign(age_band=age_band.to_numpy())


def _household_disability(members: pd.DataFrame) -> pd.DataFrame:
    """Household disability: "yes" if any member is, "no" if every member is recorded not."""
    recorded = members["disability"].fillna(UNKNOWN)
    flags = pd.DataFrame(
        {
            "household_id": members["household_id"],
            "any_yes": recorded == "yes",
            "all_no": recorded == "no",
        }
    )
    summary = flags.groupby("household_id", sort=True).agg(
        any_yes=("any_yes", "any"), all_no=("all_no", "all")
    )
    disability = np.select([summary["any_yes"], summary["all_no"]], ["yes", "no"], default=UNKNOWN)
    return pd.DataFrame({"household_id": summary.index, "disability": disability})


def _check_people_households(people: pd.DataFrame, *, households: pd.DataFrame) -> None:
    orphan = ~people["household_id"].isin(households["household_id"])
    if orphan.any():
        row = int(np.flatnonzero(orphan.to_numpy())[0]) + 1
        raise ValueError(
            f"people row {row}, column household_id: household "
            f"{people['household_id'].iloc[row - 1]!r} is not in households "
            f"({int(orphan.sum())} such rows)"
        )


def _require_columns(frame: pd.DataFrame, *, table: str, columns: Sequence[str]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {', '.join(missing)}")


# --- the audit --------------------------------------------------------------------------------


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
    _check_predictions(predictions)
    _require_columns(groups, table="groups", columns=("household_id", *attributes))
    selected = _selected_at_k(predictions, k=k_count(k, households=len(predictions)))
    scored = selected.merge(
        groups[["household_id", *attributes]], on="household_id", how="left", validate="1:1"
    )
    _check_groups_cover(scored, attributes=attributes)
    frames = [
        _attribute_audit(scored, attribute=attribute, reference=reference)
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


def _selected_at_k(predictions: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """Predictions in ranking order with a `selected` flag for the top k, ties by household_id.

    The ranking is `rank_score` when given (as the weekly list ranks), else `score`; `log_odds`
    is the ranking on the log-odds scale, where group-aware cut-offs are set.
    """
    ranking = predictions[RANK_COLUMN] if RANK_COLUMN in predictions else predictions["score"]
    log_odds = ranking if RANK_COLUMN in predictions else _logit(predictions["score"])
    ordered = (
        predictions[list(PREDICTION_COLUMNS)]
        .assign(ranking=ranking.astype("float64"), log_odds=np.asarray(log_odds, dtype="float64"))
        .sort_values(["ranking", "household_id"], ascending=[False, True], ignore_index=True)
    )
    label = ordered["label"].astype("int64")
    return ordered.assign(label=label, selected=np.arange(len(ordered)) < k)


def _attribute_audit(
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
    low, high = _wilson_interval(hits, positives)
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
        f"{metric}_p_value": _two_proportion_p_value(
            rates[hits], rates[trials], float(reference_row[hits]), float(reference_row[trials])
        )
        for metric, (hits, trials) in _RATE_PARTS.items()
    }
    p_values["predicted_to_observed_p_value"] = _calibration_p_value(rates, reference_row)
    return rates.assign(
        reference_group=reference_group, is_reference=is_reference, **ratios, **p_values
    )


def _two_proportion_p_value(
    hits: pd.Series, trials: pd.Series, reference_hits: float, reference_trials: float
) -> pd.Series:
    """Two-sided p-value of a pooled two-proportion z-test of each group against the reference."""
    if not reference_trials > 0:
        # Nothing to compare with (e.g. the reference group had no households selected).
        return pd.Series(np.nan, index=trials.index)
    n = trials.astype("float64").where(trials > 0)
    pooled = (hits + reference_hits) / (n + reference_trials)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / reference_trials))
    gap = hits / n - reference_hits / reference_trials
    z = (gap.abs() / spread.where(spread > 0)).mask((spread == 0) & (gap == 0), 0.0)
    z = z.mask((spread == 0) & (gap != 0), np.inf)
    return z.map(lambda value: math.erfc(value / math.sqrt(2)), na_action="ignore")


def _calibration_p_value(rates: pd.DataFrame, reference_row: pd.Series) -> pd.Series:
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
    return z.map(lambda value: math.erfc(value / math.sqrt(2)), na_action="ignore")


def _ratio(values: pd.Series, reference_value: float) -> pd.Series:
    """values / reference, with 0 / 0 read as parity (1.0) and x / 0 as infinity."""
    if np.isnan(reference_value):
        return pd.Series(np.nan, index=values.index)
    if reference_value == 0:
        ratio = pd.Series(np.where(values > 0, np.inf, np.nan), index=values.index)
        return ratio.mask((values == 0) & (reference_value == 0), 1.0)
    return values / reference_value


def _wilson_interval(successes: pd.Series, trials: pd.Series) -> tuple[pd.Series, pd.Series]:
    """95% Wilson score interval of a proportion (NaN where there are no trials)."""
    n = trials.where(trials > 0)
    p = successes / n
    z2 = _WILSON_Z**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _WILSON_Z * np.sqrt(p * (1 - p) / n + z2 / (4 * n**2)) / (1 + z2 / n)
    return (centre - half).clip(lower=0.0), (centre + half).clip(upper=1.0)


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


def _check_predictions(predictions: pd.DataFrame) -> None:
    _require_columns(predictions, table="predictions", columns=PREDICTION_COLUMNS)
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


def _check_groups_cover(scored: pd.DataFrame, *, attributes: Sequence[str]) -> None:
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


# --- the gate ---------------------------------------------------------------------------------


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

    Holm's step-down: the i-th smallest of m p-values becomes max over j <= i of (m - j + 1) p_j
    (capped at 1), which keeps the chance of any false alarm within 1 - confidence.
    """
    cells = [
        (index, metric, float(judged.at[index, f"{metric}_p_value"]))
        for index in judged.index
        for metric in settings.metrics
    ]
    values = np.array([p for _, _, p in cells], dtype="float64")
    if settings.correction == "holm" and len(values):
        order = np.argsort(np.where(np.isnan(values), np.inf, values), kind="stable")
        count = int((~np.isnan(values)).sum())
        steps = np.maximum.accumulate(values[order] * (count - np.arange(len(values))))
        values[order] = np.minimum(steps, 1.0)
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


# --- accepted findings: a council's recorded decision to promote despite a finding ------------


@dataclass(frozen=True)
class AcceptedFinding:
    """One fairness failure a council accepts at promotion, with its reason and review date.

    It names exactly one attribute, group and metric (`age_band=65+:recall_at_k`); it covers
    only that failure, and from the day after `review_by` it no longer counts.
    """

    attribute: str
    group: str
    metric: str
    reason: str
    review_by: date
    source: str = "command line"

    def __post_init__(self) -> None:
        if self.attribute not in AUDIT_ATTRIBUTES:
            raise ValueError(
                f"accepted finding {self.finding!r}: attribute must be one of "
                f"{', '.join(AUDIT_ATTRIBUTES)}"
            )
        if not self.group.strip():
            raise ValueError(f"accepted finding {self.finding!r}: the group is empty")
        if self.metric not in GATE_METRICS:
            raise ValueError(
                f"accepted finding {self.finding!r}: metric must be one of "
                f"{', '.join(GATE_METRICS)}"
            )
        if not self.reason.strip():
            raise ValueError(f"accepted finding {self.finding!r}: a reason is required")
        if not isinstance(self.review_by, date):
            raise ValueError(f"accepted finding {self.finding!r}: review_by must be a date")

    @property
    def finding(self) -> str:
        return f"{self.attribute}={self.group}:{self.metric}"

    def as_record(self) -> dict[str, object]:
        return {
            "finding": self.finding,
            "reason": self.reason.strip(),
            "review_by": self.review_by.isoformat(),
            "source": self.source,
        }


def accepted_finding(
    finding: str, *, reason: str | None, review_by, source: str = "command line"
) -> AcceptedFinding:
    """An AcceptedFinding from `attribute=group:metric` text (the CLI's and the TOML's form).

    The metric is after the last colon and the attribute before the first "=", so group names
    may hold either ("65+", "Stoke: North"). review_by: a date or YYYY-MM-DD text.
    """
    head, colon, metric = str(finding).strip().rpartition(":")
    attribute, equals, group = head.partition("=")
    if not (colon and equals):
        raise ValueError(
            f"accepted finding {finding!r}: expected ATTRIBUTE=GROUP:METRIC, "
            'e.g. "age_band=65+:recall_at_k"'
        )
    if reason is None or not str(reason).strip():
        raise ValueError(
            f"accepted finding {finding!r}: a reason is required (why the council accepts it)"
        )
    return AcceptedFinding(
        attribute=attribute.strip(),
        group=group.strip(),
        metric=metric.strip(),
        reason=str(reason).strip(),
        review_by=_review_date(review_by, finding=finding),
        source=source,
    )


def _review_date(value, *, finding: str) -> date:
    if value is None or value == "":
        raise ValueError(f"accepted finding {finding!r}: review_by (YYYY-MM-DD) is required")
    if isinstance(value, date):
        # TOML dates arrive as datetime.date; a datetime counts by its day.
        return value if type(value) is date else value.date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValueError(
            f"accepted finding {finding!r}: review_by {value!r} is not a date (YYYY-MM-DD)"
        ) from None


_ACCEPTED_KEYS: tuple[str, ...] = ("finding", "reason", "review_by")


def accepted_findings_from_config(
    entries: object, *, source: str = "rebalance.toml"
) -> tuple[AcceptedFinding, ...]:
    """`[fairness] accepted = [{finding, reason, review_by}, ...]` as AcceptedFindings.

    Every key is required (review_by too: a standing acceptance must come up for review);
    unknown keys are refused; errors name the entry (1-based).
    """
    if not isinstance(entries, list | tuple):
        raise ValueError("accepted must be a list of {finding, reason, review_by} tables")
    findings = []
    for number, entry in enumerate(entries, start=1):
        where = f"accepted entry {number}"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected a table {{finding, reason, review_by}}")
        unknown = sorted(set(entry) - set(_ACCEPTED_KEYS))
        missing = [key for key in _ACCEPTED_KEYS if key not in entry]
        if unknown or missing:
            problem = f"unknown key(s) {', '.join(unknown)}" if unknown else ""
            problem = problem or f"missing {', '.join(missing)}"
            raise ValueError(f"{where}: {problem} (expected finding, reason, review_by)")
        try:
            findings.append(
                accepted_finding(
                    str(entry["finding"]),
                    reason=str(entry["reason"]),
                    review_by=entry["review_by"],
                    source=source,
                )
            )
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
    return tuple(findings)


def apply_acceptances(
    result: GateResult, *, accepted: Sequence[AcceptedFinding], today: date
) -> GateResult:
    """The fairness verdict once the council's acceptances are taken into account.

    Passes only if every failure is covered by a current acceptance naming exactly its attribute,
    group and metric (a "too few to judge" failure names no metric and cannot be accepted: change
    the policy instead). An acceptance past its review date does not count; one that matches no
    failure is reported, not blocking. `failures` keeps every finding; `accepted` lists the
    covered ones with their acceptance.
    """
    current = [item for item in accepted if item.review_by >= today]
    by_key = {(item.attribute, item.group, item.metric): item for item in current}
    covered, uncovered = [], []
    for failure in result.failures:
        item = by_key.get((failure["attribute"], failure["group"], failure["metric"]))
        (covered if item else uncovered).append(failure | item.as_record() if item else failure)
    used = {record["finding"] for record in covered}
    unused = [
        item.as_record() | {"why": f"expired on {item.review_by.isoformat()}, not counted"}
        for item in accepted
        if item.review_by < today
    ] + [
        item.as_record() | {"why": "matches no failure of this model"}
        for item in current
        if item.finding not in used
    ]
    passed = not uncovered
    return dataclasses.replace(
        result,
        passed=passed,
        message=_acceptance_message(result, covered=covered, uncovered=uncovered, unused=unused),
        accepted=covered,
        unused_acceptances=unused,
    )


def _acceptance_message(
    result: GateResult, *, covered: list[dict], uncovered: list[dict], unused: list[dict]
) -> str:
    if not covered and not unused:
        return result.message
    parts = []
    if uncovered:
        parts.append("; ".join(str(failure["text"]) for failure in uncovered))
    elif covered:
        parts.append(f"passed only by {len(covered)} finding(s) the council accepted")
    else:
        parts.append(result.message)
    parts += [
        f"ACCEPTED {failure['text']} (reason: {failure['reason']}; review by "
        f"{failure['review_by']})"
        for failure in covered
    ]
    if uncovered and covered:
        parts.append("the accepted findings alone do not let it pass")
    parts += [f"acceptance {item['finding']} {item['why']}" for item in unused]
    return "; ".join(parts)


# --- chart and run wiring ---------------------------------------------------------------------


def audit_chart(audit: pd.DataFrame, *, settings: FairnessGate | None = None) -> Figure:
    """Ratios to the reference group per attribute (gate band shaded) and calibration by group.

    Grey bars are groups too small to gate. An Agg-backed Figure, ready for savefig or MLflow.
    """
    # matplotlib only when a chart is drawn: models import this module for its vocabulary.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    settings = settings or FairnessGate()
    attributes = list(dict.fromkeys(audit["attribute"]))
    figure = Figure(figsize=(13, 1.1 + 0.42 * len(audit) + 0.5 * len(attributes)))
    FigureCanvasAgg(figure)
    heights = [max(2, int((audit["attribute"] == a).sum())) for a in attributes]
    axes = figure.subplots(
        len(attributes), 3, squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    large = gated_rows(audit, settings=settings)
    for row_axes, attribute in zip(axes, attributes, strict=True):
        rows = audit.loc[audit["attribute"] == attribute]
        _ratio_panel(row_axes[0], rows, large=large, metric="recall_at_k", settings=settings)
        _ratio_panel(
            row_axes[1], rows, large=large, metric="false_negative_rate", settings=settings
        )
        _calibration_panel(row_axes[2], rows)
        row_axes[0].set_ylabel(attribute)
    k = int(audit["k"].iloc[0]) if "k" in audit else 0
    figure.suptitle(
        f"Bias audit at k = {k}: ratio to the reference group "
        "(green band: gate bounds; red: outside; grey: too small to gate)"
    )
    figure.subplots_adjust(left=0.16, right=0.88, top=0.93, bottom=0.03, wspace=0.75, hspace=0.5)
    return figure


def _ratio_panel(axis, rows: pd.DataFrame, *, large: pd.Series, metric: str, settings) -> None:
    ratios = rows[f"{metric}_ratio"].replace(np.inf, 3.0).fillna(0.0).clip(upper=3.0)
    positions = np.arange(len(rows))[::-1]
    outside = (ratios < settings.min_ratio) | (ratios > settings.max_ratio)
    colours = [
        ("tab:red" if outside.loc[index] else "tab:blue") if large.loc[index] else "lightgrey"
        for index in rows.index
    ]
    axis.barh(positions, ratios, color=colours)
    axis.axvspan(settings.min_ratio, settings.max_ratio, color="tab:green", alpha=0.12)
    axis.axvline(1.0, color="black", linewidth=0.8)
    labels = [
        f"{group}{' (ref)' if is_ref else ''} n={households}"
        for group, is_ref, households in zip(
            rows["group"], rows["is_reference"], rows["households"], strict=True
        )
    ]
    axis.set_yticks(positions, labels, fontsize=8)
    axis.set_xlim(0, max(2.0, float(ratios.max()) * 1.05))
    axis.set_title(f"{METRIC_LABELS[metric]} ratio", fontsize=9)


def _calibration_panel(axis, rows: pd.DataFrame) -> None:
    positions = np.arange(len(rows))[::-1]
    axis.scatter(rows["mean_predicted"], positions, marker="o", label="mean predicted")
    axis.scatter(rows["base_rate"], positions, marker="x", label="observed", color="tab:red")
    axis.set_yticks(positions, list(rows["group"]), fontsize=8)
    highest = float(np.nanmax([rows["mean_predicted"].max(), rows["base_rate"].max()]))
    axis.set_xlim(0, highest * 1.2 if highest > 0 else 1.0)
    axis.set_title("calibration: predicted vs observed rate", fontsize=9)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


@dataclass(frozen=True)
class FairnessAudit:
    """What a training run logs and what promotion checks: table, chart and gate verdict."""

    table: pd.DataFrame
    figure: Figure
    gate: GateResult


def audit_for_run(
    *,
    predictions: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    k: int | float,
    settings: FairnessGate | None = None,
    reference: str | Mapping[str, str] = "largest",
) -> FairnessAudit:
    """Audit holdout predictions (household_id, score, label) scored as of `as_of`."""
    settings = settings or FairnessGate()
    groups = household_groups(households=tables["households"], people=tables["people"], as_of=as_of)
    table = bias_audit(predictions=predictions, groups=groups, k=k, reference=reference)
    return FairnessAudit(
        table=table,
        figure=audit_chart(table, settings=settings),
        gate=fairness_gate(table, settings=settings),
    )


# --- promotion: the audit as run metrics, and the gate read back from them ----------------------

METRIC_PREFIX = "fairness"
_LOGGED_COLUMNS: tuple[str, ...] = (
    "households",
    "positives",
    "is_reference",
    *(f"{metric}_{suffix}" for metric in GATE_METRICS for suffix in ("ratio", "p_value")),
)
# Characters every tracking store accepts in a metric name; others become _x<hex>_.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- ]")
_ESCAPED = re.compile(r"_x([0-9a-f]{2,6})_")


def audit_metrics(audit: pd.DataFrame) -> dict[str, float]:
    """The gate's inputs as flat run metrics: fairness/<attribute>/<group>/<column> -> number.

    Group names are escaped to characters every tracking store accepts ("65+" -> "65_x2b_");
    `audit_from_metrics` reverses it, so promotion can re-run the gate with its own settings.
    """
    metrics = {f"{METRIC_PREFIX}/k": float(audit["k"].iloc[0])} if "k" in audit else {}
    for row in audit.to_dict("records"):
        stem = f"{METRIC_PREFIX}/{_metric_safe(row['attribute'])}/{_metric_safe(row['group'])}"
        # Not-a-number and infinite values are left out (JSON and some stores refuse them);
        # read back they are NaN, which the gate treats as "cannot be computed": a failure.
        metrics |= {
            f"{stem}/{column}": float(row[column])
            for column in _LOGGED_COLUMNS
            if math.isfinite(float(row[column]))
        }
    return metrics


def audit_from_metrics(metrics: Mapping[str, float]) -> pd.DataFrame:
    """The audit rows the gate needs, rebuilt from `audit_metrics` output (empty if none)."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for name, value in metrics.items():
        parts = name.split("/")
        if len(parts) == 4 and parts[0] == METRIC_PREFIX and parts[3] in _LOGGED_COLUMNS:
            key = (_metric_unsafe(parts[1]), _metric_unsafe(parts[2]))
            cells.setdefault(key, {})[parts[3]] = float(value)
    rows = [{"attribute": a, "group": g, **values} for (a, g), values in cells.items()]
    audit = pd.DataFrame(rows, columns=["attribute", "group", *_LOGGED_COLUMNS]).astype(
        {column: "float64" for column in _LOGGED_COLUMNS}
    )
    audit = audit.assign(is_reference=audit["is_reference"] == 1.0)
    order = {name: position for position, name in enumerate(AUDIT_ATTRIBUTES)}
    return audit.sort_values(
        ["attribute", "households", "group"],
        ascending=[True, False, True],
        key=lambda column: column.map(order) if column.name == "attribute" else column,
        ignore_index=True,
    )


def fairness_promotion_check(
    settings: FairnessGate | None = None,
    *,
    accepted: Sequence[AcceptedFinding] = (),
    today: date | None = None,
):
    """A promotion gate check reading a run's logged audit, with the council's acceptances.

    check(challenger=, **_) -> (passed, message, failures, accepted, unused_acceptances): the
    signature of models' promotion gates (`Gate("fairness", fairness_promotion_check(policy))`);
    failures name group and metric. `today` judges the acceptances' review dates (default: the
    UTC date when the check runs).
    """
    settings = settings or FairnessGate()

    def check(*, challenger: Mapping[str, float], **_) -> tuple:
        audit = audit_from_metrics(challenger)
        if audit.empty:
            return False, "no fairness audit was recorded with this run", [], [], []
        result = fairness_gate(audit, settings=settings)
        if accepted:
            day = today or datetime.now(UTC).date()
            result = apply_acceptances(result, accepted=accepted, today=day)
        return (
            result.passed,
            result.message,
            result.failures,
            result.accepted,
            result.unused_acceptances,
        )

    return check


def _metric_safe(text: str) -> str:
    return _UNSAFE.sub(lambda match: f"_x{ord(match.group()):02x}_", str(text))


def _metric_unsafe(text: str) -> str:
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), text)


# --- mitigation: group-aware cut-offs and training weights -------------------------------------


def fit_group_cut_offs(
    *,
    predictions: pd.DataFrame,
    groups: pd.DataFrame,
    attribute: str,
    k: int | float,
    min_households: int = 100,
    min_positives: int = 10,
) -> pd.DataFrame:
    """Per-group ranking cut-offs that give every large-enough group the same recall at k.

    Chosen on holdout predictions (as for `bias_audit`, ranked by rank_score when given): the
    common recall r is the largest for which the groups' cut-offs (each group's
    ceil(r * positives)-th positive) select at most k households in all. A group's log-odds shift
    moves its cut-off onto the anchor's (the largest adjusted group, shift 0), so ranking by the
    shifted score reproduces the per-group cut-offs. Groups too small to estimate a cut-off keep
    shift 0. One row per group, with its recall at k before and the common target recall.
    """
    _check_predictions(predictions)
    _require_columns(groups, table="groups", columns=("household_id", attribute))
    scored = _selected_at_k(predictions, k=k_count(k, households=len(predictions))).merge(
        groups[["household_id", attribute]], on="household_id", how="left", validate="1:1"
    )
    _check_groups_cover(scored, attributes=[attribute])
    summary = _attribute_audit(scored, attribute=attribute, reference="largest")
    adjustable = summary.loc[
        (summary["households"] >= min_households) & (summary["positives"] >= min_positives),
        "group",
    ].tolist()
    anchor, recall, cut_offs = _common_recall(scored, attribute=attribute, adjustable=adjustable)
    shifts = {group: cut_offs[anchor] - cut for group, cut in cut_offs.items()}
    shift = summary["group"].map(shifts).fillna(0.0).astype("float64")
    return pd.DataFrame(
        {
            "attribute": attribute,
            "group": summary["group"],
            "households": summary["households"],
            "positives": summary["positives"],
            "adjusted": summary["group"].isin(list(cut_offs)),
            "cut_off_log_odds": summary["group"].map(cut_offs).astype("float64"),
            "log_odds_shift": shift,
            "odds_multiplier": np.exp(shift),
            "recall_before": summary["recall_at_k"],
            "target_recall": recall,
        }
    )


def _common_recall(
    scored: pd.DataFrame, *, attribute: str, adjustable: list[str]
) -> tuple[str, float, dict[str, float]]:
    """The anchor group, the largest common recall whose cut-offs select at most k, and the cuts.

    `adjustable` is largest group first; the anchor (the largest) keeps its own scale and every
    household outside the adjustable groups is selected against the anchor's cut-off.
    """
    if not adjustable:
        return "", float("nan"), {}
    k = int(scored["selected"].sum())
    # `scored` is in ranking order (log-odds desc, household_id), so each group's rows are too.
    in_group = {group: (scored[attribute] == group).to_numpy() for group in adjustable}
    log_odds = scored["log_odds"].to_numpy()
    labels = scored["label"].to_numpy()
    positive_ranks = {group: np.flatnonzero(labels[mask] == 1) for group, mask in in_group.items()}
    others = np.sort(log_odds[~scored[attribute].isin(adjustable).to_numpy()])
    candidates = np.unique(
        np.concatenate([np.arange(1, len(r) + 1) / len(r) for r in positive_ranks.values()])
    )
    anchor, best = adjustable[0], (float("nan"), {})
    # The count selected rises with the common recall, so scan upwards until it exceeds k.
    for recall in candidates:
        cuts, chosen = {}, 0
        for group, ranks in positive_ranks.items():
            rank = int(ranks[max(1, math.ceil(recall * len(ranks) - 1e-9)) - 1])
            cuts[group] = float(log_odds[in_group[group]][rank])
            chosen += rank + 1
        chosen += len(others) - int(np.searchsorted(others, cuts[anchor], "left"))
        if chosen > k:
            break
        best = (float(recall), cuts)
    return anchor, best[0], best[1]


def _logit(probability) -> np.ndarray:
    clipped = np.clip(np.asarray(probability, dtype="float64"), _LOGIT_CLIP, 1 - _LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


def group_aware_adjustment(
    *, scores: pd.DataFrame, groups: pd.DataFrame, cut_offs: pd.DataFrame
) -> pd.DataFrame:
    """The allocation priority with each group's shift: household_id, score, group, shift, rank.

    scores: household_id and score (calibrated risk), plus rank_score (raw log-odds) when the list
    is ranked by it. Returns adjusted_rank_score (log-odds plus the group's shift): rank the week's
    households by it (then household_id) before allocation. The shown risk stays `score`.
    """
    attribute = str(cut_offs["attribute"].iloc[0])
    _require_columns(scores, table="scores", columns=("household_id", "score"))
    _require_columns(groups, table="groups", columns=("household_id", attribute))
    columns = ["household_id", "score", *([RANK_COLUMN] if RANK_COLUMN in scores else [])]
    grouped = scores[columns].merge(
        groups[["household_id", attribute]], on="household_id", how="left", validate="1:1"
    )
    group = grouped[attribute].fillna(UNKNOWN).astype("str")
    shift = group.map(dict(zip(cut_offs["group"], cut_offs["log_odds_shift"], strict=True)))
    base = grouped[RANK_COLUMN] if RANK_COLUMN in grouped else _logit(grouped["score"])
    return pd.DataFrame(
        {
            "household_id": grouped["household_id"],
            "score": grouped["score"],
            "group": group,
            "odds_multiplier": np.exp(shift.fillna(0.0)),
            "adjusted_rank_score": np.asarray(base, dtype="float64") + shift.fillna(0.0),
        }
    )


def group_sample_weights(
    *, labels: pd.DataFrame, groups: pd.DataFrame, attribute: str
) -> pd.Series:
    """Reweighing training weights: P(group) * P(label) / P(group, label), mean 1.

    labels: household_id, label (one row per training example; a household may repeat across
    as-of dates). Weighting makes group and outcome independent in the training data, so a group
    whose escalations are rarer in the records is not learned as lower risk. Indexed as `labels`.
    """
    _require_columns(labels, table="labels", columns=("household_id", "label"))
    _require_columns(groups, table="groups", columns=("household_id", attribute))
    group = (
        labels[["household_id"]]
        .merge(groups[["household_id", attribute]], on="household_id", how="left", validate="m:1")[
            attribute
        ]
        .fillna(UNKNOWN)
    )
    cell = pd.DataFrame({"group": group.to_numpy(), "label": labels["label"].to_numpy()})
    p_group = cell["group"].map(cell["group"].value_counts(normalize=True))
    p_label = cell["label"].map(cell["label"].value_counts(normalize=True))
    p_cell = cell.groupby(["group", "label"])["label"].transform("size") / len(cell)
    weights = (p_group * p_label / p_cell).to_numpy(dtype="float64")
    return pd.Series(weights / weights.mean(), index=labels.index, name="sample_weight")
