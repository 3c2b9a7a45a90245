"""The open-case rule: opened on or before the date, not closed on or before it."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.cases import open_cases, opened_by

AS_OF = pd.Timestamp("2025-06-30")


def _cases(rows: list[tuple[str, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "case_id": [f"c{position}" for position in range(len(rows))],
            "opened_at": pd.to_datetime([opened for opened, _ in rows]),
            "closed_at": pd.to_datetime([closed for _, closed in rows]),
        }
    )


def test_a_case_closed_after_the_date_was_open_on_it():
    cases = _cases(
        [
            ("2025-01-01", None),  # open
            ("2025-01-01", "2025-07-15"),  # closed later: open on the date
            ("2025-01-01", "2025-06-30"),  # closed that day: not open
            ("2025-06-30", None),  # opened that day: open
            ("2025-07-01", None),  # opened later: not yet
        ]
    )
    assert open_cases(cases, as_of=AS_OF)["case_id"].tolist() == ["c0", "c1", "c3"]
    assert opened_by(cases, as_of=AS_OF)["case_id"].tolist() == ["c0", "c1", "c2", "c3"]


def test_without_a_date_open_means_no_closing_date():
    cases = _cases([("2025-01-01", None), ("2025-01-01", "2025-07-15"), ("2026-01-01", None)])
    assert open_cases(cases)["case_id"].tolist() == ["c0", "c2"]


days = st.integers(min_value=-60, max_value=60)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(days, st.one_of(st.none(), st.integers(0, 90))), max_size=30), days)
def test_open_on_a_date_ignores_everything_after_it(spans, shift):
    """Changing what happened after the date (later closures, later openings) changes nothing."""
    rows = [
        (AS_OF + pd.Timedelta(days=start), None if length is None else length)
        for start, length in spans
    ]
    cases = pd.DataFrame(
        {
            "case_id": [f"c{position}" for position in range(len(rows))],
            "opened_at": pd.to_datetime([opened for opened, _ in rows]),
            "closed_at": pd.to_datetime(
                [
                    None if length is None else opened + pd.Timedelta(days=length)
                    for opened, length in rows
                ]
            ),
        }
    )
    later = cases["closed_at"] > AS_OF
    moved = cases.assign(
        closed_at=cases["closed_at"].where(~later, AS_OF + pd.Timedelta(days=abs(shift) + 1))
    )
    expected = [
        case_id
        for case_id, opened, closed in zip(
            cases["case_id"], cases["opened_at"], cases["closed_at"], strict=True
        )
        if opened <= AS_OF and (pd.isna(closed) or closed > AS_OF)
    ]
    assert open_cases(cases, as_of=AS_OF)["case_id"].tolist() == expected
    assert open_cases(moved, as_of=AS_OF)["case_id"].tolist() == expected
