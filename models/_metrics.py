"""Evaluation: discrimination, calibration and the top-k list a locality team can actually take on.

`k` is the number of households the key workers can take: free capacity points (active workers'
capacity minus their open cases' complexity) divided by the median case complexity. Ranking is by
score, ties broken by household_id, so the same inputs always give the same list; how many
households share the cut-off score is reported, because a tie at the cut-off means the list there
is decided by the tie-break rather than by the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from features.cases import open_cases


def capacity_k(*, workers: pd.DataFrame, cases: pd.DataFrame, as_of) -> int:
    """How many more households the active key workers can take on as of `as_of`."""
    as_of = pd.Timestamp(as_of)
    active = workers.loc[workers["active"].astype(bool)]
    load = open_cases(cases, as_of=as_of).groupby("worker_id")["complexity_points"].sum()
    free_points = (active["capacity_points"] - active["worker_id"].map(load).fillna(0)).clip(
        lower=0
    )
    typical_points = float(cases["complexity_points"].median()) if len(cases) else np.nan
    if not typical_points > 0:
        return 0
    return int(free_points.sum() // typical_points)


def ranking_order(score: np.ndarray, household_ids: np.ndarray) -> np.ndarray:
    """Positions sorted by score descending, then household_id ascending."""
    return np.lexsort((np.asarray(household_ids, dtype=str), -np.asarray(score, dtype=float)))


def precision_recall_at_k(
    *, labels: np.ndarray, score: np.ndarray, household_ids: np.ndarray, k: int
) -> dict[str, float]:
    """Precision and recall of the top k, and how many households tie on the cut-off score."""
    labels = np.asarray(labels)
    if k <= 0 or k > len(labels):
        return {"precision": np.nan, "recall": np.nan, "tied_at_cutoff": np.nan, "k": k}
    order = ranking_order(score, household_ids)
    selected = labels[order[:k]]
    cutoff_score = np.asarray(score, dtype=float)[order[k - 1]]
    positives = labels.sum()
    return {
        "precision": float(selected.mean()),
        "recall": float(selected.sum() / positives) if positives else np.nan,
        "tied_at_cutoff": int(np.sum(np.asarray(score, dtype=float) == cutoff_score)),
        "k": k,
    }


def calibration_table(labels: np.ndarray, risk: np.ndarray, *, bins: int) -> pd.DataFrame:
    """Observed escalation rate against mean predicted risk, in equal-size bins of risk."""
    frame = pd.DataFrame({"label": np.asarray(labels, float), "risk": np.asarray(risk, float)})
    order = np.argsort(frame["risk"].to_numpy(), kind="stable")
    bin_of_row = np.empty(len(frame), dtype=np.int64)
    bin_of_row[order] = np.arange(len(frame)) * bins // max(len(frame), 1)
    table = frame.groupby(bin_of_row).agg(
        mean_predicted=("risk", "mean"),
        observed_rate=("label", "mean"),
        households=("risk", "size"),
    )
    return table.rename_axis("bin").reset_index()


def expected_calibration_error(labels: np.ndarray, risk: np.ndarray, *, bins: int) -> float:
    """Household-weighted mean absolute gap between predicted and observed rates across bins."""
    table = calibration_table(labels, risk, bins=bins)
    gap = (table["mean_predicted"] - table["observed_rate"]).abs()
    return float((gap * table["households"]).sum() / table["households"].sum())


def discrimination_and_calibration(
    *, labels: np.ndarray, score: np.ndarray, risk: np.ndarray, bins: int
) -> dict[str, float]:
    """Threshold-free metrics: AUC and average precision of the score; Brier and ECE of the risk."""
    labels = np.asarray(labels)
    both_classes = 0 < labels.sum() < len(labels)
    return {
        "households": float(len(labels)),
        "escalation_rate": float(labels.mean()),
        "mean_risk": float(np.mean(risk)),
        "auc": float(roc_auc_score(labels, score)) if both_classes else np.nan,
        "average_precision": float(average_precision_score(labels, score))
        if both_classes
        else np.nan,
        "brier": float(brier_score_loss(labels, risk)),
        "ece": expected_calibration_error(labels, risk, bins=bins),
    }


def list_metrics(
    *,
    labels: np.ndarray,
    score: np.ndarray,
    household_ids: np.ndarray,
    k_capacity: int,
    top_fractions: tuple[float, ...],
) -> dict[str, float]:
    """Precision, recall and cut-off ties of the top-k list at capacity and at each top fraction."""
    cutoffs = {"capacity": k_capacity} | {
        f"top{fraction * 100:g}pct": max(1, int(round(fraction * len(labels))))
        for fraction in top_fractions
    }
    metrics = {}
    for name, k in cutoffs.items():
        at_k = precision_recall_at_k(labels=labels, score=score, household_ids=household_ids, k=k)
        metrics |= {f"{key}_at_{name}": float(value) for key, value in at_k.items()}
    return metrics


def score_metrics(
    *,
    labels: np.ndarray,
    score: np.ndarray,
    risk: np.ndarray,
    household_ids: np.ndarray,
    k_capacity: int,
    top_fractions: tuple[float, ...],
    bins: int,
) -> dict[str, float]:
    """Every headline metric for one set of predictions against one set of outcomes."""
    return discrimination_and_calibration(
        labels=labels, score=score, risk=risk, bins=bins
    ) | list_metrics(
        labels=labels,
        score=score,
        household_ids=household_ids,
        k_capacity=k_capacity,
        top_fractions=top_fractions,
    )


def precision_curve(
    *,
    labels: np.ndarray,
    score: np.ndarray,
    household_ids: np.ndarray,
    max_k: int,
    points: int = 60,
) -> pd.DataFrame:
    """Precision and recall at k for k from 1 to `max_k` (the precision-at-k plot)."""
    labels = np.asarray(labels)
    hits = np.cumsum(labels[ranking_order(score, household_ids)])
    top = int(np.clip(max_k, 1, len(labels)))
    ks = np.unique(np.linspace(1, top, points).round().astype(int))
    return pd.DataFrame(
        {"k": ks, "precision": hits[ks - 1] / ks, "recall": hits[ks - 1] / max(labels.sum(), 1)}
    )


def top_k_overlap(
    *, score_before: np.ndarray, score_after: np.ndarray, household_ids: np.ndarray, k: int
) -> float:
    """Share of this week's top k that were also in last week's top k (list stability)."""
    if k <= 0:
        return np.nan
    before = set(np.asarray(household_ids)[ranking_order(score_before, household_ids)[:k]])
    after = set(np.asarray(household_ids)[ranking_order(score_after, household_ids)[:k]])
    return len(before & after) / k
