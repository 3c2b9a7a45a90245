"""Promotion gates and training settings (pure: no MLflow)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.fairness import audit_metrics, bias_audit
from experiments.gates import PROMOTION_GATES, evaluate_gates
from models import TrainSettings


def _fair_audit_metrics() -> dict[str, float]:
    """A logged audit in which two equal groups are served alike (recall 20/40 each)."""
    households = [f"H{i:04d}" for i in range(800)]
    label = np.tile(np.r_[np.ones(40), np.zeros(360)], 2).astype(int)
    high = np.tile(np.r_[np.ones(20), np.zeros(380)], 2).astype(bool)
    predictions = pd.DataFrame(
        {"household_id": households, "score": np.where(high, 0.6, 0.1), "label": label}
    )
    groups = pd.DataFrame(
        {
            "household_id": households,
            "sex": "female",
            "ethnicity": np.repeat(["white", "black"], 400),
            "disability": "no",
            "age_band": "35-49",
            "locality": np.repeat(["Hanley", "Stoke"], 400),
        }
    )
    return audit_metrics(bias_audit(predictions=predictions, groups=groups, k=40))


GOOD = _fair_audit_metrics() | {
    "holdout_model_auc": 0.81,
    "holdout_logistic_auc": 0.79,
    "holdout_rule_auc": 0.76,
    "holdout_prior_auc": 0.5,
    "holdout_model_ece": 0.004,
    "holdout_model_average_precision": 0.35,
}


def _results(challenger, champion=None, **settings):
    outcome = evaluate_gates(
        PROMOTION_GATES,
        challenger=challenger,
        champion=champion,
        settings=TrainSettings(**settings),
    )
    return {result.name: result for result in outcome}


def test_a_good_first_challenger_passes_every_gate():
    results = _results(GOOD)
    assert all(result.passed for result in results.values())
    assert results["beats_champion"].message == "no champion yet"


def test_the_champion_must_be_beaten_by_the_margin():
    champion = GOOD | {"holdout_model_auc": 0.809}
    assert not _results(GOOD, champion, promote_margin=0.002)["beats_champion"].passed
    assert _results(GOOD, champion, promote_margin=0.001)["beats_champion"].passed


def test_the_promotion_metric_is_configurable():
    champion = GOOD | {"holdout_model_auc": 0.70, "holdout_model_average_precision": 0.40}
    assert _results(GOOD, champion, promote_metric="auc")["beats_champion"].passed
    refused = _results(GOOD, champion, promote_metric="average_precision")["beats_champion"]
    assert not refused.passed and "average_precision" in refused.message


def test_failing_gates_say_why():
    results = _results(GOOD | {"holdout_model_auc": 0.65, "holdout_model_ece": 0.05})
    assert (
        not results["minimum_auc"].passed
        and "0.6500 < minimum 0.7" in results["minimum_auc"].message
    )
    assert "logistic 0.7900, rule 0.7600" in results["beats_baselines"].message
    assert not results["beats_baselines"].passed
    assert not results["calibration"].passed and "0.0500" in results["calibration"].message


def test_the_fairness_gate_reads_the_logged_audit():
    results = _results(GOOD)
    assert results["fairness"].passed and "judged groups pass" in results["fairness"].message
    unaudited = {name: value for name, value in GOOD.items() if not name.startswith("fairness/")}
    refused = _results(unaudited)["fairness"]
    assert not refused.passed and refused.message == "no fairness audit was recorded with this run"


def test_a_missing_metric_fails_the_gate_rather_than_passing_it():
    without_ece = {key: value for key, value in GOOD.items() if key != "holdout_model_ece"}
    result = _results(without_ece)["calibration"]
    assert not result.passed and "holdout_model_ece" in result.message
