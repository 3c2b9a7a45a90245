"""Which cases are open on a date: the one rule every stage counts caseloads and continuity by.

A case is open on `as_of` when it was opened on or before that day and not closed on or before it.
A case closed after `as_of` was still open then: re-running a past week on a newer extract must
count the caseload the managers had that week, not the one they have now.
"""

from __future__ import annotations

import pandas as pd


def is_open(cases: pd.DataFrame, *, as_of=None) -> pd.Series:
    """True for each case open on `as_of` (with `as_of` None: each case with no closing date)."""
    closed_at = cases["closed_at"]
    if as_of is None:
        return closed_at.isna()
    as_of = pd.Timestamp(as_of)
    return (cases["opened_at"] <= as_of) & ~(closed_at <= as_of)


def open_cases(cases: pd.DataFrame, *, as_of=None) -> pd.DataFrame:
    """The rows of `cases` open on `as_of` (with `as_of` None: those with no closing date)."""
    return cases.loc[is_open(cases, as_of=as_of)]


def opened_by(cases: pd.DataFrame, *, as_of) -> pd.DataFrame:
    """The rows of `cases` opened on or before `as_of`, open or closed since."""
    return cases.loc[cases["opened_at"] <= pd.Timestamp(as_of)]
