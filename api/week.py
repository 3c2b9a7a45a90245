"""The week in memory: the latest weekly run's outputs and the current snapshot's records.

`LoadedWeek` is one weekly run's scores and proposal files and the snapshot's records indexed by
household, loaded once (`load_week`) and reloaded only when a new weekly run, snapshot or
published week appears (`WeekCache`). A household's record is then one indexed read of the
published week (api.records_db), or made once from memory (api.published) and kept on the
week. The weekly outputs are the record of what managers were shown, so pages show those
figures rather than re-scoring.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from api.records_db import RECORDS_FILE, PublishedRecords, open_published, record_key
from api.settings import Settings
from features.cases import open_cases
from features.store import Store, StoreError
from models import read_scores as models_read_scores
from models.explain import (
    HouseholdRecords,
    household_timeline,
    index_records,
    risk_bands,
    shared_since,
)

logger = logging.getLogger(__name__)

_RECHECK_SECONDS = 2.0
_MEMO_LIMIT = 30_000
WEEK_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")


class NoWeekYet(Exception):
    """No weekly run has written scores yet (503)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "No weekly run has been written yet: run `rebalance score` and `rebalance allocate` "
            "(or `rebalance demo`)."
        )


class WeekUnavailable(NoWeekYet):
    """The weekly run's files could not be read (503; the log says which)."""

    def __init__(self, week: str) -> None:
        super().__init__(
            f"The weekly run {Path(week).name} could not be loaded; an administrator has been "
            "told in the service log."
        )


@dataclass(frozen=True)
class ScoreRows:
    """A scores table as plain columns with a position per household: one household's row is a
    dictionary lookup, not a pandas row selection (which costs a hundred times more)."""

    position: dict[str, int]
    columns: dict[str, np.ndarray]

    @classmethod
    def of(cls, scores: pd.DataFrame) -> ScoreRows:
        columns = {
            name: scores[name].to_numpy(dtype=object if scores[name].dtype == "str" else None)
            for name in scores.columns
        }
        columns["band"] = risk_bands(scores["risk"].to_numpy(np.float64))
        return cls(
            position={key: at for at, key in enumerate(columns["household_id"])}, columns=columns
        )

    def __contains__(self, household_id: str) -> bool:
        return household_id in self.position

    def value(self, household_id: str, column: str) -> object:
        """One column of the household's row (None when missing or not scored)."""
        at = self.position.get(household_id)
        return None if at is None else _plain(self.columns[column][at])

    def get(self, household_id: str) -> dict | None:
        """The household's row (None when it was not scored), missing text as None."""
        at = self.position.get(household_id)
        if at is None:
            return None
        return {name: _plain(values[at]) for name, values in self.columns.items()}


def _plain(value: object) -> object:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


class BoundedMemo:
    """Values computed once and kept, forgetting the oldest beyond `limit` (a week's worth of
    every household would not fit in memory, and most are never opened)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._values: dict = {}

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: object, build: Callable[[], object]) -> object:
        value = self._values.get(key)
        if value is None:
            value = self._values[key] = build()
            while len(self._values) > self.limit:
                # Threads may evict at the same time: losing that race only forgets one more.
                with contextlib.suppress(KeyError, StopIteration, RuntimeError):
                    del self._values[next(iter(self._values))]
        return value


@dataclass(frozen=True)
class LoadedWeek:
    """One weekly run's outputs and the snapshot's records, indexed for fast reads.

    `rows` and `previous_rows` give one household's scores; `by_locality` its households by rank;
    `records` its events, cases and people; `workers`, `cases`, `open_points` (partners' open
    case points per worker at the as-of date) and the latest partner case per household serve
    the capacity checks of decisions.
    """

    as_of: pd.Timestamp
    week_dir: Path
    scores: pd.DataFrame
    rows: ScoreRows
    by_locality: dict[str, tuple[str, ...]]
    previous_as_of: pd.Timestamp | None
    previous_rows: ScoreRows | None
    records: HouseholdRecords
    workers: pd.DataFrame
    cases: pd.DataFrame
    open_points: pd.Series
    caseloads: dict[str, tuple[str, ...]]
    latest_partner_case: pd.Series
    partner_open_households: frozenset[str]
    proposal: pd.DataFrame | None
    proposal_workers: pd.DataFrame | None
    proposal_summary: dict
    snapshot_id: str
    horizon_weeks: int
    records_key: dict
    published: PublishedRecords | None
    # What pages are made of when the week was not published, computed on first use and kept
    # for this week only: a new weekly run or snapshot is a new LoadedWeek, so nothing cached
    # outlives the figures it shows.
    _timelines: BoundedMemo = field(
        default_factory=lambda: BoundedMemo(_MEMO_LIMIT), compare=False, repr=False
    )
    made_records: BoundedMemo = field(
        default_factory=lambda: BoundedMemo(_MEMO_LIMIT), compare=False, repr=False
    )

    @property
    def as_of_text(self) -> str:
        return self.as_of.date().isoformat()

    def household_timeline(self, household_id: str) -> list[dict]:
        """Records shared by the as-of date, most recent first (computed once per household)."""
        return self._timelines.get(
            household_id,
            lambda: household_timeline(
                records=self.records, household_id=household_id, as_of=self.as_of
            ),
        )

    def decided_case_open(self, *, household_id: str, opened_at: str) -> bool:
        """Is a case opened by a decision still the household's open case? Partners' records
        take over once they hold a case for the household opened since, or one still open
        (api.service_db.pending_decided_cases, for one case)."""
        if household_id in self.partner_open_households:
            return False
        latest = self.latest_partner_case.get(household_id)
        return latest is None or pd.isna(latest) or latest < pd.Timestamp(opened_at)

    def new_records(self, household_id: str) -> list[dict]:
        since = self.previous_as_of or self.as_of - pd.Timedelta(days=7)
        return shared_since(self.household_timeline(household_id), since=since)


def week_dirs(settings: Settings) -> list[Path]:
    """Weekly run folders (named by their as-of date) holding scores, oldest first."""
    if not settings.weeks_dir.is_dir():
        return []
    return sorted(
        path
        for path in settings.weeks_dir.iterdir()
        if WEEK_NAME.fullmatch(path.name) and (path / "scores.csv").is_file()
    )


def read_scores(path: Path) -> pd.DataFrame:
    """A weekly scores.csv (models.read_scores) indexed by household_id."""
    return models_read_scores(path).set_index("household_id", drop=False).rename_axis(None)


def _read_optional_csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"household_id": "str", "worker_id": "str"})


def _read_summary(path: Path) -> dict:
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def load_week(settings: Settings, *, week_dir: Path) -> LoadedWeek:
    """Read one weekly run and the current snapshot's records into memory."""
    scores = read_scores(week_dir / "scores.csv")
    store = Store(settings.home)
    snapshot_id = store.current_snapshot_id() or ""
    tables = store.read_tables(snapshot_id=snapshot_id or None)
    as_of = pd.Timestamp(week_dir.name)
    earlier = [path for path in week_dirs(settings) if path.name < week_dir.name]
    key = record_key(
        week_dir=week_dir,
        previous_week_dir=earlier[-1] if earlier else None,
        snapshot_id=snapshot_id,
        horizon_weeks=settings.horizon_weeks,
    )
    open_now = open_cases(tables["cases"], as_of=as_of)
    return LoadedWeek(
        as_of=as_of,
        week_dir=week_dir,
        scores=scores,
        rows=ScoreRows.of(scores),
        by_locality={
            str(locality): tuple(group["household_id"])
            for locality, group in scores.sort_values(["rank", "household_id"]).groupby("locality")
        },
        previous_as_of=pd.Timestamp(earlier[-1].name) if earlier else None,
        previous_rows=ScoreRows.of(read_scores(earlier[-1] / "scores.csv")) if earlier else None,
        records=index_records(tables),
        workers=tables["workers"].set_index("worker_id", drop=False).rename_axis(None),
        cases=tables["cases"],
        open_points=open_now.groupby("worker_id")["complexity_points"].sum(),
        caseloads={
            str(worker): tuple(sorted(group["household_id"]))
            for worker, group in open_now.groupby("worker_id")
        },
        latest_partner_case=tables["cases"].groupby("household_id")["opened_at"].max(),
        partner_open_households=frozenset(open_cases(tables["cases"])["household_id"]),
        proposal=_read_optional_csv(week_dir / "proposal.csv"),
        proposal_workers=_read_optional_csv(week_dir / "proposal-workers.csv"),
        proposal_summary=_read_summary(week_dir / "proposal.json"),
        snapshot_id=snapshot_id,
        horizon_weeks=settings.horizon_weeks,
        records_key=key,
        published=open_published(week_dir / RECORDS_FILE, key=key),
    )


def _signature(settings: Settings) -> tuple:
    """What identifies the week to serve: the newest run's files and the current snapshot."""
    dirs = week_dirs(settings)
    if not dirs:
        return ()
    names = ("scores.csv", "proposal.csv", "proposal-workers.csv", RECORDS_FILE)
    files = [dirs[-1] / name for name in names]
    stamps = tuple(path.stat().st_mtime_ns if path.exists() else 0 for path in files)
    return (str(dirs[-1]), stamps, Store(settings.home).current_snapshot_id())


class WeekCache:
    """The latest week, loaded once and reloaded when a new run or snapshot appears.

    The first load happens on the first request that needs it. Later loads run in a background
    thread while the previous week goes on being served, so a new weekly run never stalls pages.
    """

    def __init__(self, settings: Settings, *, recheck_seconds: float = _RECHECK_SECONDS) -> None:
        self.settings = settings
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._week: LoadedWeek | None = None
        self._signature: tuple = ()
        self._loading: tuple | None = None
        self._checked_at = float("-inf")

    def fresh(self) -> LoadedWeek | None:
        """The loaded week if it was checked recently (no file system access at all)."""
        if time.monotonic() - self._checked_at < self.recheck_seconds:
            return self._week
        return None

    def current(self) -> LoadedWeek:
        """The loaded week (NoWeekYet before the first weekly run); while the first week is
        loading (at start-up, in the background), callers wait for it."""
        if not self._checked_recently():
            self._refresh()
        if self._week is None:
            raise NoWeekYet()
        return self._week

    def _checked_recently(self) -> bool:
        first_load_running = self._week is None and self._loading is not None
        recent = time.monotonic() - self._checked_at < self.recheck_seconds
        return recent and not first_load_running

    def _refresh(self) -> None:
        with self._lock:
            if self._checked_recently():
                return
            signature = _signature(self.settings)
            self._checked_at = time.monotonic()
            if not signature or signature in (self._signature, self._loading):
                return
            self._loading = signature
            if self._week is None:
                self._load(signature)
                return
        threading.Thread(target=self._load, args=(signature,), daemon=True).start()

    def _load(self, signature: tuple) -> None:
        started = time.perf_counter()
        try:
            week = load_week(self.settings, week_dir=Path(signature[0]))
        except (StoreError, OSError, ValueError, KeyError) as error:
            # Logged without data; the previous week (if any) goes on being served.
            logger.error("could not load the weekly run %s: %s", signature[0], type(error).__name__)
            self._loading = None
            if self._week is None:
                raise WeekUnavailable(signature[0]) from None
            return
        # The week is millions of long-lived objects: keep the cyclic garbage collector from
        # walking them again and again (pauses of a second under load).
        gc.collect()
        gc.freeze()
        self._week, self._signature, self._loading = week, signature, None
        logger.info("loaded week %s in %.1f s", signature[0], time.perf_counter() - started)
