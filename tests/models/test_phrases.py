"""Money and time as words."""

from __future__ import annotations

import numpy as np

from models import _phrases


def test_money_and_time_phrases():
    assert list(_phrases.pounds(np.array([0, 999.6, 1005, 1234567.4, -2500]))) == [
        "0",
        "1,000",
        "1,005",
        "1,234,567",
        "-2,500",
    ]
    assert list(_phrases.days_ago(np.array([0, 1, 9, 20, 100, 800]))) == [
        "today",
        "yesterday",
        "9 days ago",
        "2 weeks ago",
        "3 months ago",
        "2 years ago",
    ]
