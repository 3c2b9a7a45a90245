"""The allocation rules, written once: the per-pair refusal and the table form agree, and every
caller (the optimiser's pairs, locks) applies them the same way."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocation import AllocationSettings, propose_allocation, random_instance
from allocation._candidates import (
    allowed_localities,
    eligible_pairs,
    select_candidates,
    worker_capacity,
)
from allocation._inputs import validate_cases, validate_scores, validate_workers
from allocation._settings import AllocationInputError
from allocation.rules import (
    DEFAULT_SAFEGUARDING,
    needs_safeguarding,
    places_for,
    room_refusal,
    split_skills,
    worker_refusal,
)

NEIGHBOURS = {"Tunstall": ("Burslem",)}
WORKER = {"active": True, "locality": "Tunstall", "skills": "debt;housing"}


@pytest.mark.parametrize(
    ("worker", "locality", "needs", "words"),
    [
        (WORKER | {"active": False}, "Tunstall", "debt", "W1 is not active"),
        (WORKER, "Longton", "debt", "W1 works in Tunstall, which may not take households"),
        (WORKER, "Tunstall", "domestic_abuse", "needs a worker with domestic-abuse skill"),
        (WORKER | {"locality": "Burslem"}, "Tunstall", "debt", None),
        (WORKER | {"skills": "domestic_abuse"}, "Tunstall", "domestic_abuse;debt", None),
    ],
)
def test_worker_refusal_names_the_first_rule_broken(worker, locality, needs, words):
    refusal = worker_refusal(
        worker_id="W1",
        worker=worker,
        household_locality=locality,
        needs=needs,
        neighbours=NEIGHBOURS,
        safeguarding=DEFAULT_SAFEGUARDING,
    )
    assert refusal is None if words is None else words in refusal


GUARDED = ("domestic_abuse", "parenting")


@pytest.mark.parametrize(
    ("skills", "needs", "safeguarding", "words"),
    [
        ("debt", "parenting;debt", ("domestic_abuse",), None),
        ("debt", "parenting;debt", GUARDED, "needs a worker with parenting skill (safeguarding)"),
        ("parenting", "parenting;domestic_abuse", GUARDED, "domestic-abuse skill (safeguarding)"),
        ("youth", "parenting;domestic_abuse", GUARDED, "domestic-abuse and parenting skills"),
        ("domestic_abuse;parenting", "parenting;domestic_abuse", GUARDED, None),
        ("debt", "domestic_abuse", ("parenting",), None),
    ],
)
def test_the_safeguarding_rule_covers_every_need_of_the_configured_set(
    skills, needs, safeguarding, words
):
    refusal = worker_refusal(
        worker_id="W1",
        worker=WORKER | {"skills": skills},
        household_locality="Tunstall",
        needs=needs,
        neighbours=NEIGHBOURS,
        safeguarding=safeguarding,
    )
    assert refusal is None if words is None else words in refusal


def test_a_safeguarding_set_outside_the_contract_is_refused():
    with pytest.raises(AllocationInputError, match="'child_protection' is not a skill"):
        AllocationSettings(safeguarding=("child_protection",))
    assert AllocationSettings(safeguarding=["parenting", "domestic_abuse"]).safeguarding == GUARDED
    assert AllocationSettings().safeguarding == ("domestic_abuse",)


def test_room_refusal_counts_points():
    assert room_refusal(worker_id="W1", capacity_points=100, free_points=12, points=12) is None
    refusal = room_refusal(worker_id="W1", capacity_points=100, free_points=6, points=12)
    assert refusal == "W1 has 6 of 100 points free; this case needs 12"
    assert "0 of 100" in room_refusal(worker_id="W1", capacity_points=100, free_points=-4, points=8)


def test_skills_and_places():
    assert split_skills("housing; debt;debt;nonsense") == ("debt", "housing")
    assert needs_safeguarding(f"debt;{DEFAULT_SAFEGUARDING[0]}") and not needs_safeguarding("debt")
    assert places_for("Tunstall", neighbours=NEIGHBOURS) == ["Tunstall", "Burslem"]
    assert places_for("Longton", neighbours=NEIGHBOURS) == ["Longton"]


@settings(max_examples=8, deadline=None)
@given(
    st.integers(0, 10_000),
    st.booleans(),
    st.sampled_from([("domestic_abuse",), GUARDED, ("mental_health", "youth"), ()]),
)
def test_the_optimisers_pairs_are_exactly_the_pairs_the_rule_allows(
    seed, with_neighbours, safeguarding
):
    """Every (candidate, worker) pair: in the optimiser's table if and only if worker_refusal
    says None (the vectorised form and the per-pair form are one rule), for any safeguarding set."""
    instance = random_instance(seed=seed, households=600, workers=20)
    neighbours = (
        {"Tunstall": ("Burslem",), "Fenton": ("Longton", "Stoke")} if with_neighbours else {}
    )
    rules = AllocationSettings(top_n=80, neighbours=neighbours, safeguarding=safeguarding)
    workers = validate_workers(instance.workers)
    workers.loc[workers.index[::5], "active"] = False
    open_now = validate_cases(instance.cases, workers=workers)
    scores = validate_scores(instance.scores)
    candidates = select_candidates(
        scores,
        open_cases=open_now,
        lock_households=pd.Series(dtype="str"),
        locality=None,
        settings=rules,
    )
    capacity = worker_capacity(workers, open_cases=open_now)
    allowed = allowed_localities(candidates, settings=rules, locality=None)
    pairs = eligible_pairs(candidates, capacity=capacity, allowed=allowed, settings=rules)
    in_table = set(zip(pairs["household_id"], pairs["worker_id"], strict=True))
    by_rule = {
        (household["household_id"], worker["worker_id"])
        for household in candidates.to_dict("records")
        for worker in workers.to_dict("records")
        if worker_refusal(
            worker_id=worker["worker_id"],
            worker=worker,
            household_locality=household["locality"],
            needs=household["needs"],
            neighbours=rules.neighbours,
            safeguarding=rules.safeguarding,
        )
        is None
    }
    assert in_table == by_rule


def test_a_past_week_counts_cases_closed_since_as_open():
    """Re-running a past week on a newer extract: a case closed after the as-of date still filled
    its worker's caseload that week, so the proposal is the one the week had."""
    instance = random_instance(seed=3, households=2_000, workers=12, as_of="2025-01-06")
    as_of = pd.Timestamp("2025-01-06")
    rules = AllocationSettings(top_n=150, time_limit_s=10)
    then = propose_allocation(
        scores=instance.scores,
        workers=instance.workers,
        cases=instance.cases,
        settings=rules,
        as_of=as_of,
    )
    open_then = instance.cases["closed_at"].isna()
    later = instance.cases.assign(
        closed_at=instance.cases["closed_at"].where(~open_then, as_of + pd.Timedelta(days=30)),
        close_reason=instance.cases["close_reason"].where(~open_then, "resolved"),
    )
    again = propose_allocation(
        scores=instance.scores, workers=instance.workers, cases=later, settings=rules, as_of=as_of
    )
    pd.testing.assert_frame_equal(then.rows, again.rows)
    pd.testing.assert_frame_equal(then.workers, again.workers)
    assert then.summary["continuing"] == int(open_then.sum()) > 0
