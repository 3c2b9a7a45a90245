"""Integer encoding of the event table, done once per snapshot and reused for every as-of date.

Feature building runs for dozens of as-of dates during training; encoding households, event types
and dates as small integers once makes each as-of date a handful of numpy passes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import EVENT_TYPES

EVENT_TYPE_ORDER: tuple[str, ...] = tuple(EVENT_TYPES)
SOURCE_ORDER: tuple[str, ...] = tuple(dict.fromkeys(kind.source for kind in EVENT_TYPES.values()))
SOURCE_OF_TYPE: np.ndarray = np.array(
    [SOURCE_ORDER.index(EVENT_TYPES[name].source) for name in EVENT_TYPE_ORDER], dtype=np.int8
)


def day_number(dates: pd.Series | pd.Timestamp) -> np.ndarray | int:
    """Days since 1970-01-01 as int32 (NaT becomes the minimum int32)."""
    if isinstance(dates, pd.Timestamp):
        return int(dates.normalize().value // 86_400_000_000_000)
    days = dates.to_numpy(dtype="datetime64[D]").astype(np.int64)
    return np.where(days < -(2**31), np.iinfo(np.int32).min, days).astype(np.int32)


def household_index(households: pd.DataFrame) -> pd.Index:
    """The households in a stable order (by id): every feature frame has this row order."""
    return pd.Index(np.sort(households["household_id"].to_numpy(dtype=object)), name="household_id")


def positions(values: pd.Series, universe) -> np.ndarray:
    """Position of each value in `universe` (-1 when absent).

    Hashed in Arrow: pandas string lookups are several times slower on millions of rows.
    """
    found = pc.index_in(pa.array(values), value_set=pa.array(list(universe), type=pa.string()))
    return found.fill_null(-1).to_numpy().astype(np.int32)


def encode_events(events: pd.DataFrame, *, households: pd.Index) -> pd.DataFrame:
    """Events as integers: household position, type code, occurred and known day, value."""
    return pd.DataFrame(
        {
            "household": positions(events["household_id"], households),
            "event_type": positions(events["event_type"], EVENT_TYPE_ORDER).astype(np.int8),
            "occurred_day": day_number(events["occurred_at"]),
            "known_day": day_number(events["known_at"]),
            "value": events["value"].to_numpy(dtype=np.float64),
        }
    )
