"""Contract tables from the simulator's arrays, and writing them to a folder.

In memory every table has exactly the contract columns in canonical dtypes (strings "str" with NaN
for missing, int64, float64, datetime64[ns], bool). On disk: UTF-8 CSV with a header, ISO dates and
empty cells for missing values, or parquet with the same columns (dates as date32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pa_compute
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

from experiments.city._cases import NOT_CLOSED, CaseBook
from experiments.city._events import EVENT_NAMES, NO_PERSON, EventBatch
from experiments.city._places import WARDS
from experiments.city._population import NOT_A_MEMBER, Population
from experiments.city._workforce import Workforce
from features.contract import (
    CLOSE_REASONS,
    DISABILITY,
    ETHNICITIES,
    EVENT_TYPES,
    LOCALITIES,
    SEXES,
    TENURES,
    column_names,
    table_dtypes,
)

TRUTH_COLUMNS: tuple[str, ...] = ("as_of", "household_id", "p_true", "escalated")
TABLE_FILES: tuple[str, ...] = ("households", "people", "events", "workers", "cases", "truth")
_EVENT_SOURCES = np.array([EVENT_TYPES[name].source for name in EVENT_NAMES], dtype=object)


def _strings(
    values: np.ndarray | pa.Array, rows: np.ndarray | None = None
) -> pd.api.extensions.ExtensionArray:
    """A "str" array of values (taken at rows, where a negative row means missing)."""
    array = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    if rows is not None:
        array = array.take(pa.array(rows, mask=rows < 0))
    return pd.array(array, dtype="str")


def _dates(days: np.ndarray) -> np.ndarray:
    """datetime64[ns] of day numbers, NaT where the day is NOT_CLOSED."""
    days = np.asarray(days, dtype=np.int64)
    moments = days.astype("datetime64[D]").astype("datetime64[ns]")
    return np.where(days == NOT_CLOSED, np.datetime64("NaT", "ns"), moments)


def _frame(table: str, columns: dict[str, object]) -> pd.DataFrame:
    """A DataFrame of a contract table in contract column order and canonical dtypes."""
    frame = pd.DataFrame(columns, columns=column_names(table))
    return frame.astype(table_dtypes(table))


def households_frame(population: Population, *, year: int) -> pd.DataFrame:
    """households as at a calendar year: adults and children counted from members' ages."""
    births = population.member_birth_year
    age = year - births
    born = (births != NOT_A_MEMBER) & (age >= 0)
    return _frame(
        "households",
        {
            "household_id": _strings(population.household_id),
            "locality": _strings(np.array(LOCALITIES, dtype=object)[population.locality]),
            "ward": _strings(
                np.array([ward.name for ward in WARDS], dtype=object)[population.ward]
            ),
            "tenure": _strings(np.array(TENURES, dtype=object)[population.tenure]),
            "adults": (born & (age >= 18)).sum(axis=1).astype(np.int64),
            "children": (born & (age < 18)).sum(axis=1).astype(np.int64),
        },
    )


def people_frame(population: Population, *, year: int) -> pd.DataFrame:
    """people born by the given calendar year."""
    rows = np.flatnonzero(population.person_birth_year <= year)
    return _frame(
        "people",
        {
            "person_id": _strings(population.person_id[rows]),
            "household_id": _strings(population.household_id, population.person_household[rows]),
            "birth_year": population.person_birth_year[rows].astype(np.int64),
            "sex": _strings(np.array(SEXES, dtype=object)[population.person_sex[rows]]),
            "ethnicity": _strings(
                np.array(ETHNICITIES, dtype=object)[population.person_ethnicity[rows]]
            ),
            "disability": _strings(
                np.array(DISABILITY, dtype=object)[population.person_disability[rows]]
            ),
        },
    )


def events_frame(
    population: Population, batch: EventBatch, *, known: np.ndarray, event_number: np.ndarray
) -> pd.DataFrame:
    """events rows for a batch with its known days and event numbers (E000000001, ...)."""
    digits = pa_compute.utf8_lpad(pa.array(event_number).cast(pa.string()), width=9, padding="0")
    event_id = pa_compute.binary_join_element_wise("E", digits, "")
    return _frame(
        "events",
        {
            "event_id": _strings(event_id),
            "household_id": _strings(population.household_id, batch.household),
            "person_id": _strings(population.person_id, batch.person),
            "source": _strings(_EVENT_SOURCES[batch.kind]),
            "event_type": _strings(np.array(EVENT_NAMES, dtype=object)[batch.kind]),
            "occurred_at": _dates(batch.occurred),
            "known_at": _dates(known),
            "value": batch.value,
        },
    )


def workers_frame(workforce: Workforce, *, week: int) -> pd.DataFrame:
    """workers; a worker who leaves at or before the given week is inactive."""
    return _frame(
        "workers",
        {
            "worker_id": _strings(workforce.worker_id),
            "locality": _strings(np.array(LOCALITIES, dtype=object)[workforce.locality]),
            "skills": _strings(workforce.skills),
            "capacity_points": workforce.capacity_points.astype(np.int64),
            "active": workforce.leaves_week > week,
        },
    )


def cases_frame(
    book: CaseBook, population: Population, workforce: Workforce, *, day: int
) -> pd.DataFrame:
    """cases opened by the given day; a case closed after it shows as still open."""
    rows = np.flatnonzero(book.opened[: book.count] <= day)
    closed = book.closed[rows]
    still_open = (closed == NOT_CLOSED) | (closed > day)
    reason = np.where(still_open, NO_PERSON, book.reason[rows])
    return _frame(
        "cases",
        {
            "case_id": _strings(
                np.array([f"C{row + 1:07d}" for row in rows.tolist()], dtype=object)
            ),
            "household_id": _strings(population.household_id, book.household[rows]),
            "worker_id": _strings(workforce.worker_id, book.worker[rows]),
            "opened_at": _dates(book.opened[rows]),
            "closed_at": _dates(np.where(still_open, NOT_CLOSED, closed)),
            "complexity_points": book.complexity[rows].astype(np.int64),
            "close_reason": _strings(np.array(CLOSE_REASONS, dtype=object), reason),
        },
    )


def truth_frame(
    population: Population, *, as_of_days: np.ndarray, p_true: np.ndarray, escalated: np.ndarray
) -> pd.DataFrame:
    """truth: one row per as-of date and household, p_true rounded to 6 decimals."""
    households = population.size
    return pd.DataFrame(
        {
            "as_of": _dates(np.repeat(as_of_days, households)),
            "household_id": _strings(
                population.household_id, np.tile(np.arange(households), len(as_of_days))
            ),
            "p_true": np.round(p_true.reshape(-1), 6),
            "escalated": escalated.reshape(-1).astype(np.int64),
        }
    )


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """An Arrow table of a frame with dates as date32 and NaN values as nulls."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind == "M":
            days = column.to_numpy().astype("datetime64[D]")
            columns[name] = pa.array(days, type=pa.date32(), mask=np.isnat(days))
        elif column.dtype.kind == "f":
            columns[name] = pa.array(column.to_numpy(), from_pandas=True)
        else:
            columns[name] = pa.array(column, from_pandas=True)
    return pa.table(columns)


def write_tables(tables: dict[str, pd.DataFrame], out: Path, *, fmt: str) -> dict[str, Path]:
    """Write each table as out/<name>.csv or .parquet; returns the paths by table name."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', not {fmt!r}")
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, frame in tables.items():
        path = out / f"{name}.{fmt}"
        table = _arrow_table(frame)
        if fmt == "csv":
            pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="needed"))
        else:
            pa_parquet.write_table(table, path)
        paths[name] = path
    return paths
