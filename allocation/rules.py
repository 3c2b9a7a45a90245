"""The hard rules of allocation, written once: whether a worker may take a household, and whether
a worker has room for a case.

Everything that decides or checks an allocation calls these: the candidate pairs the optimiser
sees (`allowed_pairs`, the same rule over a whole table), a manager's locks, the service's
overrides and accepts, and the proposal's explanations. The same rule gives the same English
message everywhere.

The rules, in the order a refusal names them:
1. the worker is active (taking new cases);
2. the worker works in the household's locality, or in one the council lets take its households
   (`neighbours`: household locality -> the other localities whose workers may take them);
3. safeguarding: a household with a need in the council's safeguarding set (`safeguarding`,
   default DEFAULT_SAFEGUARDING: domestic abuse; e.g. parenting can be added) goes only to a
   worker who has every such skill it needs;
4. room: the case's points fit in the worker's free points (capacity minus open cases, cases
   opened by decisions and cases already given this week).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.contract import SKILLS
from features.needs import DEFAULT_SAFEGUARDING, need_label

SKILL_BIT: dict[str, int] = {skill: 1 << position for position, skill in enumerate(SKILLS)}


def split_skills(text: object) -> tuple[str, ...]:
    """Semicolon-separated skills -> tuple in contract order, duplicates dropped (empty -> ())."""
    if not isinstance(text, str):
        return ()
    named = {part.strip() for part in text.split(";") if part.strip()}
    return tuple(skill for skill in SKILLS if skill in named)


def skill_mask(text: object) -> int:
    """Bit mask of a semicolon-separated skill list (bit i = SKILLS[i])."""
    return sum(SKILL_BIT[skill] for skill in split_skills(text))


def skill_label(skill: str) -> str:
    """How a skill reads in a sentence (features.needs.need_label)."""
    return need_label(skill)


def skills_phrase(skills: Sequence[str]) -> str:
    """The skills as a modifier: "domestic-abuse skill", "domestic-abuse and parenting skills"."""
    words = [skill_label(skill).replace(" ", "-") for skill in skills]
    joined = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"{joined} skill{'s' if len(words) > 1 else ''}"


def safeguarding_needs(
    needs: object, safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING
) -> tuple[str, ...]:
    """The needs of a needs list that are in the safeguarding set, in contract order."""
    return tuple(skill for skill in split_skills(needs) if skill in safeguarding)


def needs_safeguarding(needs: object, safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING) -> bool:
    """Whether a needs list names any need of the safeguarding set."""
    return bool(safeguarding_needs(needs, safeguarding))


def missing_safeguarding(
    needs: object, skills: object, safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING
) -> tuple[str, ...]:
    """The household's safeguarding needs that a worker's skills do not cover (rule 3)."""
    held = set(split_skills(skills))
    return tuple(skill for skill in safeguarding_needs(needs, safeguarding) if skill not in held)


def covers(skills: object, needed: Sequence[str]) -> bool:
    """Whether a worker's skills include every skill of `needed` (rule 3 for a known need set)."""
    return not missing_safeguarding(";".join(needed), skills, needed)


def places_for(locality: str, *, neighbours: Mapping[str, Sequence[str]]) -> list[str]:
    """The localities whose workers may take households from `locality`, its own first."""
    return [locality, *sorted(set(neighbours.get(locality, ())) - {locality})]


def worker_refusal(
    *,
    worker_id: str,
    worker: Mapping[str, object],
    household_locality: str,
    needs: object,
    neighbours: Mapping[str, Sequence[str]],
    safeguarding: Sequence[str],
) -> str | None:
    """Why the worker may not take the household (None: rules 1-3 allow it).

    `worker` is the worker's row of the workers table (active, locality, skills); `safeguarding`
    the council's safeguarding needs (AllocationSettings.safeguarding).
    """
    if not bool(worker["active"]):
        return f"{worker_id} is not active (not taking new cases)"
    if worker["locality"] not in places_for(household_locality, neighbours=neighbours):
        return (
            f"{worker_id} works in {worker['locality']}, which may not take households from "
            f"{household_locality}"
        )
    missing = missing_safeguarding(needs, worker["skills"], safeguarding)
    if missing:
        return (
            f"the household needs a worker with {skills_phrase(missing)} (safeguarding); "
            f"{worker_id} does not have {'it' if len(missing) == 1 else 'them'}"
        )
    return None


def room_refusal(
    *, worker_id: str, capacity_points: int, free_points: int, points: int
) -> str | None:
    """Why the worker has no room for a case of `points` (None: rule 4 allows it)."""
    if points <= free_points:
        return None
    return (
        f"{worker_id} has {max(int(free_points), 0)} of {int(capacity_points)} points free; "
        f"this case needs {int(points)}"
    )


def safeguarding_mask(safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING) -> int:
    """Bit mask of the safeguarding set (bit i = SKILLS[i])."""
    return sum(SKILL_BIT[skill] for skill in set(safeguarding))


def allowed_pairs(
    pairs: pd.DataFrame, *, safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING
) -> pd.Series:
    """Rules 1 and 3 over a table of (household, worker) pairs: True where allowed.

    `pairs` has `active` and the bit masks `need_mask` and `skill_mask` (skill_mask); rule 2 is
    applied by joining on the allowed (locality, worker locality) table, which `places_for` gives.
    """
    guarded = pairs["need_mask"].to_numpy(dtype=np.int64) & safeguarding_mask(safeguarding)
    uncovered = guarded & ~pairs["skill_mask"].to_numpy(dtype=np.int64)
    allowed = pairs["active"].to_numpy(dtype=bool) & (uncovered == 0)
    return pd.Series(allowed, index=pairs.index)
