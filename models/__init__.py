"""The household escalation model: temporal validation, calibration, baselines, metrics, scoring."""

from models import _openmp  # noqa: F401  (must run before LightGBM loads)
from models._settings import TrainSettings
from models._train import fit_and_evaluate

__all__ = ["TrainSettings", "fit_and_evaluate"]
