"""Escalation labels: the window (as_of, as_of + horizon], the crisis set, the knowledge guard."""

from __future__ import annotations

import pandas as pd

from features.labels import build_labels, trainable_as_of_dates

AS_OF = pd.Timestamp("2025-01-06")
HOUSEHOLDS = pd.Index(["A", "B", "C", "D", "E"], name="household_id")


def crisis(household: str, event_type: str, occurred: pd.Timestamp, known=None) -> dict:
    return {
        "household_id": household,
        "event_type": event_type,
        "occurred_at": occurred,
        "known_at": known if known is not None else occurred + pd.Timedelta(days=3),
    }


def test_window_excludes_the_as_of_day_and_includes_the_last_day():
    events = pd.DataFrame(
        [
            crisis("A", "possession_order", AS_OF),
            crisis("B", "possession_order", AS_OF + pd.Timedelta(weeks=26)),
            crisis("C", "arrest", AS_OF + pd.Timedelta(weeks=26, days=1)),
            crisis("D", "police_callout", AS_OF + pd.Timedelta(weeks=2)),  # not a crisis
            crisis("E", "emergency_admission", AS_OF + pd.Timedelta(days=1)),
        ]
    )
    labels = build_labels(events, household_ids=HOUSEHOLDS, as_of=AS_OF)
    assert labels.to_dict() == {"A": 0, "B": 1, "C": 0, "D": 0, "E": 1}


def test_horizon_and_crisis_set_are_parameters():
    events = pd.DataFrame(
        [
            crisis("A", "arrest", AS_OF + pd.Timedelta(weeks=10)),
            crisis("B", "possession_order", AS_OF + pd.Timedelta(weeks=3)),
        ]
    )
    labels = build_labels(
        events,
        household_ids=HOUSEHOLDS,
        as_of=AS_OF,
        horizon_weeks=4,
        crisis_types=["possession_order"],
    )
    assert labels[labels == 1].index.tolist() == ["B"]


def test_crises_known_after_known_by_are_ignored():
    occurred = AS_OF + pd.Timedelta(weeks=5)
    events = pd.DataFrame(
        [
            crisis("A", "arrest", occurred, known=occurred + pd.Timedelta(days=2)),
            crisis("B", "arrest", occurred, known=occurred + pd.Timedelta(days=40)),
        ]
    )
    labels = build_labels(
        events,
        household_ids=HOUSEHOLDS,
        as_of=AS_OF,
        known_by=occurred + pd.Timedelta(days=10),
    )
    assert labels[labels == 1].index.tolist() == ["A"]


def test_trainable_dates_have_windows_that_end_by_the_evaluation_date():
    evaluation = pd.Timestamp("2026-03-02")
    dates = trainable_as_of_dates(evaluation_as_of=evaluation, step_weeks=4, count=6)
    assert dates == sorted(dates) and len(dates) == 6
    assert all(d + pd.Timedelta(weeks=26) <= evaluation for d in dates)
    assert dates[-1] + pd.Timedelta(weeks=26) == evaluation
    assert all((b - a) == pd.Timedelta(weeks=4) for a, b in zip(dates, dates[1:], strict=False))
