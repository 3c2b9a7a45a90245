"""Validation of the allocation's inputs: scores, workers, cases and a manager's locks file.

Every problem is reported with its table (or file), row and column, never as a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from allocation._settings import AllocationInputError
from allocation.rules import split_skills
from features.cases import open_cases
from features.contract import SKILLS, column_names

logger = logging.getLogger(__name__)

LOCK_KINDS: tuple[str, ...] = ("assign", "exclude")
LOCK_COLUMNS: tuple[str, ...] = ("household_id", "worker_id", "kind")
SCORE_COLUMNS: tuple[str, ...] = ("household_id", "locality", "risk", "rank", "needs")
MAX_REPORTED_PROBLEMS = 20


def _raise_if_problems(problems: list[str], *, source: str) -> None:
    if not problems:
        return
    shown = problems[:MAX_REPORTED_PROBLEMS]
    more = len(problems) - len(shown)
    tail = f"\n  ... and {more} more" if more else ""
    raise AllocationInputError(
        f"{source}: {len(problems)} problem(s)\n  " + "\n  ".join(shown) + tail
    )


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("str").str.strip() == "")


def _unknown_skills(text: object) -> list[str]:
    if not isinstance(text, str):
        return []
    return sorted({part.strip() for part in text.split(";") if part.strip()} - set(SKILLS))


def _row_problems(
    frame: pd.DataFrame, bad: pd.Series, *, table: str, key: str, column: str, why: str
) -> list[str]:
    rows = [position for position, flag in enumerate(bad.to_numpy()) if flag]
    return [
        f"{table} row {position + 1} ({key} {frame[key].iloc[position]!r}), column {column}: {why}"
        for position in rows
    ]


def _check(
    frame: pd.DataFrame, rules: list[tuple[pd.Series, str, str]], *, table: str, key: str
) -> list[str]:
    """Every broken rule (bad-row mask, column, why) as 'table row N (key ...), column C: why'."""
    return [
        problem
        for bad, column, why in rules
        for problem in _row_problems(frame, bad, table=table, key=key, column=column, why=why)
    ]


def _require_columns(frame: pd.DataFrame, required, *, table: str) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise AllocationInputError(f"{table}: missing column(s) {', '.join(missing)}")


def validate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Check the scores frame; return a copy with needs normalised (contract skill order)."""
    _require_columns(scores, SCORE_COLUMNS, table="scores")
    risk = pd.to_numeric(scores["risk"], errors="coerce")
    rank = pd.to_numeric(scores["rank"], errors="coerce")
    # Needs lists repeat a lot: judge each distinct text once.
    distinct = pd.Series(scores["needs"].dropna().unique())
    unknown = set(distinct[distinct.map(_unknown_skills).map(bool)])
    rules = [
        (_blank(scores["household_id"]), "household_id", "empty"),
        (scores["household_id"].duplicated(keep="first"), "household_id", "duplicate household"),
        (_blank(scores["locality"]), "locality", "empty"),
        (risk.isna() | (risk < 0) | (risk > 1), "risk", "must be a probability in [0, 1]"),
        (rank.isna() | (rank < 1), "rank", "must be a whole number >= 1"),
        (scores["needs"].isin(unknown), "needs", "unknown skill (see features.contract.SKILLS)"),
    ]
    _raise_if_problems(_check(scores, rules, table="scores", key="household_id"), source="scores")
    normal = {text: ";".join(split_skills(text)) for text in distinct}
    return scores.assign(
        risk=risk.astype("float64"),
        rank=rank.astype("int64"),
        needs=scores["needs"].map(normal).fillna("").astype("str"),
    )


def validate_workers(workers: pd.DataFrame) -> pd.DataFrame:
    """Check the workers table; return a copy with skills normalised."""
    _require_columns(workers, column_names("workers"), table="workers")
    capacity = pd.to_numeric(workers["capacity_points"], errors="coerce")
    rules = [
        (_blank(workers["worker_id"]), "worker_id", "empty"),
        (workers["worker_id"].duplicated(keep="first"), "worker_id", "duplicate worker"),
        (_blank(workers["locality"]), "locality", "empty"),
        (capacity.isna() | (capacity < 1), "capacity_points", "must be a whole number > 0"),
        (workers["skills"].map(_unknown_skills).map(bool), "skills", "unknown skill"),
        (~workers["active"].isin([True, False]), "active", "must be true or false"),
    ]
    _raise_if_problems(_check(workers, rules, table="workers", key="worker_id"), source="workers")
    return workers.assign(
        capacity_points=capacity.astype("int64"),
        active=workers["active"].astype("bool"),
        skills=workers["skills"].map(lambda text: ";".join(split_skills(text))).astype("str"),
    )


def validate_cases(cases: pd.DataFrame, *, workers: pd.DataFrame, as_of=None) -> pd.DataFrame:
    """Check the cases table against the workers; return the cases open on `as_of`
    (features.cases.open_cases; with `as_of` None, the cases with no closing date)."""
    _require_columns(
        cases,
        ["case_id", "household_id", "worker_id", "opened_at", "closed_at", "complexity_points"],
        table="cases",
    )
    open_now = open_cases(cases, as_of=as_of)
    points = pd.to_numeric(open_now["complexity_points"], errors="coerce")
    rules = [
        (
            ~open_now["worker_id"].isin(workers["worker_id"]),
            "worker_id",
            "open case with a worker not in the workers table",
        ),
        (points.isna() | (points < 1), "complexity_points", "must be a whole number > 0"),
        (
            open_now["household_id"].duplicated(keep="first"),
            "household_id",
            "a second open case for this household (at most one is allowed)",
        ),
    ]
    _raise_if_problems(
        _check(open_now, rules, table="cases", key="case_id"), source="cases (open cases)"
    )
    return open_now.assign(complexity_points=points.astype("int64"))


def validate_locks(locks: pd.DataFrame | None, *, source: str = "locks") -> pd.DataFrame:
    """Check a locks frame (household_id, worker_id, kind); return it trimmed and deduplicated."""
    if locks is None:
        return pd.DataFrame({column: pd.Series(dtype="str") for column in LOCK_COLUMNS})
    _require_columns(locks, LOCK_COLUMNS, table=source)
    trimmed = (
        locks.loc[:, list(LOCK_COLUMNS)]
        .apply(lambda column: column.astype("str").str.strip().where(column.notna()))
        .assign(kind=lambda frame: frame["kind"].str.lower())
    )
    # Row numbers are the file's line numbers: line 1 is the header.
    problems = [
        f"{source} line {position + 2}, column {column}: "
        + ("empty" if pd.isna(value) or value == "" else f"{value!r} is not one of assign, exclude")
        for column in LOCK_COLUMNS
        for position, value in enumerate(trimmed[column].to_numpy())
        if pd.isna(value) or value == "" or (column == "kind" and value not in LOCK_KINDS)
    ]
    _raise_if_problems(problems, source=source)
    return trimmed.drop_duplicates().reset_index(drop=True).astype("str")


def read_locks(path: Path | str) -> pd.DataFrame:
    """Read a manager's locks CSV (household_id, worker_id, kind = assign | exclude).

    Extra columns (a manager's notes) are ignored with a warning. Raises AllocationInputError naming
    the file, line and column of every problem.
    """
    path = Path(path)
    if not path.is_file():
        raise AllocationInputError(f"{path}: locks file not found")
    try:
        locks = pd.read_csv(path, dtype="str", keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise AllocationInputError(f"{path}: not a readable CSV file ({error})") from None
    locks = locks.rename(columns=lambda name: str(name).strip().lower())
    extra = sorted(set(locks.columns) - set(LOCK_COLUMNS))
    if extra:
        logger.warning("%s: ignoring extra column(s): %s", path.name, ", ".join(extra))
    return validate_locks(locks.replace("", pd.NA), source=str(path))
