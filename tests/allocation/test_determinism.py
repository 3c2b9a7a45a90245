"""Same input (in any row order) and seed -> the identical proposal."""

from __future__ import annotations

import pandas as pd
import pytest

from allocation import AllocationSettings, propose_allocation, random_instance

SETTINGS = AllocationSettings(top_n=120, time_limit_s=10)


@pytest.fixture(scope="module")
def week():
    instance = random_instance(seed=5, households=3000, workers=30)
    ranked = instance.scores.loc[instance.scores["open_case_worker"].isna()].nsmallest(3, "rank")
    locks = pd.DataFrame(
        {
            "household_id": ranked["household_id"].to_numpy(),
            "worker_id": [instance.workers["worker_id"].iloc[0]] * 3,
            "kind": ["exclude", "exclude", "exclude"],
        }
    ).astype("str")
    return {
        "scores": instance.scores,
        "workers": instance.workers,
        "cases": instance.cases,
        "locks": locks,
    }


def assert_same(first, second) -> None:
    pd.testing.assert_frame_equal(first.rows, second.rows)
    pd.testing.assert_frame_equal(first.workers, second.workers)
    pd.testing.assert_frame_equal(first.continuing, second.continuing)
    pd.testing.assert_frame_equal(first.lock_report, second.lock_report)
    timeless = {"solve_seconds", "components"}
    assert {k: v for k, v in first.summary.items() if k not in timeless} == {
        k: v for k, v in second.summary.items() if k not in timeless
    }


def test_same_input_gives_identical_proposal(week):
    first = propose_allocation(**week, settings=SETTINGS)
    second = propose_allocation(**week, settings=SETTINGS)
    assert first.summary["reproducible"]
    assert first.summary["assigned"] > 0 and first.summary["waitlisted"] > 0
    assert_same(first, second)


def test_row_order_of_every_input_does_not_matter(week):
    first = propose_allocation(**week, settings=SETTINGS)
    shuffled = {
        name: frame.sample(frac=1.0, random_state=11).reset_index(drop=True)
        for name, frame in week.items()
    }
    assert_same(first, propose_allocation(**shuffled, settings=SETTINGS))
