"""The published week's parts that need no service: what changed, and escaping in bulk."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from markupsafe import escape

from api.published import _html_strings, _json_strings, score_changes

SINCE = pd.Timestamp("2026-11-08")


def _row(reasons: list[str], groups: list[str] | None, risk: float = 0.3) -> dict:
    return {
        "risk": risk,
        "band": "high",
        "reasons": " | ".join(reasons),
        "reason_groups": None if groups is None else ";".join(groups),
    }


def test_a_reason_reworded_by_time_is_the_same_reason():
    then = _row(
        ["6 domestic abuse incidents, the latest 9 weeks ago", "Rent arrears of £900"],
        ["domestic_abuse", "rent_arrears"],
        risk=0.25,
    )
    now = _row(
        ["6 domestic abuse incidents, the latest 2 months ago", "3 police call-outs"],
        ["domestic_abuse", "police_callout"],
    )
    changed = score_changes(now, then, since=SINCE)
    assert changed["reasons_appeared"] == ["3 police call-outs"]
    assert changed["reasons_faded"] == ["Rent arrears of £900"]
    assert changed["risk_change"] == pytest.approx(0.05)
    assert changed["previous_as_of"] == "2026-11-08"


def test_runs_without_reason_groups_compare_wording_without_figures():
    then = _row(["Rent arrears of £900", "2 police call-outs"], None)
    now = _row(["Rent arrears of £1,200", "School exclusion"], None)
    changed = score_changes(now, then, since=SINCE)
    assert changed["reasons_appeared"] == ["School exclusion"]
    assert changed["reasons_faded"] == ["2 police call-outs"]


def test_with_no_earlier_week_nothing_appeared_or_faded():
    changed = score_changes(_row(["School exclusion"], ["exclusion"]), None, since=SINCE)
    assert changed["reasons_appeared"] == changed["reasons_faded"] == []
    assert changed["risk_then"] is None and changed["risk_change"] is None


AWKWARD = [
    "plain",
    "",
    'a "quoted" word',
    "back\\slash and \\u001e",
    "line\nbreak\ttab\x01",
    "A&E <attendance> 'today'",
    "record\x1eseparator",
    "£1,240 — naïve",
]


@pytest.mark.parametrize(
    "values", [AWKWARD, AWKWARD[:1], [], AWKWARD[5:6] * 3, [AWKWARD[2], *AWKWARD[4:6], AWKWARD[7]]]
)
def test_bulk_escaping_is_escaping_one_by_one(values):
    assert _json_strings(values) == [
        json.dumps(value, ensure_ascii=False, separators=(",", ":")) for value in values
    ]
    assert _html_strings(values) == [str(escape(value)) for value in values]
