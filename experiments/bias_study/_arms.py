"""What the under-reporting study holds: its settings, arms and results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from experiments.fairness import (
    GateResult,
)

# Fast but faithful: the product's model and temporal design with fewer dates and trees.
STUDY_SETTINGS: dict[str, object] = {
    "folds": 2,
    "history_dates": 4,
    "n_estimators": 200,
    "early_stopping_rounds": 20,
    # The fold evaluation also fits the baselines, which the study does not use: keep them cheap.
    "logistic_max_rows": 10_000,
}
ARMS: tuple[str, ...] = ("control", "under-reported")
# Contact that a community may report less, or an agency record less, for some households.
DEFAULT_UNDER_REPORTED: tuple[str, ...] = (
    "police_callout",
    "domestic_abuse_incident",
    "asb_report",
    "missing_person",
    "ae_attendance",
    "social_care_contact",
    "fire_callout",
)


@dataclass(frozen=True)
class StudyArm:
    """One city's audits before and after mitigation, on recorded and on true outcomes."""

    name: str
    as_of: pd.Timestamp
    audits: dict[str, pd.DataFrame]  # keys: "<recorded|truth>_<before|after>"
    gates: dict[str, GateResult]
    cut_offs: pd.DataFrame


@dataclass(frozen=True)
class BiasStudy:
    """The study's arms, the report and the files written."""

    arms: dict[str, StudyArm]
    report: str
    files: dict[str, Path]
