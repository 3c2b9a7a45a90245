"""Outcome measures and the difference-in-differences estimator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.simulation._costs import cost_avoided_by_agency, cost_sources, load_unit_costs
from experiments.simulation._outcomes import (
    did_table,
    difference_in_differences,
    rollout_wards,
    ward_index,
    ward_week_outcomes,
)
from features.contract import EVENT_TYPES, SOURCES


def _panel(*, effect: float, trend_gap: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """40 wards x 30 weeks: ward and week effects, noise, and `effect` on early wards after 0."""
    rng = np.random.default_rng(seed)
    rows = []
    for ward in range(40):
        level, early = rng.normal(10, 3), ward % 2 == 0
        for week in range(-15, 15):
            value = level + 0.2 * week + rng.normal(0, 1.0)
            value += trend_gap * week * early
            value += effect if early and week >= 0 else 0.0
            rows.append({"seed": 0, "ward": f"W{ward:02d}", "week": week, "crises": value})
    return pd.DataFrame(rows)


def test_did_recovers_a_known_effect_within_its_interval():
    panel = _panel(effect=-2.5)
    early = tuple(f"W{ward:02d}" for ward in range(0, 40, 2))
    table = did_table(
        panel, early_wards=early, pre_weeks=(-15, 0), post_weeks=(0, 15), measures=("crises",)
    )
    row = table.iloc[0]
    assert row["ci_low"] <= -2.5 <= row["ci_high"]
    assert abs(row["estimate"] + 2.5) < 0.5 and row["p_value"] < 0.001
    # No trend difference before the start: the placebo is small and not significant.
    assert abs(row["pre_trend_estimate"]) < 0.5 and row["pre_trend_p_value"] > 0.01


def test_did_finds_nothing_without_an_effect_and_flags_diverging_trends():
    early = tuple(f"W{ward:02d}" for ward in range(0, 40, 2))
    null = did_table(
        _panel(effect=0.0, seed=3),
        early_wards=early,
        pre_weeks=(-15, 0),
        post_weeks=(0, 15),
        measures=("crises",),
    ).iloc[0]
    assert null["ci_low"] <= 0.0 <= null["ci_high"]
    diverging = did_table(
        _panel(effect=0.0, trend_gap=0.3, seed=4),
        early_wards=early,
        pre_weeks=(-15, 0),
        post_weeks=(0, 15),
        measures=("crises",),
    ).iloc[0]
    assert diverging["pre_trend_p_value"] < 0.01


def test_did_needs_two_units_per_group():
    panel = pd.DataFrame(
        {"unit": ["a", "a", "b", "b"], "treated": [True, True, False, False]}
        | {"post": [False, True, False, True], "y": [1.0, 2.0, 1.0, 1.0]}
    )
    with pytest.raises(ValueError, match="two units"):
        difference_in_differences(panel, outcome="y", unit="unit", treated="treated", post="post")


def test_ward_week_outcomes_count_events_and_tiers_per_ward():
    households = pd.DataFrame(
        {
            "household_id": ["H1", "H2", "H3", "H4"],
            "locality": ["Hanley", "Hanley", "Stoke", "Stoke"],
            "ward": ["A", "A", "B", "B"],
        }
    )
    index = ward_index(households)
    events = pd.DataFrame(
        {
            "household_id": ["H1", "H1", "H3"],
            "event_type": ["asb_report", "arrest", "school_absence"],
            "value": [np.nan, np.nan, 6.0],
        }
    )
    hidden = pd.DataFrame(
        {
            "household_id": households["household_id"],
            "tier": [0, 3, 1, 1],
            "rent_arrears_balance": [0.0, 100.0, 50.0, 0.0],
        }
    )
    rows = ward_week_outcomes(index=index, events=events, hidden_state=hidden, week=3)
    ward_a, ward_b = rows.iloc[0], rows.iloc[1]
    assert ward_a["asb"] == 500.0 and ward_a["crises"] == 500.0 and ward_b["crises"] == 0.0
    assert ward_b["school_absence"] == 3000.0 and ward_a["rent_arrears_balance"] == 50.0
    measures = [f"demand_{source}" for source in SOURCES]
    assert np.allclose(rows[measures].sum(axis=1), rows["demand"])
    assert np.allclose(rows[[f"tier_{tier}" for tier in range(4)]].sum(axis=1), 100.0)


def test_rollout_splits_every_locality():
    households = pd.DataFrame(
        {
            "household_id": [f"H{n}" for n in range(8)],
            "locality": ["Hanley"] * 4 + ["Stoke"] * 4,
            "ward": ["A", "B", "C", "D", "E", "F", "G", "H"],
        }
    )
    early = rollout_wards(ward_index(households), seed=0)
    assert len(set(early) & set("ABCD")) == 2 and len(set(early) & set("EFGH")) == 2
    assert early == rollout_wards(ward_index(households), seed=0)


def test_unit_costs_cover_every_event_type_with_a_source():
    costs = load_unit_costs()
    assert list(costs.index) == list(EVENT_TYPES) and list(costs.columns) == list(SOURCES)
    assert (costs.to_numpy() >= 0).all()
    # Every event has a cost to the agency that records it.
    assert all(costs.loc[name, kind.source] > 0 for name, kind in EVENT_TYPES.items())
    assert all(text.strip() for text in cost_sources().values())


def test_cost_avoided_adds_up_across_agencies():
    costs = load_unit_costs()
    baseline = pd.Series({"arrest": 10, "ae_attendance": 40, "child_taken_into_care": 2})
    policy = pd.Series({"arrest": 7, "ae_attendance": 45})
    by_agency = cost_avoided_by_agency(
        baseline_events=baseline, policy_events=policy, unit_costs=costs
    )
    expected = (
        3 * costs.loc["arrest"].sum()
        - 5 * costs.loc["ae_attendance"].sum()
        + 2 * costs.loc["child_taken_into_care"].sum()
    )
    assert by_agency.sum() == pytest.approx(expected)
    assert by_agency["police"] == pytest.approx(3 * costs.loc["arrest", "police"])


def test_a_broken_cost_table_is_refused_with_the_key(tmp_path):
    path = tmp_path / "costs.toml"
    path.write_text('[arrest]\npolice = -3\nsource = "x"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[arrest\] police: cost must be"):
        load_unit_costs(path)
