"""Finding each table's file and checking its header (features._sources), and reading Parquet."""

from __future__ import annotations

import logging

import pandas as pd

from features.contract import TABLE_NAMES
from features.validation import read_extract
from tests.features.extract_problems import only_problem, refused


def test_a_missing_table_is_named_and_its_dependants_are_not_flooded(tables, write_extract):
    folder = write_extract(tables)
    (folder / "workers.csv").unlink()

    problem = only_problem(refused(folder))

    assert (problem.file, problem.row, problem.column) == ("workers.csv", None, None)
    assert "missing" in problem.message and "workers.parquet" in problem.message


def test_a_missing_table_with_wrong_case_gets_a_hint(tables, write_extract):
    folder = write_extract(tables)
    (folder / "workers.csv").rename(folder / "Workers.csv")

    problem = only_problem(refused(folder))

    assert problem.file == "workers.csv" and "Workers.csv" in problem.message


def test_a_missing_column_is_named(tables, write_extract):
    tables["events"] = tables["events"].drop(columns=["known_at"])

    problem = only_problem(refused(write_extract(tables)))

    assert (problem.file, problem.row, problem.column) == ("events.csv", None, "known_at")
    assert "missing" in problem.message


def test_a_column_named_in_the_wrong_case_gets_a_hint(tables, write_extract):
    tables["people"] = tables["people"].rename(columns={"birth_year": "Birth_Year"})

    problem = only_problem(refused(write_extract(tables)))

    assert problem.column == "birth_year" and "Birth_Year" in problem.message


def test_a_table_in_both_formats_is_ambiguous(tables, write_extract):
    folder = write_extract(tables)
    tables["households"].to_parquet(folder / "households.parquet", index=False)

    problem = only_problem(refused(folder))

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


def test_parquet_input_loads_exactly_like_csv(extract_dir, tmp_path):
    from_csv = read_extract(extract_dir)
    parquet_folder = tmp_path / "as-parquet"
    parquet_folder.mkdir()
    for name, table in from_csv.items():
        table.to_parquet(parquet_folder / f"{name}.parquet", index=False)

    from_parquet = read_extract(parquet_folder)

    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(from_parquet[name], from_csv[name])
