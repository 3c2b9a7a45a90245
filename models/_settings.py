"""Training configuration: the temporal design, the model's hyperparameters and the promotion rule.

The horizon and the crisis set are configuration (data contract), so they live here with the rest
and can be read from a YAML or JSON mapping; nothing downstream hard-codes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from features.contract import CRISIS_EVENT_TYPES, EVENT_TYPES
from features.groups import AUDIT_ATTRIBUTES
from features.labels import DEFAULT_HORIZON_WEEKS

MODEL_NAME = "household-escalation"
PROMOTION_METRICS: tuple[str, ...] = ("auc", "average_precision")


@dataclass(frozen=True)
class TrainSettings:
    """Everything a training run depends on besides the data; logged as run parameters."""

    step_weeks: int = 4
    folds: int = 6
    history_dates: int = 5
    horizon_weeks: int = DEFAULT_HORIZON_WEEKS
    crisis_types: tuple[str, ...] = CRISIS_EVENT_TYPES
    top_fractions: tuple[float, ...] = (0.01, 0.02, 0.05)
    calibration_bins: int = 10
    logistic_max_rows: int = 50_000
    num_leaves: int = 15
    learning_rate: float = 0.1
    n_estimators: int = 400
    early_stopping_rounds: int = 30
    min_child_samples: int = 200
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.5
    lambda_l2: float = 1.0
    max_bin: int = 63
    isotonic_min_class_count: int = 1000
    num_threads: int = 2
    seed: int = 0
    min_auc: float = 0.70
    max_ece: float = 0.03
    promote_metric: str = "auc"
    promote_margin: float = 0.002
    model_name: str = MODEL_NAME
    reasons_per_household: int = 3
    # Mitigation: reweight training examples by this audit attribute (sex, ethnicity, disability,
    # age_band or locality) so that group and outcome are independent in the weighted data;
    # strength 1 is full reweighing, 0 none, in between tempers the weights (w ** strength).
    reweight_attribute: str | None = None
    reweight_strength: float = 1.0

    def __post_init__(self) -> None:
        for name in ("step_weeks", "folds", "horizon_weeks", "n_estimators", "num_leaves"):
            if getattr(self, name) < 1:
                raise ValueError(f"training setting {name} must be at least 1")
        if self.history_dates < 2:
            raise ValueError(
                "training setting history_dates must be at least 2 (trees + calibration)"
            )
        unknown = sorted(set(self.crisis_types) - set(EVENT_TYPES))
        if unknown or not self.crisis_types:
            raise ValueError(f"crisis_types must be contract event types; unknown: {unknown}")
        if self.promote_metric not in PROMOTION_METRICS:
            raise ValueError(f"promote_metric must be one of {PROMOTION_METRICS}")
        if not all(0 < fraction < 1 for fraction in self.top_fractions):
            raise ValueError("top_fractions must be between 0 and 1")
        if self.reweight_attribute not in (None, *AUDIT_ATTRIBUTES):
            raise ValueError(
                f"reweight_attribute must be one of {', '.join(AUDIT_ATTRIBUTES)}, "
                f"not {self.reweight_attribute!r}"
            )
        if not 0 <= self.reweight_strength <= 1:
            raise ValueError("reweight_strength must be between 0 and 1")

    def model_params(self) -> dict[str, float | int]:
        """The EscalationModel keyword arguments these settings imply."""
        names = (
            "num_leaves",
            "learning_rate",
            "n_estimators",
            "early_stopping_rounds",
            "min_child_samples",
            "feature_fraction",
            "bagging_fraction",
            "lambda_l2",
            "max_bin",
            "isotonic_min_class_count",
            "num_threads",
            "seed",
        )
        return {name: getattr(self, name) for name in names}

    def as_params(self) -> dict[str, str]:
        """Flat string parameters for the run log."""
        return {name: _as_text(value) for name, value in dataclasses.asdict(self).items()}


def _as_text(value) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(item) for item in value)
    return str(value)


def settings_from_mapping(values: Mapping[str, object]) -> TrainSettings:
    """TrainSettings from a configuration mapping (e.g. parsed YAML); unknown keys are an error."""
    known = {item.name: item for item in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown training settings: {', '.join(unknown)}")
    converted = {
        name: tuple(value) if isinstance(value, list) else value for name, value in values.items()
    }
    return TrainSettings(**converted)


def settings_from_file(path: str | Path) -> TrainSettings:
    """TrainSettings from a YAML file of overrides."""
    with open(path, encoding="utf-8") as handle:
        values = yaml.safe_load(handle) or {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{path}: training settings must be a mapping of name: value")
    try:
        return settings_from_mapping(values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None
