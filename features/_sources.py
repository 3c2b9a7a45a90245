"""The files of an extract folder: finding each table's file, checking its header, reading Parquet.

CSV files are read by features._csv; both give a table's contract columns as Arrow arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from features._findings import Arrow, Findings
from features.contract import TABLE_NAMES, column_names

FORMATS: tuple[str, ...] = ("csv", "parquet")


@dataclass(frozen=True)
class Layout:
    """Where a CSV file's records are: for each record (0 is the header), the physical line it
    starts on (1-based) and its number of values. Blank lines are not records, as for the parser."""

    lines: np.ndarray
    values: np.ndarray


@dataclass
class Source:
    """One table's file and its bytes, exactly as checked (and as fingerprinted for the store)."""

    table: str
    path: Path
    data: bytes
    records: int = 0  # CSV records the parser saw, header included
    layout: Layout | None = None  # where each CSV record starts, worked out only when needed

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def is_csv(self) -> bool:
        return self.path.suffix == ".csv"


def folder_files(folder: Path) -> dict[str, Path]:
    """The files in a folder by name; OSError when the folder cannot be listed."""
    return {path.name: path for path in folder.iterdir() if path.is_file()}


def locate_tables(entries: dict[str, Path], findings: Findings) -> dict[str, Path]:
    """The file of each table among a folder's files; a missing or ambiguous table is a problem."""
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


def _warn_unused_files(entries: dict[str, Path], findings: Findings) -> None:
    table_files = {f"{table}.{fmt}" for table in TABLE_NAMES for fmt in FORMATS}
    for name in sorted(entries):
        looks_like_data = name.lower().endswith((".csv", ".parquet"))
        if looks_like_data and name not in table_files:
            findings.warn(f"{name}: not a contract table, ignored")


def read_source(table: str, path: Path, findings: Findings) -> Source | None:
    try:
        return Source(table, path, path.read_bytes())
    except OSError as error:
        findings.note(table, f"cannot be read ({error.strerror or type(error).__name__})")
        return None


@dataclass
class RawTable:
    """A table as read, before any contract check: contract columns as Arrow arrays."""

    source: Source
    columns: dict[str, Arrow]
    n_rows: int


def check_header(source: Source, names: list[str], findings: Findings) -> list[str] | None:
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


def read_parquet(source: Source, findings: Findings) -> RawTable | None:
    try:
        schema = pq.read_schema(pa.BufferReader(source.data))
    except (pa.ArrowException, OSError):
        findings.note(source.table, "is not a readable Parquet file")
        return None
    present = check_header(source, [name.strip() for name in schema.names], findings)
    if present is None:
        return None
    renamed = {name.strip(): name for name in schema.names}
    try:
        data = pq.read_table(pa.BufferReader(source.data), columns=[renamed[n] for n in present])
    except (pa.ArrowException, OSError):
        findings.note(source.table, "is not a readable Parquet file (its data pages are damaged)")
        return None
    columns = {name: data.column(renamed[name]).combine_chunks() for name in present}
    return RawTable(source, columns, data.num_rows)
