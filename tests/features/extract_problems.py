"""Helpers for the contract tests: break one cell of the valid extract, then read the refusal.

A row `r` (0-based in the test's DataFrame) is data row r + 1, on line r + 2 of a plain CSV file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.validation import ContractError, Problem, read_extract

Tables = dict[str, pd.DataFrame]
# (table, change, column, words the message must contain)
Violation = tuple[str, Callable[[Tables], int], str, str]


def event_row(tables: Tables, event_type: str) -> int:
    return int(np.flatnonzero(tables["events"]["event_type"] == event_type)[0])


def set_cell(table: str, row: int | Callable[[Tables], int], column: str, value: str):
    """A change to one cell; `row` may depend on the tables (e.g. the row of one event type)."""

    def change(tables: Tables) -> int:
        place = row(tables) if callable(row) else row
        tables[table].loc[place, column] = value
        return place

    return change


def refused(folder: Path) -> ContractError:
    with pytest.raises(ContractError) as caught:
        read_extract(folder)
    return caught.value


def only_problem(error: ContractError) -> Problem:
    assert error.total == 1, error.report()
    return error.problems[0]
