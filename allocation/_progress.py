"""The state the optimiser's stages share: one component (a locality, or localities joined by
neighbour rules) and its solve in progress (allocation._solver has the whole method)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from allocation._classes import CountModel

VALUE_SCALE = 1_000_000  # CP-SAT objective coefficients are value x 1e6, rounded to integers

UTILISATION_SCALE = 10_000  # utilisation in basis points


@dataclass
class Component:
    """One independent sub-problem: its pairs in class order (`source` = the caller's index),
    workers (worker_id, capacity_points, base_points, free_points) and statistics."""

    label: str
    pairs: pd.DataFrame
    workers: pd.DataFrame
    work: float  # deterministic CP-SAT work units for the balance stage
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Progress:
    """A component being solved: its count model, the allocation so far and each stage's record."""

    component: Component
    capacity: dict[str, int]
    model: CountModel
    deadline: float
    chosen: np.ndarray  # mask over component.pairs
    stages: dict[str, dict] = field(default_factory=dict)
    bound: float = math.inf  # proven bound on the component's objective (value units)

    @property
    def achieved(self) -> float:
        return float(self.component.pairs["value"].to_numpy()[self.chosen].sum())
