"""The public entry (features.validation): a valid extract loads, a broken one gets the report.

The report lists problems in file order, the first hundred of them, with the total.
"""

from __future__ import annotations

import numpy as np

from features.contract import EVENT_TYPES, TABLE_NAMES, table_dtypes
from features.validation import read_extract
from tests.features.extract_problems import Tables, only_problem, refused


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


def test_the_report_lists_the_first_hundred_problems_and_counts_all(make_tables, write_extract):
    tables = _many_events(make_tables(), 600)
    bad_rows = np.arange(100, 350)
    tables["events"].loc[bad_rows, "known_at"] = "not a date"

    error = refused(write_extract(tables))

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

    error = refused(write_extract(tables))

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


def test_an_empty_file_and_a_missing_folder_are_clear_problems(extract_dir, tmp_path):
    (extract_dir / "cases.csv").write_bytes(b"")
    assert "empty" in only_problem(refused(extract_dir)).message

    missing = only_problem(refused(tmp_path / "no-such-folder"))
    assert missing.file.endswith("no-such-folder") and "not a folder" in missing.message
