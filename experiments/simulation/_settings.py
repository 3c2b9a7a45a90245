"""What a simulation runs (SimulationSettings) and what it returns: histories, runs, results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

import experiments.simulation._features as live
from experiments.city import CitySimulator
from experiments.simulation._outcomes import (
    WardIndex,
)
from experiments.simulation._policies import (
    POLICIES,
    check_policy,
)

ROLLOUTS: tuple[str, ...] = ("all", "staggered")
ALLOCATION_NONE = pd.DataFrame(
    {
        "household_id": pd.Series(dtype="str"),
        "worker_id": pd.Series(dtype="str"),
        "complexity_points": pd.Series(dtype=np.int64),
    }
)
PER_CASE_BAND_GBP: tuple[float, float] = (6_200.0, 14_500.0)
# Seconds are kept per stage of the run weeks; the follow-up (steps, outcomes and its exact
# expectation) is one stage of its own.
STAGES: tuple[str, ...] = ("features", "scoring", "allocation", "step", "outcomes", "follow_up")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SimulationSettings:
    """What is simulated; every field is logged with the results."""

    weeks: int = 52
    households: int = 110_000
    seeds: tuple[int, ...] = (0, 1, 2)
    policies: tuple[str, ...] = POLICIES
    end: date = date(2025, 3, 30)  # last day of the history; week 0 starts the day after
    history_weeks: int = 182
    rollout: str = "all"
    late_start_week: int = 26
    pre_weeks: int = 26
    follow_up_weeks: int = 26
    top_n: int = 500
    time_limit_s: float = 2.0
    capacity_share: float = 1.0
    case_effect: float = 0.2
    rollout_seed: int = 0

    def __post_init__(self) -> None:
        for policy in self.policies:
            check_policy(policy)
        problems = [
            (self.weeks < 1, "weeks must be at least 1"),
            (not self.seeds, "at least one seed is needed"),
            (self.rollout not in ROLLOUTS, f"rollout must be one of {', '.join(ROLLOUTS)}"),
            (
                self.rollout == "staggered" and not 1 <= self.late_start_week <= self.weeks,
                "late_start_week must be within the simulated weeks",
            ),
            (not 4 <= self.pre_weeks <= self.history_weeks, "pre_weeks must be 4..history_weeks"),
            (self.follow_up_weeks < 0, "follow_up_weeks must be at least 0"),
            (not 0.0 <= self.capacity_share <= 1.0, "capacity_share must be in [0, 1]"),
            (self.top_n < 1, "top_n must be at least 1"),
        ]
        messages = [message for bad, message in problems if bad]
        if messages:
            raise ValueError("simulation settings: " + "; ".join(messages))

    @property
    def start(self) -> date:
        return self.end + timedelta(days=1)

    def run_policies(self) -> tuple[str, ...]:
        """The policies to run, the "none" baseline always included (last)."""
        return tuple(policy for policy in POLICIES if policy in self.policies or policy == "none")

    def as_dict(self) -> dict[str, object]:
        values = asdict(self)
        return values | {"end": self.end.isoformat(), "seeds": list(self.seeds)}

    def history_key(self) -> tuple:
        """What a seed's history depends on (a history can serve any settings with this key)."""
        return (self.households, self.end, self.history_weeks, self.pre_weeks, self.case_effect)


@dataclass
class History:
    """One seed's city at the end of its history, ready to be copied for each policy."""

    seed: int
    simulator: CitySimulator
    index: WardIndex
    features: live.LiveHistory
    pre_outcomes: pd.DataFrame
    pre_expected_crises: float
    key: tuple  # SimulationSettings.history_key() of the settings it was run with


@dataclass(frozen=True)
class PolicyRun:
    """What one policy did to one seed's city."""

    policy: str
    seed: int
    weekly: pd.DataFrame
    events: pd.Series  # events that occurred in the simulated weeks, by event type
    outcomes: pd.DataFrame
    households_helped: int
    cases_opened: pd.DataFrame  # household_id, worker_id, complexity_points, week (in memory only)
    expected_crises_after_run: float  # exact, over follow_up_weeks from the state the run ends in


@dataclass(frozen=True)
class SimulationResult:
    """Every policy x seed: per-seed metrics, costs, events, weekly series and outcome panels."""

    settings: SimulationSettings
    runs: pd.DataFrame
    costs: pd.DataFrame
    events: pd.DataFrame
    weekly: pd.DataFrame
    outcomes: pd.DataFrame
    early_wards: tuple[str, ...]
    model: dict[str, object] = field(default_factory=dict)
