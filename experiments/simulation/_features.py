"""Weekly features in a simulation without re-reading the whole history every week.

The product's features (`features.build.features_as_of`) look at 4-52 week windows, the latest
record of each event type (days since) and the latest arrears balances (now and 13 weeks ago).
An event that occurred 52 or more weeks before the as-of date and is already known can only
matter through those "latest" values, so the history is compacted: of such old events, only the
latest of each household and event type is kept (latest occurred day, then largest value: the
same tie rule as the arrears features). Windows never reach them again, the "latest" rules pick
the same row, and as-of dates only move forward, so the features equal those built from the full
history (tested). New events are encoded once, when they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.build import WINDOWS_WEEKS, PreparedTables, features_as_of, prepare_tables
from features.contract import column_names

OLD_AFTER_DAYS = max(WINDOWS_WEEKS) * 7


@dataclass(frozen=True)
class LiveHistory:
    """Encoded events (compacted old ones + recent ones) and the tables features need."""

    prepared: PreparedTables
    compacted_through: int  # as-of day of the last compaction


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="str") for name in column_names("events")})


def _day(as_of) -> int:
    return int(pd.Timestamp(as_of).normalize().value // 86_400_000_000_000)


def start_history(*, households: pd.DataFrame, events: pd.DataFrame, cases: pd.DataFrame, as_of):
    """The encoded history of a city as of a date, compacted."""
    prepared = prepare_tables({"households": households, "events": events, "cases": cases})
    return compact(LiveHistory(prepared=prepared, compacted_through=-(2**31)), as_of=as_of)


def compact(history: LiveHistory, *, as_of) -> LiveHistory:
    """Keep every recent or not-yet-known event, and the latest old one per household and type."""
    as_of_day = _day(as_of)
    encoded = history.prepared.encoded_events
    old = (encoded["known_day"].to_numpy() <= as_of_day) & (
        encoded["occurred_day"].to_numpy() <= as_of_day - OLD_AFTER_DAYS
    )
    older = encoded.loc[old]
    order = np.lexsort(
        (
            older["value"].to_numpy(),
            older["occurred_day"].to_numpy(),
            older["event_type"].to_numpy(),
            older["household"].to_numpy(),
        )
    )
    latest_old = older.iloc[order].drop_duplicates(["household", "event_type"], keep="last")
    kept = pd.concat([latest_old, encoded.loc[~old]], ignore_index=True)
    return LiveHistory(
        prepared=replace(history.prepared, encoded_events=kept), compacted_through=as_of_day
    )


def add_events(history: LiveHistory, *, events: pd.DataFrame) -> LiveHistory:
    """Encode a week's new events (only those) and append them."""
    if events.empty:
        return history
    encoded = prepare_tables(
        {
            "households": history.prepared.households.reset_index(),
            "events": events,
            "cases": history.prepared.cases,
        }
    ).encoded_events
    joined = pd.concat([history.prepared.encoded_events, encoded], ignore_index=True)
    return replace(history, prepared=replace(history.prepared, encoded_events=joined))


def live_features(
    history: LiveHistory,
    *,
    as_of,
    cases: pd.DataFrame,
    households: pd.DataFrame | None = None,
    compact_every_days: int = 28,
) -> tuple[LiveHistory, pd.DataFrame]:
    """Features as of a date (compacting first when due); households refreshes composition."""
    if _day(as_of) - history.compacted_through >= compact_every_days:
        history = compact(history, as_of=as_of)
    prepared = replace(history.prepared, cases=cases)
    if households is not None:
        prepared = replace(
            prepared,
            households=households.set_index("household_id").reindex(prepared.household_ids),
        )
    history = replace(history, prepared=prepared)
    return history, features_as_of(prepared, as_of=as_of)


def no_events() -> pd.DataFrame:
    """An empty events table (the needs of a household do not depend on the reason texts)."""
    return _empty_events()
