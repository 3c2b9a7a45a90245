"""The bias audit's figures on constructed predictions; the audit leaves its inputs as they are."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import pytest

from experiments.fairness import (
    FairnessGate,
    audit_chart,
    bias_audit,
    fairness_gate,
    fit_group_cut_offs,
    group_aware_adjustment,
)
from models import group_sample_weights
from tests.experiments.fairness.constructed import (
    ATTRIBUTES,
    HIGH,
    LOW,
    UNFAIR,
    audit_of,
    constructed,
    groups_of,
    row,
)


@pytest.fixture
def unfair() -> pd.DataFrame:
    """Two groups; B's escalations are found less often at k = 50 (UNFAIR)."""
    return constructed(UNFAIR)


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
