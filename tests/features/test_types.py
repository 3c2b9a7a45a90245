"""Typing each column (features._types): a malformed or empty cell is named by file, row and column.

Tests break one cell of the valid extract from conftest and check that the report points at it.
"""

from __future__ import annotations

import pytest

from features.validation import read_extract
from tests.features.extract_problems import (
    Violation,
    event_row,
    only_problem,
    refused,
    set_cell,
)

# (table, change, column, words the message must contain)
TYPE_VIOLATIONS: dict[str, Violation] = {
    "unparseable int": (
        "households",
        set_cell("households", 2, "adults", "two"),
        "adults",
        "whole",
    ),
    "int with a decimal point": (
        "people",
        set_cell("people", 1, "birth_year", "1980.5"),
        "birth_year",
        "whole",
    ),
    "unparseable float": (
        "events",
        set_cell("events", lambda t: event_row(t, "rent_arrears"), "value", "£12.00"),
        "value",
        "not a number",
    ),
    "unparseable date": (
        "events",
        set_cell("events", 4, "occurred_at", "01/02/2024"),
        "occurred_at",
        "YYYY-MM-DD",
    ),
    "impossible date": (
        "cases",
        set_cell("cases", 2, "opened_at", "2024-02-30"),
        "opened_at",
        "calendar",
    ),
    "unparseable bool": (
        "workers",
        set_cell("workers", 1, "active", "yes"),
        "active",
        "true or false",
    ),
    "empty required value": ("people", set_cell("people", 3, "sex", ""), "sex", "is empty"),
    "blank required value": (
        "households",
        set_cell("households", 4, "ward", "   "),
        "ward",
        "is empty",
    ),
    "bad enum": (
        "households",
        set_cell("households", 1, "tenure", "Council"),
        "tenure",
        "not one of",
    ),
    "unknown event type": (
        "events",
        set_cell("events", 6, "event_type", "riot"),
        "event_type",
        "riot",
    ),
    "bad close reason": (
        "cases",
        set_cell("cases", 0, "close_reason", "fixed"),
        "close_reason",
        "fixed",
    ),
    "bad skill": (
        "workers",
        set_cell("workers", 0, "skills", "debt;cooking"),
        "skills",
        "'cooking'",
    ),
    "empty skill item": (
        "workers",
        set_cell("workers", 1, "skills", "debt;;youth"),
        "skills",
        "empty item",
    ),
}


@pytest.mark.parametrize("case", list(TYPE_VIOLATIONS), ids=list(TYPE_VIOLATIONS))
def test_each_violation_is_reported_at_its_file_row_and_column(case, tables, write_extract):
    table, change, column, words = TYPE_VIOLATIONS[case]
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


def test_spaces_around_values_are_ignored(tables, write_extract):
    tables["events"].loc[0, "household_id"] = "  H001 "
    tables["workers"].loc[0, "skills"] = " debt ; housing "
    tables["households"].loc[0, "adults"] = " 2"

    extract = read_extract(write_extract(tables))

    assert extract["events"].loc[0, "household_id"] == "H001"
    assert extract["workers"].loc[0, "skills"] == "debt;housing"
    assert extract["households"].loc[0, "adults"] == 2


def test_parquet_with_text_columns_follows_the_csv_rules(tables, write_extract):
    tables["households"].loc[2, "adults"] = "two"

    problem = only_problem(refused(write_extract(tables, fmt="parquet")))

    assert (problem.file, problem.row, problem.line, problem.column) == (
        "households.parquet",
        3,
        None,
        "adults",
    )
    assert str(problem).startswith("households.parquet row 3, column adults: ")


def test_parquet_values_of_the_wrong_type_are_named(extract_dir, tmp_path):
    extract = read_extract(extract_dir)
    folder = tmp_path / "typed"
    folder.mkdir()
    for name, table in extract.items():
        table.to_parquet(folder / f"{name}.parquet", index=False)
    households = extract["households"].assign(adults=extract["households"]["adults"] + 0.5)
    households.to_parquet(folder / "households.parquet", index=False)
    workers = extract["workers"].assign(active=extract["workers"]["active"].astype("int64"))
    workers.to_parquet(folder / "workers.parquet", index=False)

    error = refused(folder)

    adults = [p for p in error.problems if p.column == "adults"]
    assert [p.row for p in adults] == list(range(1, 7))
    assert all("whole number" in p.message for p in adults)
    active = [p for p in error.problems if p.column == "active"]
    assert len(active) == 1 and active[0].row is None and "int64" in active[0].message
