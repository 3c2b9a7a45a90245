"""The bias audit wired into training and promotion, and reweighting as a training mitigation."""

from __future__ import annotations

import dataclasses
import getpass
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from experiments import tracking
from experiments.fairness import accepted_finding, bias_audit, household_groups
from models import MODEL_NAME, EscalationModel, TrainSettings, log_outcome, promote
from models._train import Examples, FeatureCache, TrainingData, example_weights

FAST = {"n_estimators": 30, "early_stopping_rounds": 10, "num_threads": 1, "min_child_samples": 20}


def _alias(home, alias: str) -> str | None:
    found = tracking.version_by_alias(
        tracking_uri=tracking.resolve_tracking_uri(home=home), model_name=MODEL_NAME, alias=alias
    )
    return found.version if found else None


# --- promotion refuses an unfair challenger, end to end --------------------------------------


def _under_serving(outcome, tables: dict, *, locality: str):
    """The outcome as if its model under-served one locality on the holdout: that locality's
    households ranked last and their risk under-stated, as under-recorded contact would do."""
    predictions = outcome.holdout_predictions
    as_of = outcome.holdout.test_as_of
    groups = household_groups(households=tables["households"], people=tables["people"], as_of=as_of)
    in_group = predictions["household_id"].isin(
        groups.loc[groups["locality"] == locality, "household_id"]
    )
    unfair = predictions.assign(
        rank_score=predictions["rank_score"].where(~in_group, predictions["rank_score"] - 20.0),
        score=predictions["score"].where(~in_group, predictions["score"] * 0.3),
    )
    k = int(outcome.fairness["k"].iloc[0])
    return dataclasses.replace(outcome, fairness=bias_audit(predictions=unfair, groups=groups, k=k))


def test_promote_refuses_a_challenger_that_under_serves_a_group(
    rebalance_home, trained_outcome, small_city, quick
):
    log_outcome(trained_outcome, snapshot_id="snap-1", settings=quick, home=rebalance_home)
    assert promote(home=rebalance_home, settings=quick).promoted
    audit = trained_outcome.fairness
    reference = audit.loc[(audit["attribute"] == "locality") & audit["is_reference"], "group"]
    others = audit.loc[(audit["attribute"] == "locality") & ~audit["is_reference"]]
    locality = str(others.sort_values("households").iloc[-1]["group"])
    assert locality != reference.iloc[0]
    unfair = _under_serving(trained_outcome, small_city, locality=locality)
    # Same model, better margin not needed: only the fairness gate should refuse it.
    log_outcome(unfair, snapshot_id="snap-2", settings=quick, home=rebalance_home)

    decision = promote(home=rebalance_home, settings=dataclasses.replace(quick, promote_margin=0))

    assert not decision.promoted
    assert decision.failed_gates == ("fairness",)
    assert f"locality={locality}: predicted to observed ratio" in decision.fairness.message
    assert "fairness" in decision.message
    assert (_alias(rebalance_home, "champion"), _alias(rebalance_home, "challenger")) == ("1", "2")
    lines = (rebalance_home / "audit" / "promotions.jsonl").read_text().splitlines()
    refused = json.loads(lines[-1])
    assert refused["decision"] == "refused" and refused["champion_after"] == "1"
    [gate] = [gate for gate in refused["gates"] if gate["name"] == "fairness"]
    named = {(f["attribute"], f["group"], f["metric"]) for f in gate["failures"]}
    assert ("locality", locality, "predicted_to_observed") in named
    # No record is written for a refused challenger.
    assert not (rebalance_home / "governance" / "version-2").exists()


# --- a council accepts exactly the refused findings, accountably ------------------------------


def _promote_cli(home, *arguments: str):
    from typer.testing import CliRunner

    from api.cli import app

    return CliRunner().invoke(app, ["promote", *arguments, "--home", str(home)])


def test_only_an_exact_current_acceptance_lets_a_refused_challenger_through(
    rebalance_home, trained_outcome, small_city, quick
):
    audit = trained_outcome.fairness
    others = audit.loc[(audit["attribute"] == "locality") & ~audit["is_reference"]]
    locality = str(others.sort_values("households").iloc[-1]["group"])
    unfair = _under_serving(trained_outcome, small_city, locality=locality)
    log_outcome(unfair, snapshot_id="snap-1", settings=quick, home=rebalance_home)
    today = datetime.now(UTC).date()

    refused = promote(home=rebalance_home, settings=quick)
    assert refused.failed_gates == ("fairness",)
    findings = [f"{f['attribute']}={f['group']}:{f['metric']}" for f in refused.fairness.failures]
    assert f"locality={locality}:predicted_to_observed" in findings

    def attempt(accepted: list[str], *, review_by=today + timedelta(days=30)):
        return promote(
            home=rebalance_home,
            settings=quick,
            accepted=[
                accepted_finding(text, reason="test", review_by=review_by) for text in accepted
            ],
        )

    # Another metric for the locality's finding leaves that failure uncovered.
    wrong = [f.replace(":predicted_to_observed", ":selection_rate") for f in findings]
    decision = attempt(wrong)
    assert not decision.promoted and not decision.accepted_findings
    assert f"locality={locality}: predicted to observed ratio" in decision.fairness.message
    assert f"locality={locality}:selection_rate" in {
        item["finding"] for item in decision.unused_acceptances
    }
    expired = attempt(findings, review_by=today - timedelta(days=1))
    assert not expired.promoted and "expired on" in expired.fairness.message

    # --accept without --reason is refused before anything is judged.
    bare = _promote_cli(rebalance_home, "--accept", findings[0])
    assert bare.exit_code == 2 and "--accept needs --reason" in bare.output
    assert _alias(rebalance_home, "champion") is None

    accept = [argument for finding in findings for argument in ("--accept", finding)]
    review_by = (today + timedelta(days=60)).isoformat()
    reason = "Board minute 7: the gap follows need; mitigation trial under way"
    result = _promote_cli(rebalance_home, *accept, "--reason", reason, "--review-by", review_by)
    assert result.exit_code == 0, result.output
    assert f"PROMOTED WITH {len(findings)} ACCEPTED FAIRNESS FINDING(S)" in result.output
    assert f"accepted: locality={locality}: predicted to observed ratio" in result.output
    assert _alias(rebalance_home, "champion") == "1"

    lines = (rebalance_home / "audit" / "promotions.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["decision"] for r in records] == ["refused", "refused", "refused", "promoted"]
    promoted = records[-1]
    assert [item["finding"] for item in promoted["accepted_findings"]] == findings
    for item in promoted["accepted_findings"]:
        assert item["reason"] == reason and item["review_by"] == review_by
        assert item["accepted_by"] == promoted["decided_by"] == getpass.getuser()
        assert item["accepted_at"] == promoted["decided_at"] and item["source"] == "command line"
    [gate] = [gate for gate in promoted["gates"] if gate["name"] == "fairness"]
    assert gate["passed"] and len(gate["failures"]) == len(findings)

    tags = tracking.version_tags(
        tracking_uri=tracking.resolve_tracking_uri(home=rebalance_home),
        model_name=MODEL_NAME,
        version="1",
    )
    assert tags["fairness_accepted"] == "; ".join(findings)
    assert tags["fairness_accepted_review_by"] == review_by
    uri = tracking.resolve_tracking_uri(home=rebalance_home)
    champion = tracking.version_by_alias(tracking_uri=uri, model_name=MODEL_NAME, alias="champion")
    run_tags = tracking.run_values(tracking_uri=uri, run_id=champion.run_id)[2]
    assert run_tags["fairness_accepted"] == "; ".join(findings)
    folder = rebalance_home / "governance" / "version-1"
    for name in ("model_card.md", "transparency_record.md"):
        text = (folder / name).read_text()
        assert "Fairness findings accepted at promotion" in text and reason in text
    stored = json.loads((folder / "accepted_findings.json").read_text())
    assert stored == promoted["accepted_findings"]


# --- sample weights in the estimator ---------------------------------------------------------


def _data(rows: int, *, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = pd.DataFrame(
        {"arrest_count_52w": rng.poisson(0.7, rows), "agencies_26w": rng.integers(0, 5, rows)}
    )
    signal = 0.8 * features["arrest_count_52w"] + 0.4 * features["agencies_26w"] - 3.0
    return features, (rng.random(rows) < 1 / (1 + np.exp(-signal))).astype(int)


def _fit(**weights) -> EscalationModel:
    (X, y), (X_valid, y_valid), (X_calib, y_calib) = (
        _data(n, seed=s) for n, s in [(3000, 1), (800, 2), (2000, 3)]
    )
    return EscalationModel(**FAST).fit(
        X, y, X_valid=X_valid, y_valid=y_valid, X_calib=X_calib, y_calib=y_calib, **weights
    )


def test_sample_weights_change_what_the_trees_learn():
    X, y = _data(3000, seed=1)
    plain = _fit()
    # Positives count five times: the trees' raw scores rise everywhere.
    heavier = _fit(sample_weight=np.where(y == 1, 5.0, 1.0))
    assert heavier.predict_raw(X).mean() > plain.predict_raw(X).mean() + 0.5
    same = _fit(sample_weight=np.ones(len(y)))
    np.testing.assert_allclose(same.predict_raw(X), plain.predict_raw(X))


def test_weighted_calibration_equals_calibration_on_repeated_examples():
    X_calib, y_calib = _data(2000, seed=3)
    weights = np.where(np.arange(len(y_calib)) % 2 == 0, 2.0, 1.0)
    weighted = _fit(calib_sample_weight=weights)
    repeated = EscalationModel(**FAST)
    X, y = _data(3000, seed=1)
    X_valid, y_valid = _data(800, seed=2)
    twice = np.repeat(np.arange(len(y_calib)), weights.astype(int))
    repeated.fit(
        X,
        y,
        X_valid=X_valid,
        y_valid=y_valid,
        X_calib=X_calib.iloc[twice],
        y_calib=y_calib[twice],
    )
    grid = np.linspace(-4, 2, 50)
    np.testing.assert_allclose(
        weighted.calibrator_.predict(grid), repeated.calibrator_.predict(grid), atol=1e-6
    )


def test_bad_weights_are_refused():
    y = _data(3000, seed=1)[1]
    with pytest.raises(ValueError, match="sample_weight has 10 weights for 3000 examples"):
        _fit(sample_weight=np.ones(10))
    with pytest.raises(ValueError, match="non-negative"):
        _fit(sample_weight=np.where(y == 1, -1.0, 1.0))


# --- reweighting by group ---------------------------------------------------------------


def _training_data(groups: pd.Series) -> TrainingData:
    ids = pd.Index(groups.index.astype("str"))
    cache = FeatureCache(household_ids=ids, feature_names=[], matrices={})
    return TrainingData(cache=cache, crisis_events=None, roles=None, workers=None, cases=None)


def test_reweighting_makes_group_and_outcome_independent_at_full_strength():
    # Group a: 600 examples, 20% escalate; group b: 400 examples, 5% escalate.
    group = pd.Series(["a"] * 600 + ["b"] * 400, index=[f"H{i:04d}" for i in range(1000)])
    labels = np.r_[np.ones(120), np.zeros(480), np.ones(20), np.zeros(380)].astype(int)
    data = _training_data(group)
    examples = Examples(matrix=np.zeros((1000, 0)), labels=labels, households=np.arange(1000))
    groups = pd.DataFrame({"household_id": group.index, "ethnicity": group.to_numpy()})
    settings = TrainSettings(reweight_attribute="ethnicity")
    weights = example_weights(data, examples, groups=groups, settings=settings)
    assert weights.mean() == pytest.approx(1.0)
    # P(g) P(y) / P(g, y): b's escalations weigh 0.4 * 0.14 / 0.02 = 2.8 (before the mean-1
    # rescaling, which here is exact: the weights already average 1).
    assert weights[600] == pytest.approx(0.4 * 0.14 / 0.02)
    assert weights[0] == pytest.approx(0.6 * 0.14 / 0.12)
    positive_share = {
        name: weights[(group == name).to_numpy() & (labels == 1)].sum()
        / weights[(group == name).to_numpy()].sum()
        for name in ("a", "b")
    }
    assert positive_share["a"] == pytest.approx(positive_share["b"]) == pytest.approx(0.14)
    tempered = example_weights(
        data, examples, groups=groups, settings=dataclasses.replace(settings, reweight_strength=0.5)
    )
    expected = np.sqrt(weights) / np.sqrt(weights).mean()
    np.testing.assert_allclose(tempered, expected)
    off = dataclasses.replace(settings, reweight_strength=0.0)
    np.testing.assert_allclose(example_weights(data, examples, groups=groups, settings=off), 1.0)


def test_reweighting_settings_are_checked():
    with pytest.raises(ValueError, match="reweight_attribute must be one of"):
        TrainSettings(reweight_attribute="religion")
    with pytest.raises(ValueError, match="reweight_strength"):
        TrainSettings(reweight_attribute="age_band", reweight_strength=2.0)
