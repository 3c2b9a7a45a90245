"""Typing each column: text from CSV (or Parquet text columns) and native Parquet types.

Each column becomes its canonical type with a mask of the cells that are present and well formed;
an empty required cell or a malformed one is a problem at its row and column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features._findings import Arrow, Findings, mask_of, quoted, texts_at
from features._sources import RawTable
from features.contract import TABLES, Column

_INT_PATTERN = r"^[+-]?\d{1,18}$"
_FLOAT_PATTERN = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
_DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
# datetime64[ns], the canonical date dtype, spans 1677-09-21 to 2262-04-11.
_FIRST_YEAR, _LAST_YEAR = 1678, 2261
_TRUE_WORDS, _FALSE_WORDS = ("true", "1"), ("false", "0")
_LONG_ENUM = 10


@dataclass(frozen=True)
class Cells:
    """A column in its canonical type: `valid` = present and well-formed; other cells are
    placeholders (null, NaN, NaT, 0 or False) that no rule may trust."""

    values: Arrow | np.ndarray
    empty: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class TypedTable:
    table: str
    n_rows: int
    cells: dict[str, Cells]

    def has(self, *names: str) -> bool:
        return all(name in self.cells for name in names)


_Converted = tuple[Arrow | np.ndarray, np.ndarray, Callable[[object], str]]


def _nulled(text: Arrow, empty: np.ndarray) -> Arrow:
    if not empty.any():
        return text
    return pc.if_else(pa.array(empty), pa.scalar(None, text.type), text)


def _whole(array: Arrow) -> pa.Array:
    """One contiguous array, for kernels whose output is per chunk (dictionaries, list indices)."""
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _plain_values(text: Arrow, empty: np.ndarray, column: Column) -> _Converted:
    return _nulled(text, empty), np.zeros(len(text), dtype=bool), str


def _enum_values(text: Arrow, empty: np.ndarray, column: Column) -> _Converted:
    known = mask_of(pc.is_in(text, value_set=pa.array(column.allowed, text.type)))
    if len(column.allowed) > _LONG_ENUM:
        allowed = f"is not a known {column.name} (see the vocabulary in the data contract)"
    else:
        allowed = f"is not one of: {', '.join(column.allowed)}"
    return _nulled(text, empty), ~empty & ~known, lambda value: f"{quoted(value)} {allowed}"


def _skills_values(text: Arrow, empty: np.ndarray, column: Column) -> _Converted:
    items = pc.split_pattern_regex(_whole(text), pattern=r"\s*;\s*")
    known = mask_of(pc.is_in(pc.list_flatten(items), value_set=pa.array(column.allowed, text.type)))
    unknown_rows = pc.list_parent_indices(items).to_numpy()[~known]
    bad = np.zeros(len(text), dtype=bool)
    bad[unknown_rows] = True

    allowed, listed = set(column.allowed), ", ".join(column.allowed)

    def reason(value: object) -> str:
        written = [item.strip() for item in str(value).split(";")]
        unknown = [
            quoted(item) if item else "an empty item" for item in written if item not in allowed
        ]
        verb = "is not a skill" if len(unknown) == 1 else "are not skills"
        return f"{', '.join(unknown)} {verb}; separate skills with ';' and use: {listed}"

    normalised = pc.binary_join(items, pa.scalar(";", text.type))
    return _nulled(normalised, empty), bad & ~empty, reason


def _int_values(text: Arrow, empty: np.ndarray, column: Column) -> _Converted:
    well_formed = mask_of(pc.match_substring_regex(text, _INT_PATTERN))
    digits = pc.replace_substring_regex(text, pattern=r"^\+", replacement="")
    safe = pc.if_else(pa.array(well_formed), digits, pa.scalar("0", text.type))
    values = pc.cast(safe, pa.int64()).to_numpy(zero_copy_only=False)
    return values, ~empty & ~well_formed, lambda value: f"{quoted(value)} is not a whole number"


def _float_values(text: Arrow, empty: np.ndarray, column: Column) -> _Converted:
    well_formed = mask_of(pc.match_substring_regex(text, _FLOAT_PATTERN))
    safe = pc.if_else(pa.array(well_formed), text, pa.scalar("0", text.type))
    numbers = pc.cast(safe, pa.float64()).to_numpy(zero_copy_only=False)
    usable = well_formed & np.isfinite(numbers)
    values = np.where(usable, numbers, np.nan)
    reason = "is not a number (use digits and a decimal point; no currency signs or commas)"
    return values, ~empty & ~usable, lambda value: f"{quoted(value)} {reason}"


def _date_values(text: Arrow, empty: np.ndarray, column: Column) -> _Converted:
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
        return f"{quoted(text)} is not a date written as YYYY-MM-DD"
    if not _FIRST_YEAR <= int(text[:4]) <= _LAST_YEAR:
        return f"{quoted(text)} is outside the supported years {_FIRST_YEAR}-{_LAST_YEAR}"
    return f"{quoted(text)} is not a real calendar date"


def _bool_values(text: Arrow, empty: np.ndarray, column: Column) -> _Converted:
    lowered = pc.utf8_lower(text)
    true = mask_of(pc.is_in(lowered, value_set=pa.array(_TRUE_WORDS, text.type)))
    false = mask_of(pc.is_in(lowered, value_set=pa.array(_FALSE_WORDS, text.type)))
    reason = "is not true or false (1 and 0 are also accepted)"
    return true, ~empty & ~true & ~false, lambda value: f"{quoted(value)} {reason}"


_TEXT_CONVERTERS: dict[str, Callable[[Arrow, np.ndarray, Column], _Converted]] = {
    "id": _plain_values,
    "str": _plain_values,
    "enum": _enum_values,
    "skills": _skills_values,
    "int": _int_values,
    "float": _float_values,
    "date": _date_values,
    "bool": _bool_values,
}


def _text_cells(table: str, column: Column, text: Arrow, findings: Findings) -> Cells:
    trimmed = pc.utf8_trim_whitespace(text)
    empty = ~mask_of(pc.not_equal(trimmed, ""))
    values, bad, reason = _TEXT_CONVERTERS[column.kind](trimmed, empty, column)
    _flag_cells(
        table, column, empty=empty, bad=bad, originals=trimmed, reason=reason, findings=findings
    )
    return Cells(values, empty, ~empty & ~bad)


def _same(message: str) -> Callable[[np.ndarray], list[str]]:
    return lambda rows: [message] * len(rows)


def _flag_cells(
    table: str,
    column: Column,
    *,
    empty: np.ndarray,
    bad: np.ndarray,
    originals: Arrow,
    reason: Callable[[object], str],
    findings: Findings,
) -> None:
    if not column.optional:
        findings.flag(table, column.name, empty, _same("is empty, but a value is required"))
    findings.flag(
        table, column.name, bad, lambda rows: [reason(v) for v in texts_at(originals, rows)]
    )


_TEXT_TYPES = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)


def _is_text(array: Arrow) -> bool:
    kind = array.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_null(kind) or any(test(kind) for test in _TEXT_TYPES)


def _native_cells(table: str, column: Column, values: Arrow, findings: Findings) -> Cells | None:
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
    return Cells(typed, empty, ~empty & ~bad)


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


def _native_int(values: Arrow) -> _Native:
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
    return typed, empty, ~empty & ~whole, lambda value: f"{quoted(value)} is not a whole number"


def _native_float(values: Arrow) -> _Native:
    if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        return None
    numbers = pc.cast(values, pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    empty = np.isnan(numbers)
    bad = ~empty & ~np.isfinite(numbers)
    return (
        np.where(bad, np.nan, numbers),
        empty,
        bad,
        lambda v: f"{quoted(v)} is not a finite number",
    )


def _native_date(values: Arrow) -> _Native:
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
    return typed, empty, bad, lambda value: f"{quoted(value)} {reason}"


def _native_bool(values: Arrow) -> _Native:
    if not pa.types.is_boolean(values.type):
        return None
    empty = mask_of(pc.is_null(values))
    typed = mask_of(values)
    return typed, empty, np.zeros(len(values), dtype=bool), str


_NATIVE_CONVERTERS: dict[str, Callable[[Arrow], _Native]] = {
    "int": _native_int,
    "float": _native_float,
    "date": _native_date,
    "bool": _native_bool,
}


def type_table(raw: RawTable, findings: Findings) -> TypedTable:
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
    return TypedTable(raw.source.table, raw.n_rows, cells)
