"""Escalation labels: did a crisis occur in (as_of, as_of + horizon]?

The horizon and the crisis set are parameters (configuration), not code. `known_by` guards training:
an example may only use crisis records that had been shared by the date the model is trained, so a
label window must have ended, and its events been known, before the evaluation as-of date.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.contract import CRISIS_EVENT_TYPES

DEFAULT_HORIZON_WEEKS = 26


def label_window_end(as_of, *, horizon_weeks: int = DEFAULT_HORIZON_WEEKS) -> pd.Timestamp:
    """The last day of the label window that starts after `as_of`."""
    return pd.Timestamp(as_of) + pd.Timedelta(weeks=horizon_weeks)


def build_labels(
    events: pd.DataFrame,
    *,
    household_ids: pd.Index,
    as_of,
    horizon_weeks: int = DEFAULT_HORIZON_WEEKS,
    crisis_types: Iterable[str] = CRISIS_EVENT_TYPES,
    known_by=None,
) -> pd.Series:
    """1 when the household had a crisis event occurring in (as_of, as_of + horizon], else 0."""
    start = pd.Timestamp(as_of)
    end = label_window_end(start, horizon_weeks=horizon_weeks)
    in_window = (
        events["event_type"].isin(list(crisis_types))
        & (events["occurred_at"] > start)
        & (events["occurred_at"] <= end)
    )
    if known_by is not None:
        in_window &= events["known_at"] <= pd.Timestamp(known_by)
    escalated_ids = events.loc[in_window, "household_id"].unique()
    return pd.Series(
        household_ids.isin(escalated_ids).astype(np.int8), index=household_ids, name="escalated"
    )


def trainable_as_of_dates(
    *, evaluation_as_of, step_weeks: int, count: int, horizon_weeks: int = DEFAULT_HORIZON_WEEKS
) -> list[pd.Timestamp]:
    """The latest `count` as-of dates, `step_weeks` apart, whose label window ended by evaluation.

    Oldest first. A label window (t, t + horizon] is complete on the evaluation date only when
    t + horizon <= evaluation_as_of.
    """
    last = pd.Timestamp(evaluation_as_of) - pd.Timedelta(weeks=horizon_weeks)
    return [last - pd.Timedelta(weeks=step_weeks * back) for back in reversed(range(count))]
