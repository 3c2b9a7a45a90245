"""Reasons a key worker can read: exact TreeSHAP, grouping, order, language, needs, changes."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from experiments.shap_plots import global_explanation_plots
from features.build import features_as_of, prepare_tables
from features.contract import SKILLS, table_dtypes
from features.needs import EVENT_SKILLS, household_needs
from models.explain import (
    BASE_VALUE,
    explain_household,
    explain_households,
    format_explanation,
    household_timeline,
    index_records,
    risk_bands,
    shap_attributions,
    shared_since,
)
from tests.models.conftest import AS_OF, PREVIOUS, TEMPLATES, calibrator


def test_reasons_are_positive_strong_ordered_and_shares_sum_to_at_most_one(explained):
    shares = explained[[f"share_{rank}" for rank in range(1, 6)]].to_numpy()
    counts = explained["strong_reasons"].to_numpy()
    assert counts.max() <= 5
    assert ((~np.isnan(shares)).sum(axis=1) == counts).all()
    filled = np.nan_to_num(shares, nan=-1.0)
    assert (np.diff(filled, axis=1) <= 1e-12).all(), "reasons must be ordered by size"
    assert (np.nansum(shares, axis=1) <= 1 + 1e-9).all()
    assert (shares[~np.isnan(shares)] > 0).all()
    groups = explained["reason_groups"].str.split(";")
    assert all(len(row) == len(set(row)) for row in groups if row != [""])
    texts = explained["reasons"].str.split(re.escape(TEMPLATES.separator))
    with_reasons = counts > 0
    assert (texts[with_reasons].str.len() == counts[with_reasons]).all()
    assert (explained.loc[~with_reasons, "reasons"] == TEMPLATES.no_strong_reason).all()
    assert with_reasons.any() and (~with_reasons).any()


def test_single_household_matches_the_batch(booster, explained, features_now, small_city):
    records = index_records(small_city)
    for household_id in explained.sort_values("risk")["household_id"].iloc[::300]:
        one = explain_household(
            booster=booster,
            household_id=household_id,
            features=features_now,
            records=records,
            as_of=AS_OF,
            calibrator=calibrator,
        )
        row = explained.set_index("household_id").loc[household_id]
        assert one["risk"] == pytest.approx(row["risk"], abs=1e-9)
        shown = TEMPLATES.separator.join(reason["text"] for reason in one["reasons"])
        assert (shown or one["no_strong_reason"]) == row["reasons"]


# --- needs ---------------------------------------------------------------------------------------


def test_reason_skills_follow_the_one_mapping_and_needs_come_from_the_records(
    booster, features_now, small_city, explained
):
    """Each reason names the skills features.needs gives its event type; the household's needs
    (and their evidence) are its records' (features.needs), as in the weekly scores."""
    records = index_records(small_city)
    from_records = household_needs(
        small_city["events"], household_ids=explained["household_id"], as_of=AS_OF
    )
    for household_id in explained.loc[explained["strong_reasons"] > 0, "household_id"][::40]:
        one = explain_household(
            booster=booster,
            household_id=household_id,
            features=features_now,
            records=records,
            as_of=AS_OF,
        )
        for reason in one["reasons"]:
            if reason["group"] in EVENT_SKILLS:
                expected = EVENT_SKILLS[reason["group"]]
                assert reason["skills"] == [s for s in SKILLS if s in expected]
        assert one["needs"] == from_records.loc[household_id, "needs"]
        assert [item["need"] for item in one["needs_evidence"]] == (
            one["needs"].split(";") if one["needs"] else []
        )
        evidence = " | ".join(item["evidence"] for item in one["needs_evidence"])
        assert evidence == from_records.loc[household_id, "needs_evidence"]
        text = format_explanation(one)
        assert all(item["evidence"] in text for item in one["needs_evidence"])
    needs = explained["needs"].str.split(";").explode()
    assert set(needs[needs != ""]) <= set(SKILLS)


# --- what changed and the timeline ---------------------------------------------------------------


def _with_extra_events(tables: dict, household_id: str) -> dict:
    person = tables["people"].loc[tables["people"]["household_id"] == household_id, "person_id"]
    rows = [
        # (event_id, occurred, known): shared this week though it happened 3 weeks ago
        ("X-late", AS_OF - pd.Timedelta(days=21), AS_OF - pd.Timedelta(days=3)),
        ("X-new", AS_OF - pd.Timedelta(days=2), AS_OF - pd.Timedelta(days=2)),
        # shared only after the as-of date: must not appear anywhere
        ("X-future", AS_OF - pd.Timedelta(days=2), AS_OF + pd.Timedelta(days=1)),
        # shared before last week's date: in the timeline, not new
        ("X-old", AS_OF - pd.Timedelta(days=12), AS_OF - pd.Timedelta(days=10)),
    ]
    extra = pd.DataFrame(
        {
            "event_id": [row[0] for row in rows],
            "household_id": household_id,
            "person_id": person.iloc[0],
            "source": "police",
            "event_type": "domestic_abuse_incident",
            "occurred_at": [row[1] for row in rows],
            "known_at": [row[2] for row in rows],
            "value": np.nan,
        }
    )
    events = pd.concat([tables["events"], extra], ignore_index=True)
    return {**tables, "events": events.astype(table_dtypes("events"))}


def _case_moments(tables: dict, household_id: str, *, after) -> int:
    """How many of the household's case openings and closings fall by AS_OF (after `after`)."""
    cases = tables["cases"].loc[tables["cases"]["household_id"] == household_id]
    moments = pd.concat([cases["opened_at"], cases["closed_at"].dropna()])
    moments = moments[moments <= AS_OF]
    return int((moments > after).sum()) if after is not None else len(moments)


def test_what_changed_on_a_constructed_pair_of_weeks(booster, small_city):
    household_id = sorted(small_city["households"]["household_id"])[7]
    tables = _with_extra_events(small_city, household_id)
    prepared = prepare_tables(tables)
    now, before = features_as_of(prepared, as_of=AS_OF), features_as_of(prepared, as_of=PREVIOUS)
    one = explain_household(
        booster=booster,
        household_id=household_id,
        features=now,
        previous_features=before,
        records=tables,
        as_of=AS_OF,
        calibrator=calibrator,
    )
    changed = one["what_changed"]
    events = tables["events"]
    mine = events.loc[events["household_id"] == household_id]
    shared_this_week = mine.loc[(mine["known_at"] > PREVIOUS) & (mine["known_at"] <= AS_OF)]
    assert len(changed["new_records"]) == len(shared_this_week) + _case_moments(
        tables, household_id, after=PREVIOUS
    )
    new_dates = {(entry["date"], entry["shared"]) for entry in changed["new_records"]}
    assert ("2025-06-09", "2025-06-27") in new_dates  # happened 3 weeks ago, shared this week
    assert ("2025-06-28", "2025-06-28") in new_dates
    timeline_dates = {(entry["date"], entry["shared"]) for entry in one["timeline"]}
    assert ("2025-06-18", "2025-06-20") in timeline_dates - new_dates
    assert all(entry["shared"] <= "2025-06-30" for entry in one["timeline"])
    assert len(one["timeline"]) == (mine["known_at"] <= AS_OF).sum() + _case_moments(
        tables, household_id, after=None
    )
    assert [entry["date"] for entry in one["timeline"]] == sorted(
        (entry["date"] for entry in one["timeline"]), reverse=True
    )
    this_week = (
        explain_households(
            booster=booster, features=now, tables=tables, as_of=AS_OF, calibrator=calibrator
        )
        .set_index("household_id")
        .loc[household_id]
    )
    last_week = (
        explain_households(
            booster=booster, features=before, tables=tables, as_of=PREVIOUS, calibrator=calibrator
        )
        .set_index("household_id")
        .loc[household_id]
    )
    story = household_timeline(
        records=index_records(tables), household_id=household_id, as_of=AS_OF
    )
    assert story == one["timeline"]
    assert shared_since(story, since=PREVIOUS) == changed["new_records"]
    assert changed["risk_now"] == pytest.approx(this_week["risk"], abs=1e-12)
    assert changed["risk_then"] == pytest.approx(last_week["risk"], abs=1e-12)
    assert changed["band_then"] == last_week["band"]
    groups_now = set(filter(None, this_week["reason_groups"].split(";")))
    groups_then = set(filter(None, last_week["reason_groups"].split(";")))
    texts_now = dict(
        zip(
            this_week["reason_groups"].split(";"),
            this_week["reasons"].split(TEMPLATES.separator),
            strict=False,
        )
    )
    assert sorted(changed["reasons_appeared"]) == sorted(
        texts_now[group] for group in groups_now - groups_then
    )
    assert len(changed["reasons_faded"]) == len(groups_then - groups_now)


# --- determinism, output shape, errors -----------------------------------------------------------


def test_identical_input_gives_identical_output(booster, features_now, small_city, explained):
    again = explain_households(
        booster=booster,
        features=features_now,
        tables=small_city,
        as_of=AS_OF,
        calibrator=calibrator,
    )
    pd.testing.assert_frame_equal(explained, again)
    shuffled = features_now.sample(frac=1.0, random_state=3)
    reordered = (
        explain_households(
            booster=booster,
            features=shuffled,
            tables=small_city,
            as_of=AS_OF,
            calibrator=calibrator,
        )
        .set_index("household_id")
        .loc[explained["household_id"]]
        .reset_index()
    )
    pd.testing.assert_frame_equal(explained, reordered)
    records = index_records(small_city)
    household_id = explained["household_id"].iloc[42]
    first, second = (
        explain_household(
            booster=booster,
            household_id=household_id,
            features=features_now,
            records=records,
            as_of=AS_OF,
        )
        for _ in range(2)
    )
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_explanation_is_json_ready_and_formats_for_the_terminal(
    booster, features_now, features_before, small_city, explained
):
    household_id = explained.sort_values("risk")["household_id"].iloc[-1]
    one = explain_household(
        booster=booster,
        household_id=household_id,
        features=features_now,
        previous_features=features_before,
        records=small_city,
        as_of=AS_OF,
        calibrator=calibrator,
    )
    decoded = json.loads(json.dumps(one))
    assert decoded["band"] in TEMPLATES.band_labels
    assert math.isclose(
        decoded["raw_score"],
        decoded["base_value"]
        + sum(
            shap_attributions(booster=booster, features=features_now.loc[[household_id]])
            .drop(columns=BASE_VALUE)
            .iloc[0]
        ),
        abs_tol=1e-6,
    )
    text = format_explanation(one)
    assert f"{one['risk']:.0%}" in text
    assert all(reason["text"] in text for reason in one["reasons"])
    assert "What changed since 23 Jun 2025" in text


def test_bands_follow_the_reviewed_thresholds(explained):
    lowers = dict(zip(TEMPLATES.band_labels, TEMPLATES.band_lowers, strict=True))
    for band, group in explained.groupby("band"):
        assert (group["risk"] >= lowers[band]).all()
    assert list(risk_bands(np.array([0.0, 0.049, 0.05, 0.2, 0.3, 1.0]))) == [
        "low",
        "low",
        "medium",
        "high",
        "very high",
        "very high",
    ]
    from experiments.overrides import RISK_BANDS

    assert tuple(label for _, label in RISK_BANDS) == TEMPLATES.band_labels
    assert tuple(lower for lower, _ in RISK_BANDS) == TEMPLATES.band_lowers


def test_unknown_household_and_missing_columns_are_clear_errors(booster, features_now, small_city):
    with pytest.raises(ValueError, match="H-nobody"):
        explain_household(
            booster=booster,
            household_id="H-nobody",
            features=features_now,
            records=small_city,
            as_of=AS_OF,
        )
    with pytest.raises(ValueError, match="police_callout_count_13w"):
        shap_attributions(
            booster=booster, features=features_now.drop(columns="police_callout_count_13w")
        )


def test_global_plots_are_written(booster, features_now, tmp_path):
    paths = global_explanation_plots(booster, features_now, tmp_path, max_rows=400, top=2)
    assert len(paths) == 4
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
