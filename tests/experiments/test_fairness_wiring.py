"""The bias audit wired into training and promotion."""

from __future__ import annotations

import dataclasses
import getpass
import json
from datetime import UTC, datetime, timedelta

from experiments import tracking
from experiments.fairness import accepted_finding, bias_audit
from experiments.promotion import promote
from experiments.registry import log_outcome
from features.groups import household_groups
from models import MODEL_NAME


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
