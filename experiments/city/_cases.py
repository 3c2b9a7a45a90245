"""Key-worker cases: the case book, case complexity, choosing a worker and why cases close."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from experiments.city._population import DOMAIN_SKILLS, DOMAINS, Population
from features.contract import CLOSE_REASONS, SKILLS, TENURES

NOT_CLOSED = -1
# The need a worker is matched on first, when a household has several.
DOMAIN_PRIORITY: tuple[str, ...] = (
    "domestic_abuse",
    "substance_misuse",
    "mental_health",
    "parenting",
    "offending",
    "debt",
)
# A household that stopped engaging within this many weeks "declined" support.
DECLINE_WEEKS = 4


def _empty(length: int) -> np.ndarray:
    return np.full(length, NOT_CLOSED, dtype=np.int64)


@dataclass
class CaseBook:
    """Every case ever opened, in opening order (row = case number - 1)."""

    household: np.ndarray = field(default_factory=lambda: _empty(1024))
    worker: np.ndarray = field(default_factory=lambda: _empty(1024))
    opened: np.ndarray = field(default_factory=lambda: _empty(1024))
    closed: np.ndarray = field(default_factory=lambda: _empty(1024))
    complexity: np.ndarray = field(default_factory=lambda: _empty(1024))
    reason: np.ndarray = field(default_factory=lambda: _empty(1024))
    count: int = 0


def add_cases(
    book: CaseBook,
    *,
    household: np.ndarray,
    worker: np.ndarray,
    opened: np.ndarray,
    complexity: np.ndarray,
) -> np.ndarray:
    """Append open cases to the book; returns their row numbers."""
    needed = book.count + len(household)
    if needed > len(book.household):
        grown = max(needed, 2 * len(book.household))
        for name in ("household", "worker", "opened", "closed", "complexity", "reason"):
            column = getattr(book, name)
            setattr(book, name, np.concatenate([column, _empty(grown - len(column))]))
    rows = np.arange(book.count, needed)
    book.household[rows] = household
    book.worker[rows] = worker
    book.opened[rows] = opened
    book.complexity[rows] = complexity
    book.count = needed
    return rows


def close_cases(book: CaseBook, rows: np.ndarray, *, day: int, reason: np.ndarray) -> None:
    """Record the closing day and CLOSE_REASONS index of the given cases."""
    book.closed[rows] = day
    book.reason[rows] = reason


def complexity_points(
    *, domain_count: np.ndarray, tier: np.ndarray, acute: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """Case weight 8-32: more needs, specialist-tier and acute households weigh more."""
    points = 8 + 4 * domain_count + 4 * (tier == 3) + 2 * acute + noise
    return np.clip(points, 8, 32).astype(np.int64)


def expected_complexity(domain_count: np.ndarray) -> np.ndarray:
    """(households, 4, 2): complexity_points with zero noise, by tier and acute flag."""
    tier = np.arange(4)[None, :, None]
    acute = np.arange(2)[None, None, :]
    return complexity_points(
        domain_count=domain_count[:, None, None], tier=tier, acute=acute, noise=0
    ).astype(float)


def complexity_noise(rng: np.random.Generator, count: int) -> np.ndarray:
    """Case-to-case variation in complexity around what the household's needs suggest."""
    return rng.choice(np.array([-4, -2, 0, 2, 4]), size=count)


def needed_skills(population: Population) -> np.ndarray:
    """(households, 2) SKILLS indices: the preferred and an acceptable skill for each household."""
    households = population.size
    first, second = np.full(households, SKILLS.index("debt")), np.full(households, -1)
    renter = population.tenure != TENURES.index("owner")
    first[renter] = SKILLS.index("housing")
    second[:] = np.where(renter, SKILLS.index("debt"), SKILLS.index("employment"))
    for domain in reversed(DOMAIN_PRIORITY):
        present = population.domains[:, DOMAINS.index(domain)]
        preferred, alternative = DOMAIN_SKILLS[domain]
        first[present] = SKILLS.index(preferred)
        second[present] = SKILLS.index(alternative)
    return np.column_stack([first, second])


def choose_worker(
    *,
    locality: int,
    skills: np.ndarray,
    points: int,
    remaining: np.ndarray,
    active: np.ndarray,
    worker_locality: np.ndarray,
    worker_skills: np.ndarray,
) -> int:
    """The worker to take a case, or -1 if nobody has room.

    Prefers the home locality team and the right skill; among equals, the most spare capacity
    (lowest worker number on ties). Falls back to any skill, then to another locality.
    """
    fits = active & (remaining >= points)
    local = fits & (worker_locality == locality)
    skilled = worker_skills[:, skills[0]] | worker_skills[:, skills[1]]
    for pool in (local & skilled, local, fits & skilled, fits):
        if pool.any():
            candidates = np.flatnonzero(pool)
            return int(candidates[np.argmax(remaining[candidates])])
    return -1


def close_reasons(
    *, weeks_open: np.ndarray, moved: np.ndarray, tier_next: np.ndarray
) -> np.ndarray:
    """CLOSE_REASONS index for cases ending this week.

    Early endings are the household declining; otherwise support ends when the household agrees
    its problems are resolved (it is back in a low tier) or that no further progress is possible.
    """
    reason = np.where(
        tier_next <= 1, CLOSE_REASONS.index("resolved"), CLOSE_REASONS.index("no_further_progress")
    )
    reason = np.where(weeks_open <= DECLINE_WEEKS, CLOSE_REASONS.index("declined"), reason)
    return np.where(moved, CLOSE_REASONS.index("moved_away"), reason)


def skill_matrix(skills: np.ndarray) -> np.ndarray:
    """(workers, SKILLS) bool from semicolon-separated skill strings."""
    matrix = np.zeros((len(skills), len(SKILLS)), dtype=bool)
    for row, text in enumerate(skills.tolist()):
        matrix[row, [SKILLS.index(name) for name in text.split(";")]] = True
    return matrix
