"""The CSV reader (features._csv): encodings, line endings, ragged rows and the line of each row."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.validation import read_extract
from tests.features.extract_problems import only_problem, refused


def test_invalid_utf8_is_reported_at_its_row(extract_dir):
    path = extract_dir / "households.csv"
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"Hanley Park", b"Hanley P\xe2rk")  # Latin-1, not UTF-8
    path.write_bytes(b"\n".join(lines))

    problem = only_problem(refused(extract_dir))

    assert (problem.file, problem.line, problem.row) == ("households.csv", 4, 3)
    assert "UTF-8" in problem.message


def test_a_row_with_too_many_values_is_named(extract_dir):
    path = extract_dir / "workers.csv"
    lines = path.read_text().split("\n")
    lines[2] = lines[2] + ",surplus"
    path.write_text("\n".join(lines))

    problem = only_problem(refused(extract_dir))

    assert (problem.file, problem.line, problem.row) == ("workers.csv", 3, 2)
    assert "6 values" in problem.message and "5 columns" in problem.message


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

    problem = only_problem(refused(folder))

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


def test_a_stray_quote_inside_a_value_does_not_shift_line_numbers(tables, write_extract):
    folder = write_extract(tables)
    path = folder / "households.csv"
    lines = path.read_text().split("\n")
    lines[2] = lines[2].replace("Burslem Central", 'Burslem 5" Central')  # quote mid-value
    lines[6] = lines[6].replace(",council,", ",councel,")
    path.write_text("\n".join(lines))

    extract_problem = only_problem(refused(folder))

    assert (extract_problem.row, extract_problem.line, extract_problem.column) == (6, 7, "tenure")
