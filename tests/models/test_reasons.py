"""Choosing and writing reasons: the household's own figures, honesty when nothing is strong."""

from __future__ import annotations

import numpy as np
import pytest

from models import _reason_groups, _reasons
from tests.models.conftest import TEMPLATES


def _attributions_for(values: dict[str, float], pushes: dict[str, float]):
    feature_names = list(_reason_groups.FEATURE_GROUPS)
    frame = {name: np.array([values.get(name, 0.0)]) for name in feature_names}
    attributions = np.array([[pushes.get(name, 0.0) for name in feature_names]])
    return frame, attributions, feature_names


def test_reason_texts_show_the_households_own_records():
    values = {
        "rent_arrears_balance_latest": 1240.4,
        "rent_arrears_balance_13w_ago": 310.0,
        "rent_arrears_change_13w": 930.4,
        "domestic_abuse_incident_count_4w": 1,
        "domestic_abuse_incident_count_13w": 3,
        "domestic_abuse_incident_count_26w": 3,
        "domestic_abuse_incident_count_52w": 4,
        "domestic_abuse_incident_days_since": 9,
        "school_absence_sessions_13w": 38,
        "school_absence_sessions_26w": 40,
        "school_absence_sessions_52w": 41,
        "school_absence_days_since": 20,
        "tenure_temporary": 1,
        "children": 2,
        "adults": 1,
    }
    pushes = {
        "rent_arrears_change_13w": 0.5,
        "rent_arrears_balance_latest": 0.4,
        "domestic_abuse_incident_count_13w": 0.6,
        "domestic_abuse_incident_days_since": 0.1,
        "school_absence_sessions_13w": 0.3,
        "tenure_temporary": 0.25,
        "children": 0.05,
    }
    frame, attributions, names = _attributions_for(values, pushes)
    reasons = _reasons.reasons_for_rows(
        values=frame,
        attributions=attributions,
        feature_names=names,
        max_reasons=5,
        templates=TEMPLATES,
    )
    texts = [str(text) for text in reasons.text[0] if text]
    assert texts == [
        "Rent arrears rose from £310 to £1,240 in the last 13 weeks",
        "3 domestic abuse incidents recorded by police in the last 13 weeks, the latest 9 days ago",
        "School reported 38 sessions missed in the last 13 weeks",
        "Lives in temporary accommodation",
    ]
    assert reasons.contribution[0, 0] == pytest.approx(0.9)
    assert reasons.share[0, :4] == pytest.approx(np.array([0.9, 0.7, 0.3, 0.25]) / 2.2)
    assert _reasons.needs_text(reasons)[0] == "debt;housing;domestic_abuse;school_attendance"


def test_no_strong_factor_is_said_honestly():
    pushes = {"police_callout_count_13w": 0.15, "arrears": 0.0, "children": 0.1}
    frame, attributions, names = _attributions_for(
        {"police_callout_count_13w": 2, "police_callout_days_since": 5, "children": 3}, pushes
    )
    reasons = _reasons.reasons_for_rows(
        values=frame,
        attributions=attributions,
        feature_names=names,
        max_reasons=5,
        templates=TEMPLATES,
    )
    assert reasons.count[0] == 0
    assert _reasons.joined_text(reasons, templates=TEMPLATES)[0] == TEMPLATES.no_strong_reason
    assert _reasons.needs_text(reasons)[0] == ""


def test_an_indicator_without_records_is_never_a_reason():
    # The model may push risk up for "no arrears on record"; that is not something to tell.
    frame, attributions, names = _attributions_for(
        {"rent_arrears_balance_latest": np.nan, "rent_arrears_balance_13w_ago": np.nan},
        {"rent_arrears_balance_latest": 1.5},
    )
    frame["rent_arrears_balance_latest"] = np.array([np.nan])
    frame["rent_arrears_balance_13w_ago"] = np.array([np.nan])
    frame["rent_arrears_days_since"] = np.array([np.nan])
    reasons = _reasons.reasons_for_rows(
        values=frame,
        attributions=attributions,
        feature_names=names,
        max_reasons=5,
        templates=TEMPLATES,
    )
    assert reasons.count[0] == 0
    assert reasons.share.shape == (1, 5)
