"""The model card logged with every training run (Markdown).

Written for the people who must be able to question the model: a council data team, a locality
manager and an auditor. It states what the model is for and not for, the data and the label, how it
was validated, how it compares with the baselines (and, on the synthetic city, with the true risk),
and its limitations. The text is the template experiments/templates/model_card.md.j2 (with
fairness_section.md.j2 and accepted_findings.md.j2); this module prepares its values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from experiments.fairness import FairnessGate, GateResult, gate_policy_text, gated_rows
from experiments.markdown import render

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


def metric_rows(metrics: pd.DataFrame, *, fold: str) -> list[tuple[str, list[str]]]:
    """Per scorer of one fold label: its name and its headline metrics as text (CARD_METRICS)."""
    rows = metrics.loc[metrics["fold"] == fold].set_index("model")
    return [
        (SCORER_NAMES.get(name, name), [_number(row.get(column)) for column, _ in CARD_METRICS])
        for name, row in rows.iterrows()
    ]


def _truth_values(truth: pd.DataFrame | None) -> dict[str, object] | None:
    if truth is None or truth.empty:
        return None
    by_scorer = truth.set_index("scorer")
    return {
        "as_of": pd.Timestamp(truth["as_of"].iloc[0]).date(),
        "model_auc": by_scorer.loc["model", "auc"],
        "truth_auc": by_scorer.loc["truth", "auc"],
        "ratio": by_scorer.loc["model", "auc_ratio_to_truth"],
        "model_precision": by_scorer.loc["model", "precision_at_capacity"],
        "truth_precision": by_scorer.loc["truth", "precision_at_capacity"],
    }


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
        return render("fairness_section.md.j2", heading=heading, audit_rows=None)
    rows = audit.assign(gated=gated_rows(audit, settings=gate_settings)).to_dict("records")
    return render(
        "fairness_section.md.j2",
        heading=heading,
        audit_rows=rows,
        k=int(audit["k"].iloc[0]) if "k" in audit else 0,
        policy=gate_policy_text(gate_settings),
        verdict="not judged" if gate is None else ("passed" if gate.passed else "FAILED"),
        message="" if gate is None else f" {gate.message}",
        reweighting=reweighting,
        percent=_percent,
        ratio_text=_ratio_text,
    )


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
    return render(
        "accepted_findings.md.j2",
        heading=heading,
        title=ACCEPTED_HEADING,
        accepted=list(accepted),
        cell=_cell,
        ratio_text=_ratio_text,
        p_value_text=_p_value_text,
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
    return render(
        "model_card.md.j2",
        model_name=model_name,
        snapshot_id=snapshot_id,
        summary=data_summary,
        settings=settings,
        crisis_types=settings["crisis_types"].replace(",", ", "),
        folds=folds,
        metric_labels=[label for _, label in CARD_METRICS],
        metric_rows={fold: metric_rows(metrics, fold=fold) for fold in ("all", "holdout")},
        churn=churn,
        number=_number,
        truth=_truth_values(truth),
        fairness_section=fairness_section(
            fairness,
            gate=fairness_gate,
            gate_settings=gate_settings or FairnessGate(),
            reweighting=_reweighting_text(settings),
        ),
    )
