"""The household's story across agencies, and what changed since last week.

The timeline lists every record partners had shared by the as-of date (events by when they
happened, key-worker cases by when they opened and closed), most recent first, in plain words from
the reviewed templates. A person is shown only as "a child" or "an adult" (from the birth year at
the time of the record), never by any identifier. "What changed" compares this week's explanation
with last week's: risk then and now, the records shared in between, reasons that appeared or faded.

One household's records are handled as plain numpy columns: an explanation for the API must take
milliseconds, and pandas' per-call overhead on tiny frames would dominate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import ARREARS_TYPES
from features.contract import EVENT_TYPES
from models._reasons import Templates, pounds, whole_numbers

ADULT_AGE = 18
RECORD_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("event_id", "event_type", "source", "person_id", "occurred_at", "known_at", "value"),
    "cases": ("case_id", "opened_at", "closed_at", "close_reason"),
    "people": ("person_id", "birth_year"),
}
HouseholdTables = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class HouseholdRecords:
    """Events, cases and people as columns sorted by household, so one household is a slice."""

    columns: Mapping[str, Mapping[str, np.ndarray]]
    spans: Mapping[str, Mapping[str, tuple[int, int]]]


def _columns(table: pd.DataFrame, name: str) -> dict[str, np.ndarray]:
    # Strings as Python objects (NaN where missing), dates as datetime64[ns], numbers as they are.
    return {
        column: table[column].to_numpy(dtype=object)
        if table[column].dtype == "str"
        else table[column].to_numpy()
        for column in RECORD_COLUMNS[name]
    }


def index_records(tables: Mapping[str, pd.DataFrame]) -> HouseholdRecords:
    """Index a snapshot's records by household (done once, e.g. when the API starts)."""
    columns, spans = {}, {}
    for name in RECORD_COLUMNS:
        table = tables[name].sort_values("household_id", kind="stable")
        household_ids = table["household_id"].to_numpy(dtype=object)
        starts = np.flatnonzero(np.r_[True, household_ids[1:] != household_ids[:-1]])
        stops = np.r_[starts[1:], len(household_ids)]
        columns[name] = _columns(table, name)
        spans[name] = {
            household_ids[start]: (int(start), int(stop))
            for start, stop in zip(starts, stops, strict=True)
            if len(household_ids)
        }
    return HouseholdRecords(columns=columns, spans=spans)


def household_tables(
    records: HouseholdRecords | Mapping[str, pd.DataFrame], household_id: str
) -> HouseholdTables:
    """One household's events, cases and people as columns, from an index or the tables."""
    if isinstance(records, HouseholdRecords):
        return {
            name: {
                column: values[slice(*records.spans[name].get(household_id, (0, 0)))]
                for column, values in records.columns[name].items()
            }
            for name in RECORD_COLUMNS
        }
    return {
        name: _columns(records[name].loc[records[name]["household_id"] == household_id], name)
        for name in RECORD_COLUMNS
    }


def _agency(name: str) -> str:
    return name[:1].upper() + name[1:]


def event_entries(household: HouseholdTables, *, as_of, templates: Templates) -> list[dict]:
    """Timeline entries of the household's events shared by `as_of`."""
    events = household["events"]
    known = events["known_at"] <= np.datetime64(pd.Timestamp(as_of), "ns")
    values = events["value"][known].astype(np.float64)
    money, counts = pounds(values).astype(object), whole_numbers(values).astype(object)
    occurred = events["occurred_at"][known].astype("datetime64[D]")
    dates = np.datetime_as_string(occurred, unit="D")
    shared = np.datetime_as_string(events["known_at"][known], unit="D")
    years = occurred.astype("datetime64[Y]").astype(np.int64) + 1970
    people = household["people"]
    birth_years = dict(zip(people["person_id"], people["birth_year"], strict=True))
    words, sections = templates.sections["timeline"], templates.sections
    entries = []
    for row, (event_id, event_type, source, person) in enumerate(
        zip(
            events["event_id"][known],
            events["event_type"][known],
            events["source"][known],
            events["person_id"][known],
            strict=True,
        )
    ):
        value = money[row] if event_type in ARREARS_TYPES else counts[row]
        birth_year = birth_years.get(person) if isinstance(person, str) else None
        about = None
        if birth_year is not None:
            about = words["child"] if years[row] - birth_year < ADULT_AGE else words["adult"]
        entries.append(
            {
                "date": str(dates[row]),
                "shared": str(shared[row]),
                "agency": _agency(sections["agency_names"][source]),
                "what": sections["events"][event_type]["record"].format(value=value),
                "about": about,
                "crisis": EVENT_TYPES[event_type].crisis,
                "_order": str(event_id),
            }
        )
    return entries


def case_entries(household: HouseholdTables, *, as_of, templates: Templates) -> list[dict]:
    """Timeline entries for key-worker cases opening and closing by `as_of`."""
    as_of = np.datetime64(pd.Timestamp(as_of), "ns")
    words = templates.sections["timeline"]
    cases = household["cases"]
    entries = []
    for case_id, opened, closed, reason in zip(
        cases["case_id"], cases["opened_at"], cases["closed_at"], cases["close_reason"], strict=True
    ):
        moments = [(opened, words["case_opened"])]
        if not np.isnat(closed):
            reason_words = templates.sections["close_reasons"].get(reason, "")
            moments.append((closed, words["case_closed"].format(reason=reason_words)))
        entries += [
            {
                "date": str(np.datetime_as_string(moment, unit="D")),
                "shared": str(np.datetime_as_string(moment, unit="D")),
                "agency": _agency(words["early_help"]),
                "what": what,
                "about": None,
                "crisis": False,
                "_order": f"{case_id}:{index}",
            }
            for index, (moment, what) in enumerate(moments)
            if moment <= as_of
        ]
    return entries


def timeline(household: HouseholdTables, *, as_of, templates: Templates) -> list[dict]:
    """Events and case moments, most recent first (ties: latest shared, then record order)."""
    entries = event_entries(household, as_of=as_of, templates=templates)
    entries += case_entries(household, as_of=as_of, templates=templates)
    entries.sort(key=lambda entry: (entry["date"], entry["shared"], entry["_order"]), reverse=True)
    for entry in entries:
        del entry["_order"]
    return entries


def shared_since(entries: list[dict], *, since) -> list[dict]:
    """The entries shared after `since` (the new records of the week)."""
    after = pd.Timestamp(since).date().isoformat()
    return [entry for entry in entries if entry["shared"] > after]


def what_changed(
    *,
    now: Mapping[str, object],
    then: Mapping[str, object] | None,
    previous_as_of: pd.Timestamp,
    new_records: list[dict],
) -> dict[str, object]:
    """This week's explanation against last week's: risk, new records, reasons in and out."""
    now_reasons = {reason["group"]: reason["text"] for reason in now["reasons"]}
    then_reasons = {} if then is None else {r["group"]: r["text"] for r in then["reasons"]}
    return {
        "previous_as_of": previous_as_of.date().isoformat(),
        "risk_then": None if then is None else then["risk"],
        "risk_now": now["risk"],
        "band_then": None if then is None else then["band"],
        "band_now": now["band"],
        "risk_change": None if then is None else now["risk"] - then["risk"],
        "new_records": new_records,
        "reasons_appeared": [text for key, text in now_reasons.items() if key not in then_reasons],
        "reasons_faded": [text for key, text in then_reasons.items() if key not in now_reasons],
    }
