"""Training settings read from configuration."""

from __future__ import annotations

import pytest

from models import settings_from_file, settings_from_mapping


def test_settings_from_configuration_accept_lists_and_refuse_unknown_names(tmp_path):
    settings = settings_from_mapping({"folds": 3, "crisis_types": ["arrest", "deliberate_fire"]})
    assert settings.folds == 3 and settings.crisis_types == ("arrest", "deliberate_fire")
    with pytest.raises(ValueError, match="unknown training settings: fold"):
        settings_from_mapping({"fold": 3})
    with pytest.raises(ValueError, match="crisis_types"):
        settings_from_mapping({"crisis_types": ["not_an_event"]})
    config = tmp_path / "training.yaml"
    config.write_text("step_weeks: 2\npromote_metric: average_precision\n")
    assert settings_from_file(config).step_weeks == 2
    config.write_text("promote_metric: accuracy\n")
    with pytest.raises(ValueError, match="training.yaml"):
        settings_from_file(config)
