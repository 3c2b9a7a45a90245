"""Training examples: features per as-of date built once, labels, and each household's role.

A training run builds every household's features once per as-of date of its plan (`FeatureCache`)
and stacks them into examples of a window's dates with labels known by a date (`Examples`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.build import features_as_of, prepare_tables
from features.labels import build_labels
from models._estimator import check_no_protected_features
from models._plan import TrainingWindow, window_is_closed
from models._settings import TrainSettings

# Each household's groups as of a date: household_id and one column per attribute.
GroupsAsOf = Callable[[pd.Timestamp], pd.DataFrame]


@dataclass(frozen=True)
class FeatureCache:
    """Features per as-of date, built once: row-major float32 matrices sharing one household index.

    Row-major float32 is what LightGBM reads without copying; `cache[as_of]` wraps a matrix in a
    DataFrame without copying it either.
    """

    household_ids: pd.Index
    feature_names: list[str]
    matrices: Mapping[pd.Timestamp, np.ndarray]

    def __getitem__(self, as_of) -> pd.DataFrame:
        return pd.DataFrame(
            self.matrices[pd.Timestamp(as_of)],
            index=self.household_ids,
            columns=self.feature_names,
            copy=False,
        )


def feature_cache(
    tables: Mapping[str, pd.DataFrame], *, as_of_dates: list[pd.Timestamp]
) -> FeatureCache:
    """Features of every household for each as-of date (float32: the model's input precision)."""
    prepared = prepare_tables(tables)
    frames = {as_of: features_as_of(prepared, as_of=as_of) for as_of in as_of_dates}
    first = frames[as_of_dates[0]]
    check_no_protected_features(list(first.columns))
    return FeatureCache(
        household_ids=first.index,
        feature_names=list(first.columns),
        matrices={
            as_of: np.ascontiguousarray(frame.to_numpy(dtype=np.float32))
            for as_of, frame in frames.items()
        },
    )


@dataclass(frozen=True)
class Examples:
    """Stacked examples: features, labels, and each row's household (position in the cache)."""

    matrix: np.ndarray
    labels: np.ndarray
    households: np.ndarray

    def rows(self, mask: np.ndarray) -> Examples:
        return Examples(self.matrix[mask], self.labels[mask], self.households[mask])


def labelled_examples(
    cache: FeatureCache,
    crisis_events: pd.DataFrame,
    *,
    as_of_dates: tuple[pd.Timestamp, ...],
    known_by: pd.Timestamp,
    settings: TrainSettings,
) -> Examples:
    """Examples of several as-of dates; labels use only crisis records known by `known_by`."""
    labels = [
        build_labels(
            crisis_events,
            household_ids=cache.household_ids,
            as_of=as_of,
            horizon_weeks=settings.horizon_weeks,
            crisis_types=settings.crisis_types,
            known_by=known_by,
        ).to_numpy()
        for as_of in as_of_dates
    ]
    return Examples(
        matrix=np.concatenate([cache.matrices[as_of] for as_of in as_of_dates]),
        labels=np.concatenate(labels),
        households=np.tile(np.arange(len(cache.household_ids)), len(as_of_dates)),
    )


def household_roles(household_ids: pd.Index) -> np.ndarray:
    """Each household's fixed role, by a hash of its id: "trees", "stopping" or "calibration".

    The same households appear at every as-of date with overlapping label windows, so a model
    checked on its own households looks far better than it is (it recognises them). Early
    stopping and calibration therefore use households the trees never saw.
    """
    bucket = np.array([zlib.crc32(str(value).encode()) % 20 for value in household_ids], dtype=int)
    return np.select([bucket < 14, bucket < 17], ["trees", "stopping"], "calibration")


@dataclass(frozen=True)
class TrainingData:
    """What every fold reads: the feature cache, crisis records, household roles, caseloads."""

    cache: FeatureCache
    crisis_events: pd.DataFrame
    roles: np.ndarray
    workers: pd.DataFrame
    cases: pd.DataFrame
    # Only for group reweighting (a mitigation), given by the caller: each household's groups as
    # of a date (household_id and one column per attribute); never model features.
    groups_as_of: GroupsAsOf | None = None

    def frame(self, matrix: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(matrix, columns=self.cache.feature_names, copy=False)


@dataclass(frozen=True)
class WindowExamples:
    """A training window's examples: the tree dates stacked, and the later calibration date."""

    tree: Examples
    late: Examples


def window_examples(
    cache: FeatureCache, crisis_events, *, window: TrainingWindow, settings: TrainSettings
) -> WindowExamples:
    """Examples of one window, refusing any whose label window is not closed by known_by."""
    if not window_is_closed(window, horizon_weeks=settings.horizon_weeks):
        raise ValueError(f"training window {window} uses label windows not closed by known_by")
    return WindowExamples(
        tree=labelled_examples(
            cache,
            crisis_events,
            as_of_dates=window.tree_as_of,
            known_by=window.known_by,
            settings=settings,
        ),
        late=labelled_examples(
            cache,
            crisis_events,
            as_of_dates=(window.calibration_as_of,),
            known_by=window.known_by,
            settings=settings,
        ),
    )


def checked_evaluation_as_of(tables: Mapping[str, pd.DataFrame], as_of) -> pd.Timestamp:
    """The evaluation date, refused when it lies after the extract's last shared record."""
    evaluation_as_of = pd.Timestamp(as_of).normalize()
    last_known = tables["events"]["known_at"].max()
    if pd.isna(last_known) or evaluation_as_of > last_known:
        raise ValueError(
            f"as-of date {evaluation_as_of.date()} is after the last record in the extract "
            f"({'none' if pd.isna(last_known) else last_known.date()}): outcomes after that are "
            "unknown, so labels would be wrong; train as of a date within the extract"
        )
    return evaluation_as_of


def crisis_events_of(events: pd.DataFrame, *, settings: TrainSettings) -> pd.DataFrame:
    """Only the crisis records: labels are built dozens of times and need nothing else."""
    columns = ["household_id", "event_type", "occurred_at", "known_at"]
    return events.loc[events["event_type"].isin(list(settings.crisis_types)), columns]


def training_data(
    tables: Mapping[str, pd.DataFrame],
    *,
    as_of_dates: list[pd.Timestamp],
    settings: TrainSettings,
    groups_as_of: GroupsAsOf | None = None,
) -> TrainingData:
    """Features for every as-of date of the plan, crisis records and household roles, once."""
    cache = feature_cache(tables, as_of_dates=as_of_dates)
    return TrainingData(
        cache=cache,
        crisis_events=crisis_events_of(tables["events"], settings=settings),
        roles=household_roles(cache.household_ids),
        workers=tables["workers"],
        cases=tables["cases"],
        groups_as_of=groups_as_of,
    )
