"""Bias audit, fairness gate, group-aware mitigation, transparency record and override records.

The audit is checked on constructed predictions whose group error rates are known by
construction: every expected figure below is worked out by hand from the construction.
"""

from __future__ import annotations

import io
import json
import math
import re
from datetime import date
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from experiments.bias_study import run_bias_study
from experiments.fairness import (
    FairnessGate,
    audit_chart,
    audit_for_run,
    audit_metrics,
    bias_audit,
    fairness_gate,
    fairness_gate_from_mapping,
    fairness_promotion_check,
    fit_group_cut_offs,
    group_aware_adjustment,
)
from experiments.model_card import fairness_section
from experiments.overrides import override_record, risk_band, summarise_overrides
from experiments.transparency import transparency_record
from features.build import features_as_of, prepare_tables
from features.contract import EVENT_TYPES, table_dtypes
from features.groups import household_groups
from models import TrainSettings, group_sample_weights
from models._estimator import check_no_protected_features

ATTRIBUTES = ("sex", "ethnicity", "disability", "age_band", "locality")
HIGH, LOW = 0.9, 0.1


def constructed(groups: dict[str, tuple[int, int, int, int]]) -> pd.DataFrame:
    """Predictions per group from (households, positives, positives scored high, negatives high).

    High scorers are exactly the households selected when k is the total number of high scorers.
    """
    rows = []
    for name, (households, positives, positives_high, negatives_high) in groups.items():
        for number in range(households):
            label = int(number < positives)
            high = number < positives_high if label else number - positives < negatives_high
            rows.append(
                {
                    "household_id": f"{name}{number:04d}",
                    "score": HIGH if high else LOW,
                    "label": label,
                    "ethnicity": name,
                }
            )
    return pd.DataFrame(rows)


def groups_of(table: pd.DataFrame) -> pd.DataFrame:
    """Every audit attribute set to the constructed group, so ethnicity carries the design."""
    return table[["household_id"]].assign(
        sex="female",
        ethnicity=table["ethnicity"],
        disability="no",
        age_band="35-49",
        locality="Hanley",
    )


UNFAIR = {"A": (300, 30, 20, 10), "B": (200, 20, 8, 12)}  # 50 high scorers: k = 50
# The bare ratio bounds, without the significance test of the product's default policy.
BARE = FairnessGate(confidence=None)
FAIR = {"A": (300, 30, 20, 10), "B": (200, 20, 13, 7), "C": (50, 5, 0, 0)}


@pytest.fixture
def unfair() -> pd.DataFrame:
    return constructed(UNFAIR)


def audit_of(table: pd.DataFrame, *, k: int) -> pd.DataFrame:
    return bias_audit(
        predictions=table[["household_id", "score", "label"]], groups=groups_of(table), k=k
    )


def row(audit: pd.DataFrame, attribute: str, group: str) -> pd.Series:
    return audit.loc[(audit["attribute"] == attribute) & (audit["group"] == group)].iloc[0]


# --- the audit figures ---------------------------------------------------------------------------


def test_audit_rates_match_the_construction(unfair):
    audit = audit_of(unfair, k=50)
    a, b = row(audit, "ethnicity", "A"), row(audit, "ethnicity", "B")
    assert (a["households"], a["positives"], a["selected"], a["true_positives"]) == (
        300,
        30,
        30,
        20,
    )
    assert (b["households"], b["positives"], b["selected"], b["true_positives"]) == (200, 20, 20, 8)
    assert a["recall_at_k"] == pytest.approx(20 / 30)
    assert b["recall_at_k"] == pytest.approx(8 / 20)
    assert b["false_negative_rate"] == pytest.approx(12 / 20)
    assert b["precision_at_k"] == pytest.approx(8 / 20)
    assert a["selection_rate"] == pytest.approx(30 / 300) == b["selection_rate"]
    assert b["base_rate"] == pytest.approx(20 / 200)
    # Ratios to the reference (A, the largest group).
    assert b["recall_at_k_ratio"] == pytest.approx(float(Fraction(8, 20) / Fraction(20, 30)))
    assert b["false_negative_rate_ratio"] == pytest.approx(
        float(Fraction(12, 20) / Fraction(10, 30))
    )
    assert b["selection_rate_ratio"] == pytest.approx(1.0)
    assert b["precision_at_k_ratio"] == pytest.approx(float(Fraction(8, 20) / Fraction(20, 30)))
    assert a["is_reference"] and not b["is_reference"] and b["reference_group"] == "A"


def test_calibration_by_group_is_mean_predicted_against_observed(unfair):
    b = row(audit_of(unfair, k=50), "ethnicity", "B")
    expected_mean = (20 * HIGH + 180 * LOW) / 200
    assert b["mean_predicted"] == pytest.approx(expected_mean)
    assert b["calibration_gap"] == pytest.approx(expected_mean - 20 / 200)
    assert b["predicted_to_observed"] == pytest.approx(expected_mean / (20 / 200))
    # A has the same share of high scores and the same base rate: calibration parity.
    assert b["predicted_to_observed_ratio"] == pytest.approx(1.0)


def test_gate_on_calibration_catches_a_group_the_model_under_predicts():
    # D escalates as often as A (10%) but only 2 of its 200 households score high.
    table = constructed({"A": (300, 30, 20, 10), "D": (200, 20, 2, 0)})
    d = row(audit_of(table, k=32), "ethnicity", "D")
    expected = ((2 * HIGH + 198 * LOW) / 200 / 0.1) / ((30 * HIGH + 270 * LOW) / 300 / 0.1)
    assert d["predicted_to_observed_ratio"] == pytest.approx(expected)
    result = fairness_gate(
        audit_of(table, k=32),
        settings=FairnessGate(metrics=("predicted_to_observed",), confidence=None),
    )
    assert (
        f"ethnicity=D: predicted to observed ratio {expected:.2f} is below 0.80" in result.message
    )


def test_every_attribute_has_one_row_per_group_and_counts_add_up(unfair):
    audit = audit_of(unfair, k=50)
    for attribute in ATTRIBUTES:
        rows = audit.loc[audit["attribute"] == attribute]
        assert rows["households"].sum() == 500
        assert rows["selected"].sum() == 50
        assert rows["is_reference"].sum() == 1
    assert (audit["k"] == 50).all()


def test_ties_at_the_cut_off_are_broken_by_household_id(unfair):
    # 50 households share the high score; k = 40 takes the first 40 of them by household_id:
    # all 30 of A (ids "A...") sort before B's, so B gets only its 10 lowest ids.
    audit = audit_of(unfair, k=40)
    b = row(audit, "ethnicity", "B")
    assert row(audit, "ethnicity", "A")["selected"] == 30
    assert b["selected"] == 10
    assert b["true_positives"] == 8  # B's positives B0000..B0007 have the lowest ids


def test_a_fraction_k_selects_that_share_of_households(unfair):
    audit = audit_of(unfair, k=0.1)
    assert audit["k"].iloc[0] == 50


def test_reference_group_can_be_chosen(unfair):
    audit = bias_audit(
        predictions=unfair[["household_id", "score", "label"]],
        groups=groups_of(unfair),
        k=50,
        reference={"ethnicity": "B"},
    )
    a = row(audit, "ethnicity", "A")
    assert a["reference_group"] == "B"
    assert a["recall_at_k_ratio"] == pytest.approx(float(Fraction(20, 30) / Fraction(8, 20)))


def test_unknown_is_never_the_default_reference():
    table = constructed({"unknown": (300, 30, 10, 5), "A": (200, 20, 10, 5)})
    audit = audit_of(table, k=30)
    assert row(audit, "ethnicity", "A")["is_reference"]


def test_zero_over_zero_is_parity_not_a_failure():
    # Every positive is found in both groups: FNR 0 / 0.
    table = constructed({"A": (300, 30, 30, 0), "B": (200, 20, 20, 0)})
    b = row(audit_of(table, k=50), "ethnicity", "B")
    assert b["false_negative_rate"] == 0 and b["false_negative_rate_ratio"] == 1.0


def test_bad_predictions_are_refused_with_row_and_column(unfair):
    predictions = unfair[["household_id", "score", "label"]].copy()
    predictions.loc[3, "label"] = 2
    with pytest.raises(ValueError, match=r"predictions row 4, column label"):
        bias_audit(predictions=predictions, groups=groups_of(unfair), k=10)
    duplicated = pd.concat([unfair.head(1), unfair])[["household_id", "score", "label"]]
    with pytest.raises(ValueError, match="column household_id"):
        bias_audit(predictions=duplicated, groups=groups_of(unfair), k=10)
    with pytest.raises(ValueError, match="have no group"):
        bias_audit(predictions=unfair, groups=groups_of(unfair).iloc[1:], k=10)
    with pytest.raises(ValueError, match="k must be"):
        bias_audit(predictions=unfair, groups=groups_of(unfair), k=501)


# --- the gate ----------------------------------------------------------------------------------


def test_gate_refuses_an_unfair_challenger_and_names_group_and_metric(unfair):
    result = fairness_gate(audit_of(unfair, k=50), settings=BARE)
    assert result.name == "fairness" and not result.passed
    assert "ethnicity=B: recall at k ratio 0.60 is below 0.80" in result.message
    assert "ethnicity=B: false negative rate ratio 1.80 is above 1.25" in result.message
    assert {(f["attribute"], f["group"], f["metric"]) for f in result.failures} == {
        ("ethnicity", "B", "recall_at_k"),
        ("ethnicity", "B", "false_negative_rate"),
    }


def test_gate_passes_a_fair_challenger_and_does_not_gate_small_groups():
    table = constructed(FAIR)  # B: recall 13/20 vs A 20/30; C (50 households) misses everyone
    audit = audit_of(table, k=50)
    c = row(audit, "ethnicity", "C")
    assert c["households"] == 50 and c["recall_at_k"] == 0  # reported...
    result = fairness_gate(audit, settings=FairnessGate())
    assert result.passed, result.message  # ...but not gated
    assert result.failures == []
    strict = fairness_gate(
        audit, settings=FairnessGate(min_households=50, min_positives=5, confidence=None)
    )
    assert not strict.passed and "ethnicity=C" in strict.message


def test_gate_bounds_are_configurable(unfair):
    audit = audit_of(unfair, k=50)
    loose = FairnessGate(min_ratio=0.5, max_ratio=2.0)
    assert fairness_gate(audit, settings=loose).passed


def test_gate_fails_when_the_reference_group_is_too_small_to_judge(unfair):
    result = fairness_gate(
        audit_of(unfair, k=50), settings=FairnessGate(min_households=400, confidence=None)
    )
    assert not result.passed and "too few to judge" in result.message
    json.dumps(result.failures, allow_nan=False)  # the failures go into the promotion log


def test_audit_tests_each_gap_against_the_reference(unfair):
    b = row(audit_of(unfair, k=50), "ethnicity", "B")
    # Pooled two-proportion z-test of B's recall 8/20 against A's 20/30, by hand.
    pooled = Fraction(28, 50)
    z = abs(Fraction(8, 20) - Fraction(20, 30)) / math.sqrt(
        pooled * (1 - pooled) * (Fraction(1, 20) + Fraction(1, 30))
    )
    assert b["recall_at_k_p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert b["false_negative_rate_p_value"] == pytest.approx(b["recall_at_k_p_value"])


def test_a_confidence_level_excuses_gaps_that_noise_explains(unfair):
    confident = FairnessGate(confidence=0.95)
    # B's recall gap (p about 0.06 on 20 escalations) could be chance: not a failure...
    assert fairness_gate(audit_of(unfair, k=50), settings=confident).passed
    # ...but the same rates on ten times the households are a real gap.
    larger = constructed({name: tuple(10 * n for n in sizes) for name, sizes in UNFAIR.items()})
    result = fairness_gate(audit_of(larger, k=500), settings=confident)
    assert not result.passed and "ethnicity=B: recall at k ratio 0.60" in result.message


def test_holm_correction_counts_every_comparison():
    # Two groups against A, each with recall 20/40 against A's 200/300 (ratio 0.75).
    sizes = {"A": (3000, 300, 200, 0), "B": (400, 40, 20, 0), "C": (400, 40, 20, 0)}
    audit = audit_of(constructed(sizes), k=240)
    raw = float(row(audit, "ethnicity", "B")["recall_at_k_p_value"])
    assert 0.05 / 2 < raw < 0.05  # significant alone, not after correcting for two tests
    alone = FairnessGate(metrics=("recall_at_k",), correction="none")
    assert not fairness_gate(audit, settings=alone).passed
    holm = FairnessGate(metrics=("recall_at_k",))
    # Holm: the two equal p-values are multiplied by 2 and 1, then the running maximum.
    assert min(1.0, 2 * raw) > 0.05
    assert fairness_gate(audit, settings=holm).passed


def test_the_default_policy_is_the_documented_one():
    policy = FairnessGate()
    assert (policy.min_ratio, policy.max_ratio) == (0.8, 1.25)
    assert policy.metrics == ("false_negative_rate", "recall_at_k", "predicted_to_observed")
    assert (policy.min_households, policy.min_positives) == (100, 10)
    assert (policy.confidence, policy.correction) == (0.95, "holm")
    configured = fairness_gate_from_mapping(
        {"confidence": "none", "metrics": ["recall_at_k"], "min_households": 50}
    )
    assert configured == FairnessGate(confidence=None, metrics=("recall_at_k",), min_households=50)
    with pytest.raises(ValueError, match=r"\[fairness\]: unknown setting\(s\) bounds"):
        fairness_gate_from_mapping({"bounds": [0.8, 1.25]})
    with pytest.raises(ValueError, match="attributes"):
        FairnessGate(attributes=("religion",))


def test_promotion_reads_the_gate_back_from_logged_metrics(unfair):
    audit = audit_of(unfair, k=50).assign(
        group=lambda frame: frame["group"].replace({"B": "65+ / other", "A": "under_18"})
    )
    metrics = audit_metrics(audit)
    # Tracking stores accept only letters, digits, _ - . space and / in metric names.
    assert all(re.fullmatch(r"[A-Za-z0-9_.\- /]+", name) for name in metrics)
    check = fairness_promotion_check(BARE)
    passed, message, failures, accepted, unused = check(
        challenger=metrics | {"holdout_model_auc": 0.8}, champion=None
    )
    expected = fairness_gate(audit, settings=BARE)
    assert (passed, message, failures) == (expected.passed, expected.message, expected.failures)
    assert (accepted, unused) == ([], [])  # nothing accepted unless the council says so
    assert "ethnicity=65+ / other: recall at k ratio 0.60" in message
    loose = fairness_promotion_check(FairnessGate(min_ratio=0.5, max_ratio=2.0, confidence=None))
    assert loose(challenger=metrics, champion=None)[0]
    assert fairness_promotion_check()(challenger={"holdout_model_auc": 0.8})[:3] == (
        False,
        "no fairness audit was recorded with this run",
        [],
    )


def test_gate_settings_are_validated():
    with pytest.raises(ValueError):
        FairnessGate(min_ratio=1.1)
    with pytest.raises(ValueError):
        FairnessGate(metrics=("accuracy",))


# --- household groups --------------------------------------------------------------------------


def test_household_groups_follow_the_documented_rule():
    households = pd.DataFrame(
        {"household_id": ["H1", "H2", "H3", "H4", "H5"], "locality": ["Hanley"] * 4 + [np.nan]}
    ).astype("str")
    people = pd.DataFrame(
        [
            ("P1", "H1", 1980, "female", "asian", "no"),
            ("P2", "H1", 1975, "male", "white", "yes"),  # oldest adult: the reference person
            ("P3", "H1", 2015, "female", "asian", "no"),
            ("P4", "H3", 2010, "male", "black", "no"),  # only a child is listed
            ("P5", "H4", 1950, np.nan, "mixed", "no"),  # tie on birth year: P5 < P6
            ("P6", "H4", 1950, "female", "other", "unknown"),
            ("P7", "H4", 2030, "male", "white", "yes"),  # not born by the as-of year
            ("P8", "H5", 2000, "female", "white", "no"),
        ],
        columns=["person_id", "household_id", "birth_year", "sex", "ethnicity", "disability"],
    )
    groups = household_groups(households=households, people=people, as_of="2024-06-30")
    assert list(groups.columns) == ["household_id", *ATTRIBUTES]
    by_id = groups.set_index("household_id")
    assert by_id.loc["H1"].tolist() == ["male", "white", "yes", "35-49", "Hanley"]
    assert by_id.loc["H2"].tolist() == ["unknown", "unknown", "unknown", "unknown", "Hanley"]
    assert by_id.loc["H3"].tolist() == ["male", "black", "no", "under 18", "Hanley"]
    assert by_id.loc["H4"].tolist() == ["unknown", "mixed", "unknown", "65+", "Hanley"]
    assert by_id.loc["H5"].tolist() == ["female", "white", "no", "18-24", "unknown"]


def test_people_of_unknown_households_are_refused_naming_row_and_column():
    households = pd.DataFrame({"household_id": ["H1"], "locality": ["Hanley"]})
    people = pd.DataFrame(
        [("P1", "H1", 1980, "male", "white", "no"), ("P2", "H9", 1980, "male", "white", "no")],
        columns=["person_id", "household_id", "birth_year", "sex", "ethnicity", "disability"],
    )
    with pytest.raises(ValueError, match=r"people row 2, column household_id"):
        household_groups(households=households, people=people, as_of="2024-01-01")


# --- no leakage: protected characteristics stay in the audit ------------------------------------


def test_audit_functions_do_not_modify_their_inputs(unfair):
    predictions = unfair[["household_id", "score", "label"]]
    groups = groups_of(unfair)
    before = (predictions.copy(deep=True), groups.copy(deep=True))
    audit = bias_audit(predictions=predictions, groups=groups, k=50)
    audit_before = audit.copy(deep=True)
    fairness_gate(audit, settings=FairnessGate())
    audit_chart(audit)
    cut_offs = fit_group_cut_offs(
        predictions=predictions, groups=groups, attribute="ethnicity", k=50
    )
    group_aware_adjustment(scores=predictions, groups=groups, cut_offs=cut_offs)
    group_sample_weights(labels=predictions, groups=groups, attribute="ethnicity")
    pd.testing.assert_frame_equal(predictions, before[0])
    pd.testing.assert_frame_equal(groups, before[1])
    pd.testing.assert_frame_equal(audit, audit_before)


def feature_tables(people: pd.DataFrame) -> dict[str, pd.DataFrame]:
    households = pd.DataFrame(
        {
            "household_id": ["H1", "H2"],
            "locality": "Hanley",
            "ward": "Hanley Park",
            "tenure": ["council", "owner"],
            "adults": [2, 1],
            "children": [1, 0],
        }
    ).astype(table_dtypes("households"))
    events = pd.DataFrame(
        {
            "event_id": ["E1", "E2"],
            "household_id": ["H1", "H2"],
            "person_id": ["P1", np.nan],
            "source": [EVENT_TYPES["police_callout"].source, EVENT_TYPES["rent_arrears"].source],
            "event_type": ["police_callout", "rent_arrears"],
            "occurred_at": pd.to_datetime(["2024-03-01", "2024-04-01"]),
            "known_at": pd.to_datetime(["2024-03-05", "2024-04-02"]),
            "value": [np.nan, 420.0],
        }
    ).astype(table_dtypes("events"))
    cases = pd.DataFrame(columns=list(table_dtypes("cases"))).astype(table_dtypes("cases"))
    return {"households": households, "people": people, "events": events, "cases": cases}


def test_model_features_do_not_depend_on_protected_characteristics():
    people = pd.DataFrame(
        [("P1", "H1", 1980, "female", "asian", "no"), ("P2", "H2", 1940, "male", "white", "yes")],
        columns=["person_id", "household_id", "birth_year", "sex", "ethnicity", "disability"],
    ).astype(table_dtypes("people"))
    changed = people.assign(
        sex=["male", "female"],
        ethnicity=["black", "mixed"],
        disability=["yes", "no"],
        birth_year=[1999, 2001],
    )
    as_of = pd.Timestamp("2024-06-30")
    features = features_as_of(prepare_tables(feature_tables(people)), as_of=as_of)
    features_changed = features_as_of(prepare_tables(feature_tables(changed)), as_of=as_of)
    pd.testing.assert_frame_equal(features, features_changed)
    check_no_protected_features(list(features.columns))


# --- mitigation ---------------------------------------------------------------------------------


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


# --- chart and run wiring ----------------------------------------------------------------------


def test_audit_for_run_returns_table_chart_and_gate(unfair):
    households = pd.DataFrame(
        {
            "household_id": unfair["household_id"],
            "locality": np.where(unfair["ethnicity"] == "A", "Hanley", "Stoke"),
        }
    )
    people = pd.DataFrame(
        {
            "person_id": "P" + unfair["household_id"],
            "household_id": unfair["household_id"],
            "birth_year": 1980,
            "sex": "female",
            "ethnicity": np.where(unfair["ethnicity"] == "A", "white", "black"),
            "disability": "no",
        }
    )
    result = audit_for_run(
        predictions=unfair[["household_id", "score", "label"]],
        tables={"households": households, "people": people},
        as_of="2024-06-30",
        k=50,
        settings=BARE,
    )
    assert not result.gate.passed
    assert "ethnicity=black: recall at k ratio 0.60" in result.gate.message
    assert "locality=Stoke: recall at k ratio 0.60" in result.gate.message
    assert len(result.figure.axes) >= 3 * len(ATTRIBUTES)
    png = io.BytesIO()
    result.figure.savefig(png, format="png")
    assert png.getvalue().startswith(b"\x89PNG")


# --- transparency record and overrides ---------------------------------------------------------


METRICS = {
    "model_auc": 0.81,
    "holdout_model_auc": 0.8,
    "logistic_auc": 0.77,
    "rule_auc": 0.66,
    "model_recall_at_capacity": 0.31,
    "rule_recall_at_capacity": 0.18,
    "model_precision_at_top1pct": 0.42,
    "model_ece": 0.012,
}


def test_model_card_fairness_section_shows_the_audit_and_the_verdict(unfair):
    audit = audit_of(unfair, k=50)
    section = fairness_section(audit, gate=fairness_gate(audit, settings=BARE), gate_settings=BARE)
    assert "the top 50 households" in section
    assert "Fairness gate: **FAILED**" in section
    assert "ethnicity=B: recall at k ratio 0.60 is below 0.80" in section
    # B: 200 households, 20 escalations (10%), 20 selected, recall 8/20, FNR 12/20.
    assert "| ethnicity | B | 200 | 20 | 10.0% | 20 | 60.0% | 40.0% | 0.60 | 1.80 |" in section
    fair = audit_of(constructed(FAIR), k=50)
    passed = fairness_section(fair, gate=fairness_gate(fair, settings=BARE), gate_settings=BARE)
    assert "Fairness gate: **passed**" in passed
    assert "| ethnicity | C | 50 | 5 | 10.0% | 0 | 100.0% | 0.0% |" in passed
    assert "no (small)" in passed


def test_transparency_record_embeds_the_card_and_states_oversight_and_corrections():
    card = "# Model card: m\n\n## Fairness\n\nFairness gate: **passed**.\n\n### Detail\n"
    gates = [
        {"name": "minimum_auc", "passed": True, "message": "holdout AUC 0.8 >= minimum 0.7"},
        {"name": "fairness", "passed": True, "message": "all 17 judged groups pass"},
    ]
    record = transparency_record(
        model_version="7",
        model_card=card,
        metrics=METRICS,
        settings={"horizon_weeks": 26, "seed": 3},
        promotion=gates,
    )
    assert "version 7" in record
    # The card is embedded one level down, not restated.
    assert "### Fairness" in record and "#### Detail" in record and "# Model card: m" not in record
    assert "| fairness | passed | all 17 judged groups pass |" in record
    assert "Escalation model 31.0%; Problem-indicator count 18.0%" in record
    assert "a locality manager reviews it" in record
    assert "How a resident can ask for a correction" in record
    again = transparency_record(
        model_version="7",
        model_card=card,
        metrics=METRICS,
        settings={"horizon_weeks": 26, "seed": 3},
        promotion=gates,
    )
    assert record == again


def decision(**changes):
    values = dict(
        household_id="H1",
        shown_risk=0.2,
        shown_reasons=["3 police call-outs in 13 weeks"],
        proposed_worker="W1",
        chosen_worker="W1",
        decision="accepted",
        reason="",
        manager="M1",
        locality="Hanley",
        recorded_at="2025-01-06T09:00:00",
    )
    return override_record(**(values | changes))


def test_override_record_keeps_what_was_shown_and_checks_consistency():
    record = decision(chosen_worker="W2", decision="changed_worker", reason="W2 knows the family")
    assert record["shown_risk"] == 0.2 and record["risk_band"] == "high"
    assert record["shown_reasons"] == ["3 police call-outs in 13 weeks"]
    assert record["overridden"] and record["proposed_worker"] == "W1"
    with pytest.raises(ValueError, match="reason is required"):
        decision(chosen_worker="W2", decision="changed_worker")
    with pytest.raises(ValueError, match="does not match"):
        decision(decision="changed_worker", reason="x")
    with pytest.raises(ValueError, match="probability"):
        decision(shown_risk=1.5)
    assert not decision()["overridden"]


def test_summarise_overrides_counts_rates_by_locality_and_band():
    records = pd.DataFrame(
        [
            decision(),
            decision(household_id="H2", shown_risk=0.02),
            decision(household_id="H3", chosen_worker="W2", decision="changed_worker", reason="r"),
            decision(
                household_id="H4",
                chosen_worker=None,
                decision="not_allocated",
                reason="r",
                locality="Stoke",
                shown_risk=0.5,
            ),
            decision(
                household_id="H5",
                proposed_worker=None,
                chosen_worker="W3",
                decision="added",
                reason="r",
                locality="Stoke",
                shown_risk=0.01,
            ),
        ]
    )
    summary = summarise_overrides(records).set_index(["dimension", "group"])
    overall = summary.loc[("all", "all")]
    assert overall["decisions"] == 5 and overall["proposed"] == 4 and overall["accepted"] == 2
    assert overall["override_rate"] == pytest.approx(3 / 5)
    assert overall["agreement_rate"] == pytest.approx(2 / 4)
    assert summary.loc[("locality", "Hanley"), "override_rate"] == pytest.approx(1 / 3)
    assert summary.loc[("locality", "Stoke"), "agreement_rate"] == pytest.approx(0.0)
    assert summary.loc[("risk_band", "low"), "decisions"] == 2
    assert summary.loc[("risk_band", "very high"), "not_allocated"] == 1
    bands = summary.loc["risk_band"].index.tolist()
    assert bands == sorted(bands, key=["low", "medium", "high", "very high"].index)


def test_risk_bands_use_lower_edges():
    assert [risk_band(value) for value in (0.0, 0.049, 0.05, 0.15, 0.3, 1.0)] == [
        "low",
        "low",
        "medium",
        "high",
        "very high",
        "very high",
    ]


# --- the under-reporting study (a small city: this checks the wiring, docs/fairness.md the size) --


def test_bias_study_compares_the_same_lives_and_reports_its_audits(tmp_path):
    study = run_bias_study(
        households=1000,
        seed=5,
        end=date(2025, 6, 29),
        group="locality=Hanley",
        event_types=["police_callout", "ae_attendance", "social_care_contact"],
        reporting_probability=0.0,
        out_dir=tmp_path,
        k=0.1,
        settings=TrainSettings(
            folds=2,
            history_dates=3,
            n_estimators=40,
            early_stopping_rounds=10,
            min_child_samples=50,
            logistic_max_rows=1000,
        ),
        gate=FairnessGate(min_households=50, min_positives=5),
    )
    control, biased = study.arms["control"], study.arms["under-reported"]
    # Same seed, same lives: only the records differ, so true outcomes agree group by group.
    for stage in ("before", "after"):
        columns = ["attribute", "group", "households", "positives"]
        pd.testing.assert_frame_equal(
            control.audits[f"truth_{stage}"][columns], biased.audits[f"truth_{stage}"][columns]
        )
    for arm in study.arms.values():
        before, after = arm.audits["recorded_before"], arm.audits["recorded_after"]
        assert before["k"].iloc[0] == after["k"].iloc[0] == 100
        hanley = row(after, "locality", "Hanley")
        assert f"| {arm.name} | recorded | after | {hanley['households']:,} |" in study.report
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["under-reported/recorded_before"]["recall_at_k"] == pytest.approx(
        row(biased.audits["recorded_before"], "locality", "Hanley")["recall_at_k"]
    )
    assert (tmp_path / "report.md").read_text() == study.report
    assert (tmp_path / "audit_under_reported_before.png").stat().st_size > 0
