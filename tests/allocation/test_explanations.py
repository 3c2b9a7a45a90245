"""Explanations say, in plain English and with the right figures, why this worker or why not."""

from __future__ import annotations

import pandas as pd
import pytest

from allocation import AllocationSettings, propose_allocation
from features.contract import table_dtypes

SETTINGS = AllocationSettings(top_n=10, time_limit_s=5)


@pytest.fixture(scope="module")
def proposal():
    scores = pd.DataFrame(
        {
            "household_id": ["H1", "H2", "H3", "H4"],
            "locality": ["Tunstall", "Longton", "Longton", "Longton"],
            "risk": [0.9, 0.85, 0.8, 0.5],
            "rank": [1, 2, 3, 4],
            "needs": ["debt;housing", "domestic_abuse", "debt;housing;youth", "debt"],
        }
    ).astype({"household_id": "str", "locality": "str", "needs": "str"})
    workers = pd.DataFrame(
        {
            "worker_id": ["W1", "W2", "W3"],
            "locality": ["Tunstall", "Tunstall", "Longton"],
            "skills": ["debt;housing", "debt", "debt"],
            "capacity_points": [100, 100, 40],
            "active": [True, True, True],
        }
    ).astype(table_dtypes("workers"))
    cases = pd.DataFrame(
        {
            "case_id": ["C1", "C2", "C3"],
            "household_id": ["X1", "X2", "X3"],
            "worker_id": ["W1", "W2", "W3"],
            "opened_at": pd.to_datetime(["2024-03-04", "2024-05-06", "2024-07-08"]),
            "closed_at": pd.NaT,
            "complexity_points": [76, 40, 28],
            "close_reason": pd.NA,
        }
    ).astype(table_dtypes("cases"))
    return propose_allocation(scores=scores, workers=workers, cases=cases, settings=SETTINGS)


def explanation(proposal, household_id: str) -> str:
    return proposal.rows.set_index("household_id").at[household_id, "explanation"]


def test_assigned_says_why_this_worker_and_the_best_alternative(proposal):
    text = explanation(proposal, "H1")
    # W1 covers both needs and has 24 points free; the 16-point case leaves 8.
    assert text.startswith(
        "W1: same locality, covers debt and housing (2 of 2 needs); "
        "24 of 100 points free before this week, 8 after."
    )
    assert "Best alternative W2: covers debt (1 of 2 needs) (value 1.125 vs 1.350)." in text


def test_waitlisted_for_safeguarding_names_the_missing_skill(proposal):
    assert explanation(proposal, "H2") == (
        "Needs a worker with domestic-abuse skill (safeguarding); no active worker in Longton "
        "has it."
    )


def test_waitlisted_for_capacity_gives_the_shortfall(proposal):
    # H3 needs 20 points; W3, Longton's only worker, has 12 free and they go to H4.
    assert proposal.rows.set_index("household_id").at["H4", "worker_id"] == "W3"
    text = explanation(proposal, "H3")
    assert text.startswith(
        "No worker in Longton had 20 points free this week (most free: 12 points)."
    )
    # Waiting in Longton: H3 (20) and H2 (12); nothing left free -> 32 points short.
    assert text.endswith("Longton is 32 points short this week.")
    assert proposal.summary["localities"]["Longton"]["points_short"] == 32


def test_continuing_cases_are_explained(proposal):
    continuing = proposal.continuing.set_index("case_id")
    assert continuing.at["C1", "explanation"].startswith(
        "Open case with W1 since 2024-03-04 continues"
    )
    assert (continuing["status"] == "continuing").all()


def test_worker_summary_points_before_and_after(proposal):
    workers = proposal.workers.set_index("worker_id")
    assert workers.loc["W1", ["points_before", "points_after", "free_after"]].tolist() == [
        76,
        92,
        8,
    ]
    assert workers.at["W1", "utilisation_after"] == pytest.approx(0.92)
    assert workers.at["W2", "new_cases"] == 0
