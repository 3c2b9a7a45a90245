"""The timeline: plain words, no person named, each household's own, nothing shared later."""

from __future__ import annotations

import json
import re

import pandas as pd

from models import _templates
from models.explain import (
    TIMELINE_FIELDS,
    explain_household,
    household_timeline,
    household_timelines,
    index_records,
)
from tests.models.conftest import AS_OF, TEMPLATES


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
        assert not _templates.blocked_words(entry["what"], templates=TEMPLATES)
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
