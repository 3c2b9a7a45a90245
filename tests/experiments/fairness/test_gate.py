"""The fairness gate: bounds, significance, Holm's correction, the policy, and reading it back."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

import pandas as pd
import pytest

from experiments.fairness import (
    FairnessGate,
    audit_metrics,
    fairness_gate,
    fairness_gate_from_mapping,
    fairness_promotion_check,
)
from tests.experiments.fairness.constructed import (
    BARE,
    FAIR,
    UNFAIR,
    audit_of,
    constructed,
    row,
)


@pytest.fixture
def unfair() -> pd.DataFrame:
    """Two groups; B's escalations are found less often at k = 50 (UNFAIR)."""
    return constructed(UNFAIR)


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
