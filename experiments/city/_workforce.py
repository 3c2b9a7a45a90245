"""The synthetic city's key workers: home locality, skills, capacity and who leaves when."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.city._population import Population
from features.contract import LOCALITIES, SKILLS

_SKILL_WEIGHTS = {
    "debt": 0.14,
    "housing": 0.12,
    "domestic_abuse": 0.12,
    "substance_misuse": 0.08,
    "mental_health": 0.12,
    "parenting": 0.12,
    "youth": 0.07,
    "school_attendance": 0.09,
    "employment": 0.07,
    "asb": 0.07,
}


@dataclass(frozen=True)
class Workforce:
    """The key workers: home locality, skills, capacity and the week (if any) each one leaves."""

    worker_id: np.ndarray
    locality: np.ndarray
    skills: np.ndarray
    capacity_points: np.ndarray
    leaves_week: np.ndarray

    @property
    def size(self) -> int:
        return len(self.worker_id)


def _workers_per_locality(population: Population, workers: int) -> np.ndarray:
    """Largest-remainder split of the workforce by need-weighted households, one at least each."""
    need = np.bincount(
        population.locality, weights=np.exp(population.propensity), minlength=len(LOCALITIES)
    )
    spare = workers - len(LOCALITIES)
    quota = spare * need / need.sum()
    counts = np.floor(quota).astype(np.int64)
    remainder_order = np.argsort(-(quota - counts), kind="stable")
    counts[remainder_order[: spare - counts.sum()]] += 1
    return counts + 1


def _draw_skills(rng: np.random.Generator, locality: np.ndarray) -> np.ndarray:
    """(workers, SKILLS) bool: 2-4 skills each; about a third per team do domestic abuse."""
    workers = len(locality)
    weights = np.array([_SKILL_WEIGHTS[name] for name in SKILLS])
    keys = -np.log(rng.random((workers, len(SKILLS)))) / weights  # weighted sampling w/o repl.
    ranks = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    count = rng.integers(2, 5, size=workers)
    skills = ranks < count[:, None]
    abuse = SKILLS.index("domestic_abuse")
    for team in range(len(LOCALITIES)):
        members = np.flatnonzero(locality == team)
        needed = max(1, int(np.ceil(0.3 * len(members)))) - skills[members, abuse].sum()
        lacking = members[~skills[members, abuse]][: max(needed, 0)]
        full = lacking[skills[lacking].sum(axis=1) >= 4]
        drop = np.argmax(np.where(skills[full], ranks[full], -1), axis=1)
        skills[full, drop] = False
        skills[lacking, abuse] = True
    return skills


def draw_workforce(
    rng: np.random.Generator,
    population: Population,
    *,
    households_per_worker: int,
    leavers_share: float,
) -> Workforce:
    """Key workers by locality; a few are scheduled to leave (go inactive) part-way through."""
    total = max(len(LOCALITIES), round(population.size / households_per_worker))
    locality = np.repeat(np.arange(len(LOCALITIES)), _workers_per_locality(population, total))
    skills = _draw_skills(rng, locality)
    part_time = rng.choice(np.array([50, 60, 80]), size=total)
    capacity = np.where(rng.random(total) < 0.72, 100, part_time).astype(np.int64)
    team_size = np.bincount(locality, minlength=len(LOCALITIES))[locality]
    eligible = np.flatnonzero(team_size >= 3)
    leavers = rng.permutation(eligible)[: round(leavers_share * total)]
    leaves_week = np.full(total, np.iinfo(np.int64).max)
    leaves_week[leavers] = rng.integers(52, 182, size=len(leavers))
    skill_names = np.array(SKILLS, dtype=object)
    return Workforce(
        worker_id=np.array([f"KW{number:04d}" for number in range(1, total + 1)], dtype=object),
        locality=locality,
        skills=np.array([";".join(skill_names[row]) for row in skills], dtype=object),
        capacity_points=capacity,
        leaves_week=leaves_week,
    )
