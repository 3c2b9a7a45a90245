"""Metrics: top-k with deterministic ties, capacity k, calibration error, list overlap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import (
    calibration_table,
    capacity_k,
    expected_calibration_error,
    precision_recall_at_k,
    ranking_order,
    top_k_overlap,
)
from models._metrics import precision_curve


def test_ties_at_the_cut_off_go_to_the_smaller_household_id_and_are_counted():
    household_ids = np.array(["H5", "H3", "H9", "H1", "H7"])
    score = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    labels = np.array([1, 0, 0, 1, 0])
    at_2 = precision_recall_at_k(labels=labels, score=score, household_ids=household_ids, k=2)
    # H5 first, then the three tied at 0.5 in id order: H1 is taken.
    assert list(household_ids[ranking_order(score, household_ids)]) == [
        "H5",
        "H1",
        "H3",
        "H9",
        "H7",
    ]
    assert at_2 == {"precision": 1.0, "recall": 1.0, "tied_at_cutoff": 3, "k": 2}


@settings(max_examples=50, deadline=None)
@given(
    scores=st.lists(st.integers(0, 4), min_size=2, max_size=40),
    seed=st.integers(0, 1000),
)
def test_ranking_does_not_depend_on_row_order(scores, seed):
    household_ids = np.array([f"H{n:03d}" for n in range(len(scores))])
    score = np.array(scores, dtype=float)
    shuffle = np.random.default_rng(seed).permutation(len(scores))
    ranked = household_ids[ranking_order(score, household_ids)]
    reranked = household_ids[shuffle][ranking_order(score[shuffle], household_ids[shuffle])]
    assert list(ranked) == list(reranked)
    assert all(np.diff(score[ranking_order(score, household_ids)]) <= 0)


def test_precision_at_k_outside_the_list_is_not_a_number():
    result = precision_recall_at_k(
        labels=np.array([1, 0]), score=np.array([0.2, 0.1]), household_ids=np.array(["a", "b"]), k=0
    )
    assert np.isnan(result["precision"])


def _workers_and_cases():
    workers = pd.DataFrame(
        {
            "worker_id": ["W1", "W2", "W3"],
            "locality": ["Hanley"] * 3,
            "skills": ["debt"] * 3,
            "capacity_points": [100, 60, 100],
            "active": [True, True, False],
        }
    )
    cases = pd.DataFrame(
        {
            "case_id": ["C1", "C2", "C3", "C4"],
            "household_id": ["H1", "H2", "H3", "H4"],
            "worker_id": ["W1", "W2", "W2", "W1"],
            "opened_at": pd.to_datetime(["2025-01-01", "2025-01-01", "2025-01-01", "2025-01-01"]),
            "closed_at": pd.to_datetime([None, None, None, "2025-02-01"]),
            "complexity_points": [20, 50, 20, 10],
            "close_reason": [np.nan, np.nan, np.nan, "resolved"],
        }
    )
    return workers, cases


def test_capacity_k_is_free_points_of_active_workers_over_median_complexity():
    workers, cases = _workers_and_cases()
    # W1: 100 - 20 = 80 free; W2: 60 - 70 -> 0 (overloaded, not negative); W3 inactive.
    # Median complexity of 10, 20, 20, 50 is 20 -> 80 // 20 = 4 households.
    assert capacity_k(workers=workers, cases=cases, as_of="2025-03-01") == 4
    # Before C4 closed it also loaded W1: 100 - 30 = 70 -> 70 // 20 = 3.
    assert capacity_k(workers=workers, cases=cases, as_of="2025-01-15") == 3


def test_calibration_error_is_zero_when_predictions_match_observed_rates():
    risk = np.repeat([0.1, 0.5], 1000)
    labels = np.concatenate([np.arange(1000) < 100, np.arange(1000) < 500]).astype(int)
    assert expected_calibration_error(labels, risk, bins=2) == pytest.approx(0.0)
    overconfident = np.repeat([0.3, 0.9], 1000)
    assert expected_calibration_error(labels, overconfident, bins=2) == pytest.approx(0.3)
    table = calibration_table(labels, risk, bins=2)
    assert list(table["households"]) == [1000, 1000]


def test_top_k_overlap_measures_how_many_stay_on_the_list():
    household_ids = np.array(["a", "b", "c", "d"])
    before = np.array([4.0, 3.0, 2.0, 1.0])
    after = np.array([4.0, 1.0, 3.0, 2.0])
    assert top_k_overlap(
        score_before=before, score_after=after, household_ids=household_ids, k=2
    ) == pytest.approx(0.5)
    assert top_k_overlap(
        score_before=before, score_after=before, household_ids=household_ids, k=3
    ) == pytest.approx(1.0)


def test_precision_curve_runs_from_the_top_household_to_max_k():
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    score = np.arange(10, 0, -1, dtype=float)
    curve = precision_curve(
        labels=labels, score=score, household_ids=np.arange(10).astype(str), max_k=4
    )
    assert list(curve["k"]) == [1, 2, 3, 4]
    assert list(curve["precision"]) == [1.0, 1.0, 2 / 3, 0.75]
    assert list(curve["recall"]) == [1 / 3, 2 / 3, 2 / 3, 1.0]
