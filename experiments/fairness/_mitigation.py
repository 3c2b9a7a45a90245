"""Mitigation: group-aware cut-offs that equalise recall at k, applied to the week's ranking.

Reweighting training examples by group (the other mitigation) is models.group_sample_weights.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from experiments.fairness._audit import (
    RANK_COLUMN,
    attribute_audit,
    check_groups_cover,
    check_predictions,
    k_count,
    logit,
    selected_at_k,
)
from features.groups import UNKNOWN, require_columns


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
    check_predictions(predictions)
    require_columns(groups, table="groups", columns=("household_id", attribute))
    scored = selected_at_k(predictions, k=k_count(k, households=len(predictions))).merge(
        groups[["household_id", attribute]], on="household_id", how="left", validate="1:1"
    )
    check_groups_cover(scored, attributes=[attribute])
    summary = attribute_audit(scored, attribute=attribute, reference="largest")
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


def group_aware_adjustment(
    *, scores: pd.DataFrame, groups: pd.DataFrame, cut_offs: pd.DataFrame
) -> pd.DataFrame:
    """The allocation priority with each group's shift: household_id, score, group, shift, rank.

    scores: household_id and score (calibrated risk), plus rank_score (raw log-odds) when the list
    is ranked by it. Returns adjusted_rank_score (log-odds plus the group's shift): rank the week's
    households by it (then household_id) before allocation. The shown risk stays `score`.
    """
    attribute = str(cut_offs["attribute"].iloc[0])
    require_columns(scores, table="scores", columns=("household_id", "score"))
    require_columns(groups, table="groups", columns=("household_id", attribute))
    columns = ["household_id", "score", *([RANK_COLUMN] if RANK_COLUMN in scores else [])]
    grouped = scores[columns].merge(
        groups[["household_id", attribute]], on="household_id", how="left", validate="1:1"
    )
    group = grouped[attribute].fillna(UNKNOWN).astype("str")
    shift = group.map(dict(zip(cut_offs["group"], cut_offs["log_odds_shift"], strict=True)))
    base = grouped[RANK_COLUMN] if RANK_COLUMN in grouped else logit(grouped["score"])
    return pd.DataFrame(
        {
            "household_id": grouped["household_id"],
            "score": grouped["score"],
            "group": group,
            "odds_multiplier": np.exp(shift.fillna(0.0)),
            "adjusted_rank_score": np.asarray(base, dtype="float64") + shift.fillna(0.0),
        }
    )
