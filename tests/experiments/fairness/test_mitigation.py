"""Mitigation: group-aware cut-offs; reweighing weights make group and outcome independent."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.fairness import (
    bias_audit,
    fit_group_cut_offs,
    group_aware_adjustment,
)
from models import group_sample_weights
from tests.experiments.fairness.constructed import (
    FAIR,
    UNFAIR,
    constructed,
    groups_of,
    row,
)


@pytest.fixture
def unfair() -> pd.DataFrame:
    """Two groups; B's escalations are found less often at k = 50 (UNFAIR)."""
    return constructed(UNFAIR)


def test_group_aware_cut_offs_equalise_recall_at_k():
    rng = np.random.default_rng(7)
    households = 4000
    group = rng.choice(["A", "B", "C"], size=households, p=[0.6, 0.3, 0.1])
    label = (rng.random(households) < 0.1).astype(int)
    # The model sees B's need less clearly: its positives are scored lower.
    signal = np.where(group == "B", 0.4, 1.6)
    score = 1 / (1 + np.exp(-(-2.5 + signal * label + rng.normal(0, 0.8, households))))
    table = pd.DataFrame(
        {
            "household_id": [f"H{i:05d}" for i in range(households)],
            "score": score,
            "label": label,
            "ethnicity": group,
        }
    )
    predictions, groups = table[["household_id", "score", "label"]], groups_of(table)
    before = bias_audit(predictions=predictions, groups=groups, k=400, attributes=["ethnicity"])
    assert row(before, "ethnicity", "B")["recall_at_k_ratio"] < 0.8
    cut_offs = fit_group_cut_offs(
        predictions=predictions, groups=groups, attribute="ethnicity", k=400
    )
    adjusted = group_aware_adjustment(scores=predictions, groups=groups, cut_offs=cut_offs)
    assert cut_offs.set_index("group").loc["A", "odds_multiplier"] == pytest.approx(1.0)
    assert cut_offs.set_index("group").loc["B", "odds_multiplier"] > 1.0
    # The shown risk is untouched and the order within a group is preserved.
    assert (adjusted["score"].to_numpy() == predictions["score"].to_numpy()).all()
    for name in ("A", "B", "C"):
        mine = adjusted.loc[adjusted["group"] == name]
        assert (np.diff(mine.sort_values("score")["adjusted_rank_score"].to_numpy()) >= 0).all()
    after = bias_audit(
        predictions=predictions.assign(rank_score=adjusted["adjusted_rank_score"].to_numpy()),
        groups=groups,
        k=400,
        attributes=["ethnicity"],
    )
    target = cut_offs["target_recall"].iloc[0]
    # Every group reaches the common recall (a cut-off sits on a positive); the slots its cut-offs
    # leave free go to the next adjusted scores, so a group may find one or two more.
    for name in ("A", "B", "C"):
        assert target <= row(after, "ethnicity", name)["recall_at_k"] <= target + 0.05
    assert 0.95 <= row(after, "ethnicity", "B")["recall_at_k_ratio"] <= 1.05
    assert after["selected"].sum() == 400


def test_groups_too_small_to_estimate_keep_their_scores(unfair):
    table = constructed(FAIR)
    cut_offs = fit_group_cut_offs(
        predictions=table[["household_id", "score", "label"]],
        groups=groups_of(table),
        attribute="ethnicity",
        k=50,
    )
    c = cut_offs.set_index("group").loc["C"]
    assert not c["adjusted"] and c["odds_multiplier"] == 1.0


def test_reweighing_makes_group_and_outcome_independent(unfair):
    predictions = unfair[["household_id", "label"]]
    weights = group_sample_weights(
        labels=predictions, groups=groups_of(unfair), attribute="ethnicity"
    )
    assert weights.mean() == pytest.approx(1.0)
    weighted = predictions.assign(weight=weights, group=unfair["ethnicity"])
    overall = predictions["label"].mean()
    for _, rows in weighted.groupby("group"):
        assert np.average(rows["label"], weights=rows["weight"]) == pytest.approx(overall)
