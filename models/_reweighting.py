"""Reweighting training examples by household group (a fairness mitigation).

Reweighing (Kamiran and Calders): weight each example by P(group) P(label) / P(group, label), so
that group and outcome are independent in the weighted data. The groups are an input (from
features.groups, the one reader of protected characteristics); nothing here knows what they are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.groups import UNKNOWN, require_columns
from models._examples import Examples, TrainingData
from models._settings import TrainSettings


def reweight_groups(
    data: TrainingData, *, as_of: pd.Timestamp | None, settings: TrainSettings
) -> pd.DataFrame:
    if data.groups_as_of is None or as_of is None:
        raise ValueError(
            f"reweighting by {settings.reweight_attribute} needs the households' groups "
            "(features.groups, from the households and people tables) and the window's date"
        )
    return data.groups_as_of(as_of)


def example_weights(
    data: TrainingData, examples: Examples, *, groups: pd.DataFrame, settings: TrainSettings
) -> np.ndarray:
    """Reweighing weights of examples by their household's group, tempered by the strength.

    P(group) P(label) / P(group, label) (group_sample_weights), raised to
    `reweight_strength` and rescaled to mean 1.
    """
    labels = pd.DataFrame(
        {
            "household_id": data.cache.household_ids.to_numpy()[examples.households],
            "label": examples.labels,
        }
    )
    full = group_sample_weights(
        labels=labels, groups=groups, attribute=str(settings.reweight_attribute)
    ).to_numpy()
    tempered = full**settings.reweight_strength
    return tempered / tempered.mean()


def group_sample_weights(
    *, labels: pd.DataFrame, groups: pd.DataFrame, attribute: str
) -> pd.Series:
    """Reweighing training weights: P(group) * P(label) / P(group, label), mean 1.

    labels: household_id, label (one row per training example; a household may repeat across
    as-of dates). Weighting makes group and outcome independent in the training data, so a group
    whose escalations are rarer in the records is not learned as lower risk. Indexed as `labels`.
    """
    require_columns(labels, table="labels", columns=("household_id", "label"))
    require_columns(groups, table="groups", columns=("household_id", attribute))
    group = (
        labels[["household_id"]]
        .merge(groups[["household_id", attribute]], on="household_id", how="left", validate="m:1")[
            attribute
        ]
        .fillna(UNKNOWN)
    )
    cell = pd.DataFrame({"group": group.to_numpy(), "label": labels["label"].to_numpy()})
    p_group = cell["group"].map(cell["group"].value_counts(normalize=True))
    p_label = cell["label"].map(cell["label"].value_counts(normalize=True))
    p_cell = cell.groupby(["group", "label"])["label"].transform("size") / len(cell)
    weights = (p_group * p_label / p_cell).to_numpy(dtype="float64")
    return pd.Series(weights / weights.mean(), index=labels.index, name="sample_weight")
