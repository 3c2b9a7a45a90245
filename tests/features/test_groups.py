"""Household groups follow the documented rule; model features never depend on protected
characteristics (they are read only to form the groups)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.build import features_as_of, prepare_tables
from features.contract import EVENT_TYPES, table_dtypes
from features.groups import household_groups
from models._estimator import check_no_protected_features
from tests.experiments.fairness.constructed import (
    ATTRIBUTES,
)


def test_household_groups_follow_the_documented_rule():
    households = pd.DataFrame(
        {"household_id": ["H1", "H2", "H3", "H4", "H5"], "locality": ["Hanley"] * 4 + [np.nan]}
    ).astype("str")
    people = pd.DataFrame(
        [
            ("P1", "H1", 1980, "female", "asian", "no"),
            ("P2", "H1", 1975, "male", "white", "yes"),  # oldest adult: the reference person
            ("P3", "H1", 2015, "female", "asian", "no"),
            ("P4", "H3", 2010, "male", "black", "no"),  # only a child is listed
            ("P5", "H4", 1950, np.nan, "mixed", "no"),  # tie on birth year: P5 < P6
            ("P6", "H4", 1950, "female", "other", "unknown"),
            ("P7", "H4", 2030, "male", "white", "yes"),  # not born by the as-of year
            ("P8", "H5", 2000, "female", "white", "no"),
        ],
        columns=["person_id", "household_id", "birth_year", "sex", "ethnicity", "disability"],
    )
    groups = household_groups(households=households, people=people, as_of="2024-06-30")
    assert list(groups.columns) == ["household_id", *ATTRIBUTES]
    by_id = groups.set_index("household_id")
    assert by_id.loc["H1"].tolist() == ["male", "white", "yes", "35-49", "Hanley"]
    assert by_id.loc["H2"].tolist() == ["unknown", "unknown", "unknown", "unknown", "Hanley"]
    assert by_id.loc["H3"].tolist() == ["male", "black", "no", "under 18", "Hanley"]
    assert by_id.loc["H4"].tolist() == ["unknown", "mixed", "unknown", "65+", "Hanley"]
    assert by_id.loc["H5"].tolist() == ["female", "white", "no", "18-24", "unknown"]


def test_people_of_unknown_households_are_refused_naming_row_and_column():
    households = pd.DataFrame({"household_id": ["H1"], "locality": ["Hanley"]})
    people = pd.DataFrame(
        [("P1", "H1", 1980, "male", "white", "no"), ("P2", "H9", 1980, "male", "white", "no")],
        columns=["person_id", "household_id", "birth_year", "sex", "ethnicity", "disability"],
    )
    with pytest.raises(ValueError, match=r"people row 2, column household_id"):
        household_groups(households=households, people=people, as_of="2024-01-01")


def feature_tables(people: pd.DataFrame) -> dict[str, pd.DataFrame]:
    households = pd.DataFrame(
        {
            "household_id": ["H1", "H2"],
            "locality": "Hanley",
            "ward": "Hanley Park",
            "tenure": ["council", "owner"],
            "adults": [2, 1],
            "children": [1, 0],
        }
    ).astype(table_dtypes("households"))
    events = pd.DataFrame(
        {
            "event_id": ["E1", "E2"],
            "household_id": ["H1", "H2"],
            "person_id": ["P1", np.nan],
            "source": [EVENT_TYPES["police_callout"].source, EVENT_TYPES["rent_arrears"].source],
            "event_type": ["police_callout", "rent_arrears"],
            "occurred_at": pd.to_datetime(["2024-03-01", "2024-04-01"]),
            "known_at": pd.to_datetime(["2024-03-05", "2024-04-02"]),
            "value": [np.nan, 420.0],
        }
    ).astype(table_dtypes("events"))
    cases = pd.DataFrame(columns=list(table_dtypes("cases"))).astype(table_dtypes("cases"))
    return {"households": households, "people": people, "events": events, "cases": cases}


def test_model_features_do_not_depend_on_protected_characteristics():
    people = pd.DataFrame(
        [("P1", "H1", 1980, "female", "asian", "no"), ("P2", "H2", 1940, "male", "white", "yes")],
        columns=["person_id", "household_id", "birth_year", "sex", "ethnicity", "disability"],
    ).astype(table_dtypes("people"))
    changed = people.assign(
        sex=["male", "female"],
        ethnicity=["black", "mixed"],
        disability=["yes", "no"],
        birth_year=[1999, 2001],
    )
    as_of = pd.Timestamp("2024-06-30")
    features = features_as_of(prepare_tables(feature_tables(people)), as_of=as_of)
    features_changed = features_as_of(prepare_tables(feature_tables(changed)), as_of=as_of)
    pd.testing.assert_frame_equal(features, features_changed)
    check_no_protected_features(list(features.columns))
