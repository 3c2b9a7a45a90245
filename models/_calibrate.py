"""Probability calibration of the booster's raw scores, chosen by the size of the calibration set.

Isotonic regression needs many events and non-events to be stable; with fewer, Platt scaling (a
one-feature logistic curve) is the safer choice. The fitted calibrator is plain numbers, stored as
JSON, so a reloaded model reproduces the same probabilities bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

CALIBRATION_METHODS: tuple[str, ...] = ("isotonic", "sigmoid")


@dataclass(frozen=True)
class Calibrator:
    """A monotone map from raw booster score (log-odds) to probability of escalation."""

    method: str
    knots_x: tuple[float, ...]
    knots_y: tuple[float, ...]

    def predict(self, raw_score: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw_score, dtype=np.float64)
        if self.method == "sigmoid":
            slope, intercept = self.knots_x
            return 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
        return np.interp(raw, self.knots_x, self.knots_y)

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "knots_x": list(self.knots_x), "knots_y": list(self.knots_y)}

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> Calibrator:
        if values.get("method") not in CALIBRATION_METHODS:
            raise ValueError(f"unknown calibration method {values.get('method')!r}")
        return cls(
            method=str(values["method"]),
            knots_x=tuple(float(x) for x in values["knots_x"]),
            knots_y=tuple(float(y) for y in values["knots_y"]),
        )


def choose_calibration_method(labels: np.ndarray, *, isotonic_min_class_count: int) -> str:
    """Isotonic when both classes have `isotonic_min_class_count` examples, else sigmoid."""
    positives = int(np.sum(labels))
    smaller_class = min(positives, len(labels) - positives)
    return "isotonic" if smaller_class >= isotonic_min_class_count else "sigmoid"


def fit_calibrator(
    raw_score: np.ndarray,
    labels: np.ndarray,
    *,
    isotonic_min_class_count: int,
    sample_weight: np.ndarray | None = None,
) -> Calibrator:
    """Fit the calibration the data size supports on (raw score, outcome) pairs, on weighted
    examples when `sample_weight` is given (the method is chosen on unweighted counts: it is
    about the data's size)."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.min() == labels.max():
        raise ValueError("the calibration set needs both escalated and non-escalated households")
    method = choose_calibration_method(labels, isotonic_min_class_count=isotonic_min_class_count)
    raw = np.asarray(raw_score, dtype=np.float64)
    if method == "sigmoid":
        curve = LogisticRegression(C=np.inf).fit(
            raw.reshape(-1, 1), labels, sample_weight=sample_weight
        )
        return Calibrator("sigmoid", (float(curve.coef_[0, 0]), float(curve.intercept_[0])), ())
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
        raw, labels, sample_weight=sample_weight
    )
    return Calibrator(
        "isotonic",
        tuple(float(x) for x in isotonic.X_thresholds_),
        tuple(float(y) for y in isotonic.y_thresholds_),
    )
