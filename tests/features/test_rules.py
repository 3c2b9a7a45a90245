"""The contract's rules (features._rules): each broken rule is named by file, row and column.

Tests break one cell of the valid extract from conftest and check that the report points at it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.features.extract_problems import (
    Violation,
    event_row,
    only_problem,
    refused,
    set_cell,
)

# (table, change, column, words the message must contain)
RULE_VIOLATIONS: dict[str, Violation] = {
    "duplicate id": (
        "events",
        set_cell("events", 5, "event_id", "E002"),
        "event_id",
        "first used at row 2",
    ),
    "unknown household": (
        "cases",
        set_cell("cases", 2, "household_id", "H999"),
        "household_id",
        "not in households",
    ),
    "unknown person": (
        "events",
        set_cell("events", 0, "person_id", "P99"),
        "person_id",
        "not in people",
    ),
    # P03 lives in H002; event row 0 is about household H001.
    "person in another household": (
        "events",
        set_cell("events", 0, "person_id", "P03"),
        "person_id",
        "H002",
    ),
    "unknown worker": (
        "cases",
        set_cell("cases", 1, "worker_id", "W99"),
        "worker_id",
        "not in workers",
    ),
    "wrong source for event type": (
        "events",
        set_cell("events", lambda t: event_row(t, "arrest"), "source", "nhs"),
        "source",
        "police",
    ),
    "missing value for a valued type": (
        "events",
        set_cell("events", lambda t: event_row(t, "school_absence"), "value", ""),
        "value",
        "needs a value",
    ),
    "value on a non-valued type": (
        "events",
        set_cell("events", lambda t: event_row(t, "asb_report"), "value", "3"),
        "value",
        "must be empty",
    ),
    "known_at before occurred_at": (
        "events",
        set_cell("events", 4, "known_at", "2023-12-31"),
        "known_at",
        "before",
    ),
    "negative adults": (
        "households",
        set_cell("households", 0, "adults", "-1"),
        "adults",
        "0 or more",
    ),
    "negative children": (
        "households",
        set_cell("households", 3, "children", "-2"),
        "children",
        "0 or more",
    ),
    "zero capacity": (
        "workers",
        set_cell("workers", 2, "capacity_points", "0"),
        "capacity_points",
        "1 or more",
    ),
    "zero complexity": (
        "cases",
        set_cell("cases", 3, "complexity_points", "0"),
        "complexity_points",
        "1 or more",
    ),
    # C04 (row 3) is H003's closed case; moving it to H001 while open clashes with C02 (row 2).
    "two open cases for one household": (
        "cases",
        lambda t: (
            set_cell("cases", 3, "household_id", "H001")(t),
            set_cell("cases", 3, "closed_at", "")(t),
        )[0],
        "closed_at",
        "row 2",
    ),
}


@pytest.mark.parametrize("case", list(RULE_VIOLATIONS), ids=list(RULE_VIOLATIONS))
def test_each_violation_is_reported_at_its_file_row_and_column(case, tables, write_extract):
    table, change, column, words = RULE_VIOLATIONS[case]
    row = change(tables)

    problem = only_problem(refused(write_extract(tables)))

    assert (problem.file, problem.row, problem.line, problem.column) == (
        f"{table}.csv",
        row + 1,
        row + 2,
        column,
    )
    assert words in problem.message
    assert str(problem).startswith(f"{table}.csv line {row + 2} (row {row + 1}), column {column}: ")


def test_a_person_of_an_unknown_household_is_named_first(tables, write_extract):
    tables["people"].loc[5, "household_id"] = "H404"

    error = refused(write_extract(tables))

    first = error.problems[0]
    assert (first.file, first.row, first.line, first.column) == ("people.csv", 6, 7, "household_id")
    assert "not in households" in first.message
    # That person's events now disagree with people about the household, which is also true.
    assert all(p.file == "events.csv" and p.column == "person_id" for p in error.problems[1:])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.lists(
        st.sampled_from(["E1", "E2", "E3", "E4", "E10", "E11"] + [""]), min_size=23, max_size=23
    )
)
def test_every_repeated_id_is_named_with_its_first_row(
    tmp_path_factory, make_tables, save_tables, ids
):
    tables = make_tables()
    tables["events"]["event_id"] = ids
    folder = save_tables(tmp_path_factory.mktemp("ids"), tables)
    given_ids = pd.Series(ids)
    present = given_ids != ""
    repeated = present & given_ids.where(present).duplicated()
    first_row = {key: row + 1 for row, key in reversed(list(enumerate(ids)))}

    error = refused(folder)

    repeats = [p for p in error.problems if p.column == "event_id" and "unique" in p.message]
    empties = [p for p in error.problems if p.column == "event_id" and "empty" in p.message]
    assert [p.row for p in repeats] == [row + 1 for row in np.flatnonzero(repeated)]
    for problem in repeats:
        key = ids[problem.row - 1]
        assert problem.message.endswith(f"first used at row {first_row[key]}")
    assert [p.row for p in empties] == [row + 1 for row in np.flatnonzero(~present)]
