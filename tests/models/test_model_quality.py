"""On a small synthetic city the model must beat the baselines and be calibrated out of sample."""

from __future__ import annotations

import numpy as np
import pytest


def _rows(outcome, fold: str):
    return outcome.metrics.loc[outcome.metrics["fold"] == fold].set_index("model")


@pytest.mark.parametrize("fold", ["all", "holdout"])
def test_model_beats_every_baseline_on_auc(trained_outcome, fold):
    rows = _rows(trained_outcome, fold)
    for baseline in ("logistic", "rule", "prior"):
        assert rows.loc["model", "auc"] > rows.loc[baseline, "auc"], baseline


def test_model_ranks_better_than_the_rule_at_the_top_of_the_list(trained_outcome):
    rows = _rows(trained_outcome, "all")
    assert rows.loc["model", "average_precision"] > rows.loc["rule", "average_precision"]
    assert rows.loc["model", "precision_at_top5pct"] > rows.loc["rule", "precision_at_top5pct"]


def test_probabilities_are_calibrated_on_held_out_dates(trained_outcome):
    rows = _rows(trained_outcome, "all")
    predicted, observed = rows.loc["model", "mean_risk"], rows.loc["model", "escalation_rate"]
    assert abs(predicted - observed) < 0.25 * observed
    assert rows.loc["model", "ece"] < 0.02
    assert rows.loc["model", "brier"] < rows.loc["prior", "brier"]


def test_every_fold_is_scored_on_a_later_date_than_it_was_trained(trained_outcome):
    folds = trained_outcome.metrics.loc[~trained_outcome.metrics["fold"].isin(["all", "holdout"])]
    assert folds["fold"].nunique() == len(trained_outcome.folds)
    for fold in trained_outcome.folds:
        assert max(fold.window.as_of_dates) < fold.test_as_of


def test_model_is_compared_with_the_true_risk_on_the_same_households(trained_outcome):
    truth = trained_outcome.truth.set_index("scorer")
    assert truth.loc["model", "households"] == truth.loc["truth", "households"]
    assert truth.loc["truth", "auc"] > truth.loc["model", "auc"] > 0.5
    assert truth.loc["model", "auc_ratio_to_truth"] == pytest.approx(
        truth.loc["model", "auc"] / truth.loc["truth", "auc"]
    )


def test_list_churn_is_a_share_of_the_list(trained_outcome):
    churn = trained_outcome.churn
    assert churn["k_capacity"] >= 0
    assert 0 <= churn["overlap_at_top1pct"] <= 1
    assert np.isnan(churn["overlap_at_capacity"]) or 0 <= churn["overlap_at_capacity"] <= 1
