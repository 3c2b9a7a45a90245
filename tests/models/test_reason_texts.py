"""The texts of each kind of reason: the agencies named follow the feature's rule."""

from __future__ import annotations

import numpy as np

from models import _reason_texts
from tests.models.conftest import AS_OF, TEMPLATES


def test_agency_names_follow_the_feature_rule(features_now, small_city):
    names = _reason_texts.recent_agency_names(
        small_city["events"], household_ids=features_now.index, as_of=AS_OF, templates=TEMPLATES
    )
    counted = np.array([len(text.split(", ")) if text else 0 for text in names])
    assert (counted == features_now["agencies_26w"].to_numpy()).all()
