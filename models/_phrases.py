"""Figures and times as words for reasons and timelines ("1,240", "3 weeks ago"), vectorised.

Text arrays use numpy's variable-length StringDType (TEXT) and np.strings operations, so many
households' phrases are made at once.
"""

from __future__ import annotations

import numpy as np

TEXT = np.dtypes.StringDType()


def whole_numbers(values: np.ndarray) -> np.ndarray:
    """Counts as text ("38")."""
    return np.rint(np.nan_to_num(values)).astype(np.int64).astype(TEXT)


def pounds(values: np.ndarray) -> np.ndarray:
    """Money as whole pounds with thousands separators ("1,240"), without the £ sign."""
    amount = np.rint(np.nan_to_num(values)).astype(np.int64)
    sign = np.where(amount < 0, "-", "").astype(TEXT)
    rest = np.abs(amount) // 1000
    text = (np.abs(amount) % 1000).astype(TEXT)
    text = np.where(rest > 0, np.strings.zfill(text, 3), text).astype(TEXT)
    while np.any(rest > 0):
        has_group = rest > 0
        group = (rest % 1000).astype(TEXT)
        rest //= 1000
        # Only groups with a higher group before them are zero-padded: "1,005", never "001,005".
        group = np.where(rest > 0, np.strings.zfill(group, 3), group).astype(TEXT)
        longer = np.strings.add(np.strings.add(group, ","), text)
        text = np.where(has_group, longer, text).astype(TEXT)
    return np.strings.add(sign, text)


def days_ago(days: np.ndarray) -> np.ndarray:
    """How long ago, from a number of days: "today", "9 days ago", "3 weeks ago", "5 months ago"."""
    days = np.nan_to_num(days).astype(np.int64)
    weeks, months, years = days // 7, np.rint(days / 30.4375).astype(np.int64), days // 365
    text = np.strings.add(years.astype(TEXT), " years ago")
    text = np.where(days < 730, np.strings.add(months.astype(TEXT), " months ago"), text)
    text = np.where(days < 70, np.strings.add(weeks.astype(TEXT), " weeks ago"), text)
    text = np.where(days < 14, np.strings.add(days.astype(TEXT), " days ago"), text)
    return np.where(days == 1, "yesterday", np.where(days == 0, "today", text)).astype(TEXT)


def weeks_ago(weeks: np.ndarray) -> np.ndarray:
    """How long ago, from whole weeks: "this week", "1 week ago", "6 weeks ago", "5 months ago"."""
    weeks = np.nan_to_num(weeks).astype(np.int64)
    text = np.where(weeks < 10, np.strings.add(weeks.astype(TEXT), " weeks ago"), "")
    months = np.strings.add(np.rint(weeks * 7 / 30.4375).astype(np.int64).astype(TEXT), " months")
    text = np.where(weeks >= 10, np.strings.add(months, " ago"), text)
    return np.where(weeks == 1, "1 week ago", np.where(weeks == 0, "this week", text)).astype(TEXT)
