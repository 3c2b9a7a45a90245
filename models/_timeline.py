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
from models._phrases import TEXT, pounds, whole_numbers
from models._templates import Templates, render

ADULT_AGE = 18
RECORD_COLUMNS: dict[str, tuple[str, ...]] = {
    "events": ("event_id", "event_type", "source", "person_id", "occurred_at", "known_at", "value"),
    "cases": ("case_id", "opened_at", "closed_at", "close_reason"),
    "people": ("person_id", "birth_year"),
}
HouseholdTables = dict[str, dict[str, np.ndarray]]
TIMELINE_FIELDS = ("date", "shared", "agency", "what", "about", "crisis")


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


@dataclass(frozen=True)
class Timelines:
    """Timeline entries of many households as columns: household `household_ids[i]` has rows
    `starts[i]:starts[i + 1]`, most recent first. Text columns are numpy StringDType; `about` is
    "" where the record is about nobody in particular."""

    household_ids: np.ndarray
    starts: np.ndarray
    columns: Mapping[str, np.ndarray]

    def rows(self, household_id: str) -> slice:
        at = int(np.searchsorted(self.household_ids, household_id))
        if at == len(self.household_ids) or self.household_ids[at] != household_id:
            return slice(0, 0)
        return slice(int(self.starts[at]), int(self.starts[at + 1]))


def _mapped(keys: np.ndarray, table: Mapping[str, object], *, dtype=TEXT) -> np.ndarray:
    """`table[key]` for every key (keys are a handful of codes: a plain lookup per row)."""
    return np.array([table[key] for key in keys.tolist()], dtype=dtype)


def _day_numbers(moments: np.ndarray) -> np.ndarray:
    return moments.astype("datetime64[D]").astype(np.int64)


def _day_text(days: np.ndarray) -> np.ndarray:
    """Day numbers as ISO dates; for many records each distinct day is formatted once."""
    if len(days) < 1_000:
        return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").astype(TEXT)
    first = days.min()
    calendar = np.arange(first, days.max() + 1).astype("datetime64[D]")
    return np.datetime_as_string(calendar, unit="D").astype(TEXT)[days - first]


def _what(event_types: np.ndarray, values: np.ndarray, *, templates: Templates) -> np.ndarray:
    """Each event in the reviewed wording of its type, with its figure (money or a count)."""
    what = np.full(len(event_types), "", dtype=TEXT)
    for event_type in set(event_types.tolist()):
        rows = np.flatnonzero(event_types == event_type)
        formatted = pounds if event_type in ARREARS_TYPES else whole_numbers
        record = templates.sections["events"][event_type]["record"]
        what[rows] = render(record, {"value": formatted(values[rows])}, len(rows))
    return what


def _event_columns(
    events: Mapping[str, np.ndarray],
    people: Mapping[str, np.ndarray],
    *,
    codes: np.ndarray,
    as_of: np.datetime64,
    templates: Templates,
) -> dict[str, np.ndarray]:
    """Entries of the events shared by `as_of` (each event's household as `codes`)."""
    known = np.flatnonzero(events["known_at"] <= as_of)
    event_types = events["event_type"][known]
    agencies = templates.sections["agency_names"]
    day, shared_day = (_day_numbers(events[name][known]) for name in ("occurred_at", "known_at"))
    return {
        "household": codes[known],
        "day": day,
        "shared_day": shared_day,
        "date": _day_text(day),
        "shared": _day_text(shared_day),
        "agency": _mapped(
            events["source"][known], {key: _capitalised(name) for key, name in agencies.items()}
        ),
        "what": _what(event_types, events["value"][known].astype(np.float64), templates=templates),
        "about": _about(events["person_id"][known], day, people, templates=templates),
        "crisis": _mapped(
            event_types, {key: kind.crisis for key, kind in EVENT_TYPES.items()}, dtype=bool
        ),
        "order": known,
    }


def _capitalised(name: str) -> str:
    return name[:1].upper() + name[1:]


def _about(
    person_ids: np.ndarray, days: np.ndarray, people: Mapping[str, np.ndarray], *, templates
) -> np.ndarray:
    """ "a child" or "an adult" at the time of the record, "" when it names nobody (a person id
    is unique and belongs to the event's household, so one lookup serves every household)."""
    words = templates.sections["timeline"]
    born = dict(zip(people["person_id"].tolist(), people["birth_year"].tolist(), strict=True))
    birth_years = np.array([born.get(person, -1) for person in person_ids.tolist()], dtype=np.int64)
    years = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    about = np.where(years - birth_years < ADULT_AGE, words["child"], words["adult"])
    return np.where(birth_years >= 0, about, "").astype(TEXT)


def _case_columns(
    cases: Mapping[str, np.ndarray], *, codes: np.ndarray, as_of: np.datetime64, templates
) -> dict[str, np.ndarray]:
    """Entries for key-worker cases opening, and closing, by `as_of`."""
    words = templates.sections["timeline"]
    reasons = templates.sections["close_reasons"]
    opened = np.flatnonzero(cases["opened_at"] <= as_of)
    closed = np.flatnonzero(~np.isnat(cases["closed_at"]) & (cases["closed_at"] <= as_of))
    closed_text = [
        words["case_closed"].format(reason=reasons.get(reason, ""))
        for reason in cases["close_reason"][closed].tolist()
    ]
    days = _day_numbers(np.concatenate([cases["opened_at"][opened], cases["closed_at"][closed]]))
    count = len(days)
    return {
        "household": np.concatenate([codes[opened], codes[closed]]),
        "day": days,
        "shared_day": days,
        "date": _day_text(days),
        "shared": _day_text(days),
        "agency": np.full(count, _capitalised(words["early_help"]), dtype=TEXT),
        "what": np.array([words["case_opened"]] * len(opened) + closed_text, dtype=TEXT),
        "about": np.full(count, "", dtype=TEXT),
        "crisis": np.zeros(count, dtype=bool),
        # A closing is listed above its opening on the same day, and a case moment below an
        # event of the same day: the order partners' records and cases were sent in.
        "order": np.concatenate([2 * opened, 2 * closed + 1]) - 2 * len(cases["case_id"]),
    }


def _entry_columns(
    household: Mapping[str, Mapping[str, np.ndarray]],
    *,
    event_codes: np.ndarray,
    case_codes: np.ndarray,
    as_of,
    templates: Templates,
) -> dict[str, np.ndarray]:
    """Every entry, by household code then most recent first (ties: latest shared, then the
    record partners sent last)."""
    as_of = np.datetime64(pd.Timestamp(as_of), "ns")
    parts = [
        _event_columns(
            household["events"],
            household["people"],
            codes=event_codes,
            as_of=as_of,
            templates=templates,
        ),
        _case_columns(household["cases"], codes=case_codes, as_of=as_of, templates=templates),
    ]
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    keys = [-columns.pop("order"), -columns["shared_day"], -columns["day"]]
    order = np.lexsort((*keys, columns["household"]))
    return {name: values[order] for name, values in columns.items()}


def timeline(household: HouseholdTables, *, as_of, templates: Templates) -> list[dict]:
    """One household's events and case moments shared by `as_of`, most recent first (ties:
    latest shared, then the record partners sent last)."""
    columns = _entry_columns(
        household,
        event_codes=np.zeros(len(household["events"]["event_id"]), dtype=np.int64),
        case_codes=np.zeros(len(household["cases"]["case_id"]), dtype=np.int64),
        as_of=as_of,
        templates=templates,
    )
    return [
        {
            "date": date,
            "shared": shared,
            "agency": agency,
            "what": what,
            "about": about or None,
            "crisis": bool(crisis),
        }
        for date, shared, agency, what, about, crisis in zip(
            *(columns[name].tolist() for name in TIMELINE_FIELDS), strict=True
        )
    ]


def timelines(
    records: HouseholdRecords, *, as_of, templates: Templates, household_ids=None
) -> Timelines:
    """The timelines of `household_ids` (default: every household with a record) at once, each
    as `timeline` gives it. Columns: TIMELINE_FIELDS plus `day` and `shared_day` (day numbers)."""
    if household_ids is None:
        household_ids = {key for spans in records.spans.values() for key in spans}
    household_ids = np.array(sorted(set(household_ids)), dtype=object)
    rows = {
        name: _rows_of(
            records.spans[name],
            household_ids,
            table_rows=len(next(iter(records.columns[name].values()))),
        )
        for name in RECORD_COLUMNS
    }
    tables = {
        name: {column: values[rows[name][0]] for column, values in records.columns[name].items()}
        for name in RECORD_COLUMNS
    }
    columns = _entry_columns(
        tables,
        event_codes=rows["events"][1],
        case_codes=rows["cases"][1],
        as_of=as_of,
        templates=templates,
    )
    starts = np.searchsorted(columns.pop("household"), np.arange(len(household_ids) + 1))
    return Timelines(household_ids=household_ids, starts=starts, columns=columns)


def _rows_of(
    spans: Mapping[str, tuple[int, int]], household_ids: np.ndarray, *, table_rows: int
) -> tuple[np.ndarray | slice, np.ndarray]:
    """The rows of these households in a table indexed by `index_records`, and the position of
    each row's household in `household_ids`."""
    bounds = np.array([spans.get(key, (0, 0)) for key in household_ids], dtype=np.int64)
    lengths = (bounds[:, 1] - bounds[:, 0]) if len(bounds) else np.zeros(0, dtype=np.int64)
    codes = np.repeat(np.arange(len(household_ids)), lengths)
    if lengths.sum() == table_rows:
        return slice(None), codes  # every row: no copy (the spans are in household order)
    starts = np.repeat(bounds[:, 0] - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return starts + np.arange(len(codes)), codes


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
