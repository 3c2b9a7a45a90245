"""Check a partner extract folder against the data contract and load it in canonical form.

The whole folder is checked before anything is loaded. Every problem is reported with the file, the
row and the column it is in, and a folder with any problem is refused as a whole (`ContractError`).
Checks run per column and per rule on whole arrays (Arrow compute kernels and numpy masks),
because a city sends millions of event rows; only the handful of rows that make it into the report
are ever looked at one by one.

This module is the public entry and the report. The work is done by: features._sources (finding
each table's file, its header, Parquet), features._csv (the CSV reader), features._types (typing
each column), features._rules (the contract's rules) and features._findings (collecting problems).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features._csv import layout_of, read_csv
from features._findings import Entry, Findings, logger
from features._rules import TABLE_RULES, check_references
from features._sources import (
    FORMATS,
    Source,
    folder_files,
    locate_tables,
    read_parquet,
    read_source,
)
from features._types import TypedTable, type_table
from features.contract import TABLE_NAMES, column_names, table_dtypes

__all__ = [
    "FORMATS",
    "MAX_REPORTED_PROBLEMS",
    "ContractError",
    "Extract",
    "Problem",
    "SourceFile",
    "logger",
    "read_extract",
]

MAX_REPORTED_PROBLEMS = 100

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
# Putting it together


def _problems(findings: Findings, sources: dict[str, Source]) -> list[Problem]:
    """The first problems in file order, with the physical line of each CSV row."""
    order = {table: position for position, table in enumerate(TABLE_NAMES)}
    columns = {
        table: {name: place for place, name in enumerate(column_names(table))}
        for table in TABLE_NAMES
    }

    def position(entry: Entry) -> tuple:
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


def _lines_of_rows(entries: list[Entry], sources: dict[str, Source]) -> dict[tuple, int]:
    lines = {}
    for table, source in sources.items():
        rows = [e.row for e in entries if e.table == table and e.row is not None and e.line is None]
        if not rows or not source.is_csv:
            continue
        record_lines = layout_of(source).lines
        for row in rows:
            if row + 1 < record_lines.size:
                lines[(table, row)] = int(record_lines[row + 1])
    return lines


def _canonical_frame(typed: TypedTable) -> pd.DataFrame:
    dtypes = table_dtypes(typed.table)
    columns = {}
    for name in dtypes:
        values = typed.cells[name].values
        is_numpy = isinstance(values, np.ndarray)
        columns[name] = pd.Series(values) if is_numpy else values.to_pandas()
    return pd.DataFrame(columns).astype(dtypes)


def _source_file(source: Source) -> SourceFile:
    digest = hashlib.sha256(source.data).hexdigest()
    return SourceFile(source.path, digest, len(source.data))


def _read_sources(folder: Path, findings: Findings) -> dict[str, Source]:
    """The bytes of each table's file; an unlistable folder is refused at once."""
    try:
        entries = folder_files(folder)
    except OSError as error:
        problem = Problem(str(folder), None, None, f"cannot be listed ({error.strerror})")
        raise ContractError(folder=folder, problems=[problem], total=1) from None
    sources = {}
    for table, path in locate_tables(entries, findings).items():
        source = read_source(table, path, findings)
        if source is not None:
            sources[table] = source
    return sources


def _read_table(source: Source, findings: Findings) -> TypedTable | None:
    raw = read_csv(source, findings) if source.is_csv else read_parquet(source, findings)
    if raw is None:
        return None
    typed = type_table(raw, findings)
    for rule in TABLE_RULES:
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
    findings = Findings(limit=max_problems)
    if not folder.is_dir():
        problem = Problem(str(folder), None, None, "is not a folder (or does not exist)")
        raise ContractError(folder=folder, problems=[problem], total=1)
    sources = _read_sources(folder, findings)
    typed = {table: _read_table(source, findings) for table, source in sources.items()}
    check_references({t: v for t, v in typed.items() if v is not None}, findings)
    if findings.total:
        raise ContractError(
            folder=folder, problems=_problems(findings, sources), total=findings.total
        )
    tables = {table: _canonical_frame(typed[table]) for table in TABLE_NAMES}
    files = {table: _source_file(source) for table, source in sources.items()}
    return Extract(tables, warnings=tuple(findings.warnings), sources=files)
