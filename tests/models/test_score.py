"""The weekly scores table: one row per household, ranks, needs, reasons, current key worker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import features_as_of, prepare_tables
from features.contract import SKILLS
from models import SCORE_COLUMNS, ChampionModel, score_households, write_scores
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
