"""The audit of a training run: table, chart and gate verdict."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from experiments.fairness import (
    audit_for_run,
)
from tests.experiments.fairness.constructed import (
    ATTRIBUTES,
    BARE,
    UNFAIR,
    constructed,
)


@pytest.fixture
def unfair() -> pd.DataFrame:
    """Two groups; B's escalations are found less often at k = 50 (UNFAIR)."""
    return constructed(UNFAIR)


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
