"""The model card logged with every training run (Markdown).

Written for the people who must be able to question the model: a council data team, a locality
manager and an auditor. It states what the model is for and not for, the data and the label, how it
was validated, how it compares with the baselines (and, on the synthetic city, with the true risk),
and its limitations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from experiments.fairness import FairnessGate, GateResult, gate_policy_text, gated_rows

SCORER_NAMES: dict[str, str] = {
    "model": "LightGBM, calibrated (this model)",
    "logistic": "Logistic regression (same features)",
    "rule": "Problem-indicator count (today's rule)",
    "prior": "Prior rate (no ranking)",
}
CARD_METRICS: tuple[tuple[str, str], ...] = (
    ("auc", "ROC AUC"),
    ("average_precision", "Average precision"),
    ("brier", "Brier"),
    ("ece", "ECE"),
    ("precision_at_capacity", "Precision at capacity k"),
    ("precision_at_top1pct", "Precision top 1%"),
    ("precision_at_top5pct", "Precision top 5%"),
)


def _reweighting_text(settings: Mapping[str, str]) -> str | None:
    attribute = settings.get("reweight_attribute")
    if attribute in (None, "", "None") or float(settings.get("reweight_strength", 1)) == 0:
        return None
    return f"{attribute} (strength {settings.get('reweight_strength', '1.0')})"


def _number(value) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.3f}"


def metrics_table(metrics: pd.DataFrame, *, fold: str) -> str:
    """A Markdown table of the headline metrics of every scorer for one fold label."""
    rows = metrics.loc[metrics["fold"] == fold].set_index("model")
    header = "| Scorer | " + " | ".join(label for _, label in CARD_METRICS) + " |"
    divider = "|---" * (len(CARD_METRICS) + 1) + "|"
    lines = [header, divider]
    for name, row in rows.iterrows():
        values = " | ".join(_number(row.get(column)) for column, _ in CARD_METRICS)
        lines.append(f"| {SCORER_NAMES.get(name, name)} | {values} |")
    return "\n".join(lines)


def _folds_table(folds: Sequence[Mapping[str, str]]) -> str:
    lines = [
        "| Fold | Trees fitted on as-of dates | Calibrated on | Tested on |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {fold['number']} | {fold['tree_as_of']} | {fold['calibration_as_of']} "
        f"| {fold['test_as_of']} |"
        for fold in folds
    ]
    return "\n".join(lines)


def _truth_section(truth: pd.DataFrame | None) -> list[str]:
    if truth is None or truth.empty:
        return []
    by_scorer = truth.set_index("scorer")
    ratio = by_scorer.loc["model", "auc_ratio_to_truth"]
    return [
        "## Comparison with the true risk (synthetic city only)",
        "",
        f"On the simulator's households as of {pd.Timestamp(truth['as_of'].iloc[0]).date()}, "
        f"the model's AUC is {by_scorer.loc['model', 'auc']:.3f} against "
        f"{by_scorer.loc['truth', 'auc']:.3f} for the true escalation probability "
        f"(ratio {ratio:.3f}; the target is at least 0.95). Precision at capacity: "
        f"{_number(by_scorer.loc['model', 'precision_at_capacity'])} against "
        f"{_number(by_scorer.loc['truth', 'precision_at_capacity'])}.",
        "",
    ]


def fairness_section(
    audit: pd.DataFrame | None,
    *,
    gate: GateResult | None,
    gate_settings: FairnessGate,
    heading: str = "##",
    reweighting: str | None = None,
) -> str:
    """The fairness section: the audit on the latest holdout, the gate's verdict and the table."""
    if audit is None or audit.empty:
        return (
            f"{heading} Fairness\n\nNo bias audit was recorded with this run (the extract had "
            "no people table).\n"
        )
    k = int(audit["k"].iloc[0]) if "k" in audit else 0
    verdict = "not judged" if gate is None else ("passed" if gate.passed else "FAILED")
    message = "" if gate is None else f" {gate.message}"
    mitigation = (
        f"\n\nMitigation in this model: training examples reweighted by {reweighting} "
        "(docs/fairness.md)."
        if reweighting
        else ""
    )
    return "\n".join(
        [
            f"{heading} Fairness",
            "",
            f"Bias audit on the latest holdout test date at the capacity cut-off: the top {k:,} "
            "households, as the weekly list would select them (ties by household id). Missing a "
            "household in need is the main harm of an assistive service, so the gate compares "
            "each group's false negative rate and recall at k, and its calibration "
            "(predicted/observed), with its reference group (the largest known group). Policy: "
            f"{gate_policy_text(gate_settings)}. Smaller groups are shown, not gated.",
            "",
            f"Fairness gate: **{verdict}**.{message}{mitigation}",
            "",
            audit_table(audit, gate_settings=gate_settings),
            "",
            "Household groups: sex, ethnicity and age band are those of the oldest adult; "
            'disability is "yes" when any member is recorded disabled; "unknown" where partners '
            "did not record it. The audit compares the model with recorded crises: a group whose "
            "contact is under-recorded shows as under-predicted (predicted/observed below 1), "
            "see docs/fairness.md.",
            "",
        ]
    )


def audit_table(audit: pd.DataFrame, *, gate_settings: FairnessGate) -> str:
    """The audit as a Markdown table: sizes, base rate, FNR, recall at k, ratios, gated or not."""
    gated = gated_rows(audit, settings=gate_settings)
    lines = [
        "| Attribute | Group | Households | Escalated | Base rate | Selected | FNR | "
        "Recall at k | Recall ratio | FNR ratio | Predicted/observed ratio | Gated |",
        "|---" * 12 + "|",
    ]
    for index, row in audit.iterrows():
        group = f"{row['group']} (reference)" if row["is_reference"] else row["group"]
        cells = [
            row["attribute"],
            group,
            f"{int(row['households']):,}",
            f"{int(row['positives']):,}",
            _percent(row["base_rate"]),
            f"{int(row['selected']):,}",
            _percent(row["false_negative_rate"]),
            _percent(row["recall_at_k"]),
            _ratio_text(row["recall_at_k_ratio"]),
            _ratio_text(row["false_negative_rate_ratio"]),
            _ratio_text(row["predicted_to_observed_ratio"]),
            "yes" if gated.loc[index] else "no (small)",
        ]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)


def _is_number(value) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value)


def _percent(value) -> str:
    return f"{value:.1%}" if _is_number(value) else "-"


def _ratio_text(value) -> str:
    if not _is_number(value):
        return "inf" if value == np.inf else "-"
    return f"{value:.2f}"


ACCEPTED_HEADING = "Fairness findings accepted at promotion"


def accepted_findings_section(
    accepted: Sequence[Mapping[str, object]], *, heading: str = "##"
) -> str:
    """The fairness findings a council accepted to promote this model, as a Markdown section.

    accepted: the promotion's accepted findings (finding, text, ratio, bound, p_value, reason,
    accepted_by, accepted_at, review_by, source). With none, the section says so.
    """
    title = f"{heading} {ACCEPTED_HEADING}"
    if not accepted:
        return (
            f"{title}\n\nNone: this version passed the fairness gate without any accepted "
            "finding.\n"
        )
    rows = [
        "| "
        + " | ".join(
            _cell(value)
            for value in (
                item["finding"],
                item["text"],
                _ratio_text(item.get("ratio")),
                _ratio_text(item.get("bound")),
                _p_value_text(item.get("p_value")),
                item["reason"],
                item.get("accepted_by", "-"),
                item.get("accepted_at", "-"),
                item["review_by"],
                item.get("source", "-"),
            )
        )
        + " |"
        for item in accepted
    ]
    return "\n".join(
        [
            title,
            "",
            f"The fairness gate refused this version on {len(accepted)} finding(s); the council "
            "accepted each one below, for the reason given, and the version was promoted. An "
            "acceptance covers exactly one group and metric and lapses on its review date: a "
            "later promotion must accept it again, or the gate refuses. Read these groups' "
            "figures with the reason in mind.",
            "",
            "| Finding | Gate message | Ratio | Bound | Adjusted p | Reason | Accepted by | "
            "Accepted at (UTC) | Review by | Given in |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _cell(value) -> str:
    """Table-safe text: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _p_value_text(value) -> str:
    if not _is_number(value):
        return "-"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def render_model_card(
    *,
    model_name: str,
    snapshot_id: str,
    data_summary: Mapping[str, object],
    settings: Mapping[str, str],
    folds: Sequence[Mapping[str, str]],
    metrics: pd.DataFrame,
    churn: Mapping[str, float],
    truth: pd.DataFrame | None,
    fairness: pd.DataFrame | None = None,
    fairness_gate: GateResult | None = None,
    gate_settings: FairnessGate | None = None,
) -> str:
    """The model card as Markdown (with the fairness section when an audit is given)."""
    crisis_types = settings["crisis_types"].replace(",", ", ")
    lines = [
        f"# Model card: {model_name}",
        "",
        f"Trained on data snapshot `{snapshot_id}` as of {data_summary['evaluation_as_of']}.",
        "",
        "## Intended use",
        "",
        "Ranks households known to partner agencies by their risk of a crisis within the next "
        f"{settings['horizon_weeks']} weeks, so that locality teams can offer early help (a key "
        "worker) before a crisis. It is advice to a locality manager, who reviews every proposal; "
        "it does not decide anything on its own.",
        "",
        "## Not intended for",
        "",
        "- Decisions about entitlement, enforcement, eviction or child protection.",
        "- Any use that treats a high score as evidence that something has happened.",
        "- Households or areas outside the partnership whose records it was trained on.",
        "",
        "## Data and label",
        "",
        f"- Households: {data_summary['households']:,}; partner records: "
        f"{data_summary['events']:,}, occurring {data_summary['first_event']} to "
        f"{data_summary['last_known']}.",
        f"- Label: at least one crisis ({crisis_types}) occurring in the "
        f"{settings['horizon_weeks']} weeks after the as-of date.",
        "- Features as of a date use only records partners had shared by that date "
        "(`known_at`); labels of training examples use only crisis records known by the date the "
        "model is validated on, and only label windows that have closed by then.",
        f"- Features: {data_summary['features']}, from event counts and recency, arrears, school "
        "absence, the number of agencies involved, household size, tenure and key-worker history. "
        "Protected characteristics (sex, ethnicity, disability, age) are not features; they are "
        "used only for the fairness audit.",
        "",
        "## Model",
        "",
        f"LightGBM gradient-boosted trees ({data_summary['trees']} trees, "
        f"{settings['num_leaves']} leaves, learning rate {settings['learning_rate']}), early "
        "stopped on held-out households, with "
        f"{data_summary['calibration_method']} calibration fitted on other held-out households "
        "at a later as-of date than the trees. Training is deterministic (fixed seed and threads).",
        "",
        "## Validation",
        "",
        f"Rolling-origin temporal cross-validation: {settings['folds']} folds, "
        f"{settings['step_weeks']} weeks apart. Each fold's model is trained only on what was "
        "known at its test date.",
        "",
        _folds_table(folds),
        "",
        "### All folds (threshold-free metrics pooled; list metrics averaged)",
        "",
        metrics_table(metrics, fold="all"),
        "",
        "### Latest holdout (the promotion decision uses this fold)",
        "",
        metrics_table(metrics, fold="holdout"),
        "",
        "Capacity k is the number of households the active key workers can take on: free "
        "capacity points divided by the median case complexity. Ties at the cut-off are broken by "
        "household_id; the run's metrics record how many households tied there.",
        "",
        "## List stability",
        "",
        f"Scored one week apart, {_number(churn.get('overlap_at_capacity'))} of the top "
        f"{int(churn.get('k_capacity', 0))} (capacity) and "
        f"{_number(churn.get('overlap_at_top1pct'))} of the top 1% stay on the list.",
        "",
        *_truth_section(truth),
        fairness_section(
            fairness,
            gate=fairness_gate,
            gate_settings=gate_settings or FairnessGate(),
            reweighting=_reweighting_text(settings),
        ),
        "## Limitations",
        "",
        "- It learns from recorded contact: households that agencies see less (or record less) "
        "look lower risk than they are. Check the fairness audit before relying on it.",
        "- Escalation is measured by crisis records; crises that no partner records are invisible.",
        "- Households with an open key-worker case are scored as they are; support that prevents "
        "a crisis makes future training labels look lower for similar households.",
        "- Worker availability uses today's active flag for past folds (the extract has no "
        "history of leave), so capacity k in older folds is approximate.",
        "- Performance is only known up to the latest closed label window "
        f"({settings['horizon_weeks']} weeks ago); drift since then is not measured here.",
        "",
    ]
    return "\n".join(lines)
