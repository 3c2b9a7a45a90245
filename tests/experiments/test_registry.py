"""The registry life cycle: challenger, promotion gates, champion, audit log, scoring."""

from __future__ import annotations

import getpass
import json

import numpy as np
import pandas as pd
import pytest

from experiments import tracking
from experiments.gates import Gate
from experiments.promotion import promote
from experiments.registry import load_champion, log_outcome, train
from models import MODEL_NAME, score_households, write_scores


def _uri(home) -> str:
    return tracking.resolve_tracking_uri(home=home)


def _alias(home, alias: str) -> str | None:
    found = tracking.version_by_alias(tracking_uri=_uri(home), model_name=MODEL_NAME, alias=alias)
    return found.version if found else None


def _audit_lines(home) -> list[dict]:
    path = home / "audit" / "promotions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_first_run_is_the_challenger_and_promotion_makes_it_champion(
    rebalance_home, trained_outcome, quick
):
    result = log_outcome(trained_outcome, snapshot_id="snap-1", settings=quick, home=rebalance_home)
    assert (result.model_version, _alias(rebalance_home, "challenger")) == ("1", "1")
    assert _alias(rebalance_home, "champion") is None
    with pytest.raises(LookupError, match="no champion"):
        load_champion(home=rebalance_home)

    decision = promote(home=rebalance_home, settings=quick)

    assert decision.promoted, decision.message
    assert (decision.champion_before, decision.champion_after) == (None, "1")
    assert [gate.name for gate in decision.gates] == [
        "minimum_auc",
        "calibration",
        "beats_baselines",
        "beats_champion",
        "fairness",
    ]
    assert _alias(rebalance_home, "champion") == "1"
    assert _alias(rebalance_home, "challenger") is None
    [record] = _audit_lines(rebalance_home)
    assert record["decision"] == "promoted"
    assert record["decided_by"] == getpass.getuser()
    assert record["challenger_version"] == "1" and record["champion_after"] == "1"
    assert all(gate["passed"] for gate in record["gates"])
    assert pd.Timestamp(record["decided_at"]).tzinfo is not None
    assert record["fairness_policy"]["confidence"] == 0.95
    # The new champion's model card and transparency record, at home and in its run.
    current = (rebalance_home / "governance" / "transparency-record.md").read_text()
    assert "version 1" in current and "### Fairness" in current
    assert "| fairness | passed |" in current
    assert (rebalance_home / "governance" / "version-1" / "model_card.md").is_file()
    logged = tracking.download_run_artifacts(
        tracking_uri=_uri(rebalance_home),
        run_id=result.run_id,
        path="governance",
        dst=rebalance_home / "dl",
    )
    assert (logged / "transparency_record.md").read_text() == current


def test_a_worse_challenger_is_refused_and_the_failing_gate_named(
    rebalance_home, trained_outcome, weak_outcome, quick, weak
):
    log_outcome(trained_outcome, snapshot_id="snap-1", settings=quick, home=rebalance_home)
    promote(home=rebalance_home, settings=quick)
    log_outcome(weak_outcome, snapshot_id="snap-2", settings=weak, home=rebalance_home)

    decision = promote(home=rebalance_home, settings=quick)

    assert not decision.promoted
    assert "beats_champion" in decision.failed_gates
    assert "beats_champion" in decision.message
    assert (_alias(rebalance_home, "champion"), _alias(rebalance_home, "challenger")) == ("1", "2")
    refused = _audit_lines(rebalance_home)[-1]
    assert refused["decision"] == "refused"
    assert refused["champion_before"] == refused["champion_after"] == "1"
    failing = [gate for gate in refused["gates"] if gate["name"] == "beats_champion"]
    assert failing and not failing[0]["passed"] and "champion" in failing[0]["message"]


def test_a_challenger_failing_an_extra_gate_is_not_promoted(rebalance_home, trained_outcome, quick):
    log_outcome(trained_outcome, snapshot_id="snap-1", settings=quick, home=rebalance_home)
    never = Gate("fairness", lambda **_: (False, "subgroup gap too large"))

    decision = promote(home=rebalance_home, settings=quick, gates=(never,))

    assert not decision.promoted and decision.failed_gates == ("fairness",)
    assert _alias(rebalance_home, "champion") is None
    assert _audit_lines(rebalance_home)[-1]["gates"][0]["message"] == "subgroup gap too large"


def test_promote_without_a_challenger_refuses_and_is_audited(rebalance_home, quick):
    decision = promote(home=rebalance_home, settings=quick)
    assert not decision.promoted and "no challenger" in decision.message
    assert _audit_lines(rebalance_home)[0]["decision"] == "refused"


def test_scoring_uses_the_champion_not_the_newer_challenger(
    rebalance_home, small_city, trained_outcome, weak_outcome, quick, weak, city_end
):
    log_outcome(trained_outcome, snapshot_id="snap-1", settings=quick, home=rebalance_home)
    promote(home=rebalance_home, settings=quick)
    log_outcome(weak_outcome, snapshot_id="snap-2", settings=weak, home=rebalance_home)

    champion = load_champion(home=rebalance_home)
    scores = score_households(tables=small_city, as_of=city_end, model=champion)

    assert champion.version == "1"
    assert set(scores["model_version"]) == {"1"}
    logged_from = trained_outcome.model.booster_
    assert champion.estimator.booster_.model_to_string() == logged_from.model_to_string()


def test_identical_inputs_give_identical_scores(
    rebalance_home, small_city, trained_outcome, tmp_path, quick, city_end
):
    log_outcome(trained_outcome, snapshot_id="snap-1", settings=quick, home=rebalance_home)
    promote(home=rebalance_home, settings=quick)

    first = score_households(
        tables=small_city, as_of=city_end, model=load_champion(home=rebalance_home)
    )
    second = score_households(
        tables=small_city, as_of=city_end, model=load_champion(home=rebalance_home)
    )

    pd.testing.assert_frame_equal(first, second)
    first_file = write_scores(first, tmp_path / "a" / "scores.csv")
    second_file = write_scores(second, tmp_path / "b" / "scores.csv")
    assert first_file.read_bytes() == second_file.read_bytes()


@pytest.mark.slow
def test_train_logs_parameters_metrics_artifacts_and_model_card(
    rebalance_home, small_city, weak, city_end
):
    result = train(
        tables=small_city,
        snapshot_id="snap-9",
        as_of=city_end,
        settings=weak,
        home=rebalance_home,
    )
    metrics, params, tags = tracking.run_values(
        tracking_uri=_uri(rebalance_home), run_id=result.run_id
    )
    assert params["snapshot_id"] == tags["snapshot_id"] == "snap-9"
    assert params["horizon_weeks"] == "26" and params["folds"] == "1"
    assert {
        "holdout_model_auc",
        "holdout_rule_auc",
        "model_brier",
        "churn_overlap_at_top1pct",
    } <= set(metrics)
    assert metrics["holdout_model_auc"] == pytest.approx(result.headline()["model_auc"])
    downloaded = tracking.download_run_artifacts(
        tracking_uri=_uri(rebalance_home), run_id=result.run_id, path="", dst=rebalance_home / "dl"
    )
    for name in (
        "model/booster.txt",
        "model/calibrator.json",
        "model/model.json",
        "plots/calibration.png",
        "plots/precision_at_k.png",
        "plots/feature_importance.png",
        "metrics.csv",
        "features.json",
        "model_card.md",
        "effect_directions.csv",
        "fairness_audit.csv",
        "plots/fairness_audit.png",
    ):
        assert (downloaded / name).is_file(), name
    assert list((downloaded / "plots" / "shap").glob("*.png")), "the global SHAP view is logged"
    card = (downloaded / "model_card.md").read_text()
    headings = ("## Intended use", "## Data and label", "## Validation", "## Limitations")
    for heading in (*headings, "## Direction of the main effects", "## Fairness"):
        assert heading in card
    # The bias audit: table, flat metrics the gate reads back, and the verdict as a tag.
    audit = pd.read_csv(downloaded / "fairness_audit.csv")
    assert set(audit["attribute"]) == {"sex", "ethnicity", "disability", "age_band", "locality"}
    assert metrics["fairness/k"] == audit["k"].iloc[0] == metrics["holdout_model_k_at_capacity"]
    assert tags["fairness_gate"] in ("passed", "failed")
    assert (tags["fairness_gate"] == "passed") == result.fairness_gate.passed
    assert (
        json.loads((downloaded / "features.json").read_text())
        == result.outcome.model.feature_names_
    )
    assert np.isfinite(pd.read_csv(downloaded / "metrics.csv")["auc"]).all()
