"""The weekly scores table: one row per household, ranks, needs, reasons, current key worker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import features_as_of, prepare_tables
from features.contract import SKILLS
from features.needs import NeedsSettings, household_needs, need_label
from models import SCORE_COLUMNS, ChampionModel, read_scores, score_households, write_scores
from models._score import open_case_workers


@pytest.fixture(scope="module")
def scores(small_city, trained_outcome, city_end) -> pd.DataFrame:
    champion = ChampionModel(
        estimator=trained_outcome.model, name="test", version="7", run_id="r", horizon_weeks=26
    )
    return score_households(tables=small_city, as_of=city_end, model=champion)


def test_one_row_per_household_with_the_contract_columns(scores, small_city):
    assert tuple(scores.columns) == SCORE_COLUMNS
    assert sorted(scores["household_id"]) == sorted(small_city["households"]["household_id"])
    assert scores["household_id"].is_unique
    assert set(scores["model_version"]) == {"7"}
    assert scores["risk"].between(0, 1).all()


def test_rank_one_is_the_highest_risk_and_ties_go_by_household_id(
    scores, small_city, trained_outcome, city_end
):
    assert list(scores["rank"]) == list(range(1, len(scores) + 1))
    assert (np.diff(scores["risk"].to_numpy()) <= 0).all()
    features = features_as_of(prepare_tables(small_city), as_of=city_end)
    raw = pd.Series(trained_outcome.model.predict_raw(features), index=features.index)
    ordered = raw.reindex(scores["household_id"]).to_numpy()
    assert (np.diff(ordered) <= 0).all()
    same_score = pd.DataFrame({"raw": ordered, "household_id": scores["household_id"].to_numpy()})
    for _, tied in same_score.groupby("raw"):
        assert list(tied["household_id"]) == sorted(tied["household_id"])


def test_needs_are_contract_skills_and_reasons_are_plain_text(scores):
    needs = {skill for text in scores["needs"].dropna() for skill in text.split(";") if skill}
    assert needs and needs <= set(SKILLS)
    top = scores.head(50)
    assert top["reasons"].str.len().gt(0).all()
    assert not top["reasons"].str.contains("_count_|_days_since|nan").any()


def test_open_case_worker_is_the_worker_of_the_case_open_on_the_day(scores, small_city, city_end):
    expected = open_case_workers(small_city["cases"], as_of=city_end)
    shown = scores.set_index("household_id")["open_case_worker"]
    assert shown.dropna().to_dict() == expected.to_dict()
    assert shown.isna().sum() == len(scores) - len(expected)


def test_written_scores_read_back_with_the_same_rows(scores, tmp_path):
    path = write_scores(scores, tmp_path / "scores.csv")
    read = pd.read_csv(path, dtype={"household_id": "str", "model_version": "str"})
    assert list(read.columns) == list(SCORE_COLUMNS)
    assert list(read["household_id"]) == list(scores["household_id"])
    np.testing.assert_allclose(read["risk"], scores["risk"], atol=5e-7)
    assert not list(tmp_path.glob(".*tmp"))


# --- needs from the records ----------------------------------------------------------------------


def test_needs_come_from_the_records_not_only_from_the_reasons(scores, small_city, city_end):
    """Every household with a domestic abuse incident known and within 52 weeks is scored with
    the domestic_abuse need (and its evidence), whatever its reasons say."""
    events = small_city["events"]
    as_of = pd.Timestamp(city_end)
    recent = events.loc[
        (events["event_type"] == "domestic_abuse_incident")
        & (events["known_at"] <= as_of)
        & (events["occurred_at"] > as_of - pd.Timedelta(weeks=52))
    ]
    by_household = scores.set_index("household_id")
    with_incident = by_household.loc[by_household.index.isin(recent["household_id"])]
    assert len(with_incident) > 20
    assert with_incident["needs"].str.split(";").map(lambda s: "domestic_abuse" in s).all()
    assert with_incident["needs_evidence"].str.contains("domestic abuse: ").all()
    without = by_household.loc[~by_household.index.isin(recent["household_id"])]
    assert not without["needs"].fillna("").str.contains("domestic_abuse").any()
    expected = household_needs(events, household_ids=by_household.index, as_of=as_of)
    assert by_household["needs"].fillna("").tolist() == expected["needs"].tolist()
    assert by_household["needs_evidence"].fillna("").tolist() == expected["needs_evidence"].tolist()


def test_each_need_has_one_evidence_sentence_in_needs_order(scores):
    for needs, evidence in zip(scores["needs"], scores["needs_evidence"], strict=True):
        named = needs.split(";") if needs else []
        sentences = evidence.split(" | ") if evidence else []
        assert [sentence.split(":")[0] for sentence in sentences] == [
            need_label(need) for need in named
        ]


def test_the_needs_settings_change_the_needs(small_city, trained_outcome, city_end):
    champion = ChampionModel(
        estimator=trained_outcome.model, name="test", version="7", run_id="r", horizon_weeks=26
    )
    short = NeedsSettings(lookback_weeks=dict.fromkeys(SKILLS, 1), arrears_threshold=100_000)
    scored = score_households(
        tables=small_city, as_of=city_end, model=champion, needs_settings=short
    ).set_index("household_id")
    expected = household_needs(
        small_city["events"], household_ids=scored.index, as_of=city_end, settings=short
    )
    assert scored["needs"].tolist() == expected["needs"].tolist()
    assert (scored["needs"] != "").sum() < 0.5 * (expected.shape[0])
    assert not scored["needs"].str.contains("debt").any()


def test_scores_written_before_needs_had_evidence_read_with_none(scores, tmp_path):
    path = write_scores(scores, tmp_path / "scores.csv")
    read = read_scores(path)
    assert read["needs_evidence"].fillna("").tolist() == scores["needs_evidence"].tolist()
    older = tmp_path / "older.csv"
    pd.read_csv(path).drop(columns=["needs_evidence"]).to_csv(older, index=False)
    read_older = read_scores(older)
    assert set(SCORE_COLUMNS) <= set(read_older.columns)
    assert read_older["needs_evidence"].isna().all()
