"""Dates for the synthetic city as integer day numbers (days since 1970-01-01).

The simulator steps a week at a time; months, council-tax instalments and school terms are looked
up here so the rest of the code can stay in plain integer arithmetic.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np

EPOCH = date(1970, 1, 1)

# School terms and half-terms as (month * 100 + day) ranges, the same every year: close enough
# to English term dates for attendance to have the right rhythm.
TERMS: tuple[tuple[int, int], ...] = ((904, 1219), (104, 328), (415, 719))
HALF_TERMS: tuple[tuple[int, int], ...] = ((1023, 1027), (212, 216), (527, 531))
TERM_ENDS: tuple[int, ...] = tuple(end for _, end in TERMS)
# Months in which a council-tax instalment falls due (April to January).
INSTALMENT_MONTHS: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10, 11, 12, 1)


def to_day(value: date) -> int:
    """Day number of a date."""
    return (value - EPOCH).days


def to_date(day: int) -> date:
    """Date of a day number."""
    return EPOCH + timedelta(days=int(day))


def _datetimes(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]")


def calendar_year(days: np.ndarray) -> np.ndarray:
    """Calendar year of each day."""
    return _datetimes(days).astype("datetime64[Y]").astype(np.int64) + 1970


def month_and_day(days: np.ndarray) -> np.ndarray:
    """month * 100 + day-of-month of each day."""
    moments = _datetimes(days)
    month = moments.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day_of_month = (moments - moments.astype("datetime64[M]")).astype(np.int64) + 1
    return month * 100 + day_of_month


def next_month_start(days: np.ndarray) -> np.ndarray:
    """Day number of the first day of the month after each day."""
    months = _datetimes(days).astype("datetime64[M]") + 1
    return months.astype("datetime64[D]").astype(np.int64)


def academic_year(days: np.ndarray) -> np.ndarray:
    """The year in which each day's school year began (September)."""
    return calendar_year(days) - (month_and_day(days) < 901)


def week_days(first_day: int) -> np.ndarray:
    """The seven day numbers of the week starting on first_day."""
    return first_day + np.arange(7, dtype=np.int64)


def school_days(days: np.ndarray) -> np.ndarray:
    """The weekdays among days that fall in term time and outside half-terms."""
    weekday = (np.asarray(days) + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    when = month_and_day(days)
    in_term = np.zeros(len(days), dtype=bool)
    for first, last in TERMS:
        in_term |= (when >= first) & (when <= last)
    for first, last in HALF_TERMS:
        in_term &= ~((when >= first) & (when <= last))
    return np.asarray(days)[in_term & (weekday < 5)]


def term_ends(days: np.ndarray) -> np.ndarray:
    """The days among days that close a school term (attendance reporting periods)."""
    return np.asarray(days)[np.isin(month_and_day(days), TERM_ENDS)]


def month_ends(days: np.ndarray) -> np.ndarray:
    """The days among days that are the last day of their month (statement dates)."""
    days = np.asarray(days)
    return days[next_month_start(days) == days + 1]


def instalment_days(days: np.ndarray) -> np.ndarray:
    """The days among days on which a council-tax instalment falls due (the 1st)."""
    when = month_and_day(np.asarray(days))
    return np.asarray(days)[(when % 100 == 1) & np.isin(when // 100, INSTALMENT_MONTHS)]
