"""Leakage: label windows, known-by, and which examples a fold may train on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.labels import build_labels, label_window_end
from models import TrainSettings, fold_plan, training_window
from models._examples import crisis_events_of, feature_cache, labelled_examples, window_examples
from models._plan import TrainingWindow, check_history, window_is_closed

AS_OF = pd.Timestamp("2025-01-06")


def _events(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["household_id", "event_type", "occurred_at", "known_at"]
    ).astype({"occurred_at": "datetime64[ns]", "known_at": "datetime64[ns]"})


def test_label_window_excludes_the_as_of_day_and_includes_its_last_day():
    end = label_window_end(AS_OF, horizon_weeks=26)
    events = _events(
        [
            ("on_as_of", "arrest", str(AS_OF.date()), str(AS_OF.date())),
            ("on_last_day", "arrest", str(end.date()), str(end.date())),
            ("after_window", "arrest", str((end + pd.Timedelta(days=1)).date()), "2026-01-01"),
        ]
    )
    labels = build_labels(
        events,
        household_ids=pd.Index(["after_window", "on_as_of", "on_last_day"]),
        as_of=AS_OF,
        horizon_weeks=26,
    )
    assert labels.to_dict() == {"after_window": 0, "on_as_of": 0, "on_last_day": 1}


def test_crises_shared_after_known_by_are_ignored():
    events = _events(
        [
            ("shared_in_time", "arrest", "2025-02-01", "2025-02-10"),
            ("shared_late", "arrest", "2025-02-01", "2025-03-10"),
        ]
    )
    households = pd.Index(["shared_in_time", "shared_late"])
    known = build_labels(events, household_ids=households, as_of=AS_OF, known_by="2025-03-01")
    everything = build_labels(events, household_ids=households, as_of=AS_OF)
    assert known.to_dict() == {"shared_in_time": 1, "shared_late": 0}
    assert everything.to_dict() == {"shared_in_time": 1, "shared_late": 1}


@settings(max_examples=60, deadline=None)
@given(
    step_weeks=st.integers(1, 13),
    folds=st.integers(1, 8),
    history_dates=st.integers(2, 8),
    horizon_weeks=st.integers(1, 52),
    offset_days=st.integers(0, 2000),
)
def test_no_fold_trains_on_a_label_window_that_closes_after_its_test_date(
    step_weeks, folds, history_dates, horizon_weeks, offset_days
):
    evaluation = pd.Timestamp("2020-01-01") + pd.Timedelta(days=offset_days)
    plan_settings = TrainSettings(
        step_weeks=step_weeks,
        folds=folds,
        history_dates=history_dates,
        horizon_weeks=horizon_weeks,
    )
    plan = fold_plan(evaluation_as_of=evaluation, settings=plan_settings)
    assert [fold.test_as_of for fold in plan] == sorted({fold.test_as_of for fold in plan})
    assert plan[-1].test_as_of + pd.Timedelta(weeks=horizon_weeks) == evaluation
    for fold in plan:
        window = fold.window
        assert window.known_by == fold.test_as_of
        assert fold.labels_known_by == evaluation
        assert all(
            label_window_end(as_of, horizon_weeks=horizon_weeks) <= fold.test_as_of
            for as_of in window.as_of_dates
        )
        assert all(tree_date < window.calibration_as_of for tree_date in window.tree_as_of)
        assert len(window.tree_as_of) == history_dates - 1
    final = training_window(evaluation_as_of=evaluation, settings=plan_settings)
    assert window_is_closed(final, horizon_weeks=horizon_weeks)
    assert final.known_by == evaluation


def test_examples_use_only_crises_known_by_the_fold_test_date(small_city):
    plan_settings = TrainSettings(folds=2, history_dates=3)
    evaluation = small_city["events"]["known_at"].max()
    fold = fold_plan(evaluation_as_of=evaluation, settings=plan_settings)[0]
    as_of = fold.window.tree_as_of[0]
    household = small_city["households"]["household_id"].iloc[0]
    # Inside the example's label window, but shared only the day after the fold's test date.
    occurred = as_of + pd.Timedelta(weeks=2)
    shared = fold.test_as_of + pd.Timedelta(days=1)
    late_crisis = _events([(household, "arrest", str(occurred.date()), str(shared.date()))])
    others = small_city["events"].loc[small_city["events"]["household_id"] != household]
    crisis_events = crisis_events_of(
        pd.concat([others, late_crisis], ignore_index=True), settings=plan_settings
    )
    cache = feature_cache(small_city, as_of_dates=[as_of])
    labels = {
        known_by: labelled_examples(
            cache, crisis_events, as_of_dates=(as_of,), known_by=known_by, settings=plan_settings
        ).labels[cache.household_ids.get_loc(household)]
        for known_by in (fold.test_as_of, evaluation)
    }
    assert labels == {fold.test_as_of: 0, evaluation: 1}


def test_a_window_whose_labels_are_still_open_is_refused(small_city):
    plan_settings = TrainSettings(history_dates=2)
    as_of = pd.Timestamp("2024-06-03")
    premature = TrainingWindow(
        tree_as_of=(as_of - pd.Timedelta(weeks=4),),
        calibration_as_of=as_of,
        # One day short of the calibration date's label window end.
        known_by=as_of + pd.Timedelta(weeks=26) - pd.Timedelta(days=1),
    )
    cache = feature_cache(small_city, as_of_dates=list(premature.as_of_dates))
    crisis_events = crisis_events_of(small_city["events"], settings=plan_settings)
    with pytest.raises(ValueError, match="not closed"):
        window_examples(cache, crisis_events, window=premature, settings=plan_settings)


def test_features_of_an_as_of_date_ignore_records_shared_later(small_city):
    as_of = pd.Timestamp("2024-06-03")
    household = small_city["households"]["household_id"].iloc[1]
    shared_later = pd.DataFrame(
        {
            "event_id": ["E-late"],
            "household_id": [household],
            "person_id": [np.nan],
            "source": ["police"],
            "event_type": ["police_callout"],
            "occurred_at": [as_of - pd.Timedelta(days=3)],
            "known_at": [as_of + pd.Timedelta(days=1)],
            "value": [np.nan],
        }
    ).astype(small_city["events"].dtypes.to_dict())
    with_late = small_city | {
        "events": pd.concat([small_city["events"], shared_later], ignore_index=True)
    }
    before = feature_cache(small_city, as_of_dates=[as_of])[as_of]
    after = feature_cache(with_late, as_of_dates=[as_of])[as_of]
    pd.testing.assert_frame_equal(before, after)


def test_too_little_history_is_refused_with_advice(small_city):
    too_many = TrainSettings(folds=30, history_dates=8)
    evaluation = small_city["events"]["known_at"].max()
    plan = fold_plan(evaluation_as_of=evaluation, settings=too_many)
    with pytest.raises(ValueError, match="fewer folds"):
        check_history(
            folds=plan,
            first_event_day=small_city["events"]["occurred_at"].min(),
            settings=too_many,
        )
