"""The temporal design: which as-of dates train, calibrate and test each model.

Rolling origin: fold k is scored as of test date T_k, the folds `step_weeks` apart and the last one
on the latest date whose outcome is known (evaluation as-of minus the horizon). A model for T_k is
trained as it could have been on T_k itself: its examples' label windows end by T_k and only crisis
records shared by T_k count (`known_by`). Within a window the latest date is held back for early
stopping and calibration, so the calibrator is always fitted on a later date than the trees.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from features.labels import label_window_end, trainable_as_of_dates
from models._settings import TrainSettings


@dataclass(frozen=True)
class TrainingWindow:
    """As-of dates of one model's training examples and the date their labels are known by."""

    tree_as_of: tuple[pd.Timestamp, ...]
    calibration_as_of: pd.Timestamp
    known_by: pd.Timestamp

    @property
    def as_of_dates(self) -> tuple[pd.Timestamp, ...]:
        return (*self.tree_as_of, self.calibration_as_of)


@dataclass(frozen=True)
class Fold:
    """One rolling-origin split: a training window and the later date it is tested on."""

    number: int
    window: TrainingWindow
    test_as_of: pd.Timestamp
    labels_known_by: pd.Timestamp


def training_window(*, evaluation_as_of, settings: TrainSettings) -> TrainingWindow:
    """The latest `history_dates` as-of dates whose label windows closed by `evaluation_as_of`."""
    dates = trainable_as_of_dates(
        evaluation_as_of=evaluation_as_of,
        step_weeks=settings.step_weeks,
        count=settings.history_dates,
        horizon_weeks=settings.horizon_weeks,
    )
    return TrainingWindow(
        tree_as_of=tuple(dates[:-1]),
        calibration_as_of=dates[-1],
        known_by=pd.Timestamp(evaluation_as_of),
    )


def fold_plan(*, evaluation_as_of, settings: TrainSettings) -> tuple[Fold, ...]:
    """The cross-validation folds, oldest first; the last one is the latest holdout."""
    evaluation = pd.Timestamp(evaluation_as_of)
    latest_test = evaluation - pd.Timedelta(weeks=settings.horizon_weeks)
    test_dates = [
        latest_test - pd.Timedelta(weeks=settings.step_weeks * back)
        for back in reversed(range(settings.folds))
    ]
    return tuple(
        Fold(
            number=number,
            window=training_window(evaluation_as_of=test_as_of, settings=settings),
            test_as_of=test_as_of,
            labels_known_by=evaluation,
        )
        for number, test_as_of in enumerate(test_dates, start=1)
    )


def plan_as_of_dates(folds: tuple[Fold, ...], final: TrainingWindow) -> list[pd.Timestamp]:
    """Every as-of date the plan needs features for, oldest first, each once."""
    dates = {date for fold in folds for date in (*fold.window.as_of_dates, fold.test_as_of)}
    return sorted(dates | set(final.as_of_dates))


def check_history(
    *, folds: tuple[Fold, ...], first_event_day: pd.Timestamp, settings: TrainSettings
) -> None:
    """Refuse a plan whose earliest training date comes before the extract has any history."""
    earliest = min(fold.window.tree_as_of[0] for fold in folds)
    if earliest <= first_event_day:
        raise ValueError(
            f"not enough history for {settings.folds} folds {settings.step_weeks} weeks apart with "
            f"{settings.history_dates} training dates and a {settings.horizon_weeks}-week horizon: "
            f"the earliest training as-of date would be {earliest.date()}, but the events start on "
            f"{first_event_day.date()}; use fewer folds, fewer history dates or a smaller step"
        )


def window_is_closed(window: TrainingWindow, *, horizon_weeks: int) -> bool:
    """True when every label window of the training examples ended by the known-by date."""
    return all(
        label_window_end(as_of, horizon_weeks=horizon_weeks) <= window.known_by
        for as_of in window.as_of_dates
    )
