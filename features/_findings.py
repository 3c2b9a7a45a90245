"""Collecting the problems of an extract: every problem is counted, the first few are kept.

Rules report problems by row mask; only the rows that can make it into the report are worded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Warnings are logged under the public module's name, as they were before the split.
logger = logging.getLogger("features.validation")

Arrow = pa.Array | pa.ChunkedArray

_QUOTED_LENGTH = 40


@dataclass(frozen=True)
class Entry:
    table: str
    row: int | None  # 0-based data row
    column: str | None
    message: str
    line: int | None = None


@dataclass
class Findings:
    """Problems found so far: all are counted, the first `limit` of each rule are kept."""

    limit: int
    entries: list[Entry] = field(default_factory=list)
    total: int = 0
    warnings: list[str] = field(default_factory=list)

    def note(self, table: str, message: str, *, column: str | None = None) -> None:
        self.total += 1
        self.entries.append(Entry(table, None, column, message))

    def note_lines(self, table: str, located: list[tuple[int | None, int]], message: str) -> None:
        """Problems at known (row, line) places, e.g. bytes that are not UTF-8."""
        self.total += len(located)
        for row, line in located[: self.limit]:
            self.entries.append(Entry(table, row, None, message, line))

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
            self.entries.append(Entry(table, row, column, message))

    def warn(self, message: str) -> None:
        logger.warning(message)
        self.warnings.append(message)


def quoted(value: object) -> str:
    """A cell value for a message, shortened so a stray text field cannot flood the report."""
    text = str(value)
    if len(text) > _QUOTED_LENGTH:
        text = text[: _QUOTED_LENGTH - 3] + "..."
    return repr(text)


def mask_of(array: Arrow) -> np.ndarray:
    """A boolean Arrow result as a numpy mask, with nulls as False."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def texts_at(array: Arrow, rows: np.ndarray) -> list:
    return array.take(pa.array(rows, pa.int64())).to_pylist()
