"""Validation of the allocation's inputs: scores, workers, cases and a manager's locks file.

Every problem is reported with its table (or file), row and column, never as a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from allocation._settings import AllocationInputError
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


def _missing_columns(frame: pd.DataFrame, required: tuple[str, ...] | list[str]) -> list[str]:
    return [column for column in required if column not in frame.columns]


def _blank(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype("str").str.strip() == "")


def split_skills(text: object) -> tuple[str, ...]:
    """Semicolon-separated skills -> tuple in contract order, duplicates dropped (empty -> ())."""
    if not isinstance(text, str):
        return ()
    named = {part.strip() for part in text.split(";") if part.strip()}
    return tuple(skill for skill in SKILLS if skill in named)


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


def validate_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Check the scores frame; return a copy with needs normalised (contract skill order)."""
    missing = _missing_columns(scores, SCORE_COLUMNS)
    if missing:
        raise AllocationInputError(f"scores: missing column(s) {', '.join(missing)}")
    risk = pd.to_numeric(scores["risk"], errors="coerce")
    rank = pd.to_numeric(scores["rank"], errors="coerce")
    problems = [
        *_row_problems(
            scores,
            _blank(scores["household_id"]),
            table="scores",
            key="household_id",
            column="household_id",
            why="empty",
        ),
        *_row_problems(
            scores,
            scores["household_id"].duplicated(keep="first"),
            table="scores",
            key="household_id",
            column="household_id",
            why="duplicate household",
        ),
        *_row_problems(
            scores,
            _blank(scores["locality"]),
            table="scores",
            key="household_id",
            column="locality",
            why="empty",
        ),
        *_row_problems(
            scores,
            risk.isna() | (risk < 0) | (risk > 1),
            table="scores",
            key="household_id",
            column="risk",
            why="must be a probability in [0, 1]",
        ),
        *_row_problems(
            scores,
            rank.isna() | (rank < 1),
            table="scores",
            key="household_id",
            column="rank",
            why="must be a whole number >= 1",
        ),
    ]
    # Needs lists repeat a lot: judge each distinct text once.
    distinct = pd.Series(scores["needs"].dropna().unique())
    unknown = set(distinct[distinct.map(_unknown_skills).map(bool)])
    problems += _row_problems(
        scores,
        scores["needs"].isin(unknown),
        table="scores",
        key="household_id",
        column="needs",
        why="unknown skill (see features.contract.SKILLS)",
    )
    _raise_if_problems(problems, source="scores")
    normal = {text: ";".join(split_skills(text)) for text in distinct}
    return scores.assign(
        risk=risk.astype("float64"),
        rank=rank.astype("int64"),
        needs=scores["needs"].map(normal).fillna("").astype("str"),
    )


def validate_workers(workers: pd.DataFrame) -> pd.DataFrame:
    """Check the workers table; return a copy with skills normalised."""
    missing = _missing_columns(workers, column_names("workers"))
    if missing:
        raise AllocationInputError(f"workers: missing column(s) {', '.join(missing)}")
    capacity = pd.to_numeric(workers["capacity_points"], errors="coerce")
    problems = [
        *_row_problems(
            workers,
            _blank(workers["worker_id"]),
            table="workers",
            key="worker_id",
            column="worker_id",
            why="empty",
        ),
        *_row_problems(
            workers,
            workers["worker_id"].duplicated(keep="first"),
            table="workers",
            key="worker_id",
            column="worker_id",
            why="duplicate worker",
        ),
        *_row_problems(
            workers,
            _blank(workers["locality"]),
            table="workers",
            key="worker_id",
            column="locality",
            why="empty",
        ),
        *_row_problems(
            workers,
            capacity.isna() | (capacity < 1),
            table="workers",
            key="worker_id",
            column="capacity_points",
            why="must be a whole number > 0",
        ),
        *_row_problems(
            workers,
            workers["skills"].map(_unknown_skills).map(bool),
            table="workers",
            key="worker_id",
            column="skills",
            why="unknown skill",
        ),
        *_row_problems(
            workers,
            ~workers["active"].isin([True, False]),
            table="workers",
            key="worker_id",
            column="active",
            why="must be true or false",
        ),
    ]
    _raise_if_problems(problems, source="workers")
    return workers.assign(
        capacity_points=capacity.astype("int64"),
        active=workers["active"].astype("bool"),
        skills=workers["skills"].map(lambda text: ";".join(split_skills(text))).astype("str"),
    )


def validate_cases(cases: pd.DataFrame, *, workers: pd.DataFrame) -> pd.DataFrame:
    """Check the cases table against the workers; return the open cases only."""
    required = [
        "case_id",
        "household_id",
        "worker_id",
        "opened_at",
        "closed_at",
        "complexity_points",
    ]
    missing = _missing_columns(cases, required)
    if missing:
        raise AllocationInputError(f"cases: missing column(s) {', '.join(missing)}")
    open_cases = cases.loc[cases["closed_at"].isna()]
    points = pd.to_numeric(open_cases["complexity_points"], errors="coerce")
    problems = [
        *_row_problems(
            open_cases,
            ~open_cases["worker_id"].isin(workers["worker_id"]),
            table="cases",
            key="case_id",
            column="worker_id",
            why="open case with a worker not in the workers table",
        ),
        *_row_problems(
            open_cases,
            points.isna() | (points < 1),
            table="cases",
            key="case_id",
            column="complexity_points",
            why="must be a whole number > 0",
        ),
        *_row_problems(
            open_cases,
            open_cases["household_id"].duplicated(keep="first"),
            table="cases",
            key="case_id",
            column="household_id",
            why="a second open case for this household (at most one is allowed)",
        ),
    ]
    _raise_if_problems(problems, source="cases (open cases)")
    return open_cases.assign(complexity_points=points.astype("int64"))


def validate_locks(locks: pd.DataFrame | None, *, source: str = "locks") -> pd.DataFrame:
    """Check a locks frame (household_id, worker_id, kind); return it trimmed and deduplicated."""
    if locks is None:
        return pd.DataFrame({column: pd.Series(dtype="str") for column in LOCK_COLUMNS})
    missing = _missing_columns(locks, LOCK_COLUMNS)
    if missing:
        raise AllocationInputError(f"{source}: missing column(s) {', '.join(missing)}")
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
