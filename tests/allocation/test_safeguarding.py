"""Safeguarding on needs made from the records (features.needs): a household with a safeguarding
need is only ever given to a worker with that skill, or waitlisted saying which skill it needs;
for the default set (domestic abuse) and for a council's wider set (with parenting)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from allocation import (
    AllocationSettings,
    propose_allocation,
    random_instance,
    read_proposal,
    write_proposal,
)
from allocation.rules import safeguarding_needs, split_skills
from features.contract import EVENT_TYPES, table_dtypes
from features.needs import household_needs

AS_OF = pd.Timestamp("2025-01-06")
RECORD_TYPES = (
    "domestic_abuse_incident",
    "child_protection_plan",
    "social_care_contact",
    "rent_arrears",
    "asb_report",
    "mental_health_crisis",
    "unemployment_claim",
)


def records_for(household_ids: np.ndarray, *, seed: int) -> pd.DataFrame:
    """A few seeded records per household, some inside and some outside the look-backs."""
    rng = np.random.default_rng(seed)
    count = len(household_ids) * 3
    event_type = rng.choice(RECORD_TYPES, size=count)
    occurred = AS_OF - pd.to_timedelta(rng.integers(0, 500, size=count), unit="D")
    value = np.where(np.isin(event_type, ["rent_arrears"]), rng.integers(0, 3000, count), np.nan)
    return pd.DataFrame(
        {
            "event_id": [f"E{n}" for n in range(count)],
            "household_id": rng.choice(household_ids, size=count),
            "person_id": pd.NA,
            "source": [EVENT_TYPES[name].source for name in event_type],
            "event_type": event_type,
            "occurred_at": occurred,
            "known_at": occurred,
            "value": value,
        }
    ).astype(table_dtypes("events"))


@pytest.fixture(scope="module")
def week():
    instance = random_instance(seed=5, households=1_500, workers=30, as_of=str(AS_OF.date()))
    events = records_for(instance.scores["household_id"].to_numpy(dtype=object), seed=5)
    needs = household_needs(events, household_ids=instance.scores["household_id"], as_of=AS_OF)
    scores = instance.scores.assign(
        needs=needs["needs"].to_numpy(), needs_evidence=needs["needs_evidence"].to_numpy()
    )
    return scores, instance.workers, instance.cases, events


@pytest.mark.parametrize("safeguarding", [("domestic_abuse",), ("domestic_abuse", "parenting")])
def test_no_household_with_a_safeguarding_need_goes_to_a_worker_without_the_skill(
    week, safeguarding, tmp_path
):
    scores, workers, cases, events = week
    settings = AllocationSettings(top_n=250, time_limit_s=10, safeguarding=safeguarding)
    proposal = propose_allocation(
        scores=scores, workers=workers, cases=cases, settings=settings, as_of=AS_OF
    )
    rows = proposal.rows
    skills = workers.set_index("worker_id")["skills"]
    guarded = rows["needs"].map(lambda needs: safeguarding_needs(needs, safeguarding))
    assert guarded.map(bool).sum() > 20, "the week must test the rule"
    assigned = rows["status"] == "assigned"
    for needed, worker_id in zip(guarded[assigned], rows.loc[assigned, "worker_id"], strict=True):
        assert set(needed) <= set(split_skills(skills[worker_id]))
    # The needs are the records': a domestic abuse incident in the last 52 weeks gives the need.
    recent = events.loc[
        (events["event_type"] == "domestic_abuse_incident")
        & (events["occurred_at"] > AS_OF - pd.Timedelta(weeks=52))
    ]
    with_incident = rows["household_id"].isin(recent["household_id"])
    assert with_incident.sum() > 10
    assert rows.loc[with_incident, "needs"].str.contains("domestic_abuse").all()
    assert (
        rows.loc[with_incident, "explanation"]
        .loc[assigned]
        .str.contains(r"has domestic-abuse(?: and parenting)? skills? \(safeguarding\)")
        .all()
    )
    # The evidence travels with the row, into the CSV and back.
    expected = scores.set_index("household_id")["needs_evidence"]
    assert rows["needs_evidence"].tolist() == expected.reindex(rows["household_id"]).tolist()
    write_proposal(proposal, out=tmp_path / "proposal.csv")
    again = read_proposal(tmp_path / "proposal.csv")
    assert again.rows["needs_evidence"].tolist() == rows["needs_evidence"].tolist()
    assert proposal.summary["settings"]["safeguarding"] == list(safeguarding)


def test_a_waitlisted_household_is_told_which_safeguarding_skill_it_needs():
    scores = pd.DataFrame(
        {
            "household_id": ["H1", "H2"],
            "locality": ["Longton", "Longton"],
            "risk": [0.9, 0.8],
            "rank": [1, 2],
            "needs": ["parenting;debt", "debt"],
        }
    ).astype({"household_id": "str", "locality": "str", "needs": "str"})
    workers = pd.DataFrame(
        {
            "worker_id": ["W1"],
            "locality": ["Longton"],
            "skills": ["debt;domestic_abuse"],
            "capacity_points": [100],
            "active": [True],
        }
    ).astype(table_dtypes("workers"))
    cases = pd.DataFrame(columns=list(table_dtypes("cases"))).astype(table_dtypes("cases"))
    guarded = AllocationSettings(top_n=10, time_limit_s=5, safeguarding=("parenting",))
    proposal = propose_allocation(
        scores=scores, workers=workers, cases=cases, settings=guarded, as_of=AS_OF
    )
    rows = proposal.rows.set_index("household_id")
    assert rows.loc["H1", "status"] == "waitlisted"
    assert rows.loc["H1", "explanation"] == (
        "Needs a worker with parenting skill (safeguarding); no active worker in Longton has it."
    )
    assert rows.loc["H2", "worker_id"] == "W1"
    by_default = propose_allocation(
        scores=scores,
        workers=workers,
        cases=cases,
        settings=AllocationSettings(top_n=10, time_limit_s=5),
        as_of=AS_OF,
    )
    assert (by_default.rows["status"] == "assigned").all()
    assert "needs_evidence" not in by_default.rows.columns
