"""Every feature belongs to one reviewed reason group; protected characteristics never do."""

from __future__ import annotations

import numpy as np
import pytest

from models import _reason_groups


def test_windows_of_one_indicator_form_one_group(booster):
    groups = _reason_groups.feature_groups(booster.feature_name())
    names = np.array(booster.feature_name())
    for window in ("4w", "13w", "26w", "52w"):
        position = np.flatnonzero(names == f"police_callout_count_{window}")
        if position.size:
            assert _reason_groups.GROUP_KEYS[groups[position[0]]] == "police_callout"
    arrears = [name for name in names if name.startswith("rent_arrears_")]
    assert {_reason_groups.FEATURE_GROUPS[name] for name in arrears} == {"rent_arrears"}
    absence = [name for name in names if name.startswith("school_absence_")]
    assert {_reason_groups.FEATURE_GROUPS[name] for name in absence} == {"school_absence"}


def test_every_built_feature_has_a_reviewed_reason_group(features_now):
    groups = _reason_groups.feature_groups(list(features_now.columns))
    assert len(groups) == features_now.shape[1]


def test_protected_characteristics_cannot_be_explained_features():
    for name in ("sex", "ethnicity_white", "birth_year", "age", "disability"):
        with pytest.raises(ValueError, match="protected"):
            _reason_groups.feature_groups(["adults", name])
    with pytest.raises(ValueError, match="reviewed reason template"):
        _reason_groups.feature_groups(["adults", "shoe_size"])
