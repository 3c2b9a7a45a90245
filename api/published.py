"""A weekly run's household records, made once for the service: the published week.

A household's record (the JSON of GET /api/households/{id} and the record section of its page)
changes only when a weekly run or the snapshot does, yet staff open households all day. The
weekly job (`rebalance score`, `publish`, `ingest`, `demo`) makes every household's
record at once and writes them to `weeks/<as-of>/records.db`, LZ4-compressed in SQLite; every
service process then reads a record with one indexed lookup, the first read as cheap as the
hundredth. The service makes a record the same way, with the same function, for one household
when there is no published week to read from.

Who holds the household (its key workers) can change within the week, when a manager's
decision opens a case, and decides who may see it; so it is not kept. The JSON is kept up to
its `key_workers` value and the page section with a slot for them, and the current key workers
are put in on every read.

This module makes records (`build_records`, `household_record`) and publishes a week
(`publish_records`); api.records_db holds the file they are written to and read from.

A published week is read only if it was made from what the service has loaded: this week's and
the previous week's scores, the snapshot, the forecast horizon, the templates and this format
(`record_key`). Anything else (a snapshot loaded with `ingest --no-publish`, a new release with
changed templates) and the service makes records as households are opened, until the week is
published again.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from api.pages import ENVIRONMENT
from api.records_db import KEY_WORKERS_SLOT, HouseholdRecord, record_row, write_records

# Re-exported for api/pipeline.py (being rewritten apart from this change); its home is
# api.records_db.
from api.records_db import RECORDS_FILE as RECORDS_FILE
from api.week import LoadedWeek, ScoreRows
from features.needs import EVIDENCE_SEPARATOR
from models.explain import household_timelines, split_reasons

_SEPARATOR = "\x1e"
# A timeline entry on the page (api/templates/_household.html lists them).
_CRISIS = ' <span class="crisis">crisis</span>'
_SHARED = ' <span class="muted">shared {}</span>'
SCORE_FIELDS = (
    "household_id",
    "locality",
    "risk",
    "band",
    "rank",
    "needs",
    "needs_evidence",
    "reasons",
    "reason_groups",
    "model_version",
)

# --- making records -----------------------------------------------------------------------------


def household_record(week: LoadedWeek, household_id: str) -> HouseholdRecord:
    """The household's record from the published week, or made now (and kept on the week)."""
    found = None if week.published is None else week.published.get(household_id)
    if found is not None:
        return found
    return week.made_records.get(
        household_id,
        lambda: build_records(week, household_ids=[household_id], horizon_weeks=week.horizon_weeks)[
            household_id
        ],
    )


def split_evidence(text: object) -> list[str]:
    """A scores row's needs evidence, one sentence per need ("domestic abuse: 2 incidents, ...")."""
    if not isinstance(text, str):
        return []
    return [part.strip() for part in text.split(EVIDENCE_SEPARATOR) if part.strip()]


def split_needs(text: object) -> list[str]:
    if not isinstance(text, str):
        return []
    return [part for part in text.split(";") if part]


def build_records(
    week: LoadedWeek, *, household_ids: Iterable[str], horizon_weeks: int
) -> dict[str, HouseholdRecord]:
    """The records of these (scored) households: their timelines made together, as columns."""
    scored = [household_id for household_id in household_ids if household_id in week.rows]
    timelines = household_timelines(records=week.records, as_of=week.as_of, household_ids=scored)
    household_ids = timelines.household_ids.tolist()
    since = week.previous_as_of or week.as_of - pd.Timedelta(days=7)
    entry_json, entry_html = _entry_texts(timelines.columns)
    new = np.flatnonzero(timelines.columns["shared_day"] > _day_number(since))
    new_starts = np.searchsorted(new, timelines.starts)
    rows_now = _score_rows(week.rows, household_ids)
    rows_then = _score_rows(week.previous_rows, household_ids)
    records = {}
    for at, household_id in enumerate(household_ids):
        entries = slice(timelines.starts[at], timelines.starts[at + 1])
        new_entries = new[new_starts[at] : new_starts[at + 1]].tolist()
        records[household_id] = _record(
            week,
            row=rows_now[at],
            then=rows_then[at],
            horizon_weeks=horizon_weeks,
            since=since,
            timeline=(entry_json[entries], entry_html[entries]),
            new_records=(
                [entry_json[entry] for entry in new_entries],
                [entry_html[entry] for entry in new_entries],
            ),
        )
    return records


def _score_rows(score_rows: ScoreRows | None, household_ids: list[str]) -> list[dict | None]:
    """The households' rows of a scores table (None where it has none), column by column."""
    if score_rows is None:
        return [None] * len(household_ids)
    positions = np.array(
        [score_rows.position.get(household_id, -1) for household_id in household_ids],
        dtype=np.int64,
    )
    found = (positions >= 0).tolist()
    taken = np.maximum(positions, 0)
    columns = {name: score_rows.columns[name][taken].tolist() for name in SCORE_FIELDS}
    return [
        dict(zip(SCORE_FIELDS, values, strict=True)) if present else None
        for present, *values in zip(found, *columns.values(), strict=True)
    ]


def _day_number(moment: pd.Timestamp) -> int:
    return int(np.datetime64(moment.date(), "D").astype(np.int64))


def _record(
    week: LoadedWeek,
    *,
    row: dict,
    then: dict | None,
    horizon_weeks: int,
    since: pd.Timestamp,
    timeline: tuple[list[str], list[str]],
    new_records: tuple[list[str], list[str]],
) -> HouseholdRecord:
    household = {
        "household_id": row["household_id"],
        "locality": row["locality"],
        "as_of": week.as_of_text,
        "horizon_weeks": horizon_weeks,
        "risk": row["risk"],
        "band": row["band"],
        "rank": row["rank"],
        "needs": split_needs(row["needs"]),
        "needs_evidence": split_evidence(row.get("needs_evidence")),
        "reasons": split_reasons(row["reasons"]),
        "model_version": str(row["model_version"]),
    }
    changed = score_changes(row, then, since=since)
    json_start = (
        f'{_dumps(household)[:-1]},"what_changed":{_dumps(changed)[:-1]},'
        f'"new_records":[{",".join(new_records[0])}]}},'
        f'"timeline":[{",".join(timeline[0])}],"key_workers":'
    )
    page = _record_template().render(
        household=household,
        changed=changed,
        key_workers=Markup(KEY_WORKERS_SLOT),
        new_count=len(new_records[1]),
        new_records=Markup("\n".join(new_records[1])),
        timeline=Markup("\n".join(timeline[1])),
    )
    return HouseholdRecord(json_start=json_start.encode(), page=page)


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def score_changes(row: dict, then: dict | None, *, since: pd.Timestamp) -> dict:
    """This week's score against the previous weekly run's: risk and band then and now, and the
    reasons that appeared or faded (the records shared since are added by the caller).

    A reason is the same reason while its group is ("6 incidents, the latest 9 weeks ago" last
    week is "6 incidents, the latest 2 months ago" now), so only genuinely new or gone reasons
    are listed."""
    reasons_now, reasons_then = (
        _reasons_by_kind(row),
        ({} if then is None else _reasons_by_kind(then)),
    )
    risk_then = None if then is None else then["risk"]
    return {
        "previous_as_of": since.date().isoformat(),
        "risk_then": risk_then,
        "risk_now": row["risk"],
        "band_then": None if then is None else then["band"],
        "band_now": row["band"],
        "risk_change": None if risk_then is None else row["risk"] - risk_then,
        "reasons_appeared": [
            text
            for kind, text in reasons_now.items()
            if then is not None and kind not in reasons_then
        ],
        "reasons_faded": [text for kind, text in reasons_then.items() if kind not in reasons_now],
    }


def _reasons_by_kind(row: dict) -> dict[str, str]:
    """A row's reasons by their group, or, for runs written before scores named groups, by
    their wording with the figures left out."""
    texts = split_reasons(row["reasons"])
    groups = split_needs(row.get("reason_groups"))
    if len(groups) == len(texts):
        return dict(zip(groups, texts, strict=True))
    return {re.sub(r"[£\d][\d,.]*", "#", text): text for text in texts}


def _record_template():
    return ENVIRONMENT.get_template("_household.html")


def _entry_texts(columns) -> tuple[list[str], list[str]]:
    """Each timeline entry as a JSON object and as a list item of the page (escaped in bulk:
    a week has millions of entries)."""
    dates, shared = columns["date"].tolist(), columns["shared"].tolist()
    texts = {name: columns[name].tolist() for name in ("agency", "what", "about")}
    quoted = {name: _json_strings(values) for name, values in texts.items()}
    escaped = {name: _html_strings(values) for name, values in texts.items()}
    crisis = columns["crisis"].tolist()
    as_json = [
        f'{{"date":"{date}","shared":"{shared_on}","agency":{agency},"what":{what},'
        f'"about":{about if named else "null"},"crisis":{"true" if flag else "false"}}}'
        for date, shared_on, agency, what, about, named, flag in zip(
            dates,
            shared,
            quoted["agency"],
            quoted["what"],
            quoted["about"],
            texts["about"],
            crisis,
            strict=True,
        )
    ]
    as_html = [
        f'<li><span class="when">{date}</span> <strong>{agency}</strong>: {what}'
        f"{f' ({about})' if about else ''}{_CRISIS if flag else ''}"
        f"{_SHARED.format(shared_on) if shared_on != date else ''}</li>"
        for date, shared_on, agency, what, about, flag in zip(
            dates, shared, escaped["agency"], escaped["what"], escaped["about"], crisis, strict=True
        )
    ]
    return as_json, as_html


def _json_strings(values: list[str]) -> list[str]:
    """JSON string literals of the values: one pass of json's own escaper over them all."""
    joined = _SEPARATOR.join(values)
    if not values or "\\" in joined or joined.count(_SEPARATOR) != len(values) - 1:
        return [_dumps(value) for value in values]
    body = _dumps(joined)[1:-1]
    return [f'"{part}"' for part in body.split(_dumps(_SEPARATOR)[1:-1])]


def _html_strings(values: list[str]) -> list[str]:
    """The values escaped for HTML: one pass of markupsafe over them all."""
    joined = _SEPARATOR.join(values)
    if not values or joined.count(_SEPARATOR) != len(values) - 1:
        return [str(escape(value)) for value in values]
    return str(escape(joined)).split(_SEPARATOR)


# --- publishing the week ------------------------------------------------------------------------


def publish_records(
    week: LoadedWeek, *, path: Path, key: dict, processes: int = 2, chunk_size: int = 5_000
) -> int:
    """Make every scored household's record and write them as a published week (to a file
    beside `path`, then moved over it, so a service never sees half a week). Returns how many.

    Households are made in chunks by `processes` forked processes (each inherits the week
    rather than receiving it); small weeks are made in this process."""
    household_ids = sorted(week.rows.position)
    chunks = [
        household_ids[start : start + chunk_size]
        for start in range(0, len(household_ids), chunk_size)
    ]
    partial = path.with_name(f"{path.name}.partial")
    partial.unlink(missing_ok=True)
    try:
        _write_records(week, chunks, path=partial, key=key, processes=processes)
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed publish leaves the week as it was
        raise
    os.replace(partial, path)
    return len(household_ids)


_FORKED_WEEK: LoadedWeek | None = None


def _write_records(
    week: LoadedWeek, chunks: list[list[str]], *, path: Path, key: dict, processes: int
) -> None:
    with _chunk_maker(week, processes=processes if len(chunks) > 1 else 1) as make:
        write_records(path, make(chunks), key=key)


@contextlib.contextmanager
def _chunk_maker(week: LoadedWeek, *, processes: int) -> Iterator[Callable]:
    global _FORKED_WEEK
    if processes <= 1:
        yield lambda chunks: (_compressed_rows(week, chunk) for chunk in chunks)
        return
    _FORKED_WEEK = week
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            yield lambda chunks: pool.imap_unordered(_forked_rows, chunks)
    finally:
        _FORKED_WEEK = None


def _forked_rows(household_ids: list[str]) -> list[tuple]:
    return _compressed_rows(_FORKED_WEEK, household_ids)


def _compressed_rows(week: LoadedWeek, household_ids: list[str]) -> list[tuple]:
    records = build_records(week, household_ids=household_ids, horizon_weeks=week.horizon_weeks)
    return [record_row(household_id, record) for household_id, record in records.items()]
