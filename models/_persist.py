"""Saving and loading a fitted model as plain files: booster text, calibrator JSON, metadata JSON.

No pickles: the files are readable, diffable and independent of Python versions, and loading them
gives back a model whose scores equal the fitted one's exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb

from models._calibrate import Calibrator
from models._estimator import EscalationModel, restored_model

BOOSTER_FILE = "booster.txt"
CALIBRATOR_FILE = "calibrator.json"
METADATA_FILE = "model.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ChampionModel:
    """A registered model version ready to score: the estimator and where it came from."""

    estimator: EscalationModel
    name: str
    version: str
    run_id: str
    horizon_weeks: int


def save_model(model: EscalationModel, directory: Path, *, horizon_weeks: int) -> Path:
    """Write the model's three files into `directory` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / BOOSTER_FILE).write_text(model.booster_.model_to_string(), encoding="utf-8")
    (directory / CALIBRATOR_FILE).write_text(
        json.dumps(model.calibrator_.to_dict(), indent=1), encoding="utf-8"
    )
    metadata = {
        "format_version": FORMAT_VERSION,
        "params": model.get_params(),
        "feature_names": model.feature_names_,
        "best_iteration": model.best_iteration_,
        "horizon_weeks": horizon_weeks,
        "lightgbm_version": lgb.__version__,
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=1), encoding="utf-8")
    return directory


def load_model(directory: Path) -> tuple[EscalationModel, dict[str, object]]:
    """Read a model written by `save_model`; returns the estimator and its metadata."""
    try:
        metadata = json.loads((directory / METADATA_FILE).read_text(encoding="utf-8"))
        calibrator = Calibrator.from_dict(
            json.loads((directory / CALIBRATOR_FILE).read_text(encoding="utf-8"))
        )
        booster_text = (directory / BOOSTER_FILE).read_text(encoding="utf-8")
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{directory}: not a complete escalation model ({error})") from None
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{directory}: unsupported model format {metadata.get('format_version')}")
    model = restored_model(
        params=metadata["params"], booster_text=booster_text, calibrator=calibrator
    )
    if model.feature_names_ != metadata["feature_names"]:
        raise ValueError(f"{directory}: booster and metadata disagree on the feature list")
    return model, metadata
