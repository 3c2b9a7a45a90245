"""The contract's rules on typed tables: within a table, then across tables.

Each rule works on whole columns and flags the rows that break it (features._findings).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features._findings import Arrow, Findings, mask_of, quoted, texts_at
from features._types import TypedTable
from features.contract import EVENT_TYPES, TABLES, VALUED_EVENT_TYPES

# ---------------------------------------------------------------------------------------------
# Rules within a table


def _check_minimums(typed: TypedTable, findings: Findings) -> None:
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


def _first_rows(keys: Arrow, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def _strictly_increasing(keys: Arrow) -> bool:
    if len(keys) < 2:
        return True
    later, earlier = keys.slice(1), keys.slice(0, len(keys) - 1)
    return bool(pc.all(pc.greater(later, earlier)).as_py())


def _check_unique_ids(typed: TypedTable, findings: Findings) -> None:
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
                f"{name} {quoted(key)} is not unique: it was first used at row {first[r] + 1}"
                for r, key in zip(rows, texts_at(keys, rows), strict=True)
            ],
        )


def _check_event_sources(typed: TypedTable, findings: Findings) -> None:
    if typed.table != "events" or not typed.has("source", "event_type"):
        return
    kinds, sources = typed.cells["event_type"], typed.cells["source"]
    lookup = pa.array([EVENT_TYPES[name].source for name in EVENT_TYPES], pa.large_string())
    positions = pc.index_in(kinds.values, value_set=pa.array(list(EVENT_TYPES), pa.large_string()))
    expected = pc.take(lookup, positions)
    wrong = kinds.valid & sources.valid & ~mask_of(pc.equal(expected, sources.values))
    findings.flag(
        "events",
        "source",
        wrong,
        lambda rows: [
            f"{quoted(source)} cannot report {kind}: that event type comes from {want}"
            for source, kind, want in zip(
                texts_at(sources.values, rows),
                texts_at(kinds.values, rows),
                texts_at(expected, rows),
                strict=True,
            )
        ],
    )


def _check_event_values(typed: TypedTable, findings: Findings) -> None:
    if typed.table != "events" or not typed.has("event_type", "value"):
        return
    kinds, values = typed.cells["event_type"], typed.cells["value"]
    valued = kinds.valid & mask_of(
        pc.is_in(kinds.values, value_set=pa.array(VALUED_EVENT_TYPES, pa.large_string()))
    )
    missing = valued & values.empty
    stray = kinds.valid & ~valued & values.valid
    findings.flag(
        "events",
        "value",
        missing,
        lambda rows: [
            f"is empty, but {kind} needs a value" for kind in texts_at(kinds.values, rows)
        ],
    )
    findings.flag(
        "events",
        "value",
        stray,
        lambda rows: [
            f"must be empty for {kind} (got {values.values[row]:g})"
            for row, kind in zip(rows, texts_at(kinds.values, rows), strict=True)
        ],
    )


def _check_known_after_occurred(typed: TypedTable, findings: Findings) -> None:
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


def _check_open_cases(typed: TypedTable, findings: Findings) -> None:
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
            f"household {quoted(key)} already has an open case at row {first[row] + 1}; "
            "a household may have at most one open case"
            for row, key in zip(rows, texts_at(households.values, rows), strict=True)
        ],
    )


TABLE_RULES = (
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
    typed: dict[str, TypedTable],
    findings: Findings,
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
    known = mask_of(pc.is_in(cells.values, value_set=keys.values.drop_null()))
    findings.flag(
        table,
        column,
        cells.valid & ~known,
        lambda rows: [f"{quoted(v)} is not in {parent}" for v in texts_at(cells.values, rows)],
    )


def _check_event_people(typed: dict[str, TypedTable], findings: Findings) -> None:
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
    known = ~mask_of(pc.is_null(positions))
    findings.flag(
        "events",
        "person_id",
        person.valid & ~known,
        lambda rows: [f"{quoted(v)} is not in people" for v in texts_at(person.values, rows)],
    )
    if events.has("household_id") and people.has("household_id"):
        _check_person_homes(events, people, positions, findings)


def _check_person_homes(
    events: TypedTable, people: TypedTable, positions: Arrow, findings: Findings
) -> None:
    person, household = events.cells["person_id"], events.cells["household_id"]
    home = pc.take(people.cells["household_id"].values, positions)
    elsewhere = person.valid & household.valid & mask_of(pc.not_equal(home, household.values))
    findings.flag(
        "events",
        "person_id",
        elsewhere,
        lambda rows: [
            f"{quoted(p)} lives in household {quoted(h)} according to people, not {quoted(e)}"
            for p, h, e in zip(
                texts_at(person.values, rows),
                texts_at(home, rows),
                texts_at(household.values, rows),
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


def check_references(typed: dict[str, TypedTable], findings: Findings) -> None:
    for table, column, parent, key in _REFERENCES:
        _check_reference(typed, findings, table=table, column=column, parent=parent, key=key)
    _check_event_people(typed, findings)
