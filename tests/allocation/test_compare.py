"""Compare two proposals (what moved and why), what-if on the workforce, and the written files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from allocation import (
    AllocationInputError,
    AllocationSettings,
    compare_proposals,
    propose_allocation,
    random_instance,
    read_proposal,
    what_if,
    write_proposal,
)

SETTINGS = AllocationSettings(top_n=80, time_limit_s=5)


@pytest.fixture(scope="module")
def week():
    instance = random_instance(seed=4, households=2500, workers=24)
    return {"scores": instance.scores, "workers": instance.workers, "cases": instance.cases}


@pytest.fixture(scope="module")
def baseline(week):
    return propose_allocation(**week, settings=SETTINGS)


def busiest_worker(proposal) -> str:
    return proposal.workers.sort_values(["new_cases", "worker_id"], ascending=[False, True]).iloc[
        0
    ]["worker_id"]


def test_removing_a_worker_moves_their_households_and_says_why(week, baseline):
    leaver = busiest_worker(baseline)
    theirs = set(baseline.rows.loc[baseline.rows["worker_id"] == leaver, "household_id"])
    after = propose_allocation(
        **week | {"workers": what_if(week["workers"], remove=[leaver])}, settings=SETTINGS
    )
    changes = compare_proposals(baseline, after)
    moved = changes.loc[changes["household_id"].isin(theirs)]
    assert set(moved["household_id"]) == theirs
    assert set(moved["change"]) <= {"moved", "newly waitlisted"}
    assert moved["reason"].str.contains(f"{leaver} is not taking cases").all()
    assert not after.rows["worker_id"].eq(leaver).any()
    # Their open cases continue with them.
    held = baseline.continuing.loc[baseline.continuing["worker_id"] == leaver, "case_id"]
    assert set(held) <= set(after.continuing["case_id"])


def test_more_capacity_takes_households_off_the_waitlist(week, baseline):
    waiting = baseline.rows.loc[baseline.rows["status"] == "waitlisted"]
    locality = waiting["locality"].value_counts().index[0]
    worker = baseline.workers.loc[
        (baseline.workers["locality"] == locality) & baseline.workers["active"]
    ].iloc[0]["worker_id"]
    bigger = what_if(week["workers"], capacity={worker: 200})
    after = propose_allocation(**week | {"workers": bigger}, settings=SETTINGS)
    changes = compare_proposals(baseline, after)
    assert (changes["change"] == "newly assigned").sum() > 0
    gained = changes.loc[changes["worker_after"] == worker]
    assert gained["reason"].str.contains("capacity changed from").all()
    assert after.summary["waitlisted"] < baseline.summary["waitlisted"]


def test_added_worker_is_reported_as_newly_available(week, baseline):
    locality = baseline.rows.loc[baseline.rows["status"] == "waitlisted", "locality"].iloc[0]
    newcomer = {
        "worker_id": "W900",
        "locality": locality,
        "skills": "debt;housing;domestic_abuse",
        "capacity_points": 100,
    }
    after = propose_allocation(
        **week | {"workers": what_if(week["workers"], add=[newcomer])}, settings=SETTINGS
    )
    changes = compare_proposals(baseline, after)
    assert after.rows["worker_id"].eq("W900").sum() > 0
    assert (
        changes.loc[changes["worker_after"] == "W900", "reason"]
        .str.contains("W900 is newly available")
        .all()
    )


def test_what_if_refuses_unknown_or_clashing_workers(week):
    with pytest.raises(AllocationInputError, match="unknown worker"):
        what_if(week["workers"], remove=["W999"])
    with pytest.raises(AllocationInputError, match="already in use"):
        what_if(
            week["workers"],
            add=[
                {
                    "worker_id": "W001",
                    "locality": "Hanley",
                    "skills": "debt",
                    "capacity_points": 100,
                }
            ],
        )
    with pytest.raises(AllocationInputError, match="whole number > 0"):
        what_if(week["workers"], capacity={"W001": 0})


def test_identical_proposals_compare_empty(baseline):
    changes = compare_proposals(baseline, baseline)
    assert changes.empty and list(changes.columns)[:2] == ["household_id", "locality"]


def test_written_proposal_reads_back_the_same(tmp_path, baseline):
    written = write_proposal(baseline, out=tmp_path / "week" / "proposal.csv")
    names = sorted(path.name for path in written)
    assert names == [
        "proposal-continuing.csv",
        "proposal-workers.csv",
        "proposal.csv",
        "proposal.json",
    ]
    document = json.loads((tmp_path / "week" / "proposal.json").read_text())
    assert document["status"] == baseline.summary["status"]
    assert {
        "objective",
        "best_bound",
        "gap",
        "solve_seconds",
        "candidates",
        "assigned",
        "waitlisted",
        "settings",
        "ortools_version",
        "lock_report",
    } <= set(document)
    again = read_proposal(tmp_path / "week" / "proposal.csv")
    pd.testing.assert_frame_equal(again.rows, baseline.rows, check_dtype=False)
    assert compare_proposals(baseline, again).empty
    # A folder works as well as the CSV path.
    assert len(read_proposal(tmp_path / "week").rows) == len(baseline.rows)
