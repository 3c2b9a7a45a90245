"""Manager locks: honoured when they respect the hard rules, otherwise reported with a reason."""

from __future__ import annotations

import pandas as pd
import pytest

from allocation import AllocationSettings, propose_allocation
from features.contract import table_dtypes

SETTINGS = AllocationSettings(top_n=10, time_limit_s=5)


@pytest.fixture
def week():
    scores = pd.DataFrame(
        {
            "household_id": ["H1", "H2", "H3", "H4", "H5", "H6", "H7"],
            "locality": [
                "Tunstall",
                "Tunstall",
                "Tunstall",
                "Longton",
                "Tunstall",
                "Tunstall",
                "Tunstall",
            ],
            "risk": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.95],
            "rank": [2, 3, 4, 5, 6, 7, 1],
            "needs": ["debt", "domestic_abuse", "housing", "debt", "", "debt;housing", "debt"],
        }
    ).astype({"household_id": "str", "locality": "str", "needs": "str"})
    workers = pd.DataFrame(
        {
            "worker_id": ["W1", "W2", "W3", "W4"],
            "locality": ["Tunstall", "Tunstall", "Longton", "Tunstall"],
            "skills": ["debt;domestic_abuse", "housing", "debt", "debt"],
            "capacity_points": [40, 40, 40, 40],
            "active": [True, True, True, False],
        }
    ).astype(table_dtypes("workers"))
    cases = pd.DataFrame(
        {
            "case_id": ["C1"],
            "household_id": ["H7"],
            "worker_id": ["W2"],
            "opened_at": [pd.Timestamp("2024-09-02")],
            "closed_at": [pd.NaT],
            "complexity_points": [8],
            "close_reason": [pd.NA],
        }
    ).astype(table_dtypes("cases"))
    return {"scores": scores, "workers": workers, "cases": cases}


def locks(*rows):
    return pd.DataFrame(rows, columns=["household_id", "worker_id", "kind"]).astype("str")


def outcome(proposal, household_id, worker_id, kind):
    report = proposal.lock_report
    found = report.loc[
        (report["household_id"] == household_id)
        & (report["worker_id"] == worker_id)
        & (report["kind"] == kind)
    ]
    assert len(found) == 1
    return found.iloc[0]


def worker_of(proposal, household_id):
    return proposal.rows.set_index("household_id").at[household_id, "worker_id"]


def test_assign_lock_is_honoured_and_marked(week):
    # Without the lock the optimiser would give H3 (housing) to W2, the housing worker.
    proposal = propose_allocation(**week, locks=locks(("H3", "W1", "assign")), settings=SETTINGS)
    assert worker_of(proposal, "H3") == "W1"
    assert proposal.rows.set_index("household_id").at["H3", "locked"]
    assert outcome(proposal, "H3", "W1", "assign")["status"] == "applied"
    assert "manager's lock" in proposal.rows.set_index("household_id").at["H3", "explanation"]


def test_exclude_lock_keeps_the_pair_apart(week):
    free = propose_allocation(**week, settings=SETTINGS)
    chosen = worker_of(free, "H1")
    proposal = propose_allocation(**week, locks=locks(("H1", chosen, "exclude")), settings=SETTINGS)
    assert worker_of(proposal, "H1") != chosen
    assert outcome(proposal, "H1", chosen, "exclude")["status"] == "applied"


@pytest.mark.parametrize(
    ("lock", "words"),
    [
        (("H1", "W3", "assign"), "Longton"),  # other locality
        (("H2", "W2", "assign"), "domestic-abuse"),  # safeguarding
        (("H5", "W4", "assign"), "not active"),
        (("H7", "W1", "assign"), "open case with W2"),
        (("H7", "W2", "exclude"), "cannot exclude"),
        (("HX", "W1", "assign"), "not in this week's scores"),
        (("H1", "W9", "assign"), "not in the workers table"),
    ],
)
def test_infeasible_lock_is_reported_not_dropped(week, lock, words):
    proposal = propose_allocation(**week, locks=locks(lock), settings=SETTINGS)
    verdict = outcome(proposal, *lock)
    assert verdict["status"] == "infeasible"
    assert words in verdict["reason"]
    assert proposal.summary["locks"]["infeasible"] == 1
    assert any("could not be honoured" in message for message in proposal.summary["messages"])
    if lock[2] == "assign" and lock[0] in set(proposal.rows["household_id"]):
        assert worker_of(proposal, lock[0]) != lock[1]


def test_locks_beyond_a_workers_capacity_keep_the_higher_ranked(week):
    # W2 has 32 free points (40 - open case of 8): H1 (12) + H3 (12) fit, H6 (16) does not.
    proposal = propose_allocation(
        **week,
        settings=SETTINGS,
        locks=locks(("H6", "W2", "assign"), ("H1", "W2", "assign"), ("H3", "W2", "assign")),
    )
    assert outcome(proposal, "H1", "W2", "assign")["status"] == "applied"
    assert outcome(proposal, "H3", "W2", "assign")["status"] == "applied"
    rejected = outcome(proposal, "H6", "W2", "assign")
    assert rejected["status"] == "infeasible" and "higher-priority locks" in rejected["reason"]
    assert worker_of(proposal, "H1") == worker_of(proposal, "H3") == "W2"
    assert worker_of(proposal, "H6") != "W2"


def test_conflicting_locks_are_all_reported(week):
    proposal = propose_allocation(
        **week,
        settings=SETTINGS,
        locks=locks(
            ("H1", "W1", "assign"),
            ("H1", "W4", "assign"),
            ("H3", "W2", "assign"),
            ("H3", "W2", "exclude"),
        ),
    )
    assert outcome(proposal, "H1", "W1", "assign")["status"] == "infeasible"
    assert outcome(proposal, "H1", "W4", "assign")["status"] == "infeasible"
    assert "conflicts" in outcome(proposal, "H3", "W2", "assign")["reason"]
    assert outcome(proposal, "H3", "W2", "exclude")["status"] == "applied"
    assert worker_of(proposal, "H3") != "W2"


def test_household_named_in_a_lock_joins_the_candidates(week):
    settings = AllocationSettings(top_n=1, time_limit_s=5)
    proposal = propose_allocation(**week, locks=locks(("H5", "W1", "assign")), settings=settings)
    assert set(proposal.rows["household_id"]) == {"H1", "H5"}
    assert worker_of(proposal, "H5") == "W1"


def test_duplicate_locks_are_reported_once(week):
    proposal = propose_allocation(
        **week,
        settings=SETTINGS,
        locks=locks(("H3", "W1", "assign"), ("H3", "W1", "assign"), (" H3", "W1", "ASSIGN")),
    )
    assert len(proposal.lock_report) == 1
