"""The data contract as enforced: each kind of violation is named by its file, row and column.

Tests break one cell of the valid extract from conftest and check that the report points at it. A
row `r` (0-based in the test's DataFrame) is data row r + 1, on line r + 2 of a plain CSV file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contract import EVENT_TYPES, TABLE_NAMES, table_dtypes
from features.validation import ContractError, Problem, read_extract

Tables = dict[str, pd.DataFrame]


def _event_row(tables: Tables, event_type: str) -> int:
    return int(np.flatnonzero(tables["events"]["event_type"] == event_type)[0])


def _set(table: str, row: int | Callable[[Tables], int], column: str, value: str):
    """A change to one cell; `row` may depend on the tables (e.g. the row of one event type)."""

    def change(tables: Tables) -> int:
        place = row(tables) if callable(row) else row
        tables[table].loc[place, column] = value
        return place

    return change


def _refused(folder: Path) -> ContractError:
    with pytest.raises(ContractError) as caught:
        read_extract(folder)
    return caught.value


def _only_problem(error: ContractError) -> Problem:
    assert error.total == 1, error.report()
    return error.problems[0]


# (table, change, column, words the message must contain)
VIOLATIONS = {
    "unparseable int": ("households", _set("households", 2, "adults", "two"), "adults", "whole"),
    "int with a decimal point": (
        "people",
        _set("people", 1, "birth_year", "1980.5"),
        "birth_year",
        "whole",
    ),
    "unparseable float": (
        "events",
        _set("events", lambda t: _event_row(t, "rent_arrears"), "value", "£12.00"),
        "value",
        "not a number",
    ),
    "unparseable date": (
        "events",
        _set("events", 4, "occurred_at", "01/02/2024"),
        "occurred_at",
        "YYYY-MM-DD",
    ),
    "impossible date": (
        "cases",
        _set("cases", 2, "opened_at", "2024-02-30"),
        "opened_at",
        "calendar",
    ),
    "unparseable bool": ("workers", _set("workers", 1, "active", "yes"), "active", "true or false"),
    "empty required value": ("people", _set("people", 3, "sex", ""), "sex", "is empty"),
    "blank required value": (
        "households",
        _set("households", 4, "ward", "   "),
        "ward",
        "is empty",
    ),
    "bad enum": ("households", _set("households", 1, "tenure", "Council"), "tenure", "not one of"),
    "unknown event type": ("events", _set("events", 6, "event_type", "riot"), "event_type", "riot"),
    "bad close reason": (
        "cases",
        _set("cases", 0, "close_reason", "fixed"),
        "close_reason",
        "fixed",
    ),
    "duplicate id": (
        "events",
        _set("events", 5, "event_id", "E002"),
        "event_id",
        "first used at row 2",
    ),
    "unknown household": (
        "cases",
        _set("cases", 2, "household_id", "H999"),
        "household_id",
        "not in households",
    ),
    "unknown person": (
        "events",
        _set("events", 0, "person_id", "P99"),
        "person_id",
        "not in people",
    ),
    # P03 lives in H002; event row 0 is about household H001.
    "person in another household": (
        "events",
        _set("events", 0, "person_id", "P03"),
        "person_id",
        "H002",
    ),
    "unknown worker": (
        "cases",
        _set("cases", 1, "worker_id", "W99"),
        "worker_id",
        "not in workers",
    ),
    "wrong source for event type": (
        "events",
        _set("events", lambda t: _event_row(t, "arrest"), "source", "nhs"),
        "source",
        "police",
    ),
    "missing value for a valued type": (
        "events",
        _set("events", lambda t: _event_row(t, "school_absence"), "value", ""),
        "value",
        "needs a value",
    ),
    "value on a non-valued type": (
        "events",
        _set("events", lambda t: _event_row(t, "asb_report"), "value", "3"),
        "value",
        "must be empty",
    ),
    "known_at before occurred_at": (
        "events",
        _set("events", 4, "known_at", "2023-12-31"),
        "known_at",
        "before",
    ),
    "negative adults": ("households", _set("households", 0, "adults", "-1"), "adults", "0 or more"),
    "negative children": (
        "households",
        _set("households", 3, "children", "-2"),
        "children",
        "0 or more",
    ),
    "zero capacity": (
        "workers",
        _set("workers", 2, "capacity_points", "0"),
        "capacity_points",
        "1 or more",
    ),
    "zero complexity": (
        "cases",
        _set("cases", 3, "complexity_points", "0"),
        "complexity_points",
        "1 or more",
    ),
    "bad skill": ("workers", _set("workers", 0, "skills", "debt;cooking"), "skills", "'cooking'"),
    "empty skill item": (
        "workers",
        _set("workers", 1, "skills", "debt;;youth"),
        "skills",
        "empty item",
    ),
    # C04 (row 3) is H003's closed case; moving it to H001 while open clashes with C02 (row 2).
    "two open cases for one household": (
        "cases",
        lambda t: (
            _set("cases", 3, "household_id", "H001")(t),
            _set("cases", 3, "closed_at", "")(t),
        )[0],
        "closed_at",
        "row 2",
    ),
}


@pytest.mark.parametrize("case", list(VIOLATIONS), ids=list(VIOLATIONS))
def test_each_violation_is_reported_at_its_file_row_and_column(case, tables, write_extract):
    table, change, column, words = VIOLATIONS[case]
    row = change(tables)

    problem = _only_problem(_refused(write_extract(tables)))

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

    error = _refused(write_extract(tables))

    first = error.problems[0]
    assert (first.file, first.row, first.line, first.column) == ("people.csv", 6, 7, "household_id")
    assert "not in households" in first.message
    # That person's events now disagree with people about the household, which is also true.
    assert all(p.file == "events.csv" and p.column == "person_id" for p in error.problems[1:])


def test_the_valid_extract_loads_in_canonical_dtypes(extract_dir):
    extract = read_extract(extract_dir)

    assert list(extract) == list(TABLE_NAMES)
    for name, table in extract.items():
        assert list(table.columns) == list(table_dtypes(name))
        assert {column: str(dtype) for column, dtype in table.dtypes.items()} == table_dtypes(name)
    events, cases, workers = extract["events"], extract["cases"], extract["workers"]
    # Empty optional cells are missing values, never empty strings.
    assert events["person_id"].isna().sum() == (events.index % 3 == 2).sum()
    valued = events["event_type"].map(lambda kind: EVENT_TYPES[kind].has_value)
    assert events["value"].notna().eq(valued).all()
    assert cases["closed_at"].isna().tolist() == [False, True, True, False]
    assert cases["close_reason"].isna().tolist() == [False, True, True, False]
    assert workers["active"].tolist() == [True, True, False]  # "true", "TRUE", "0"


def test_spaces_around_values_are_ignored(tables, write_extract):
    tables["events"].loc[0, "household_id"] = "  H001 "
    tables["workers"].loc[0, "skills"] = " debt ; housing "
    tables["households"].loc[0, "adults"] = " 2"

    extract = read_extract(write_extract(tables))

    assert extract["events"].loc[0, "household_id"] == "H001"
    assert extract["workers"].loc[0, "skills"] == "debt;housing"
    assert extract["households"].loc[0, "adults"] == 2


def test_a_missing_table_is_named_and_its_dependants_are_not_flooded(tables, write_extract):
    folder = write_extract(tables)
    (folder / "workers.csv").unlink()

    problem = _only_problem(_refused(folder))

    assert (problem.file, problem.row, problem.column) == ("workers.csv", None, None)
    assert "missing" in problem.message and "workers.parquet" in problem.message


def test_a_missing_table_with_wrong_case_gets_a_hint(tables, write_extract):
    folder = write_extract(tables)
    (folder / "workers.csv").rename(folder / "Workers.csv")

    problem = _only_problem(_refused(folder))

    assert problem.file == "workers.csv" and "Workers.csv" in problem.message


def test_a_missing_column_is_named(tables, write_extract):
    tables["events"] = tables["events"].drop(columns=["known_at"])

    problem = _only_problem(_refused(write_extract(tables)))

    assert (problem.file, problem.row, problem.column) == ("events.csv", None, "known_at")
    assert "missing" in problem.message


def test_a_column_named_in_the_wrong_case_gets_a_hint(tables, write_extract):
    tables["people"] = tables["people"].rename(columns={"birth_year": "Birth_Year"})

    problem = _only_problem(_refused(write_extract(tables)))

    assert problem.column == "birth_year" and "Birth_Year" in problem.message


def test_a_table_in_both_formats_is_ambiguous(tables, write_extract):
    folder = write_extract(tables)
    tables["households"].to_parquet(folder / "households.parquet", index=False)

    problem = _only_problem(_refused(folder))

    assert problem.file == "households.csv" and problem.row is None
    assert "households.parquet" in problem.message


def test_extra_columns_are_ignored_with_a_logged_warning(tables, write_extract, caplog):
    tables["people"]["first_name"] = "Jo"
    tables["events"]["notes"] = "called twice"

    with caplog.at_level(logging.WARNING, logger="features.validation"):
        extract = read_extract(write_extract(tables))

    assert "first_name" not in extract["people"].columns
    assert "notes" not in extract["events"].columns
    assert any("people.csv" in w and "first_name" in w for w in extract.warnings)
    assert any("events.csv" in w and "notes" in w for w in extract.warnings)
    assert any("first_name" in record.getMessage() for record in caplog.records)
    # A warning names the column, never a value from it.
    assert not any("Jo" in w or "called twice" in w for w in extract.warnings)


def test_the_report_lists_the_first_hundred_problems_and_counts_all(make_tables, write_extract):
    tables = _many_events(make_tables(), 600)
    bad_rows = np.arange(100, 350)
    tables["events"].loc[bad_rows, "known_at"] = "not a date"

    error = _refused(write_extract(tables))

    assert error.total == 250
    assert len(error.problems) == 100
    assert [p.row for p in error.problems] == (bad_rows[:100] + 1).tolist()
    assert {p.column for p in error.problems} == {"known_at"}
    report = error.report()
    assert "250 problems" in report and "150 more" in report
    assert "events.csv line 102 (row 101), column known_at" in report


def test_problems_are_listed_in_file_order_across_tables(tables, write_extract):
    tables["cases"].loc[0, "complexity_points"] = "0"
    tables["households"].loc[5, "adults"] = "-3"
    tables["households"].loc[1, "tenure"] = "castle"

    error = _refused(write_extract(tables))

    assert [(p.file, p.row) for p in error.problems] == [
        ("households.csv", 2),
        ("households.csv", 6),
        ("cases.csv", 1),
    ]


def _many_events(tables: Tables, count: int) -> Tables:
    """The tables with `count` well-formed events instead, for tests that need many rows."""
    template = tables["events"]
    events = template.iloc[np.arange(count) % len(template)].reset_index(drop=True)
    events["event_id"] = [f"E{number:05d}" for number in range(count)]
    tables["events"] = events
    return tables


def test_parquet_input_loads_exactly_like_csv(extract_dir, tmp_path):
    from_csv = read_extract(extract_dir)
    parquet_folder = tmp_path / "as-parquet"
    parquet_folder.mkdir()
    for name, table in from_csv.items():
        table.to_parquet(parquet_folder / f"{name}.parquet", index=False)

    from_parquet = read_extract(parquet_folder)

    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(from_parquet[name], from_csv[name])


def test_parquet_with_text_columns_follows_the_csv_rules(tables, write_extract):
    tables["households"].loc[2, "adults"] = "two"

    problem = _only_problem(_refused(write_extract(tables, fmt="parquet")))

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

    error = _refused(folder)

    adults = [p for p in error.problems if p.column == "adults"]
    assert [p.row for p in adults] == list(range(1, 7))
    assert all("whole number" in p.message for p in adults)
    active = [p for p in error.problems if p.column == "active"]
    assert len(active) == 1 and active[0].row is None and "int64" in active[0].message


def test_invalid_utf8_is_reported_at_its_row(extract_dir):
    path = extract_dir / "households.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"Hanley Park", b"Hanley P\xe2rk")  # Latin-1, not UTF-8
    path.write_bytes(b"\n".join(lines))

    problem = _only_problem(_refused(extract_dir))

    assert (problem.file, problem.line, problem.row) == ("households.csv", 4, 3)
    assert "UTF-8" in problem.message


def test_a_row_with_too_many_values_is_named(extract_dir):
    path = extract_dir / "workers.csv"
    lines = path.read_text().split("\n")
    lines[2] = lines[2] + ",surplus"
    path.write_text("\n".join(lines))

    problem = _only_problem(_refused(extract_dir))

    assert (problem.file, problem.line, problem.row) == ("workers.csv", 3, 2)
    assert "6 values" in problem.message and "5 columns" in problem.message


def test_an_empty_file_and_a_missing_folder_are_clear_problems(extract_dir, tmp_path):
    (extract_dir / "cases.csv").write_bytes(b"")
    assert "empty" in _only_problem(_refused(extract_dir)).message

    missing = _only_problem(_refused(tmp_path / "no-such-folder"))
    assert missing.file.endswith("no-such-folder") and "not a folder" in missing.message


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    bad_row=st.integers(min_value=0, max_value=22),
    multiline_rows=st.sets(st.integers(min_value=0, max_value=22), max_size=6),
    blank_after=st.sets(st.integers(min_value=0, max_value=22), max_size=4),
    crlf=st.booleans(),
)
def test_line_numbers_follow_quoted_line_breaks_and_blank_lines(
    tmp_path_factory, make_tables, save_tables, bad_row, multiline_rows, blank_after, crlf
):
    """Count lines while writing the file, then check the report names the same line."""
    tables = make_tables()
    folder = save_tables(tmp_path_factory.mktemp("lines"), tables)
    events = tables["events"].assign(note="")
    events.loc[sorted(multiline_rows), "note"] = "first line\nsecond line"
    events.loc[bad_row, "known_at"] = "someday"
    newline = "\r\n" if crlf else "\n"
    text, line, start_line = "", 1, {}
    text += ",".join(events.columns) + newline
    for row, record in enumerate(events.itertuples(index=False)):
        line += 1
        start_line[row] = line
        cells = [f'"{cell}"' if "\n" in cell else cell for cell in record]
        rendered = ",".join(cells).replace("\n", newline)
        text += rendered + newline
        line += rendered.count(newline)
        if row in blank_after:
            text += newline
            line += 1
    (folder / "events.csv").write_bytes(text.encode("utf-8"))

    problem = _only_problem(_refused(folder))

    assert (problem.row, problem.line, problem.column) == (
        bad_row + 1,
        start_line[bad_row],
        "known_at",
    )


def test_a_byte_order_mark_and_windows_line_endings_are_accepted(extract_dir):
    path = extract_dir / "households.csv"
    text = path.read_text(encoding="utf-8")
    path.write_bytes("\ufeff".encode() + text.replace("\n", "\r\n").encode("utf-8"))

    households = read_extract(extract_dir)["households"]

    assert households["household_id"].iloc[0] == "H001"
    assert households["children"].iloc[-1] == 2


def test_the_data_team_documentation_covers_every_column_and_event_type():
    document = (Path(__file__).parents[2] / "docs" / "data-contract.md").read_text()

    for name in TABLE_NAMES:
        assert f"### {name}" in document
        for column in table_dtypes(name):
            assert f"`{column}`" in document, column
    for event_type, kind in EVENT_TYPES.items():
        crisis = "yes" if kind.crisis else "no"
        row = next(line for line in document.splitlines() if line.startswith(f"| `{event_type}` |"))
        assert f"| {kind.source} |" in row and row.rstrip().endswith(f"| {crisis} |"), row


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

    error = _refused(folder)

    repeats = [p for p in error.problems if p.column == "event_id" and "unique" in p.message]
    empties = [p for p in error.problems if p.column == "event_id" and "empty" in p.message]
    assert [p.row for p in repeats] == [row + 1 for row in np.flatnonzero(repeated)]
    for problem in repeats:
        key = ids[problem.row - 1]
        assert problem.message.endswith(f"first used at row {first_row[key]}")
    assert [p.row for p in empties] == [row + 1 for row in np.flatnonzero(~present)]


def test_a_stray_quote_inside_a_value_does_not_shift_line_numbers(tables, write_extract):
    folder = write_extract(tables)
    path = folder / "households.csv"
    lines = path.read_text().split("\n")
    lines[2] = lines[2].replace("Burslem Central", 'Burslem 5" Central')  # quote mid-value
    lines[6] = lines[6].replace(",council,", ",councel,")
    path.write_text("\n".join(lines))

    extract_problem = _only_problem(_refused(folder))

    assert (extract_problem.row, extract_problem.line, extract_problem.column) == (6, 7, "tenure")
