"""The model card's fairness section."""

from __future__ import annotations

import pandas as pd
import pytest

from experiments.fairness import (
    fairness_gate,
)
from experiments.model_card import fairness_section
from tests.experiments.fairness.constructed import (
    BARE,
    FAIR,
    UNFAIR,
    audit_of,
    constructed,
)


@pytest.fixture
def unfair() -> pd.DataFrame:
    """Two groups; B's escalations are found less often at k = 50 (UNFAIR)."""
    return constructed(UNFAIR)


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
