"""Constructed predictions whose group error rates are known by construction (the fairness tests'
inputs): every expected figure in the tests is worked out by hand from the construction.
"""

from __future__ import annotations

import pandas as pd

from experiments.fairness import FairnessGate, bias_audit

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


def audit_of(table: pd.DataFrame, *, k: int) -> pd.DataFrame:
    return bias_audit(
        predictions=table[["household_id", "score", "label"]], groups=groups_of(table), k=k
    )


def row(audit: pd.DataFrame, attribute: str, group: str) -> pd.Series:
    return audit.loc[(audit["attribute"] == attribute) & (audit["group"] == group)].iloc[0]
