"""Reasons a key worker can read: exact TreeSHAP, grouping, order, language, needs, changes."""

from __future__ import annotations

import json
import math
import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.build import features_as_of, prepare_tables
from features.contract import SKILLS, table_dtypes
from features.labels import build_labels
from models import _reasons
from models.explain import (
    BASE_VALUE,
    TIMELINE_FIELDS,
    attribution_matrix,
    effect_direction_checks,
    explain_household,
    explain_households,
    format_explanation,
    group_attributions,
    household_timeline,
    household_timelines,
    index_records,
    model_input,
    risk_bands,
    shap_attributions,
    shared_since,
)

AS_OF = pd.Timestamp("2025-06-30")
PREVIOUS = AS_OF - pd.Timedelta(days=7)
TRAIN_DATES = ("2024-06-03", "2024-09-02", "2024-12-02")
PARAMS = {
    "objective": "binary",
    "num_leaves": 15,
    "learning_rate": 0.1,
    "min_child_samples": 20,
    "max_bin": 63,
    "num_threads": 1,
    "seed": 0,
    "deterministic": True,
    "force_col_wise": True,
    "verbosity": -1,
}
TEMPLATES = _reasons.load_templates()


def calibrator(raw_score: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(0.8 * raw_score - 0.3)))


@pytest.fixture(scope="module")
def prepared(small_city):
    return prepare_tables(small_city)


@pytest.fixture(scope="module")
def training(small_city, prepared) -> tuple[pd.DataFrame, pd.Series]:
    frames = [features_as_of(prepared, as_of=date) for date in TRAIN_DATES]
    labels = [
        build_labels(small_city["events"], household_ids=frame.index, as_of=date)
        for frame, date in zip(frames, TRAIN_DATES, strict=True)
    ]
    return pd.concat(frames), pd.concat(labels)


def _train(training, *, rounds: int, **params) -> lgb.Booster:
    features, labels = training
    data = lgb.Dataset(features.to_numpy(np.float32), labels, feature_name=list(features.columns))
    return lgb.train(PARAMS | params, data, num_boost_round=rounds)


@pytest.fixture(scope="module")
def booster(training) -> lgb.Booster:
    return _train(training, rounds=60)


@pytest.fixture(scope="module")
def features_now(prepared) -> pd.DataFrame:
    return features_as_of(prepared, as_of=AS_OF)


@pytest.fixture(scope="module")
def features_before(prepared) -> pd.DataFrame:
    return features_as_of(prepared, as_of=PREVIOUS)


@pytest.fixture(scope="module")
def explained(booster, features_now, small_city) -> pd.DataFrame:
    return explain_households(
        booster=booster,
        features=features_now,
        tables=small_city,
        as_of=AS_OF,
        calibrator=calibrator,
    )


# --- exact TreeSHAP ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["patterns", "lightgbm", "auto"])
def test_attributions_add_up_to_the_raw_score(booster, features_now, method):
    attributions = shap_attributions(booster=booster, features=features_now, method=method)
    raw = booster.predict(features_now[booster.feature_name()].to_numpy(np.float32), raw_score=True)
    assert np.abs(attributions.sum(axis=1).to_numpy() - raw).max() < 1e-6
    assert attributions[BASE_VALUE].nunique() == 1


def test_pattern_engine_equals_lightgbm_treeshap(booster, features_now):
    matrix = features_now[booster.feature_name()].to_numpy(np.float32)
    fast = attribution_matrix(booster, matrix, method="patterns")
    reference = booster.predict(matrix, pred_contrib=True)
    assert np.abs(fast - reference).max() < 1e-9


def test_pattern_engine_equals_shap_tree_explainer(booster, features_now):
    from experiments.shap_plots import reference_shap_values

    rows = features_now.iloc[::5]
    reference, expected_value = reference_shap_values(booster, rows)
    fast = shap_attributions(booster=booster, features=rows, method="patterns")
    assert np.abs(fast[booster.feature_name()].to_numpy() - reference).max() < 1e-6
    assert fast[BASE_VALUE].iloc[0] == pytest.approx(expected_value, abs=1e-9)


def _thresholds(booster) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}

    def walk(node):
        if "split_index" in node:
            found.setdefault(node["split_feature"], []).append(node["threshold"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return found


def _edge_rows(booster, n_rows: int, seed: int) -> np.ndarray:
    """Rows whose values sit exactly on, just beside, or far from split thresholds, plus NaN,
    0, -0 and values inside LightGBM's zero band: where an inexact engine would go wrong."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0, 50, size=(n_rows, booster.num_feature()))
    for feature, thresholds in _thresholds(booster).items():
        edges = np.array(thresholds)
        candidates = np.concatenate(
            [
                edges,
                np.nextafter(edges, np.inf),
                np.nextafter(edges, -np.inf),
                [np.nan, 0.0, -0.0, 1e-36, -1e-36, 1e-30],
            ]
        )
        chosen = rng.random(n_rows) < 0.8
        matrix[chosen, feature] = rng.choice(candidates, chosen.sum())
    return matrix


@pytest.mark.parametrize("missing", ["default", "zero_as_missing"])
def test_pattern_engine_is_exact_on_split_edges(booster, training, missing):
    model = booster if missing == "default" else _train(training, rounds=20, zero_as_missing=True)
    matrix = _edge_rows(model, 600, seed=1)
    fast = attribution_matrix(model, matrix, method="patterns")
    assert np.abs(fast - model.predict(matrix, pred_contrib=True)).max() < 1e-9
    assert np.abs(fast.sum(axis=1) - model.predict(matrix, raw_score=True)).max() < 1e-9


def test_categorical_splits_fall_back_to_lightgbm():
    rng = np.random.default_rng(0)
    matrix = np.column_stack([rng.integers(0, 5, 2000), rng.normal(size=2000)])
    labels = (matrix[:, 0] == 3) ^ (rng.random(2000) < 0.1)
    data = lgb.Dataset(matrix, labels, categorical_feature=[0], params={"verbosity": -1})
    model = lgb.train(PARAMS | {"min_child_samples": 5}, data, num_boost_round=5)
    with pytest.raises(ValueError, match="categorical"):
        attribution_matrix(model, matrix, method="patterns")
    auto = attribution_matrix(model, matrix)
    assert np.abs(auto.sum(axis=1) - model.predict(matrix, raw_score=True)).max() < 1e-6


def _categorical_model(rows: int = 2000) -> tuple[lgb.Booster, pd.DataFrame]:
    """A model trained on a frame whose category column holds integers other than their codes
    (categories 10..50 are codes 0..4)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "tenure": pd.Categorical(rng.choice([10, 20, 30, 40, 50], rows)),
            "x": rng.normal(size=rows),
        }
    )
    labels = (frame["tenure"].astype(int) == 40) ^ (rng.random(rows) < 0.1)
    data = lgb.Dataset(frame, labels, params={"verbosity": -1})
    return lgb.train(PARAMS | {"min_child_samples": 5}, data, num_boost_round=5), frame


@pytest.mark.parametrize("method", ["auto", "lightgbm"])
def test_integer_categories_are_explained_at_their_training_codes(method):
    model, frame = _categorical_model()
    attributions = shap_attributions(booster=model, features=frame, method=method)
    reference = model.predict(frame, pred_contrib=True)
    assert np.abs(attributions.to_numpy() - reference).max() < 1e-9
    raw = model.predict(frame, raw_score=True)
    assert np.abs(attributions.sum(axis=1).to_numpy() - raw).max() < 1e-9
    # A category the model never saw is missing, as LightGBM reads it.
    unseen = frame.assign(tenure=pd.Categorical([60] * len(frame)))
    unseen_raw = model.predict(unseen, raw_score=True)
    unseen_sums = shap_attributions(booster=model, features=unseen).sum(axis=1).to_numpy()
    assert np.abs(unseen_sums - unseen_raw).max() < 1e-9


def test_category_columns_the_model_does_not_know_are_refused_by_name():
    model, frame = _categorical_model()
    with pytest.raises(ValueError, match="category columns.*tenure"):
        shap_attributions(booster=model, features=frame.assign(x=frame["x"].astype("category")))
    with pytest.raises(ValueError, match="trained with 1 pandas category columns"):
        shap_attributions(booster=model, features=frame.astype({"tenure": int}))
    numeric = lgb.train(PARAMS, lgb.Dataset(frame.astype({"tenure": int}), frame["x"] > 0), 2)
    with pytest.raises(ValueError, match="tenure"):
        shap_attributions(booster=numeric, features=frame)
    with pytest.raises(ValueError, match="category column 'tenure'.*pass the booster"):
        model_input(frame, ["tenure", "x"])


def _split_kinds(model: lgb.Booster, feature: int) -> set[str]:
    kinds = set()

    def walk(node):
        if "split_index" in node:
            if node["split_feature"] == feature:
                kinds.add(node["decision_type"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return kinds


def test_a_household_with_a_category_feature_matches_the_batch(training, features_now, small_city):
    features, labels = training
    # Categories in reverse, so that no code equals its value.
    reversed_codes = pd.CategoricalDtype(sorted(features["agencies_26w"].unique(), reverse=True))
    frame = features.astype({"agencies_26w": reversed_codes})
    model = lgb.train(PARAMS, lgb.Dataset(frame, labels), num_boost_round=20)
    assert _split_kinds(model, model.feature_name().index("agencies_26w")) == {"=="}
    now = features_now.astype({"agencies_26w": reversed_codes})
    batch = explain_households(booster=model, features=now, tables=small_city, as_of=AS_OF)
    expected = 1 / (1 + np.exp(-model.predict(now[model.feature_name()], raw_score=True)))
    assert np.abs(batch["risk"].to_numpy() - expected).max() < 1e-9
    assert batch["reasons"].str.contains("agenc").any()
    for household_id in now.index[now["agencies_26w"].astype(float) > 1][:3]:
        one = explain_household(
            booster=model, household_id=household_id, features=now, records=small_city, as_of=AS_OF
        )
        row = batch.set_index("household_id").loc[household_id]
        assert one["risk"] == pytest.approx(row["risk"], abs=1e-12)
        shown = TEMPLATES.separator.join(reason["text"] for reason in one["reasons"])
        assert (shown or one["no_strong_reason"]) == row["reasons"]


# --- grouping, ordering, shares ----------------------------------------------------------------


def test_windows_of_one_indicator_form_one_group(booster):
    groups = _reasons.feature_groups(booster.feature_name())
    names = np.array(booster.feature_name())
    for window in ("4w", "13w", "26w", "52w"):
        position = np.flatnonzero(names == f"police_callout_count_{window}")
        if position.size:
            assert _reasons.GROUP_KEYS[groups[position[0]]] == "police_callout"
    arrears = [name for name in names if name.startswith("rent_arrears_")]
    assert {_reasons.FEATURE_GROUPS[name] for name in arrears} == {"rent_arrears"}
    absence = [name for name in names if name.startswith("school_absence_")]
    assert {_reasons.FEATURE_GROUPS[name] for name in absence} == {"school_absence"}


def test_every_built_feature_has_a_reviewed_reason_group(features_now):
    groups = _reasons.feature_groups(list(features_now.columns))
    assert len(groups) == features_now.shape[1]


def test_group_contribution_is_the_sum_of_its_features(booster, features_now):
    attributions = shap_attributions(booster=booster, features=features_now)
    by_group = group_attributions(attributions)
    police = [name for name in booster.feature_name() if name.startswith("police_callout_")]
    assert np.allclose(by_group["police_callout"], attributions[police].sum(axis=1))
    assert np.allclose(by_group.sum(axis=1) + attributions[BASE_VALUE], attributions.sum(axis=1))


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
        assert one["needs"] == row["needs"]
        shown = TEMPLATES.separator.join(reason["text"] for reason in one["reasons"])
        assert (shown or one["no_strong_reason"]) == row["reasons"]


def _attributions_for(values: dict[str, float], pushes: dict[str, float]):
    feature_names = list(_reasons.FEATURE_GROUPS)
    frame = {name: np.array([values.get(name, 0.0)]) for name in feature_names}
    attributions = np.array([[pushes.get(name, 0.0) for name in feature_names]])
    return frame, attributions, feature_names


def test_reason_texts_show_the_households_own_records():
    values = {
        "rent_arrears_balance_latest": 1240.4,
        "rent_arrears_balance_13w_ago": 310.0,
        "rent_arrears_change_13w": 930.4,
        "domestic_abuse_incident_count_4w": 1,
        "domestic_abuse_incident_count_13w": 3,
        "domestic_abuse_incident_count_26w": 3,
        "domestic_abuse_incident_count_52w": 4,
        "domestic_abuse_incident_days_since": 9,
        "school_absence_sessions_13w": 38,
        "school_absence_sessions_26w": 40,
        "school_absence_sessions_52w": 41,
        "school_absence_days_since": 20,
        "tenure_temporary": 1,
        "children": 2,
        "adults": 1,
    }
    pushes = {
        "rent_arrears_change_13w": 0.5,
        "rent_arrears_balance_latest": 0.4,
        "domestic_abuse_incident_count_13w": 0.6,
        "domestic_abuse_incident_days_since": 0.1,
        "school_absence_sessions_13w": 0.3,
        "tenure_temporary": 0.25,
        "children": 0.05,
    }
    frame, attributions, names = _attributions_for(values, pushes)
    reasons = _reasons.reasons_for_rows(
        values=frame,
        attributions=attributions,
        feature_names=names,
        max_reasons=5,
        templates=TEMPLATES,
    )
    texts = [str(text) for text in reasons.text[0] if text]
    assert texts == [
        "Rent arrears rose from £310 to £1,240 in the last 13 weeks",
        "3 domestic abuse incidents recorded by police in the last 13 weeks, the latest 9 days ago",
        "School reported 38 sessions missed in the last 13 weeks",
        "Lives in temporary accommodation",
    ]
    assert reasons.contribution[0, 0] == pytest.approx(0.9)
    assert reasons.share[0, :4] == pytest.approx(np.array([0.9, 0.7, 0.3, 0.25]) / 2.2)
    assert _reasons.needs_text(reasons)[0] == "debt;housing;domestic_abuse;school_attendance"


def test_no_strong_factor_is_said_honestly():
    pushes = {"police_callout_count_13w": 0.15, "arrears": 0.0, "children": 0.1}
    frame, attributions, names = _attributions_for(
        {"police_callout_count_13w": 2, "police_callout_days_since": 5, "children": 3}, pushes
    )
    reasons = _reasons.reasons_for_rows(
        values=frame,
        attributions=attributions,
        feature_names=names,
        max_reasons=5,
        templates=TEMPLATES,
    )
    assert reasons.count[0] == 0
    assert _reasons.joined_text(reasons, templates=TEMPLATES)[0] == TEMPLATES.no_strong_reason
    assert _reasons.needs_text(reasons)[0] == ""


def test_an_indicator_without_records_is_never_a_reason():
    # The model may push risk up for "no arrears on record"; that is not something to tell.
    frame, attributions, names = _attributions_for(
        {"rent_arrears_balance_latest": np.nan, "rent_arrears_balance_13w_ago": np.nan},
        {"rent_arrears_balance_latest": 1.5},
    )
    frame["rent_arrears_balance_latest"] = np.array([np.nan])
    frame["rent_arrears_balance_13w_ago"] = np.array([np.nan])
    frame["rent_arrears_days_since"] = np.array([np.nan])
    reasons = _reasons.reasons_for_rows(
        values=frame,
        attributions=attributions,
        feature_names=names,
        max_reasons=5,
        templates=TEMPLATES,
    )
    assert reasons.count[0] == 0
    assert reasons.share.shape == (1, 5)


# --- language ------------------------------------------------------------------------------------


def _blocked(text: str) -> list[str]:
    return _reasons.blocked_words(text, templates=TEMPLATES)


def test_no_protected_characteristic_or_blaming_word_in_templates_or_reasons(explained):
    assert all(not _blocked(text) for text in _reasons._all_texts(TEMPLATES.sections))
    rendered = set(explained["reasons"])
    assert len(rendered) > 50
    assert [text for text in rendered if _blocked(text)] == []
    for term in ("sex", "ethnic", "disab", "birth", "aged"):
        assert not any(term in text.lower() for text in rendered)


def test_the_language_check_catches_what_it_must():
    assert _blocked("A troubled household") == ["troubled"]
    assert _blocked("a Problem Family with arrears") == ["problem family"]
    assert "asian" in _blocked("Asian household")
    assert _blocked("Known to 3 agencies") == []  # "age" inside "agencies" is not the word age


def test_a_template_file_with_a_blaming_word_is_refused(tmp_path):
    text = _reasons.TEMPLATES_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "reason_templates.toml"
    bad.write_text(text.replace("Rents privately", "Chaotic private tenancy"), encoding="utf-8")
    with pytest.raises(ValueError, match="chaotic"):
        _reasons.load_templates(bad)


def test_a_template_naming_a_skill_outside_the_contract_is_refused(tmp_path):
    text = _reasons.TEMPLATES_PATH.read_text(encoding="utf-8")
    bad = tmp_path / "reason_templates.toml"
    bad.write_text(text.replace('skills = ["asb"]', 'skills = ["policing"]'), encoding="utf-8")
    with pytest.raises(ValueError, match="policing"):
        _reasons.load_templates(bad)


def test_protected_characteristics_cannot_be_explained_features():
    for name in ("sex", "ethnicity_white", "birth_year", "age", "disability"):
        with pytest.raises(ValueError, match="protected"):
            _reasons.feature_groups(["adults", name])
    with pytest.raises(ValueError, match="reviewed reason template"):
        _reasons.feature_groups(["adults", "shoe_size"])


# --- needs ---------------------------------------------------------------------------------------


def test_needs_are_exactly_the_skills_of_the_reasons(booster, features_now, small_city, explained):
    records = index_records(small_city)
    for household_id in explained.loc[explained["strong_reasons"] > 0, "household_id"][::40]:
        one = explain_household(
            booster=booster,
            household_id=household_id,
            features=features_now,
            records=records,
            as_of=AS_OF,
        )
        skills = {skill for reason in one["reasons"] for skill in reason["skills"]}
        assert one["needs"] == ";".join(skill for skill in SKILLS if skill in skills)
        for reason in one["reasons"]:
            if reason["group"] in TEMPLATES.sections["events"]:
                expected = TEMPLATES.sections["events"][reason["group"]]["skills"]
                assert reason["skills"] == [s for s in SKILLS if s in expected]
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


def _case_moments(tables: dict, household_id: str, *, after) -> int:
    cases = tables["cases"].loc[tables["cases"]["household_id"] == household_id]
    moments = pd.concat([cases["opened_at"], cases["closed_at"].dropna()])
    moments = moments[moments <= AS_OF]
    return int((moments > after).sum()) if after is not None else len(moments)


def test_timeline_names_no_person_and_uses_plain_words(booster, features_now, small_city):
    household_id = small_city["events"]["household_id"].value_counts().index[0]
    one = explain_household(
        booster=booster,
        household_id=household_id,
        features=features_now,
        records=small_city,
        as_of=AS_OF,
    )
    assert len(one["timeline"]) > 10
    people = small_city["people"]
    person_ids = people.loc[people["household_id"] == household_id, "person_id"]
    assert not any(person in json.dumps(one) for person in person_ids)
    for entry in one["timeline"]:
        assert entry["about"] in (None, "a child", "an adult")
        assert not _blocked(entry["what"])
    arrears = [e["what"] for e in one["timeline"] if e["what"].startswith("Rent arrears")]
    assert all(re.fullmatch(r"Rent arrears balance of £[\d,]+", text) for text in arrears)


def _entries(timelines, household_id: str) -> list[dict]:
    rows = timelines.rows(household_id)
    columns = [timelines.columns[name][rows].tolist() for name in TIMELINE_FIELDS]
    return [
        dict(zip(TIMELINE_FIELDS, values, strict=True)) | {"about": values[4] or None}
        for values in zip(*columns, strict=True)
    ]


def test_every_timeline_made_at_once_is_each_households_own(small_city):
    records = index_records(small_city)
    together = household_timelines(records=records, as_of=AS_OF)
    households = small_city["households"]["household_id"]
    assert len(together.household_ids) == households.nunique()
    # One household at a time from the plain tables (not the index): an independent path.
    for household_id in households.iloc[::10]:
        alone = household_timeline(records=small_city, household_id=household_id, as_of=AS_OF)
        assert _entries(together, household_id) == alone
    some = households.iloc[5:40].tolist()
    subset = household_timelines(records=records, as_of=AS_OF, household_ids=some)
    for household_id in some:
        assert _entries(subset, household_id) == _entries(together, household_id)


def test_a_record_shared_after_the_as_of_date_changes_no_timeline(small_city):
    household_id = small_city["events"]["household_id"].iloc[0]
    late = (
        small_city["events"]
        .iloc[[0]]
        .assign(
            event_id="ELATE",
            occurred_at=AS_OF - pd.Timedelta(days=3),
            known_at=AS_OF + pd.Timedelta(days=1),
        )
    )
    with_late = small_city | {"events": pd.concat([small_city["events"], late], ignore_index=True)}
    before = household_timelines(records=index_records(small_city), as_of=AS_OF)
    after = household_timelines(records=index_records(with_late), as_of=AS_OF)
    assert _entries(after, household_id) == _entries(before, household_id)
    later = household_timelines(
        records=index_records(with_late), as_of=AS_OF + pd.Timedelta(days=1)
    )
    assert len(_entries(later, household_id)) > len(_entries(before, household_id))


def test_agency_names_follow_the_feature_rule(features_now, small_city):
    names = _reasons.recent_agency_names(
        small_city["events"], household_ids=features_now.index, as_of=AS_OF, templates=TEMPLATES
    )
    counted = np.array([len(text.split(", ")) if text else 0 for text in names])
    assert (counted == features_now["agencies_26w"].to_numpy()).all()


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
    from experiments.transparency import RISK_BANDS

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


def test_money_and_time_phrases():
    assert list(_reasons.pounds(np.array([0, 999.6, 1005, 1234567.4, -2500]))) == [
        "0",
        "1,000",
        "1,005",
        "1,234,567",
        "-2,500",
    ]
    assert list(_reasons.days_ago(np.array([0, 1, 9, 20, 100, 800]))) == [
        "today",
        "yesterday",
        "9 days ago",
        "2 weeks ago",
        "3 months ago",
        "2 years ago",
    ]


# --- model card: effect directions and global plots ----------------------------------------------


def test_effect_direction_checks_flag_a_reversed_effect():
    rng = np.random.default_rng(0)
    arrears = rng.gamma(2.0, 400.0, 4000)
    # A (wrong) model that learned "more arrears, less risk".
    labels = rng.random(4000) < 0.5 / (1 + arrears / 300)
    features = pd.DataFrame(
        {"rent_arrears_balance_latest": arrears, "adults": rng.integers(1, 4, 4000)}
    )
    data = lgb.Dataset(features.to_numpy(), labels, feature_name=list(features.columns))
    model = lgb.train(PARAMS, data, num_boost_round=30)
    table = effect_direction_checks(booster=model, features=features).set_index("name")
    assert table.loc["rent_arrears_balance_latest", "status"] == "fail"
    assert table.loc["rent_arrears_balance_latest", "correlation"] < 0
    assert table.loc["rent_arrears", "level"] == "indicator"
    assert table.loc["rent_arrears", "status"] == "fail"
    assert "adults" not in table.index  # not on the reviewed list


def test_effect_direction_checks_on_the_model(booster, features_now):
    table = effect_direction_checks(booster=booster, features=features_now)
    assert set(table["status"]) <= {"pass", "fail", "not tested"}
    tested = table.loc[table["status"] != "not tested"]
    signs = np.where(tested["expected"] == "higher, more risk", 1, -1)
    assert ((signs * tested["correlation"] >= 0) == (tested["status"] == "pass")).all()
    assert {"feature", "indicator"} <= set(tested["level"])
    police = table.set_index("name").loc["police_callout"]
    assert police["measure"] == "police_callout_count_52w"


def test_global_plots_are_written(booster, features_now, tmp_path):
    from experiments.shap_plots import global_explanation_plots

    paths = global_explanation_plots(booster, features_now, tmp_path, max_rows=400, top=2)
    assert len(paths) == 4
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
