"""Generating a city: the default city run to an end date, its truth table, and writing it out.

`generate_city` returns a `City` (the contract tables as at `end` plus the truth: each household's
exact probability of escalation and what actually happened); `write_city` writes them out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.city._calendar import (
    to_day,
)
from experiments.city._recording import UnderReporting
from experiments.city._simulator import CitySimulator
from experiments.city._tables import (
    TRUTH_COLUMNS,
    truth_frame,
    write_tables,
)
from experiments.city._views import HORIZON_WEEKS

DEFAULT_HISTORY_WEEKS = 182  # three and a half years of records
DEFAULT_TRUTH_DATES = 26  # as-of dates, four weeks apart: the last two years of labelled windows


@dataclass(frozen=True)
class City:
    """The contract tables of a generated city as at `end`, plus the truth table."""

    households: pd.DataFrame
    people: pd.DataFrame
    events: pd.DataFrame
    workers: pd.DataFrame
    cases: pd.DataFrame
    truth: pd.DataFrame
    start: date
    end: date

    def tables(self) -> dict[str, pd.DataFrame]:
        """The six tables by file name."""
        return {
            "households": self.households,
            "people": self.people,
            "events": self.events,
            "workers": self.workers,
            "cases": self.cases,
            "truth": self.truth,
        }


def default_truth_dates(
    end: date, *, history_weeks: int = DEFAULT_HISTORY_WEEKS, count: int = DEFAULT_TRUTH_DATES
) -> list[date]:
    """As-of dates four weeks apart whose 26-week windows end on or before end, latest last.

    Only dates with at least 26 weeks of records before them are used.
    """
    last = end - timedelta(weeks=HORIZON_WEEKS)
    earliest = end - timedelta(weeks=history_weeks - HORIZON_WEEKS)
    dates = [last - timedelta(weeks=4 * step) for step in reversed(range(count))]
    return [value for value in dates if value >= earliest]


def _truth_weeks(as_of: Iterable[date], *, start: date) -> np.ndarray:
    """The week index each as-of date closes; ValueError if it is not a week end."""
    weeks = []
    for value in as_of:
        if not isinstance(value, date):
            raise ValueError(f"truth_as_of {value!r}: expected a date")
        offset = (value - start).days + 1
        if offset <= 0 or offset % 7:
            raise ValueError(
                f"truth_as_of {value.isoformat()}: as-of dates must be week ends of the simulation "
                f"(the same weekday as end, on or after {(start + timedelta(days=6)).isoformat()})"
            )
        weeks.append(offset // 7 - 1)
    if not weeks:
        raise ValueError("truth_as_of: at least one as-of date is needed")
    return np.array(sorted(set(weeks)), dtype=np.int64)


def generate_city(
    *,
    households: int = 110_000,
    seed: int = 0,
    end: date,
    under_reporting: UnderReporting | None = None,
    truth_as_of: Iterable[date] | None = None,
    history_weeks: int = DEFAULT_HISTORY_WEEKS,
    case_effect: float = 0.2,
) -> City:
    """Run the default city for history_weeks up to end and return its extract and truth.

    The extract holds what partners would have sent on `end`: events known by then, cases as
    they stood. The simulation runs on past `end` if an as-of window needs it, so `escalated` is
    always the realised outcome; nothing after `end` is in the extract.
    """
    if not isinstance(end, date):
        raise ValueError(f"end must be a date, not {end!r}")
    if history_weeks < 2 * HORIZON_WEEKS:
        raise ValueError(f"history_weeks must be at least {2 * HORIZON_WEEKS}, not {history_weeks}")
    start = end - timedelta(weeks=history_weeks) + timedelta(days=1)
    as_of = (
        default_truth_dates(end, history_weeks=history_weeks)
        if truth_as_of is None
        else truth_as_of
    )
    as_of_weeks = _truth_weeks(as_of, start=start)
    simulator = CitySimulator(
        households=households,
        seed=seed,
        start=start,
        under_reporting=under_reporting,
        case_effect=case_effect,
    )
    p_true = np.zeros((len(as_of_weeks), households))
    for week in range(max(history_weeks, int(as_of_weeks.max()) + 1 + HORIZON_WEEKS)):
        simulator._advance(None)
        if week in as_of_weeks:
            p_true[np.searchsorted(as_of_weeks, week)] = simulator.escalation_probability()
    return City(
        households=simulator.households(as_at=end),
        people=simulator.people(as_at=end),
        events=simulator.events(known_by=end),
        workers=simulator.workers(as_at=end),
        cases=simulator.cases(as_at=end),
        truth=_truth(simulator, as_of_weeks=as_of_weeks, p_true=p_true, start=start),
        start=start,
        end=end,
    )


def _truth(
    simulator: CitySimulator, *, as_of_weeks: np.ndarray, p_true: np.ndarray, start: date
) -> pd.DataFrame:
    """truth rows: p_true at each as-of week end and whether a crisis followed within 26 weeks."""
    crisis_weeks = simulator.crisis_weeks()
    escalated = np.zeros_like(p_true, dtype=bool)
    for position, week in enumerate(as_of_weeks.tolist()):
        for later in crisis_weeks[week + 1 : week + 1 + HORIZON_WEEKS]:
            escalated[position, later] = True
    as_of_days = to_day(start) + 7 * (as_of_weeks + 1) - 1
    return truth_frame(
        simulator.population, as_of_days=as_of_days, p_true=p_true, escalated=escalated
    )[list(TRUTH_COLUMNS)]


def write_city(city: City, out: Path, *, fmt: str = "csv") -> dict[str, Path]:
    """Write households, people, events, workers, cases and truth to out (csv or parquet)."""
    return write_tables(city.tables(), Path(out), fmt=fmt)
