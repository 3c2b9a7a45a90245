"""Reading a CSV table: its header, every contract column as text, and where each row starts.

Arrow parses the file; the physical line of a row (for the report) is worked out only when a
problem needs it, from byte positions, or with the csv module when quotes make that unreliable.
"""

from __future__ import annotations

import contextlib
import csv
import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from features._findings import Entry, Findings
from features._sources import Layout, RawTable, Source, check_header

_UTF8_PIECE = 1 << 20


def _csv_header(source: Source, findings: Findings) -> list[str] | None:
    """Column names from the first line, trimmed; an empty or undecodable header is a problem."""
    if not source.data:
        findings.note(source.table, "the file is empty: it needs at least the header row")
        return None
    end = source.data.find(b"\n")
    first_line = source.data[: end if end >= 0 else None].rstrip(b"\r")
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        findings.note_lines(source.table, [(None, 1)], "the header is not valid UTF-8")
        text = first_line.decode("utf-8-sig", errors="replace")
    names = [name.strip() for name in next(csv.reader([text]), [])]
    # Unnamed columns (often a trailing comma) get a placeholder so that they can be ignored.
    names = [name or f"(unnamed column {place})" for place, name in enumerate(names, 1)]
    if not names or all(name.startswith("(unnamed") for name in names):
        findings.note(source.table, "the first line must be the header row of column names")
        return None
    return names


def read_csv(source: Source, findings: Findings) -> RawTable | None:
    names = _csv_header(source, findings)
    present = None if names is None else check_header(source, names, findings)
    if present is None:
        return None
    data, bad_lines = source.data, []
    try:
        table, invalid_rows = _parse_csv(data, names=names, present=present)
    except pa.ArrowInvalid as error:
        if "UTF8" not in str(error):
            return _unreadable_csv(source, findings)
        data, bad_lines = _repair_utf8(source.data)
        try:
            table, invalid_rows = _parse_csv(data, names=names, present=present)
        except pa.ArrowInvalid:
            return _unreadable_csv(source, findings)
    source.records = table.num_rows + invalid_rows + 1
    if bad_lines:
        _note_invalid_utf8(source, bad_lines, findings)
    if invalid_rows:
        _note_ragged_rows(source, len(names), invalid_rows, findings)
        return None
    columns = {name: table.column(name) for name in present}
    return RawTable(source, columns, table.num_rows)


def _unreadable_csv(source: Source, findings: Findings) -> None:
    # Arrow's own message can quote row contents, so it is not passed on.
    findings.note(source.table, "could not be read as CSV (check the quotes and commas)")


def _parse_csv(data: bytes, *, names: list[str], present: list[str]) -> tuple[pa.Table, int]:
    """Every contract column as text; rows with the wrong number of values are only counted."""
    invalid_rows = 0

    def count_invalid(_row: object) -> str:
        nonlocal invalid_rows
        invalid_rows += 1
        return "skip"

    table = pa_csv.read_csv(
        pa.py_buffer(data),
        read_options=pa_csv.ReadOptions(column_names=names, skip_rows=1),
        parse_options=pa_csv.ParseOptions(
            # Quoted line breaks are legal CSV but slow down parsing, so only allow them if needed.
            newlines_in_values=b'"' in data,
            invalid_row_handler=count_invalid,
        ),
        convert_options=pa_csv.ConvertOptions(
            include_columns=present,
            column_types={name: pa.string() for name in present},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )
    return table, invalid_rows


def layout_of(source: Source) -> Layout:
    if source.layout is None:
        layout = None
        if source.data.count(b"\r") == source.data.count(b"\r\n"):
            layout = _vector_layout(source.data)
        # The vectorised reading assumes quotes only ever open and close whole values; if it sees
        # a different number of records than the parser did, the csv module reads the file.
        if layout is None or layout.lines.size != source.records:
            layout = _scanned_layout(source.data)
        source.layout = layout
    return source.layout


def _vector_layout(data: bytes) -> Layout:
    """The layout from byte positions alone: a line break or comma separates only outside quotes,
    that is after an even number of quote characters (an escaped quote "" counts twice)."""
    buffer = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(buffer == ord('"'))
    newlines = np.flatnonzero(buffer == ord("\n"))
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends, [buffer.size]])
    carriage = (stops > starts) & (buffer[np.maximum(stops - 1, 0)] == ord("\r"))
    records = stops - starts - carriage > 0
    commas = np.flatnonzero(buffer == ord(","))
    commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
    separators = np.bincount(np.searchsorted(ends, commas), minlength=starts.size)
    lines = np.searchsorted(newlines, starts[records]) + 1
    return Layout(lines, separators[records] + 1)


def _scanned_layout(data: bytes) -> Layout:
    """The layout as the csv module reads it: slow, exact, and only used to locate problems.

    It stops early at a record the csv module cannot read (a value over its size limit), which
    leaves later rows without a line number rather than failing.
    """
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace"), newline=""))
    lines, values, last_line = [], [], 0
    with contextlib.suppress(csv.Error):
        for record in reader:
            if record:
                lines.append(last_line + 1)
                values.append(len(record))
            last_line = reader.line_num
    return Layout(np.asarray(lines, dtype=np.int64), np.asarray(values, dtype=np.int64))


def _repair_utf8(data: bytes) -> tuple[bytes, list[int]]:
    """The data with bytes that are not UTF-8 replaced by U+FFFD, and the lines that held them."""
    view, pieces, bad_lines, line, start = memoryview(data), [], [], 1, 0
    while start < len(data):
        # Pieces end just after a line break, so no character is ever cut in two.
        stop = data.find(b"\n", start + _UTF8_PIECE)
        stop = len(data) if stop < 0 else stop + 1
        piece = bytes(view[start:stop])
        try:
            piece.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines += [line + n for n, text in enumerate(piece.split(b"\n")) if _not_utf8(text)]
            piece = piece.decode("utf-8", errors="replace").encode("utf-8")
        pieces.append(piece)
        line += piece.count(b"\n")
        start = stop
    return b"".join(pieces), bad_lines


def _not_utf8(text: bytes) -> bool:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _note_invalid_utf8(source: Source, bad_lines: list[int], findings: Findings) -> None:
    """One problem per line holding bytes that are not UTF-8, with the row that line is in."""
    record_lines = layout_of(source).lines
    records = np.searchsorted(record_lines, bad_lines, side="right") - 1
    located = [
        (int(record) - 1 if record > 0 else None, line)
        for record, line in zip(records, bad_lines, strict=True)
    ]
    findings.note_lines(
        source.table,
        located,
        "holds bytes that are not valid UTF-8 "
        "(save the file as UTF-8, not in a Windows or Latin code page)",
    )


def _note_ragged_rows(source: Source, n_names: int, invalid_rows: int, findings: Findings) -> None:
    """Rows whose number of values differs from the header's; their table is not checked further."""
    layout = layout_of(source)
    ragged = np.flatnonzero(layout.values != n_names)
    ragged = ragged[ragged > 0]
    if ragged.size == 0:
        findings.note(source.table, f"{invalid_rows} rows do not have as many values as the header")
        return
    findings.total += int(ragged.size)
    for record in ragged[: findings.limit].tolist():
        message = (
            f"has {layout.values[record]} values but the header has {n_names} columns (check for "
            "a stray comma or an unclosed quote); the file's values are checked once its rows are "
            "whole"
        )
        findings.entries.append(
            Entry(source.table, record - 1, None, message, int(layout.lines[record]))
        )
