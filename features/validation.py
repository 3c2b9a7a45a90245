"""Check a partner extract folder against the data contract and load it in canonical form.

The whole folder is checked before anything is loaded. Every problem is reported with the file, the
row and the column it is in, and a folder with any problem is refused as a whole (`ContractError`).
Checks run per column and per rule on whole arrays (Arrow compute kernels and numpy masks),
because a city sends millions of event rows; only the handful of rows that make it into the report
are ever looked at one by one.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from features.contract import (
    EVENT_TYPES,
    TABLE_NAMES,
    TABLES,
    VALUED_EVENT_TYPES,
    Column,
    column_names,
    table_dtypes,
)

logger = logging.getLogger(__name__)

_Arrow = pa.Array | pa.ChunkedArray

MAX_REPORTED_PROBLEMS = 100
FORMATS: tuple[str, ...] = ("csv", "parquet")

_INT_PATTERN = r"^[+-]?\d{1,18}$"
_FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# datetime64[ns], the canonical date dtype, spans 1677-09-21 to 2262-04-11.
_FIRST_YEAR, _LAST_YEAR = 1678, 2261
_TRUE_WORDS, _FALSE_WORDS = ("true", "1"), ("false", "0")
_QUOTED_LENGTH = 40
_UTF8_PIECE = 1 << 20
_LONG_ENUM = 10
_ROW_MEANING = (
    "Line numbers count the lines of the file as a text editor shows them (line 1 is the header); "
    "row numbers count data rows (row 1 is the first row under the header)."
)


@dataclass(frozen=True)
class Problem:
    """One way in which an extract breaks the contract, located as precisely as possible.

    `row` counts data rows from 1 (the first row under a CSV header, the first row of a Parquet
    file); `line` is the physical line of a CSV file where that row starts (line 1 is the header).
    """

    file: str
    row: int | None
    column: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        place = self.file
        if self.line is not None and self.row is not None:
            place += f" line {self.line} (row {self.row})"
        elif self.line is not None:
            place += f" line {self.line}"
        elif self.row is not None:
            place += f" row {self.row}"
        if self.column is not None:
            place += f", column {self.column}"
        return f"{place}: {self.message}"


class ContractError(Exception):
    """An extract folder that breaks the contract; nothing of it was loaded."""

    def __init__(self, *, folder: Path, problems: list[Problem], total: int) -> None:
        self.folder = Path(folder)
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.total = total
        super().__init__(self.report())

    def report(self) -> str:
        """The problems as a readable report for the person who sent or loads the extract."""
        if self.total == 1:
            count = "1 problem found:"
        elif self.total == len(self.problems):
            count = f"{self.total} problems found:"
        else:
            count = f"{self.total} problems found; the first {len(self.problems)} are listed:"
        lines = [
            f"The extract in {self.folder} breaks the data contract, so nothing of it was loaded.",
            _ROW_MEANING,
            count,
        ]
        lines += [f"  {problem}" for problem in self.problems]
        if self.total > len(self.problems):
            lines.append(f"  ... and {self.total - len(self.problems)} more.")
        return "\n".join(lines)


@dataclass(frozen=True)
class SourceFile:
    """The file a table was read from, with a fingerprint of exactly the bytes that were checked."""

    path: Path
    sha256: str
    size: int


class Extract(dict):
    """The five contract tables (name -> DataFrame in canonical dtypes), with notes from reading.

    A plain dict of tables to every consumer, it also carries the `warnings` (ignored extra columns
    and files) and the `sources` (table -> SourceFile) that the store records in its manifest.
    """

    def __init__(
        self,
        tables: dict[str, pd.DataFrame],
        *,
        warnings: tuple[str, ...],
        sources: dict[str, SourceFile],
    ) -> None:
        super().__init__(tables)
        self.warnings = warnings
        self.sources = sources


# ---------------------------------------------------------------------------------------------
# Collecting problems


@dataclass(frozen=True)
class _Entry:
    table: str
    row: int | None  # 0-based data row
    column: str | None
    message: str
    line: int | None = None


@dataclass
class _Findings:
    """Problems found so far: all are counted, the first `limit` of each rule are kept."""

    limit: int
    entries: list[_Entry] = field(default_factory=list)
    total: int = 0
    warnings: list[str] = field(default_factory=list)

    def note(self, table: str, message: str, *, column: str | None = None) -> None:
        self.total += 1
        self.entries.append(_Entry(table, None, column, message))

    def note_lines(self, table: str, located: list[tuple[int | None, int]], message: str) -> None:
        """Problems at known (row, line) places, e.g. bytes that are not UTF-8."""
        self.total += len(located)
        for row, line in located[: self.limit]:
            self.entries.append(_Entry(table, row, None, message, line))

    def flag(
        self,
        table: str,
        column: str | None,
        mask: np.ndarray,
        describe: Callable[[np.ndarray], list[str]],
    ) -> None:
        """One problem per row where `mask` holds; `describe` words the ones that get reported."""
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        self.total += int(rows.size)
        shown = rows[: self.limit]
        for row, message in zip(shown.tolist(), describe(shown), strict=True):
            self.entries.append(_Entry(table, row, column, message))

    def warn(self, message: str) -> None:
        logger.warning(message)
        self.warnings.append(message)


def _same(message: str) -> Callable[[np.ndarray], list[str]]:
    return lambda rows: [message] * len(rows)


def _quoted(value: object) -> str:
    """A cell value for a message, shortened so a stray text field cannot flood the report."""
    text = str(value)
    if len(text) > _QUOTED_LENGTH:
        text = text[: _QUOTED_LENGTH - 3] + "..."
    return repr(text)


def _mask(array: _Arrow) -> np.ndarray:
    """A boolean Arrow result as a numpy mask, with nulls as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _texts(array: _Arrow, rows: np.ndarray) -> list:
    return array.take(pa.array(rows, pa.int64())).to_pylist()


# ---------------------------------------------------------------------------------------------
# Finding the files


@dataclass
class _Source:
    table: str
    path: Path
    data: bytes
    records: int = 0  # CSV records the parser saw, header included
    layout: _Layout | None = None  # where each CSV record starts, worked out only when needed

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_csv(self) -> bool:
        return self.path.suffix == ".csv"


def _locate_tables(folder: Path, findings: _Findings) -> dict[str, Path]:
    """The file of each table; a missing or ambiguous table is a problem."""
    try:
        entries = {path.name: path for path in folder.iterdir() if path.is_file()}
    except OSError as error:
        problem = Problem(str(folder), None, None, f"cannot be listed ({error.strerror})")
        raise ContractError(folder=folder, problems=[problem], total=1) from None
    located = {}
    for table in TABLE_NAMES:
        candidates = [entries[f"{table}.{fmt}"] for fmt in FORMATS if f"{table}.{fmt}" in entries]
        if len(candidates) == 1:
            located[table] = candidates[0]
        elif candidates:
            findings.note(
                table,
                f"both {table}.csv and {table}.parquet are present: "
                "keep only one, so that it is clear which to load",
            )
        else:
            findings.note(table, _missing_table_message(table, entries))
    _warn_unused_files(entries, findings)
    return located


def _missing_table_message(table: str, entries: dict[str, Path]) -> str:
    expected = {f"{table}.{fmt}" for fmt in FORMATS}
    near = sorted(name for name in entries if name.lower() in expected)
    hint = f" (found {', '.join(near)}: file names are lower case)" if near else ""
    return f"the table is missing: the folder has no {table}.csv or {table}.parquet{hint}"


def _warn_unused_files(entries: dict[str, Path], findings: _Findings) -> None:
    table_files = {f"{table}.{fmt}" for table in TABLE_NAMES for fmt in FORMATS}
    for name in sorted(entries):
        looks_like_data = name.lower().endswith((".csv", ".parquet"))
        if looks_like_data and name not in table_files:
            findings.warn(f"{name}: not a contract table, ignored")


def _read_source(table: str, path: Path, findings: _Findings) -> _Source | None:
    try:
        return _Source(table, path, path.read_bytes())
    except OSError as error:
        findings.note(table, f"cannot be read ({error.strerror or type(error).__name__})")
        return None


# ---------------------------------------------------------------------------------------------
# Reading a table: the header, then every contract column as Arrow (text for CSV)


@dataclass
class _Raw:
    """A table as read, before any contract check: contract columns as Arrow arrays."""

    source: _Source
    columns: dict[str, _Arrow]
    n_rows: int


def _check_header(source: _Source, names: list[str], findings: _Findings) -> list[str] | None:
    """The contract columns present; missing or repeated columns are problems, extras warnings."""
    table, expected = source.table, column_names(source.table)
    repeated = sorted({name for name in names if names.count(name) > 1})
    for name in repeated:
        findings.note(table, "the column appears more than once in the header", column=name)
    for name in expected:
        if name not in names:
            findings.note(table, _missing_column_message(name, names), column=name)
    extras = [name for name in names if name not in expected]
    if extras:
        findings.warn(
            f"{source.name}: columns not in the contract were ignored: {', '.join(extras)}"
        )
    if repeated:
        return None
    return [name for name in expected if name in names]


def _missing_column_message(name: str, names: list[str]) -> str:
    near = [other for other in names if other.lower().replace(" ", "_") == name and other != name]
    hint = f" (the file has {near[0]!r}: column names are lower case)" if near else ""
    return f"the column is missing{hint}"


def _read_parquet(source: _Source, findings: _Findings) -> _Raw | None:
    try:
        schema = pq.read_schema(pa.BufferReader(source.data))
    except (pa.ArrowException, OSError):
        findings.note(source.table, "is not a readable Parquet file")
        return None
    present = _check_header(source, [name.strip() for name in schema.names], findings)
    if present is None:
        return None
    renamed = {name.strip(): name for name in schema.names}
    try:
        data = pq.read_table(pa.BufferReader(source.data), columns=[renamed[n] for n in present])
    except (pa.ArrowException, OSError):
        findings.note(source.table, "is not a readable Parquet file (its data pages are damaged)")
        return None
    columns = {name: data.column(renamed[name]).combine_chunks() for name in present}
    return _Raw(source, columns, data.num_rows)


def _csv_header(source: _Source, findings: _Findings) -> list[str] | None:
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


def _read_csv(source: _Source, findings: _Findings) -> _Raw | None:
    names = _csv_header(source, findings)
    present = None if names is None else _check_header(source, names, findings)
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
    return _Raw(source, columns, table.num_rows)


def _unreadable_csv(source: _Source, findings: _Findings) -> None:
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


@dataclass(frozen=True)
class _Layout:
    """Where a CSV file's records are: for each record (0 is the header), the physical line it
    starts on (1-based) and its number of values. Blank lines are not records, as for the parser."""

    lines: np.ndarray
    values: np.ndarray


def _layout_of(source: _Source) -> _Layout:
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


def _vector_layout(data: bytes) -> _Layout:
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
    return _Layout(lines, separators[records] + 1)


def _scanned_layout(data: bytes) -> _Layout:
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
    return _Layout(np.asarray(lines, dtype=np.int64), np.asarray(values, dtype=np.int64))


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


def _note_invalid_utf8(source: _Source, bad_lines: list[int], findings: _Findings) -> None:
    """One problem per line holding bytes that are not UTF-8, with the row that line is in."""
    record_lines = _layout_of(source).lines
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


def _note_ragged_rows(
    source: _Source, n_names: int, invalid_rows: int, findings: _Findings
) -> None:
    """Rows whose number of values differs from the header's; their table is not checked further."""
    layout = _layout_of(source)
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
            _Entry(source.table, record - 1, None, message, int(layout.lines[record]))
        )


# ---------------------------------------------------------------------------------------------
# Typing each column: text from CSV (or Parquet text columns) and native Parquet types


@dataclass(frozen=True)
class _Cells:
    """A column in its canonical type: `valid` = present and well-formed; other cells are
    placeholders (null, NaN, NaT, 0 or False) that no rule may trust."""

    values: _Arrow | np.ndarray
    empty: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class _Typed:
    table: str
    n_rows: int
    cells: dict[str, _Cells]

    def has(self, *names: str) -> bool:
        return all(name in self.cells for name in names)


_Converted = tuple[_Arrow | np.ndarray, np.ndarray, Callable[[object], str]]


def _nulled(text: _Arrow, empty: np.ndarray) -> _Arrow:
    if not empty.any():
        return text
    return pc.if_else(pa.array(empty), pa.scalar(None, text.type), text)


def _whole(array: _Arrow) -> pa.Array:
    """One contiguous array, for kernels whose output is per chunk (dictionaries, list indices)."""
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _plain_values(text: _Arrow, empty: np.ndarray, column: Column) -> _Converted:
    return _nulled(text, empty), np.zeros(len(text), dtype=bool), str


def _enum_values(text: _Arrow, empty: np.ndarray, column: Column) -> _Converted:
    known = _mask(pc.is_in(text, value_set=pa.array(column.allowed, text.type)))
    if len(column.allowed) > _LONG_ENUM:
        allowed = f"is not a known {column.name} (see the vocabulary in the data contract)"
    else:
        allowed = f"is not one of: {', '.join(column.allowed)}"
    return _nulled(text, empty), ~empty & ~known, lambda value: f"{_quoted(value)} {allowed}"


def _skills_values(text: _Arrow, empty: np.ndarray, column: Column) -> _Converted:
    items = pc.split_pattern_regex(_whole(text), pattern=r"\s*;\s*")
    known = _mask(pc.is_in(pc.list_flatten(items), value_set=pa.array(column.allowed, text.type)))
    unknown_rows = pc.list_parent_indices(items).to_numpy()[~known]
    bad = np.zeros(len(text), dtype=bool)
    bad[unknown_rows] = True

    allowed, listed = set(column.allowed), ", ".join(column.allowed)

    def reason(value: object) -> str:
        written = [item.strip() for item in str(value).split(";")]
        unknown = [
            _quoted(item) if item else "an empty item" for item in written if item not in allowed
        ]
        verb = "is not a skill" if len(unknown) == 1 else "are not skills"
        return f"{', '.join(unknown)} {verb}; separate skills with ';' and use: {listed}"

    normalised = pc.binary_join(items, pa.scalar(";", text.type))
    return _nulled(normalised, empty), bad & ~empty, reason


def _int_values(text: _Arrow, empty: np.ndarray, column: Column) -> _Converted:
    well_formed = _mask(pc.match_substring_regex(text, _INT_PATTERN))
    digits = pc.replace_substring_regex(text, pattern=r"^\+", replacement="")
    safe = pc.if_else(pa.array(well_formed), digits, pa.scalar("0", text.type))
    values = pc.cast(safe, pa.int64()).to_numpy(zero_copy_only=False)
    return values, ~empty & ~well_formed, lambda value: f"{_quoted(value)} is not a whole number"


def _float_values(text: _Arrow, empty: np.ndarray, column: Column) -> _Converted:
    well_formed = _mask(pc.match_substring_regex(text, _FLOAT_PATTERN))
    safe = pc.if_else(pa.array(well_formed), text, pa.scalar("0", text.type))
    numbers = pc.cast(safe, pa.float64()).to_numpy(zero_copy_only=False)
    usable = well_formed & np.isfinite(numbers)
    values = np.where(usable, numbers, np.nan)
    reason = "is not a number (use digits and a decimal point; no currency signs or commas)"
    return values, ~empty & ~usable, lambda value: f"{_quoted(value)} {reason}"


def _date_values(text: _Arrow, empty: np.ndarray, column: Column) -> _Converted:
    # Partner extracts repeat the same few thousand dates, so parse each distinct text once.
    encoded = pc.dictionary_encode(_whole(text))
    distinct = encoded.dictionary.to_pandas()
    in_range = distinct.str.slice(0, 4).between(str(_FIRST_YEAR), str(_LAST_YEAR))
    checkable = distinct.where(distinct.str.fullmatch(_DATE_PATTERN[1:-1]) & in_range)
    parsed = pd.to_datetime(checkable, format="%Y-%m-%d", errors="coerce").astype("datetime64[ns]")
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    distinct_dates = np.append(parsed.to_numpy(), np.datetime64("NaT", "ns"))
    values = distinct_dates[codes]  # code -1 (an empty cell) picks the NaT appended last
    return values, ~empty & np.isnat(values), _date_reason


def _date_reason(value: object) -> str:
    text = str(value)
    if not re.fullmatch(_DATE_PATTERN[1:-1], text):
        return f"{_quoted(text)} is not a date written as YYYY-MM-DD"
    if not _FIRST_YEAR <= int(text[:4]) <= _LAST_YEAR:
        return f"{_quoted(text)} is outside the supported years {_FIRST_YEAR}-{_LAST_YEAR}"
    return f"{_quoted(text)} is not a real calendar date"


def _bool_values(text: _Arrow, empty: np.ndarray, column: Column) -> _Converted:
    lowered = pc.utf8_lower(text)
    true = _mask(pc.is_in(lowered, value_set=pa.array(_TRUE_WORDS, text.type)))
    false = _mask(pc.is_in(lowered, value_set=pa.array(_FALSE_WORDS, text.type)))
    reason = "is not true or false (1 and 0 are also accepted)"
    return true, ~empty & ~true & ~false, lambda value: f"{_quoted(value)} {reason}"


_TEXT_CONVERTERS: dict[str, Callable[[_Arrow, np.ndarray, Column], _Converted]] = {
    "id": _plain_values,
    "str": _plain_values,
    "enum": _enum_values,
    "skills": _skills_values,
    "int": _int_values,
    "float": _float_values,
    "date": _date_values,
    "bool": _bool_values,
}


def _text_cells(table: str, column: Column, text: _Arrow, findings: _Findings) -> _Cells:
    trimmed = pc.utf8_trim_whitespace(text)
    empty = ~_mask(pc.not_equal(trimmed, ""))
    values, bad, reason = _TEXT_CONVERTERS[column.kind](trimmed, empty, column)
    _flag_cells(
        table, column, empty=empty, bad=bad, originals=trimmed, reason=reason, findings=findings
    )
    return _Cells(values, empty, ~empty & ~bad)


def _flag_cells(
    table: str,
    column: Column,
    *,
    empty: np.ndarray,
    bad: np.ndarray,
    originals: _Arrow,
    reason: Callable[[object], str],
    findings: _Findings,
) -> None:
    if not column.optional:
        findings.flag(table, column.name, empty, _same("is empty, but a value is required"))
    findings.flag(
        table, column.name, bad, lambda rows: [reason(v) for v in _texts(originals, rows)]
    )


_TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)


def _is_text(array: _Arrow) -> bool:
    kind = array.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_null(kind) or any(test(kind) for test in _TEXT_TYPES)


def _native_cells(table: str, column: Column, values: _Arrow, findings: _Findings) -> _Cells | None:
    """A non-text Parquet column: its type must fit the column, then its cells are checked."""
    convert = _NATIVE_CONVERTERS.get(column.kind)
    converted = None if convert is None else convert(values)
    if converted is None:
        findings.note(
            table,
            f"is stored as Parquet type {values.type}, "
            f"which cannot hold {_KIND_WORDS[column.kind]}",
            column=column.name,
        )
        return None
    typed, empty, bad, reason = converted
    _flag_cells(
        table, column, empty=empty, bad=bad, originals=values, reason=reason, findings=findings
    )
    return _Cells(typed, empty, ~empty & ~bad)


_KIND_WORDS = {
    "id": "text",
    "str": "text",
    "enum": "text",
    "skills": "text",
    "int": "a whole number",
    "float": "a number",
    "date": "a date",
    "bool": "true or false",
}

_Native = tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[object], str]] | None


def _native_int(values: _Arrow) -> _Native:
    kind = values.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        return None
    numbers = pc.cast(values, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    empty = np.isnan(numbers)
    whole = np.isfinite(numbers) & (np.floor(numbers) == numbers) & (np.abs(numbers) < 2**53)
    if pa.types.is_integer(kind):
        typed = pc.cast(values.fill_null(0), pa.int64(), safe=False).to_numpy(zero_copy_only=False)
        whole = whole | (pa.types.is_signed_integer(kind) & ~empty)
    else:
        typed = np.where(whole, numbers, 0).astype(np.int64)
    return typed, empty, ~empty & ~whole, lambda value: f"{_quoted(value)} is not a whole number"


def _native_float(values: _Arrow) -> _Native:
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return None
    numbers = pc.cast(values, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    empty = np.isnan(numbers)
    bad = ~empty & ~np.isfinite(numbers)
    return (
        np.where(bad, np.nan, numbers),
        empty,
        bad,
        lambda v: f"{_quoted(v)} is not a finite number",
    )


def _native_date(values: _Arrow) -> _Native:
    kind = values.type
    naive_timestamp = pa.types.is_timestamp(kind) and kind.tz is None
    if not (pa.types.is_date(kind) or naive_timestamp):
        return None
    moments = values.to_numpy(zero_copy_only=False)
    empty = np.isnat(moments)
    days = moments.astype("datetime64[D]")
    first, last = np.datetime64(f"{_FIRST_YEAR}-01-01"), np.datetime64(f"{_LAST_YEAR}-12-31")
    bad = ~empty & ((days < first) | (days > last) | (moments != days))
    typed = np.where(bad | empty, np.datetime64("NaT"), days).astype("datetime64[ns]")
    reason = f"is not a date without a time of day in the years {_FIRST_YEAR}-{_LAST_YEAR}"
    return typed, empty, bad, lambda value: f"{_quoted(value)} {reason}"


def _native_bool(values: _Arrow) -> _Native:
    if not pa.types.is_boolean(values.type):
        return None
    empty = _mask(pc.is_null(values))
    typed = _mask(values)
    return typed, empty, np.zeros(len(values), dtype=bool), str


_NATIVE_CONVERTERS: dict[str, Callable[[_Arrow], _Native]] = {
    "int": _native_int,
    "float": _native_float,
    "date": _native_date,
    "bool": _native_bool,
}


def _type_table(raw: _Raw, findings: _Findings) -> _Typed:
    cells = {}
    for column in TABLES[raw.source.table]:
        values = raw.columns.get(column.name)
        if values is None:
            continue
        if _is_text(values):
            text = pc.cast(values, pa.large_string())
            typed = _text_cells(raw.source.table, column, text, findings)
        else:
            typed = _native_cells(raw.source.table, column, values, findings)
        if typed is not None:
            cells[column.name] = typed
    return _Typed(raw.source.table, raw.n_rows, cells)


# ---------------------------------------------------------------------------------------------
# Rules within a table


def _check_minimums(typed: _Typed, findings: _Findings) -> None:
    for column in TABLES[typed.table]:
        if column.minimum is None or column.name not in typed.cells:
            continue
        cells = typed.cells[column.name]
        below = cells.valid & (cells.values < column.minimum)
        rule = "must be 0 or more" if column.minimum == 0 else f"must be {column.minimum} or more"
        findings.flag(
            typed.table,
            column.name,
            below,
            lambda rows, values=cells.values, rule=rule: [
                f"{rule} (got {values[r]})" for r in rows
            ],
        )


def _first_rows(keys: _Arrow, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Among rows with valid keys: whether each repeats an earlier row's key, and that row."""
    rows = np.flatnonzero(valid)
    if rows.size == valid.size and _strictly_increasing(keys):
        # Extracts are often sorted by id: then no key can repeat, and hashing can be skipped.
        return np.zeros(valid.size, dtype=bool), np.arange(valid.size)
    chosen = keys if rows.size == valid.size else keys.take(pa.array(rows))
    codes, _ = pd.factorize(chosen.to_pandas())
    # factorize numbers keys in order of first appearance, so a key is new exactly when its code
    # exceeds every code before it, and the k-th new key has code k.
    seen_max = np.maximum.accumulate(np.concatenate([[-1], codes]))[:-1]
    repeats = codes <= seen_max
    repeat = np.zeros(valid.size, dtype=bool)
    repeat[rows[repeats]] = True
    first = np.zeros(valid.size, dtype=np.int64)
    first[rows] = rows[~repeats][codes]
    return repeat, first


def _strictly_increasing(keys: _Arrow) -> bool:
    if len(keys) < 2:
        return True
    later, earlier = keys.slice(1), keys.slice(0, len(keys) - 1)
    return bool(pc.all(pc.greater(later, earlier)).as_py())


def _check_unique_ids(typed: _Typed, findings: _Findings) -> None:
    for column in TABLES[typed.table]:
        if column.kind != "id" or column.name not in typed.cells:
            continue
        cells = typed.cells[column.name]
        repeat, first = _first_rows(cells.values, cells.valid)
        findings.flag(
            typed.table,
            column.name,
            repeat,
            lambda rows, keys=cells.values, first=first, name=column.name: [
                f"{name} {_quoted(key)} is not unique: it was first used at row {first[r] + 1}"
                for r, key in zip(rows, _texts(keys, rows), strict=True)
            ],
        )


def _check_event_sources(typed: _Typed, findings: _Findings) -> None:
    if typed.table != "events" or not typed.has("source", "event_type"):
        return
    kinds, sources = typed.cells["event_type"], typed.cells["source"]
    lookup = pa.array([EVENT_TYPES[name].source for name in EVENT_TYPES], pa.large_string())
    positions = pc.index_in(kinds.values, value_set=pa.array(list(EVENT_TYPES), pa.large_string()))
    expected = pc.take(lookup, positions)
    wrong = kinds.valid & sources.valid & ~_mask(pc.equal(expected, sources.values))
    findings.flag(
        "events",
        "source",
        wrong,
        lambda rows: [
            f"{_quoted(source)} cannot report {kind}: that event type comes from {want}"
            for source, kind, want in zip(
                _texts(sources.values, rows),
                _texts(kinds.values, rows),
                _texts(expected, rows),
                strict=True,
            )
        ],
    )


def _check_event_values(typed: _Typed, findings: _Findings) -> None:
    if typed.table != "events" or not typed.has("event_type", "value"):
        return
    kinds, values = typed.cells["event_type"], typed.cells["value"]
    valued = kinds.valid & _mask(
        pc.is_in(kinds.values, value_set=pa.array(VALUED_EVENT_TYPES, pa.large_string()))
    )
    missing = valued & values.empty
    stray = kinds.valid & ~valued & values.valid
    findings.flag(
        "events",
        "value",
        missing,
        lambda rows: [f"is empty, but {kind} needs a value" for kind in _texts(kinds.values, rows)],
    )
    findings.flag(
        "events",
        "value",
        stray,
        lambda rows: [
            f"must be empty for {kind} (got {values.values[row]:g})"
            for row, kind in zip(rows, _texts(kinds.values, rows), strict=True)
        ],
    )


def _check_known_after_occurred(typed: _Typed, findings: _Findings) -> None:
    if typed.table != "events" or not typed.has("occurred_at", "known_at"):
        return
    occurred, known = typed.cells["occurred_at"], typed.cells["known_at"]
    early = occurred.valid & known.valid & (known.values < occurred.values)
    findings.flag(
        "events",
        "known_at",
        early,
        lambda rows: [
            f"{_day(known.values[row])} is before occurred_at {_day(occurred.values[row])}"
            for row in rows
        ],
    )


def _day(moment: np.datetime64) -> str:
    return str(moment.astype("datetime64[D]"))


def _check_open_cases(typed: _Typed, findings: _Findings) -> None:
    if typed.table != "cases" or not typed.has("household_id", "closed_at"):
        return
    households, closed = typed.cells["household_id"], typed.cells["closed_at"]
    is_open = households.valid & closed.empty
    repeat, first = _first_rows(households.values, is_open)
    findings.flag(
        "cases",
        "closed_at",
        repeat,
        lambda rows: [
            f"household {_quoted(key)} already has an open case at row {first[row] + 1}; "
            "a household may have at most one open case"
            for row, key in zip(rows, _texts(households.values, rows), strict=True)
        ],
    )


_TABLE_RULES = (
    _check_minimums,
    _check_unique_ids,
    _check_event_sources,
    _check_event_values,
    _check_known_after_occurred,
    _check_open_cases,
)


# ---------------------------------------------------------------------------------------------
# Rules across tables


def _check_reference(
    typed: dict[str, _Typed],
    findings: _Findings,
    *,
    table: str,
    column: str,
    parent: str,
    key: str,
) -> None:
    """Every valid `table.column` value must be a `parent.key`."""
    child, owner = typed.get(table), typed.get(parent)
    if child is None or owner is None or not child.has(column) or not owner.has(key):
        return
    cells, keys = child.cells[column], owner.cells[key]
    known = _mask(pc.is_in(cells.values, value_set=keys.values.drop_null()))
    findings.flag(
        table,
        column,
        cells.valid & ~known,
        lambda rows: [f"{_quoted(v)} is not in {parent}" for v in _texts(cells.values, rows)],
    )


def _check_event_people(typed: dict[str, _Typed], findings: _Findings) -> None:
    """An event's person, when given, must be in people and live in the event's household."""
    events, people = typed.get("events"), typed.get("people")
    if (
        events is None
        or people is None
        or not events.has("person_id")
        or not people.has("person_id")
    ):
        return
    person = events.cells["person_id"]
    positions = pc.index_in(
        person.values, value_set=people.cells["person_id"].values, skip_nulls=True
    )
    known = ~_mask(pc.is_null(positions))
    findings.flag(
        "events",
        "person_id",
        person.valid & ~known,
        lambda rows: [f"{_quoted(v)} is not in people" for v in _texts(person.values, rows)],
    )
    if events.has("household_id") and people.has("household_id"):
        _check_person_homes(events, people, positions, findings)


def _check_person_homes(
    events: _Typed, people: _Typed, positions: _Arrow, findings: _Findings
) -> None:
    person, household = events.cells["person_id"], events.cells["household_id"]
    home = pc.take(people.cells["household_id"].values, positions)
    elsewhere = person.valid & household.valid & _mask(pc.not_equal(home, household.values))
    findings.flag(
        "events",
        "person_id",
        elsewhere,
        lambda rows: [
            f"{_quoted(p)} lives in household {_quoted(h)} according to people, not {_quoted(e)}"
            for p, h, e in zip(
                _texts(person.values, rows),
                _texts(home, rows),
                _texts(household.values, rows),
                strict=True,
            )
        ],
    )


_REFERENCES = (
    ("people", "household_id", "households", "household_id"),
    ("events", "household_id", "households", "household_id"),
    ("cases", "household_id", "households", "household_id"),
    ("cases", "worker_id", "workers", "worker_id"),
)


def _check_references(typed: dict[str, _Typed], findings: _Findings) -> None:
    for table, column, parent, key in _REFERENCES:
        _check_reference(typed, findings, table=table, column=column, parent=parent, key=key)
    _check_event_people(typed, findings)


# ---------------------------------------------------------------------------------------------
# Putting it together


def _problems(findings: _Findings, sources: dict[str, _Source]) -> list[Problem]:
    """The first problems in file order, with the physical line of each CSV row."""
    order = {table: position for position, table in enumerate(TABLE_NAMES)}
    columns = {
        table: {name: place for place, name in enumerate(column_names(table))}
        for table in TABLE_NAMES
    }

    def position(entry: _Entry) -> tuple:
        column = -1 if entry.column is None else columns[entry.table].get(entry.column, 99)
        row = -1 if entry.row is None else entry.row
        return (order[entry.table], row, column, entry.message)

    shown = sorted(findings.entries, key=position)[: findings.limit]
    lines = _lines_of_rows(shown, sources)
    problems = []
    for entry in shown:
        source = sources.get(entry.table)
        file = source.name if source is not None else f"{entry.table}.csv"
        line = entry.line if entry.line is not None else lines.get((entry.table, entry.row))
        row = None if entry.row is None else entry.row + 1
        problems.append(Problem(file, row, entry.column, entry.message, line))
    return problems


def _lines_of_rows(entries: list[_Entry], sources: dict[str, _Source]) -> dict[tuple, int]:
    lines = {}
    for table, source in sources.items():
        rows = [e.row for e in entries if e.table == table and e.row is not None and e.line is None]
        if not rows or not source.is_csv:
            continue
        record_lines = _layout_of(source).lines
        for row in rows:
            if row + 1 < record_lines.size:
                lines[(table, row)] = int(record_lines[row + 1])
    return lines


def _canonical_frame(typed: _Typed) -> pd.DataFrame:
    dtypes = table_dtypes(typed.table)
    columns = {}
    for name in dtypes:
        values = typed.cells[name].values
        is_numpy = isinstance(values, np.ndarray)
        columns[name] = pd.Series(values) if is_numpy else values.to_pandas()
    return pd.DataFrame(columns).astype(dtypes)


def _source_file(source: _Source) -> SourceFile:
    digest = hashlib.sha256(source.data).hexdigest()
    return SourceFile(source.path, digest, len(source.data))


def _read_table(source: _Source, findings: _Findings) -> _Typed | None:
    raw = _read_csv(source, findings) if source.is_csv else _read_parquet(source, findings)
    if raw is None:
        return None
    typed = _type_table(raw, findings)
    for rule in _TABLE_RULES:
        rule(typed, findings)
    return typed


def read_extract(folder: Path, *, max_problems: int = MAX_REPORTED_PROBLEMS) -> Extract:
    """Check every file of an extract folder against the contract and load it.

    Returns the five tables in canonical dtypes (an `Extract`, which also carries the warnings and
    the fingerprints of the files read), or raises `ContractError` listing the first
    `max_problems` problems in file order with the total count. Nothing is returned unless the whole
    folder keeps the contract.
    """
    folder = Path(folder)
    findings = _Findings(limit=max_problems)
    if not folder.is_dir():
        problem = Problem(str(folder), None, None, "is not a folder (or does not exist)")
        raise ContractError(folder=folder, problems=[problem], total=1)
    sources = {}
    for table, path in _locate_tables(folder, findings).items():
        source = _read_source(table, path, findings)
        if source is not None:
            sources[table] = source
    typed = {table: _read_table(source, findings) for table, source in sources.items()}
    _check_references({t: v for t, v in typed.items() if v is not None}, findings)
    if findings.total:
        raise ContractError(
            folder=folder, problems=_problems(findings, sources), total=findings.total
        )
    tables = {table: _canonical_frame(typed[table]) for table in TABLE_NAMES}
    files = {table: _source_file(source) for table, source in sources.items()}
    return Extract(tables, warnings=tuple(findings.warnings), sources=files)
