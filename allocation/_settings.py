"""Settings, the proposal container and the input error of the weekly allocation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandas as pd

from allocation.rules import DEFAULT_SAFEGUARDING
from features.contract import SKILLS


class AllocationInputError(ValueError):
    """Bad input to the allocation (a user error): the message names the table, row and column."""


@dataclass(frozen=True)
class AllocationSettings:
    """How the weekly proposal is built; every figure here is documented in docs/allocation.md.

    `neighbours` maps a household's locality to the other localities whose workers may also take
    its households (one direction only: list both ways for a two-way arrangement). `safeguarding`
    is the council's set of safeguarding needs (features.needs.NeedsSettings.safeguarding): a
    household with one goes only to a worker with that skill.
    """

    top_n: int = 500
    base_points: int = 8
    points_per_need: int = 4
    max_points: int = 32
    skill_bonus: float = 0.5
    relative_gap: float = 0.001
    time_limit_s: float = 10.0
    num_workers: int = 2
    seed: int = 0
    neighbours: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    safeguarding: tuple[str, ...] = DEFAULT_SAFEGUARDING

    def __post_init__(self) -> None:
        problems = _settings_problems(self)
        if problems:
            raise AllocationInputError("allocation settings: " + "; ".join(problems))
        frozen_neighbours = {
            str(locality): tuple(sorted({str(other) for other in others} - {str(locality)}))
            for locality, others in sorted(self.neighbours.items())
        }
        object.__setattr__(self, "neighbours", MappingProxyType(frozen_neighbours))
        chosen = set(self.safeguarding)
        object.__setattr__(self, "safeguarding", tuple(s for s in SKILLS if s in chosen))

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (for proposal.json)."""
        return {
            "top_n": self.top_n,
            "base_points": self.base_points,
            "points_per_need": self.points_per_need,
            "max_points": self.max_points,
            "skill_bonus": self.skill_bonus,
            "relative_gap": self.relative_gap,
            "time_limit_s": self.time_limit_s,
            "num_workers": self.num_workers,
            "seed": self.seed,
            "neighbours": {key: list(value) for key, value in self.neighbours.items()},
            "safeguarding": list(self.safeguarding),
        }


def _settings_problems(settings: AllocationSettings) -> list[str]:
    checks = [
        (settings.top_n >= 0, f"top_n must be >= 0 (got {settings.top_n})"),
        (settings.base_points >= 1, f"base_points must be >= 1 (got {settings.base_points})"),
        (settings.points_per_need >= 0, "points_per_need must be >= 0"),
        (
            settings.max_points >= settings.base_points,
            f"max_points ({settings.max_points}) must be >= base_points ({settings.base_points})",
        ),
        (settings.skill_bonus >= 0, "skill_bonus must be >= 0"),
        (0 <= settings.relative_gap < 1, "relative_gap must be in [0, 1)"),
        (settings.time_limit_s > 0, "time_limit_s must be > 0"),
        (settings.num_workers >= 1, "num_workers must be >= 1"),
        (isinstance(settings.neighbours, Mapping), "neighbours must map locality -> localities"),
    ]
    problems = [message for ok, message in checks if not ok]
    if isinstance(settings.safeguarding, str) or not hasattr(settings.safeguarding, "__iter__"):
        problems.append("safeguarding must be a list of skills")
    else:
        problems += [
            f"safeguarding: {skill!r} is not a skill ({', '.join(SKILLS)})"
            for skill in settings.safeguarding
            if skill not in SKILLS
        ]
    if isinstance(settings.neighbours, Mapping):
        problems += [
            f"neighbours[{locality!r}] must be a list or tuple of localities"
            for locality, others in settings.neighbours.items()
            if isinstance(others, str) or not hasattr(others, "__iter__")
        ]
    return problems


@dataclass(frozen=True)
class Proposal:
    """One weekly allocation proposal.

    rows: one row per candidate (assigned or waitlisted); workers: one row per worker in scope;
    continuing: the open cases, which stay with their worker; summary: JSON-ready facts about the
    solve; lock_report: one row per distinct manager lock with its outcome.
    """

    rows: pd.DataFrame
    workers: pd.DataFrame
    continuing: pd.DataFrame
    summary: dict[str, Any]
    lock_report: pd.DataFrame
