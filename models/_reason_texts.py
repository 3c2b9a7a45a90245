"""The text of each kind of reason: which template variant applies, and the figures it shows.

Each kind has a `_variants` function (which template applies to each row, -1 when the household
has nothing on record for the indicator, so it cannot be a reason) and a `_fields` function (the
formatted figures, for the rows being rendered only); KIND_FUNCTIONS holds them by kind. The
agencies reason names the agencies with a record in the last 26 weeks (the agencies_26w rule).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.build import TREND_WEEKS, WINDOWS_WEEKS
from features.contract import SOURCES, TENURES
from models._phrases import TEXT, days_ago, pounds, weeks_ago, whole_numbers
from models._reason_groups import ABSENCE_WINDOWS, NO_GROUP
from models._templates import Templates

AGENCY_WEEKS = 26
Columns = Mapping[str, np.ndarray]


def _chosen_window(values: Columns, pushes: Columns, names: list[str]) -> np.ndarray:
    """Per row, which of `names` (windows, shortest first) to show: the one that pushed the risk
    up most among those with a record in them; equal pushes go to the shortest window."""
    present = np.column_stack([values[name] > 0 for name in names])
    push = np.column_stack([pushes[name] for name in names])
    return np.argmax(np.where(present, push, -np.inf), axis=1)


def _pick(values: Columns, names: list[str], window: np.ndarray) -> np.ndarray:
    return np.column_stack([values[name] for name in names])[np.arange(len(window)), window]


def _incident_names(key: str) -> list[str]:
    return [f"{key}_count_{weeks}w" for weeks in WINDOWS_WEEKS]


def _incidents_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    window = _chosen_window(values, pushes, _incident_names(key))
    count = _pick(values, _incident_names(key), window)
    known = ~np.isnan(values[f"{key}_days_since"])
    return np.where(count > 1, 1, np.where(count == 1, 0, np.where(known, 2, NO_GROUP)))


def _incidents_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    window = _chosen_window(values, pushes, _incident_names(key))
    count = _pick(values, _incident_names(key), window)
    nouns = templates.sections["events"][key]
    return {
        "count": whole_numbers(count),
        "weeks": np.array(WINDOWS_WEEKS)[window].astype(TEXT),
        "latest": days_ago(values[f"{key}_days_since"]),
        "noun": np.where(count > 1, nouns["many"], nouns["one"]).astype(TEXT),
    }


def _totals_names(key: str) -> list[str]:
    return [f"{key}_count_{weeks}w" for weeks in WINDOWS_WEEKS]


def _totals_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    count = _pick(values, _totals_names(key), _chosen_window(values, pushes, _totals_names(key)))
    return np.where(count > 1, 1, np.where(count == 1, 0, NO_GROUP))


def _totals_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    window = _chosen_window(values, pushes, _totals_names(key))
    return {
        "count": whole_numbers(_pick(values, _totals_names(key), window)),
        "weeks": np.array(WINDOWS_WEEKS)[window].astype(TEXT),
    }


def _arrears_amounts(key: str, values: Columns) -> tuple[np.ndarray, np.ndarray]:
    # Compared in whole pounds, so a text never says "rose from £310 to £310".
    latest = np.rint(values[f"{key}_balance_latest"])
    before = np.rint(values[f"{key}_balance_{TREND_WEEKS}w_ago"])
    return latest, before


def _arrears_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    latest, before = _arrears_amounts(key, values)
    owed = latest > 0
    variant = np.full(len(latest), NO_GROUP)
    variant = np.where(owed & (latest < before), 3, variant)
    variant = np.where(owed & (latest == before), 2, variant)
    variant = np.where(owed & np.isnan(before), 1, variant)
    variant = np.where(owed & (latest > before), 0, variant)
    return np.where((latest == 0) & (before > 0), 4, variant)


def _arrears_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    latest, before = _arrears_amounts(key, values)
    weeks = np.full(len(latest), str(TREND_WEEKS), dtype=TEXT)
    return {"latest": pounds(latest), "before": pounds(before), "weeks": weeks}


def _absence_names() -> list[str]:
    return [f"school_absence_sessions_{weeks}w" for weeks in ABSENCE_WINDOWS]


def _absence_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    sessions = _pick(values, _absence_names(), _chosen_window(values, pushes, _absence_names()))
    sessions = np.rint(sessions)
    known = ~np.isnan(values["school_absence_days_since"])
    return np.where(sessions > 1, 1, np.where(sessions == 1, 0, np.where(known, 2, NO_GROUP)))


def _absence_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    window = _chosen_window(values, pushes, _absence_names())
    return {
        "sessions": whole_numbers(_pick(values, _absence_names(), window)),
        "weeks": np.array(ABSENCE_WINDOWS)[window].astype(TEXT),
        "latest": days_ago(values["school_absence_days_since"]),
    }


def _agencies_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    recent, change, year = (
        values["agencies_26w"],
        values["agencies_change_26w"],
        values["agencies_52w"],
    )
    variant = np.where(year > 1, 4, np.where(year == 1, 3, NO_GROUP))
    variant = np.where(recent > 1, np.where(change > 0, 2, 1), variant)
    return np.where(recent == 1, 0, variant)


def _agencies_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    recent = values["agencies_26w"]
    names = values.get("agency_names")
    if names is None:
        names = np.full(len(recent), "", dtype=TEXT)
    bracketed = np.strings.add(np.strings.add(" (", names), ")")
    return {
        "count": whole_numbers(np.where(recent > 0, recent, values["agencies_52w"])),
        "change": whole_numbers(values["agencies_change_26w"]),
        "names": np.where(np.strings.str_len(names) > 0, bracketed, "").astype(TEXT),
    }


def _household_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    # 0, 1, 2: none, one, many; children's variants first, then adults'.
    children = np.minimum(np.rint(values["children"]), 2).astype(np.int64)
    adults = np.minimum(np.rint(values["adults"]), 2).astype(np.int64)
    return np.where(pushes["children"] >= pushes["adults"], children, 3 + adults)


def _household_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    return {
        "children": whole_numbers(values["children"]),
        "adults": whole_numbers(values["adults"]),
    }


def _tenure_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    flags = np.column_stack([values[f"tenure_{name}"] == 1 for name in TENURES])
    return np.where(flags.any(axis=1), np.argmax(flags, axis=1), NO_GROUP)


def _tenure_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    return {}


def _case_variants(key: str, values: Columns, pushes: Columns) -> np.ndarray:
    is_open = values["case_open"] == 1
    previous = values["cases_previous"]
    variant = np.where(previous > 1, 3, np.where(previous == 1, 2, NO_GROUP))
    return np.where(is_open, np.where(values["case_open_weeks"] >= 1, 1, 0), variant)


def _case_fields(key: str, values: Columns, pushes: Columns, templates: Templates) -> dict:
    return {
        "open_weeks": whole_numbers(values["case_open_weeks"]),
        "previous": whole_numbers(values["cases_previous"]),
        "closed": weeks_ago(values["case_closed_weeks_ago"]),
    }


KIND_FUNCTIONS = {
    "incidents": (_incidents_variants, _incidents_fields),
    "totals": (_totals_variants, _totals_fields),
    "arrears": (_arrears_variants, _arrears_fields),
    "school_absence": (_absence_variants, _absence_fields),
    "agencies": (_agencies_variants, _agencies_fields),
    "household": (_household_variants, _household_fields),
    "tenure": (_tenure_variants, _tenure_fields),
    "case_history": (_case_variants, _case_fields),
}


# --- agency names for the agencies reason ------------------------------------------------------


def positions(values: pd.Series, universe) -> np.ndarray:
    """Position of each value in `universe` (-1 when absent), hashed in Arrow for speed."""
    found = pc.index_in(pa.array(values), value_set=pa.array(list(universe), type=pa.string()))
    return found.fill_null(-1).to_numpy().astype(np.intp)


def recent_agency_names(
    events: pd.DataFrame, *, household_ids: pd.Index, as_of, templates: Templates
) -> np.ndarray:
    """Per household, the agencies with a record in the last 26 weeks known by `as_of`, named as
    the templates say, in contract order (the same rule as the agencies_26w feature)."""
    as_of = np.datetime64(pd.Timestamp(as_of).normalize(), "ns")
    window_start = as_of - np.timedelta64(AGENCY_WEEKS * 7, "D")
    occurred = events["occurred_at"].to_numpy()
    recent = (events["known_at"].to_numpy() <= as_of) & (occurred > window_start)
    recent &= occurred <= as_of
    household = positions(events["household_id"].loc[recent], household_ids)
    source = positions(events["source"].loc[recent], SOURCES)
    keep = (household >= 0) & (source >= 0)
    masks = np.zeros(len(household_ids), dtype=np.int64)
    np.bitwise_or.at(masks, household[keep], np.left_shift(1, source[keep]).astype(np.int64))
    distinct, inverse = np.unique(masks, return_inverse=True)
    names = templates.sections["agency_names"]
    texts = [
        ", ".join(names[source] for bit, source in enumerate(SOURCES) if mask >> bit & 1)
        for mask in distinct
    ]
    return np.array(texts, dtype=TEXT)[inverse.reshape(-1)]


def household_agency_names(events: Mapping[str, np.ndarray], *, as_of, templates: Templates) -> str:
    """`recent_agency_names` for one household's events given as columns."""
    as_of = np.datetime64(pd.Timestamp(as_of).normalize(), "ns")
    occurred = events["occurred_at"]
    recent = (events["known_at"] <= as_of) & (occurred <= as_of)
    recent &= occurred > as_of - np.timedelta64(AGENCY_WEEKS * 7, "D")
    found = set(events["source"][recent])
    names = templates.sections["agency_names"]
    return ", ".join(names[source] for source in SOURCES if source in found)
