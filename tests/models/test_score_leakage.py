"""Leakage, end to end: nothing known after the as-of date changes the week's scores or its
allocation proposal (events known later, cases opened or closed later, in any combination)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allocation import AllocationSettings, propose_allocation
from models import ChampionModel, score_households

WEEKS_BEFORE_END = 26
RULES = AllocationSettings(top_n=150, time_limit_s=20)


@pytest.fixture(scope="module")
def as_of(city_end) -> pd.Timestamp:
    return pd.Timestamp(city_end) - pd.Timedelta(weeks=WEEKS_BEFORE_END)


@pytest.fixture(scope="module")
def champion(trained_outcome) -> ChampionModel:
    return ChampionModel(
        estimator=trained_outcome.model, name="test", version="1", run_id="r", horizon_weeks=26
    )


def _week(tables: dict, *, as_of, champion) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    scores = score_households(tables=tables, as_of=as_of, model=champion)
    proposal = propose_allocation(
        scores=scores, workers=tables["workers"], cases=tables["cases"], settings=RULES, as_of=as_of
    )
    return scores, proposal.rows, proposal.workers


@pytest.fixture(scope="module")
def week_then(small_city, as_of, champion):
    return _week(small_city, as_of=as_of, champion=champion)


def _later_cases(cases: pd.DataFrame, *, as_of, rng: np.random.Generator) -> pd.DataFrame:
    """Cases as a newer extract might tell them: later closures moved or undone, cases opened
    after the date dropped or added."""
    closed_later = cases["closed_at"] > as_of
    moved = cases["closed_at"].where(
        ~closed_later, as_of + pd.to_timedelta(rng.integers(1, 200, len(cases)), unit="D")
    )
    undone = closed_later & (rng.random(len(cases)) < 0.3)
    changed = cases.assign(closed_at=moved.mask(undone, pd.NaT))
    changed = changed.assign(close_reason=changed["close_reason"].mask(undone, pd.NA))
    kept = changed.loc[~((changed["opened_at"] > as_of) & (rng.random(len(cases)) < 0.5))]
    added = kept.sample(n=min(40, len(kept)), random_state=int(rng.integers(1 << 31))).assign(
        case_id=lambda frame: "LATE-" + frame["case_id"],
        opened_at=as_of + pd.to_timedelta(rng.integers(1, 120, 40)[: len(kept)], unit="D"),
        closed_at=pd.NaT,
    )
    return pd.concat([kept, added], ignore_index=True).astype(cases.dtypes.to_dict())


def _later_events(events: pd.DataFrame, *, as_of, rng: np.random.Generator) -> pd.DataFrame:
    """Events known after the date dropped, delayed further, or added."""
    late = events["known_at"] > as_of
    dropped = events.loc[~(late & (rng.random(len(events)) < 0.5))]
    copies = dropped.sample(n=200, random_state=int(rng.integers(1 << 31)))
    copies = copies.assign(
        event_id=lambda frame: "LATE-" + frame["event_id"].astype("str"),
        known_at=as_of + pd.to_timedelta(rng.integers(1, 90, len(copies)), unit="D"),
    )
    copies = copies.assign(occurred_at=copies[["occurred_at", "known_at"]].min(axis=1))
    return pd.concat([dropped, copies], ignore_index=True).astype(events.dtypes.to_dict())


@pytest.mark.slow
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**31 - 1), cases=st.booleans(), events=st.booleans())
def test_records_after_the_date_change_neither_scores_nor_proposal(
    small_city, as_of, champion, week_then, seed, cases, events
):
    rng = np.random.default_rng(seed)
    changed = dict(small_city)
    if cases or not events:
        changed["cases"] = _later_cases(small_city["cases"], as_of=as_of, rng=rng)
    if events:
        changed["events"] = _later_events(small_city["events"], as_of=as_of, rng=rng)
    scores, rows, workers = _week(changed, as_of=as_of, champion=champion)
    pd.testing.assert_frame_equal(scores, week_then[0])
    pd.testing.assert_frame_equal(rows, week_then[1])
    pd.testing.assert_frame_equal(workers, week_then[2])
