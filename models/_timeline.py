"""The household's story across agencies, and what changed since last week.

The timeline lists every record partners had shared by the as-of date (events by when they
happened, key-worker cases by when they opened and closed), most recent first, in plain words from
the reviewed templates. A person is shown only as "a child" or "an adult" (from the birth year at
the time of the record), never by any identifier. "What changed" compares this week's explanation
with last week's: risk then and now, the records shared in between, reasons that appeared or faded.
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
RECORD_TABLES: tuple[str, ...] = ("events", "cases", "people")


@dataclass(frozen=True)
class HouseholdRecords:
    """Events, cases and people sorted by household once, so one household's rows are a slice."""

    tables: Mapping[str, pd.DataFrame]
    spans: Mapping[str, Mapping[str, tuple[int, int]]]


def index_records(tables: Mapping[str, pd.DataFrame]) -> HouseholdRecords:
    """Index a snapshot's records by household (done once, e.g. when the API starts)."""
    sorted_tables, spans = {}, {}
    for name in RECORD_TABLES:
        table = tables[name].sort_values("household_id", kind="stable").reset_index(drop=True)
        household_ids = table["household_id"].to_numpy(dtype=object)
        starts, stops = _runs(household_ids)
        sorted_tables[name] = table
        spans[name] = {
            household_ids[start]: (int(start), int(stop))
            for start, stop in zip(starts, stops, strict=True)
        }
    return HouseholdRecords(tables=sorted_tables, spans=spans)


def _runs(sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(sorted_ids):
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    return starts, np.r_[starts[1:], len(sorted_ids)]


def household_tables(
    records: HouseholdRecords | Mapping[str, pd.DataFrame], household_id: str
) -> dict[str, pd.DataFrame]:
    """One household's events, cases and people, from an index or from the whole tables."""
    if isinstance(records, HouseholdRecords):
        return {
            name: records.tables[name].iloc[slice(*records.spans[name].get(household_id, (0, 0)))]
            for name in RECORD_TABLES
        }
    return {
        name: records[name].loc[records[name]["household_id"] == household_id]
        for name in RECORD_TABLES
    }


def _agency(name: str) -> str:
    return name[:1].upper() + name[1:]


def _birth_years(household: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    return dict(
        zip(
            household["people"]["person_id"].to_numpy(dtype=object),
            household["people"]["birth_year"].to_numpy(),
            strict=True,
        )
    )


def event_entries(
    household: Mapping[str, pd.DataFrame], *, as_of, templates: Templates, shared_after=None
) -> list[dict]:
    """Timeline entries of the household's events known by `as_of` (and after `shared_after`)."""
    events = household["events"]
    known = events["known_at"] <= pd.Timestamp(as_of)
    if shared_after is not None:
        known &= events["known_at"] > pd.Timestamp(shared_after)
    events = events.loc[known]
    birth_years = _birth_years(household)
    words = templates.sections["timeline"]
    money = pounds(events["value"].to_numpy(np.float64)).astype(object)
    counts = whole_numbers(events["value"].to_numpy(np.float64)).astype(object)
    entries = []
    for row, (event_id, event_type, source, occurred, shared, person) in enumerate(
        zip(
            events["event_id"],
            events["event_type"],
            events["source"],
            events["occurred_at"],
            events["known_at"],
            events["person_id"],
            strict=True,
        )
    ):
        value = money[row] if event_type in ARREARS_TYPES else counts[row]
        birth_year = birth_years.get(person) if isinstance(person, str) else None
        about = None
        if birth_year is not None:
            about = words["child"] if occurred.year - birth_year < ADULT_AGE else words["adult"]
        entries.append(
            {
                "date": occurred.date().isoformat(),
                "shared": shared.date().isoformat(),
                "agency": _agency(templates.sections["agency_names"][source]),
                "what": templates.sections["events"][event_type]["record"].format(value=value),
                "about": about,
                "crisis": EVENT_TYPES[event_type].crisis,
                "_order": str(event_id),
            }
        )
    return entries


def case_entries(
    household: Mapping[str, pd.DataFrame], *, as_of, templates: Templates, shared_after=None
) -> list[dict]:
    """Timeline entries for key-worker cases opening and closing by `as_of`."""
    as_of = pd.Timestamp(as_of)
    after = pd.Timestamp.min if shared_after is None else pd.Timestamp(shared_after)
    words = templates.sections["timeline"]
    entries = []
    for case_id, opened, closed, reason in zip(
        household["cases"]["case_id"],
        household["cases"]["opened_at"],
        household["cases"]["closed_at"],
        household["cases"]["close_reason"],
        strict=True,
    ):
        moments = [(opened, words["case_opened"])]
        if pd.notna(closed):
            reason_words = templates.sections["close_reasons"].get(reason, "")
            moments.append((closed, words["case_closed"].format(reason=reason_words)))
        entries += [
            {
                "date": moment.date().isoformat(),
                "shared": moment.date().isoformat(),
                "agency": _agency(words["early_help"]),
                "what": what,
                "about": None,
                "crisis": False,
                "_order": f"{case_id}:{index}",
            }
            for index, (moment, what) in enumerate(moments)
            if after < moment <= as_of
        ]
    return entries


def timeline(
    household: Mapping[str, pd.DataFrame], *, as_of, templates: Templates, shared_after=None
) -> list[dict]:
    """Events and case moments, most recent first (ties: latest shared, then record order)."""
    entries = event_entries(
        household, as_of=as_of, templates=templates, shared_after=shared_after
    ) + case_entries(household, as_of=as_of, templates=templates, shared_after=shared_after)
    entries.sort(key=lambda entry: (entry["date"], entry["shared"], entry["_order"]), reverse=True)
    for entry in entries:
        del entry["_order"]
    return entries


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
