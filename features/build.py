"""As-of-date features: one row per household, using only what partners had shared by that date.

The knowledge date rule: an event counts only when `known_at <= as_of`. Windows are measured on
`occurred_at` (a call-out 3 weeks ago, shared yesterday, is a call-out in the 4-week window), but an
event not yet shared never counts, whatever its occurred_at.
Case history uses opened_at/closed_at, which the council itself records on the day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features._encode import (
    EVENT_TYPE_ORDER,
    SOURCE_OF_TYPE,
    SOURCE_ORDER,
    day_number,
    encode_events,
    household_index,
)
from features.cases import is_open, opened_by
from features.contract import CLOSE_REASONS, EVENT_TYPES, TENURES

WINDOWS_WEEKS: tuple[int, ...] = (4, 13, 26, 52)
ARREARS_TYPES: tuple[str, ...] = ("rent_arrears", "council_tax_arrears")
TREND_WEEKS = 13
RISE_WINDOWS_WEEKS: tuple[int, ...] = (26, 52)
# Half-lives of the decayed contact and crisis counts: a household's recent intensity of contact
# across every agency says more about its need now than any one agency's count.
HALF_LIVES_WEEKS: tuple[int, ...] = (4, 13, 26)
STATEMENT_TYPES: tuple[str, ...] = (*ARREARS_TYPES, "school_absence")
IS_CRISIS: np.ndarray = np.array([EVENT_TYPES[name].crisis for name in EVENT_TYPE_ORDER])
# Contacts: incidents any agency records (call-outs, attendances, claims ...); not the periodic
# statements (arrears balances, absence returns) and not crises.
IS_CONTACT: np.ndarray = ~IS_CRISIS & ~np.isin(EVENT_TYPE_ORDER, STATEMENT_TYPES)


@dataclass(frozen=True)
class PreparedTables:
    """The tables feature building needs, with events encoded once for many as-of dates."""

    households: pd.DataFrame
    household_ids: pd.Index
    encoded_events: pd.DataFrame
    cases: pd.DataFrame


def prepare_tables(tables: Mapping[str, pd.DataFrame]) -> PreparedTables:
    """Encode a snapshot's tables for fast repeated feature building."""
    household_ids = household_index(tables["households"])
    households = tables["households"].set_index("household_id").reindex(household_ids)
    return PreparedTables(
        households=households,
        household_ids=household_ids,
        encoded_events=encode_events(tables["events"], households=household_ids),
        cases=tables["cases"],
    )


def build_features(store, as_of) -> pd.DataFrame:
    """Features for every household as of one date, from a Store or a mapping of contract tables."""
    tables = store.read_tables() if hasattr(store, "read_tables") else store
    return features_as_of(prepare_tables(tables), as_of=as_of)


def build_feature_frames(prepared: PreparedTables, *, as_of_dates: Iterable) -> pd.DataFrame:
    """Features for several as-of dates, stacked, with an `as_of` column (the training cohort)."""
    frames = [
        features_as_of(prepared, as_of=as_of).assign(as_of=pd.Timestamp(as_of))
        for as_of in as_of_dates
    ]
    return pd.concat(frames).set_index("as_of", append=True)


def features_as_of(prepared: PreparedTables, *, as_of) -> pd.DataFrame:
    """All feature groups as of one date, indexed by household_id, sorted by household_id."""
    as_of_day = day_number(pd.Timestamp(as_of))
    known_events = _known_events(prepared.encoded_events, as_of_day=as_of_day)
    n_households = len(prepared.household_ids)
    groups = [
        _event_counts(known_events, as_of_day=as_of_day, n_households=n_households),
        _event_recency(known_events, as_of_day=as_of_day, n_households=n_households),
        _contact_intensity(known_events, as_of_day=as_of_day, n_households=n_households),
        _arrears(known_events, as_of_day=as_of_day, n_households=n_households),
        _school_absence(known_events, as_of_day=as_of_day, n_households=n_households),
        _agencies(known_events, as_of_day=as_of_day, n_households=n_households),
        _composition(prepared.households),
        _case_history(prepared.cases, as_of=pd.Timestamp(as_of), households=prepared.household_ids),
    ]
    return pd.concat(groups, axis=1).set_axis(prepared.household_ids, axis=0)


def _known_events(encoded_events: pd.DataFrame, *, as_of_day: int) -> pd.DataFrame:
    known = encoded_events["known_day"].to_numpy() <= as_of_day
    return encoded_events.loc[known & (encoded_events["household"].to_numpy() >= 0)]


def _event_counts(known_events: pd.DataFrame, *, as_of_day: int, n_households: int) -> pd.DataFrame:
    n_types = len(EVENT_TYPE_ORDER)
    key = known_events["household"].to_numpy(np.int64) * n_types + known_events["event_type"]
    age_days = as_of_day - known_events["occurred_day"].to_numpy()
    columns = {}
    for weeks in WINDOWS_WEEKS:
        in_window = age_days < weeks * 7
        counts = np.bincount(key[in_window], minlength=n_households * n_types)
        for position, name in enumerate(EVENT_TYPE_ORDER):
            columns[f"{name}_count_{weeks}w"] = counts[position::n_types].astype(np.int32)
    return pd.DataFrame(columns)


def _event_recency(
    known_events: pd.DataFrame, *, as_of_day: int, n_households: int
) -> pd.DataFrame:
    n_types = len(EVENT_TYPE_ORDER)
    key = known_events["household"].to_numpy(np.int64) * n_types + known_events["event_type"]
    latest_day = np.full(n_households * n_types, np.iinfo(np.int32).min, dtype=np.int64)
    np.maximum.at(latest_day, key.to_numpy(), known_events["occurred_day"].to_numpy(np.int64))
    days_since = np.where(latest_day > np.iinfo(np.int32).min, as_of_day - latest_day, np.nan)
    return pd.DataFrame(
        {
            f"{name}_days_since": days_since[position::n_types]
            for position, name in enumerate(EVENT_TYPE_ORDER)
        }
    )


def _by_household_and_day(records: pd.DataFrame) -> pd.DataFrame:
    # Two records on the same day: the larger balance counts as later, so file order never matters.
    order = np.lexsort(
        (records["value"].to_numpy(), records["occurred_day"].to_numpy(), records["household"])
    )
    return records.iloc[order]


def _latest_value(ordered: pd.DataFrame, *, n_households: int) -> np.ndarray:
    latest = np.full(n_households, np.nan)
    households = ordered["household"].to_numpy()
    last_of_household = np.r_[households[1:] != households[:-1], True] if len(households) else []
    latest[households[last_of_household]] = ordered["value"].to_numpy()[last_of_household]
    return latest


def _rises(ordered: pd.DataFrame, *, as_of_day: int, n_households: int) -> dict[str, np.ndarray]:
    """How often, and by how much, a balance went up from one statement to the next."""
    households = ordered["household"].to_numpy()
    step = np.diff(ordered["value"].to_numpy(), prepend=np.nan)
    step[np.r_[True, households[1:] != households[:-1]] if len(households) else []] = 0.0
    age_days = as_of_day - ordered["occurred_day"].to_numpy()
    rose = step > 0
    columns = {}
    for weeks in RISE_WINDOWS_WEEKS:
        in_window = age_days < weeks * 7
        columns[f"rises_{weeks}w"] = np.bincount(
            households[in_window & rose], minlength=n_households
        ).astype(np.int32)
        columns[f"risen_{weeks}w"] = np.bincount(
            households[in_window & rose], weights=step[in_window & rose], minlength=n_households
        )
    return columns


def _arrears(known_events: pd.DataFrame, *, as_of_day: int, n_households: int) -> pd.DataFrame:
    columns = {}
    for name in ARREARS_TYPES:
        records = known_events.loc[known_events["event_type"] == EVENT_TYPE_ORDER.index(name)]
        ordered = _by_household_and_day(records)
        earlier = ordered.loc[ordered["occurred_day"].to_numpy() <= as_of_day - TREND_WEEKS * 7]
        latest = _latest_value(ordered, n_households=n_households)
        before = _latest_value(earlier, n_households=n_households)
        # A debt first recorded within the window is a rise from nothing.
        before_or_zero = np.where(np.isnan(before) & ~np.isnan(latest), 0.0, before)
        columns[f"{name}_balance_latest"] = latest
        columns[f"{name}_balance_{TREND_WEEKS}w_ago"] = before
        columns[f"{name}_change_{TREND_WEEKS}w"] = latest - before_or_zero
        rises = _rises(ordered, as_of_day=as_of_day, n_households=n_households)
        columns |= {f"{name}_{key}": values for key, values in rises.items()}
    return pd.DataFrame(columns)


def _contact_intensity(
    known_events: pd.DataFrame, *, as_of_day: int, n_households: int
) -> pd.DataFrame:
    """Contacts and crises over all agencies: counts per window, decayed counts, variety."""
    event_type = known_events["event_type"].to_numpy()
    households = known_events["household"].to_numpy()
    age_days = as_of_day - known_events["occurred_day"].to_numpy()
    # Nothing older than the longest window counts, so a year-old history is enough to rebuild it.
    in_year = age_days < max(WINDOWS_WEEKS) * 7
    columns = {}
    for kind, is_kind in (("contacts", IS_CONTACT[event_type]), ("crises", IS_CRISIS[event_type])):
        for weeks in WINDOWS_WEEKS:
            chosen = is_kind & (age_days < weeks * 7)
            columns[f"{kind}_count_{weeks}w"] = np.bincount(
                households[chosen], minlength=n_households
            ).astype(np.int32)
        for half_life in HALF_LIVES_WEEKS:
            chosen = is_kind & in_year
            columns[f"{kind}_decayed_{half_life}w"] = np.bincount(
                households[chosen],
                weights=0.5 ** (age_days[chosen] / (7.0 * half_life)),
                minlength=n_households,
            )
    n_types = len(EVENT_TYPE_ORDER)
    present = np.zeros(n_households * n_types, dtype=bool)
    present[households[in_year].astype(np.int64) * n_types + event_type[in_year]] = True
    columns["event_types_52w"] = present.reshape(n_households, n_types).sum(axis=1).astype(np.int32)
    return pd.DataFrame(columns)


def _school_absence(
    known_events: pd.DataFrame, *, as_of_day: int, n_households: int
) -> pd.DataFrame:
    records = known_events.loc[
        known_events["event_type"] == EVENT_TYPE_ORDER.index("school_absence")
    ]
    age_days = as_of_day - records["occurred_day"].to_numpy()
    columns = {}
    for weeks in WINDOWS_WEEKS[1:]:
        in_window = age_days < weeks * 7
        columns[f"school_absence_sessions_{weeks}w"] = np.bincount(
            records["household"].to_numpy()[in_window],
            weights=records["value"].to_numpy()[in_window],
            minlength=n_households,
        )
    return pd.DataFrame(columns)


def _agencies(known_events: pd.DataFrame, *, as_of_day: int, n_households: int) -> pd.DataFrame:
    n_sources = len(SOURCE_ORDER)
    age_days = as_of_day - known_events["occurred_day"].to_numpy()
    source = SOURCE_OF_TYPE[known_events["event_type"].to_numpy()]
    key = known_events["household"].to_numpy(np.int64) * n_sources + source

    def distinct_sources(mask: np.ndarray) -> np.ndarray:
        present = np.bincount(key[mask], minlength=n_households * n_sources) > 0
        return present.reshape(n_households, n_sources).sum(axis=1)

    recent = distinct_sources(age_days < 26 * 7)
    previous = distinct_sources((age_days >= 26 * 7) & (age_days < 52 * 7))
    return pd.DataFrame(
        {
            "agencies_26w": recent.astype(np.int32),
            "agencies_change_26w": (recent - previous).astype(np.int32),
            "agencies_52w": distinct_sources(age_days < 52 * 7).astype(np.int32),
        }
    )


def _composition(households: pd.DataFrame) -> pd.DataFrame:
    tenure = households["tenure"].to_numpy(dtype=object)
    columns = {
        "adults": households["adults"].to_numpy(np.int32),
        "children": households["children"].to_numpy(np.int32),
    }
    columns |= {f"tenure_{name}": (tenure == name).astype(np.int8) for name in TENURES}
    return pd.DataFrame(columns)


def _case_history(
    cases: pd.DataFrame, *, as_of: pd.Timestamp, households: pd.Index
) -> pd.DataFrame:
    started = opened_by(cases, as_of=as_of)
    still_open = is_open(started, as_of=as_of)
    closed, open_now = started.loc[~still_open], started.loc[still_open]
    closed_counts = closed.groupby("household_id").size()
    by_reason = closed.groupby(["household_id", "close_reason"]).size().unstack(fill_value=0)
    last_closed = closed.groupby("household_id")["closed_at"].max()
    open_since = open_now.groupby("household_id")["opened_at"].min()
    columns = {
        "cases_previous": closed_counts.reindex(households, fill_value=0).to_numpy(np.int32),
        "case_open": households.isin(open_now["household_id"]).astype(np.int8),
        "case_open_weeks": ((as_of - open_since).dt.days // 7).reindex(households).to_numpy(float),
        "case_closed_weeks_ago": ((as_of - last_closed).dt.days // 7)
        .reindex(households)
        .to_numpy(float),
    }
    for reason in CLOSE_REASONS:
        counts = by_reason[reason] if reason in by_reason else pd.Series(dtype=np.int64)
        columns[f"cases_closed_{reason}"] = counts.reindex(households, fill_value=0).to_numpy(
            np.int32
        )
    return pd.DataFrame(columns)
