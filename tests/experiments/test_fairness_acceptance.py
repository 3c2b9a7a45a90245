"""Accepting a specific fairness finding at promotion: parsing, matching, expiry and the records."""

from __future__ import annotations

from datetime import date

import pytest

from api.pipeline import accepted_findings, fairness_settings
from api.settings import load_settings
from experiments.fairness import (
    AcceptedFinding,
    FairnessGate,
    GateResult,
    accepted_finding,
    accepted_findings_from_config,
    apply_acceptances,
)
from experiments.model_card import ACCEPTED_HEADING, accepted_findings_section
from experiments.transparency import transparency_record

TODAY = date(2026, 11, 22)


def _failure(attribute: str, group: str, metric: str, ratio: float) -> dict:
    return {
        "attribute": attribute,
        "group": group,
        "metric": metric,
        "ratio": ratio,
        "bound": 0.8,
        "p_value": 0.001,
        "text": f"{attribute}={group}: {metric} ratio {ratio:.2f} is below 0.80",
    }


REFUSED = GateResult(
    "fairness",
    False,
    "age_band=65+: ...; locality=Hanley: ...",
    failures=[
        _failure("age_band", "65+", "recall_at_k", 0.28),
        _failure("locality", "Hanley", "recall_at_k", 3.36),
    ],
)


def _accept(finding: str, *, review_by: date = date(2027, 3, 31)) -> AcceptedFinding:
    return accepted_finding(finding, reason="need differs by age", review_by=review_by)


# --- naming a finding -------------------------------------------------------------------------


def test_a_finding_is_attribute_group_and_metric_and_groups_may_hold_separators():
    plain = _accept("age_band=65+:recall_at_k")
    assert (plain.attribute, plain.group, plain.metric) == ("age_band", "65+", "recall_at_k")
    odd = _accept("locality=Stoke: North=1:predicted_to_observed")
    assert odd.group == "Stoke: North=1" and odd.metric == "predicted_to_observed"
    assert odd.finding == "locality=Stoke: North=1:predicted_to_observed"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("age_band:recall_at_k", "expected ATTRIBUTE=GROUP:METRIC"),
        ("age_band=65+", "expected ATTRIBUTE=GROUP:METRIC"),
        ("religion=x:recall_at_k", "attribute must be one of"),
        ("age_band=65+:recall", "metric must be one of"),
        ("age_band=:recall_at_k", "the group is empty"),
    ],
)
def test_a_badly_named_finding_is_refused_with_the_expected_form(text, message):
    with pytest.raises(ValueError, match=message):
        _accept(text)


def test_an_acceptance_needs_a_reason_and_a_review_date():
    with pytest.raises(ValueError, match="a reason is required"):
        accepted_finding("age_band=65+:recall_at_k", reason="  ", review_by=TODAY)
    with pytest.raises(ValueError, match="review_by"):
        accepted_finding("age_band=65+:recall_at_k", reason="why", review_by=None)
    with pytest.raises(ValueError, match="not a date"):
        accepted_finding("age_band=65+:recall_at_k", reason="why", review_by="next spring")


# --- matching failures ------------------------------------------------------------------------


def test_the_gate_passes_only_when_every_failure_is_accepted_exactly():
    both = [_accept("age_band=65+:recall_at_k"), _accept("locality=Hanley:recall_at_k")]
    result = apply_acceptances(REFUSED, accepted=both, today=TODAY)
    assert result.passed
    assert [item["finding"] for item in result.accepted] == [item.finding for item in both]
    assert result.accepted[0]["reason"] == "need differs by age"
    assert result.accepted[0]["review_by"] == "2027-03-31" and result.accepted[0]["ratio"] == 0.28
    # The findings stay on the record: acceptance does not erase them.
    assert result.failures == REFUSED.failures
    assert "ACCEPTED age_band=65+: recall_at_k ratio 0.28" in result.message

    one = apply_acceptances(REFUSED, accepted=both[:1], today=TODAY)
    assert not one.passed
    assert one.message.startswith("locality=Hanley: recall_at_k ratio 3.36")
    assert "do not let it pass" in one.message


@pytest.mark.parametrize(
    "wrong",
    [
        "age_band=50-64:recall_at_k",  # another group
        "age_band=65+:false_negative_rate",  # another metric
        "locality=65+:recall_at_k",  # another attribute
    ],
)
def test_an_acceptance_for_another_group_or_metric_does_not_help(wrong):
    accepted = [_accept(wrong), _accept("locality=Hanley:recall_at_k")]
    result = apply_acceptances(REFUSED, accepted=accepted, today=TODAY)
    assert not result.passed
    assert "age_band=65+: recall_at_k ratio 0.28" in result.message
    assert [item["finding"] for item in result.unused_acceptances] == [wrong]
    assert result.unused_acceptances[0]["why"] == "matches no failure of this model"


def test_an_expired_acceptance_no_longer_counts_but_one_due_today_does():
    accepted = [
        _accept("age_band=65+:recall_at_k", review_by=date(2026, 11, 21)),
        _accept("locality=Hanley:recall_at_k", review_by=TODAY),
    ]
    result = apply_acceptances(REFUSED, accepted=accepted, today=TODAY)
    assert not result.passed
    assert [item["finding"] for item in result.accepted] == ["locality=Hanley:recall_at_k"]
    assert "acceptance age_band=65+:recall_at_k expired on 2026-11-21" in result.message


def test_a_stale_acceptance_is_reported_without_blocking_a_fair_model():
    fair = GateResult("fairness", True, "all 17 judged groups pass", [])
    result = apply_acceptances(fair, accepted=[_accept("age_band=65+:recall_at_k")], today=TODAY)
    assert result.passed and not result.accepted
    assert "all 17 judged groups pass" in result.message
    assert "acceptance age_band=65+:recall_at_k matches no failure" in result.message


def test_a_group_too_small_to_judge_cannot_be_accepted_away():
    unjudged = GateResult(
        "fairness",
        False,
        "sex=female: reference group too small",
        [{**_failure("sex", "female", "", float("nan")), "text": "sex=female: too few"}],
    )
    result = apply_acceptances(unjudged, accepted=[_accept("sex=female:recall_at_k")], today=TODAY)
    assert not result.passed


# --- rebalance.toml ---------------------------------------------------------------------------


def test_configured_acceptances_need_every_key_and_name_the_entry():
    good = {"finding": "age_band=65+:recall_at_k", "reason": "need", "review_by": TODAY}
    [parsed] = accepted_findings_from_config([good])
    assert parsed.source == "rebalance.toml" and parsed.review_by == TODAY
    missing = {key: value for key, value in good.items() if key != "review_by"}
    with pytest.raises(ValueError, match="accepted entry 2: missing review_by"):
        accepted_findings_from_config([good, missing])
    with pytest.raises(ValueError, match="accepted entry 1: unknown key.*approved"):
        accepted_findings_from_config([good | {"approved": "yes"}])
    with pytest.raises(ValueError, match="must be a list"):
        accepted_findings_from_config("age_band=65+:recall_at_k")


def test_council_settings_carry_acceptances_beside_the_policy(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "rebalance.toml").write_text(
        "[fairness]\n"
        "min_ratio = 0.75\n"
        "accepted = [\n"
        '  {finding = "age_band=65+:recall_at_k", reason = "need", review_by = 2027-01-31},\n'
        '  {finding = "locality=Hanley:recall_at_k", reason = "pilot", review_by = 2027-02-28},\n'
        "]\n"
    )
    settings = load_settings(home=home, tracking_uri="sqlite:///unused.db")
    assert fairness_settings(settings) == FairnessGate(min_ratio=0.75)
    configured = accepted_findings(settings)
    assert [item.review_by for item in configured] == [date(2027, 1, 31), date(2027, 2, 28)]
    # The command's acceptance of the same finding replaces the configured one.
    both = accepted_findings(
        settings, accept=["locality=Hanley:recall_at_k"], reason="board minute 12", review_by=TODAY
    )
    assert [(item.finding, item.reason, item.source) for item in both] == [
        ("locality=Hanley:recall_at_k", "board minute 12", "command line"),
        ("age_band=65+:recall_at_k", "need", "rebalance.toml"),
    ]
    with pytest.raises(ValueError, match="--accept needs --reason"):
        accepted_findings(settings, accept=["age_band=65+:recall_at_k"])
    with pytest.raises(ValueError, match="go with --accept"):
        accepted_findings(settings, reason="no finding named")
    (home / "rebalance.toml").write_text(
        '[fairness]\naccepted = [{finding = "age_band=65+:recall_at_k", reason = "x"}]\n'
    )
    with pytest.raises(ValueError, match=r"rebalance.toml: \[fairness\] accepted entry 1"):
        accepted_findings(load_settings(home=home, tracking_uri="sqlite:///unused.db"))


# --- records ----------------------------------------------------------------------------------


def _recorded() -> list[dict]:
    result = apply_acceptances(
        REFUSED,
        accepted=[
            accepted_finding(
                "age_band=65+:recall_at_k", reason="need | differs\nby age", review_by=TODAY
            ),
            _accept("locality=Hanley:recall_at_k"),
        ],
        today=TODAY,
    )
    return [
        item | {"accepted_by": "ann", "accepted_at": "2026-11-22T09:00:00+00:00"}
        for item in result.accepted
    ]


def test_the_card_section_lists_figures_reason_who_and_review_date():
    section = accepted_findings_section(_recorded())
    assert section.startswith(f"## {ACCEPTED_HEADING}")
    rows = [line for line in section.splitlines() if line.startswith("| age_band=65+")]
    assert len(rows) == 1
    # One table row per finding even when the reason has a pipe or a line break.
    assert "need \\| differs by age" in rows[0] and "| 0.28 |" in rows[0]
    assert "| ann |" in rows[0] and "| 2026-11-22 |" in rows[0]
    assert "None: this version passed" in accepted_findings_section([])


def test_the_transparency_record_lists_accepted_findings_under_promotion():
    common = {
        "model_version": "3",
        "model_card": "# Model card\n\n## Fairness\n\ntable",
        "metrics": {},
        "settings": {},
        "promotion": [{"name": "fairness", "passed": True, "message": "passed only by ..."}],
    }
    record = transparency_record(**common, accepted_findings=_recorded())
    promotion = record.split("## 5. Promotion", 1)[1].split("## 6.", 1)[0]
    assert f"### {ACCEPTED_HEADING}" in promotion
    assert "locality=Hanley:recall_at_k" in promotion and "2027-03-31" in promotion
    plain = transparency_record(**common)
    assert "None: this version passed the fairness gate" in plain
