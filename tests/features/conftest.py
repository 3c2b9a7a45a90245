"""A small extract that keeps the contract, built in code, and a way to write it to a folder.

The tables are text, exactly as a partner would type them into a CSV, so that a test can break one
cell and check that the report points at that file, row and column.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from features.contract import EVENT_TYPES

HOUSEHOLD_IDS = ["H001", "H002", "H003", "H004", "H005", "H006"]
# person -> household, so that events can name people who really live there.
PERSON_HOMES = {
    "P01": "H001",
    "P02": "H001",
    "P03": "H002",
    "P04": "H003",
    "P05": "H003",
    "P06": "H004",
    "P07": "H005",
    "P08": "H006",
}


def _households() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": HOUSEHOLD_IDS,
            "locality": ["Tunstall", "Burslem", "Hanley", "Stoke", "Fenton", "Longton"],
            "ward": ["Tunstall", "Burslem Central", "Hanley Park", "Boothen", "Fenton", "Meir"],
            "tenure": ["council", "private_rent", "owner", "temporary", "unknown", "council"],
            "adults": ["2", "1", "2", "1", "1", "0"],
            "children": ["3", "1", "0", "2", "0", "2"],
        }
    )


def _people() -> pd.DataFrame:
    count = len(PERSON_HOMES)
    return pd.DataFrame(
        {
            "person_id": list(PERSON_HOMES),
            "household_id": list(PERSON_HOMES.values()),
            "birth_year": [str(1970 + 4 * place) for place in range(count)],
            "sex": (["female", "male", "other", "unknown"] * 2)[:count],
            "ethnicity": (["white", "mixed", "asian", "black", "other", "unknown"] * 2)[:count],
            "disability": (["yes", "no", "unknown"] * 3)[:count],
        }
    )


def _events() -> pd.DataFrame:
    """One event of every type in the vocabulary, with the right source and value rule."""
    people = list(PERSON_HOMES.items())
    rows = []
    for place, (event_type, kind) in enumerate(EVENT_TYPES.items()):
        person_id, household_id = people[place % len(people)]
        occurred = pd.Timestamp("2024-01-01") + pd.Timedelta(days=7 * place)
        rows.append(
            {
                "event_id": f"E{place + 1:03d}",
                "household_id": household_id,
                # Every third event is about the household rather than one person.
                "person_id": "" if place % 3 == 2 else person_id,
                "source": kind.source,
                "event_type": event_type,
                "occurred_at": occurred.strftime("%Y-%m-%d"),
                "known_at": (occurred + pd.Timedelta(days=place % 4)).strftime("%Y-%m-%d"),
                "value": f"{12.5 * (place + 1):.2f}" if kind.has_value else "",
            }
        )
    return pd.DataFrame(rows)


def _workers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "worker_id": ["W01", "W02", "W03"],
            "locality": ["Hanley", "Longton", "Tunstall"],
            "skills": ["debt;housing", "domestic_abuse;parenting;youth", "mental_health"],
            "capacity_points": ["100", "60", "100"],
            "active": ["true", "TRUE", "0"],
        }
    )


def _cases() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_id": ["C01", "C02", "C03", "C04"],
            "household_id": ["H001", "H001", "H002", "H003"],
            "worker_id": ["W01", "W02", "W01", "W03"],
            "opened_at": ["2023-06-01", "2024-01-10", "2024-02-01", "2023-09-15"],
            "closed_at": ["2023-12-01", "", "", "2024-03-01"],
            "complexity_points": ["30", "20", "15", "25"],
            "close_reason": ["resolved", "", "", "no_further_progress"],
        }
    )


def valid_tables() -> dict[str, pd.DataFrame]:
    """The five tables of a tiny extract that keeps every rule of the contract, as text."""
    return {
        "households": _households(),
        "people": _people(),
        "events": _events(),
        "workers": _workers(),
        "cases": _cases(),
    }


def write_tables(folder: Path, tables: dict[str, pd.DataFrame], *, fmt: str = "csv") -> Path:
    """Write tables into `folder` as `<name>.csv` (text as given) or `<name>.parquet`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if fmt == "csv":
            table.to_csv(folder / f"{name}.csv", index=False)
        else:
            table.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


@pytest.fixture
def make_tables() -> Callable[[], dict[str, pd.DataFrame]]:
    """The factory of fresh valid tables, for tests that need several copies."""
    return valid_tables


@pytest.fixture
def save_tables() -> Callable[..., Path]:
    """`write_tables(folder, tables, fmt=...)`, for tests that choose their own folder."""
    return write_tables


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    """A fresh copy of the valid tables that a test may break."""
    return valid_tables()


@pytest.fixture
def write_extract(tmp_path: Path) -> Callable[..., Path]:
    """Write tables to a new folder under tmp_path and return the folder."""
    counter = iter(range(1_000))

    def write(
        tables: dict[str, pd.DataFrame], *, fmt: str = "csv", name: str | None = None
    ) -> Path:
        folder = tmp_path / (name or f"extract-{next(counter)}")
        return write_tables(folder, tables, fmt=fmt)

    return write


@pytest.fixture
def extract_dir(write_extract: Callable[..., Path]) -> Path:
    """A folder holding the valid extract as CSV files."""
    return write_extract(valid_tables(), name="valid")
