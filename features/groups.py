"""Household groups by protected characteristic and locality: the one reader of `people`'s
protected characteristics (sex, ethnicity, disability, birth year).

The groups describe households for the bias audit (experiments.fairness) and for reweighting in
training (given to models as an input), never as model features.

Household groups (people are individuals, the score is per household):
- the household reference person is the oldest adult (18 or over in the as-of year; birth year
  only is shared, so age is as-of year minus birth year); when no adult is listed, the oldest
  member; ties by person_id;
- sex, ethnicity and age band are the reference person's; "unknown" when the household has no
  listed members or the value is missing;
- disability is "yes" when any member is recorded disabled, "no" when every member is recorded
  not disabled, otherwise "unknown".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

AUDIT_ATTRIBUTES: tuple[str, ...] = ("sex", "ethnicity", "disability", "age_band", "locality")
UNKNOWN = "unknown"
ADULT_AGE = 18
# Lower edges of the reference person's age bands; "under 18" only when no adult is listed.
AGE_BAND_EDGES: tuple[int, ...] = (0, 18, 25, 35, 50, 65)
AGE_BAND_NAMES: tuple[str, ...] = ("under 18", "18-24", "25-34", "35-49", "50-64", "65+")
_PEOPLE_COLUMNS: tuple[str, ...] = (
    "person_id",
    "household_id",
    "birth_year",
    "sex",
    "ethnicity",
    "disability",
)


def household_groups(*, households: pd.DataFrame, people: pd.DataFrame, as_of) -> pd.DataFrame:
    """One row per household: household_id, sex, ethnicity, disability, age_band, locality.

    Sorted by household_id; every value a string, "unknown" where the extract does not say.
    """
    require_columns(households, table="households", columns=("household_id", "locality"))
    require_columns(people, table="people", columns=_PEOPLE_COLUMNS)
    _check_people_households(people, households=households)
    members = _members_as_of(people, as_of_year=pd.Timestamp(as_of).year)
    groups = (
        households[["household_id", "locality"]]
        .merge(_reference_people(members), on="household_id", how="left", validate="1:1")
        .merge(_household_disability(members), on="household_id", how="left", validate="1:1")
    )
    columns = ["household_id", "sex", "ethnicity", "disability", "age_band", "locality"]
    return (
        groups[columns].fillna(UNKNOWN).astype("str").sort_values("household_id", ignore_index=True)
    )


def _members_as_of(people: pd.DataFrame, *, as_of_year: int) -> pd.DataFrame:
    """Members born by the as-of year, with their age in that year."""
    age = as_of_year - people["birth_year"].astype("int64")
    return people.loc[age >= 0, list(_PEOPLE_COLUMNS)].assign(age=age[age >= 0])


def _reference_people(members: pd.DataFrame) -> pd.DataFrame:
    """The oldest adult of each household (the oldest member when no adult is listed)."""
    ordered = members.assign(is_child=members["age"] < ADULT_AGE).sort_values(
        ["household_id", "is_child", "birth_year", "person_id"], kind="stable"
    )
    reference = ordered.drop_duplicates("household_id", keep="first")
    age_band = pd.cut(
        reference["age"],
        bins=[*AGE_BAND_EDGES, np.inf],
        labels=list(AGE_BAND_NAMES),
        right=False,
    ).astype("str")
    return reference[["household_id", "sex", "ethnicity"]].assign(age_band=age_band.to_numpy())


def _household_disability(members: pd.DataFrame) -> pd.DataFrame:
    """Household disability: "yes" if any member is, "no" if every member is recorded not."""
    recorded = members["disability"].fillna(UNKNOWN)
    flags = pd.DataFrame(
        {
            "household_id": members["household_id"],
            "any_yes": recorded == "yes",
            "all_no": recorded == "no",
        }
    )
    summary = flags.groupby("household_id", sort=True).agg(
        any_yes=("any_yes", "any"), all_no=("all_no", "all")
    )
    disability = np.select([summary["any_yes"], summary["all_no"]], ["yes", "no"], default=UNKNOWN)
    return pd.DataFrame({"household_id": summary.index, "disability": disability})


def _check_people_households(people: pd.DataFrame, *, households: pd.DataFrame) -> None:
    orphan = ~people["household_id"].isin(households["household_id"])
    if orphan.any():
        row = int(np.flatnonzero(orphan.to_numpy())[0]) + 1
        raise ValueError(
            f"people row {row}, column household_id: household "
            f"{people['household_id'].iloc[row - 1]!r} is not in households "
            f"({int(orphan.sum())} such rows)"
        )


def require_columns(frame: pd.DataFrame, *, table: str, columns: Sequence[str]) -> None:
    """Refuse a table that lacks any of `columns`, naming them."""
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {', '.join(missing)}")


def groups_as_of_tables(
    tables: Mapping[str, pd.DataFrame],
) -> Callable[[object], pd.DataFrame] | None:
    """`as_of -> household_groups(...)` for the tables' households (None without people)."""
    if "people" not in tables:
        return None
    households, people = tables["households"], tables["people"]

    def groups_as_of(as_of) -> pd.DataFrame:
        return household_groups(households=households, people=people, as_of=as_of)

    return groups_as_of
