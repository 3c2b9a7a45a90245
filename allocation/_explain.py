"""Plain-English reasons for every line of the proposal: why this worker, the best alternative and
why not; for a waitlisted household, what stood in the way and how short its locality is.

The facts behind each sentence are gathered with joins first (one table, one row per candidate),
then each sentence is written from its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocation.rules import (
    DEFAULT_SAFEGUARDING,
    covers,
    safeguarding_needs,
    skill_label,
    skills_phrase,
    split_skills,
)

SAME_VALUE = 1e-12


def join_words(words: list[str], *, last: str = "and") -> str:
    """['a'] -> 'a'; ['a', 'b'] -> 'a and b'; ['a', 'b', 'c'] -> 'a, b and c'."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {last} " + words[-1]


def cover_phrase(needs: str, skills: str) -> str:
    """Which of the household's needs the worker's skills cover."""
    wanted = split_skills(needs)
    if not wanted:
        return "no specific needs recorded"
    covered = [skill for skill in wanted if skill in set(split_skills(skills))]
    if not covered:
        return f"covers none of its needs ({join_words([skill_label(s) for s in wanted])})"
    return (
        f"covers {join_words([skill_label(s) for s in covered])} "
        f"({len(covered)} of {len(wanted)} needs)"
    )


@dataclass(frozen=True)
class ExplainContext:
    """Everything the sentences draw on."""

    options: pd.DataFrame  # eligible pairs after exclusions: household_id, worker_id, value, ...
    workers: pd.DataFrame  # per-worker summary (worker_id, locality, skills, free_before, ...)
    places: dict[str, list[str]]  # household locality -> localities whose workers may take it
    tolerance: float
    safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING  # AllocationSettings.safeguarding


def _first_per_household(
    options: pd.DataFrame, order: list[str], ascending: list[bool], prefix: str
) -> pd.DataFrame:
    first = options.sort_values(
        ["household_id", *order], ascending=[True, *ascending], kind="stable"
    ).drop_duplicates("household_id")
    kept = first[["household_id", "worker_id", "value", "skills", "free_before", "free_after"]]
    return kept.rename(columns=lambda c: c if c == "household_id" else f"{prefix}_{c}")


def _facts(rows: pd.DataFrame, context: ExplainContext) -> pd.DataFrame:
    """One row per candidate: its chosen worker, best alternative and nearest option."""
    workers = context.workers[
        ["worker_id", "locality", "skills", "capacity_points", "free_before", "free_after"]
    ].rename(columns={"locality": "home"})
    options = context.options[["household_id", "worker_id", "value", "same_locality"]].merge(
        workers, on="worker_id"
    )
    chosen = options.rename(columns={"value": "chosen_value", "skills": "worker_skills"})
    assigned = rows[["household_id", "worker_id"]].rename(columns={"worker_id": "assigned_to"})
    others = options.merge(assigned, on="household_id")
    others = others.loc[others["worker_id"] != others["assigned_to"]]
    alternative = _first_per_household(
        others, ["value", "free_after", "worker_id"], [False, False, True], "alt"
    )
    nearest = _first_per_household(
        options, ["free_after", "free_before", "worker_id"], [False, False, True], "near"
    )
    most_free = options.groupby("household_id")["free_before"].max().rename("most_free_before")
    facts = rows.merge(chosen, on=["household_id", "worker_id"], how="left")
    for extra in (alternative, nearest):
        facts = facts.merge(extra, on="household_id", how="left")
    return facts.merge(most_free, left_on="household_id", right_index=True, how="left")


def _assigned_text(fact: dict[str, Any], tolerance: float) -> str:
    where = (
        "same locality" if fact["same_locality"] else (f"neighbouring locality ({fact['home']})")
    )
    guard = f", has {skills_phrase(fact['guard'])} (safeguarding)" if fact["guard"] else ""
    lock = "Assigned by a manager's lock. " if fact["locked"] else ""
    skills = fact["worker_skills"]
    first = (
        f"{lock}{fact['worker_id']}: {where}, {cover_phrase(fact['needs'], skills)}{guard}; "
        f"{int(fact['free_before'])} of {int(fact['capacity_points'])} points free before "
        f"this week, {int(fact['free_after'])} after."
    )
    return first + " " + _alternative_text(fact, tolerance)


def _alternative_text(fact: dict[str, Any], tolerance: float) -> str:
    if pd.isna(fact["alt_worker_id"]):
        return f"No other eligible worker{_group_words(fact)}."
    alternative, value, points = fact["alt_worker_id"], fact["value"], int(fact["points"])
    cover = cover_phrase(fact["needs"], fact["alt_skills"])
    free_after = int(fact["alt_free_after"])
    if fact["alt_value"] < value - SAME_VALUE:
        return (
            f"Best alternative {alternative}: {cover} (value {fact['alt_value']:.3f} vs "
            f"{value:.3f})."
        )
    equal = fact["alt_value"] <= value + SAME_VALUE
    if free_after < points:
        verb = "fits equally well" if equal else f"would cover more ({cover})"
        return (
            f"Best alternative {alternative} {verb} but has only {free_after} points left "
            f"after this week's allocations (this case needs {points})."
        )
    if equal:
        return (
            f"Best alternative {alternative} fits equally well ({free_after} points free "
            "after); between equals the proposal keeps the highest caseload lowest, then "
            "follows a fixed tie-break."
        )
    return (
        f"{alternative} would cover more ({cover}); {fact['worker_id']} keeps the highest "
        f"caseload lower, within the {tolerance:.1%} optimality tolerance."
    )


def _places_words(fact: dict[str, Any]) -> str:
    return join_words(fact["places"], last="or")


def _group_words(fact: dict[str, Any]) -> str:
    skill = f" with {skills_phrase(fact['guard'])}" if fact["guard"] else ""
    return f"{skill} in {_places_words(fact)}"


def _waitlisted_text(fact: dict[str, Any]) -> str:
    points = int(fact["points"])
    if not fact["any_active"]:
        return f"No active key worker in {_places_words(fact)} this week."
    if fact["guard"] and not fact["any_trained"]:
        return (
            f"Needs a worker with {skills_phrase(fact['guard'])} (safeguarding); no active "
            f"worker in {_places_words(fact)} has {'it' if len(fact['guard']) == 1 else 'them'}."
        )
    if pd.isna(fact["near_worker_id"]):
        return "Every eligible worker is excluded by a manager's lock."
    if fact["most_free_before"] < points:
        first = (
            f"No worker{_group_words(fact)} had {points} points free this week (most free: "
            f"{int(fact['most_free_before'])} points)."
        )
    else:
        first = (
            f"The free points of every worker{_group_words(fact)} went to higher-value "
            f"allocations this week (most free now: {fact['near_worker_id']}, "
            f"{int(fact['near_free_after'])} of the {points} points needed)."
        )
    return first + " " + _shortfall_text(fact)


def _shortfall_text(fact: dict[str, Any]) -> str:
    if fact["short"] > 0:
        who = (
            f"{fact['locality']}'s workers with {skills_phrase(fact['guard'])} are"
            if fact["guard"]
            else f"{fact['locality']} is"
        )
        return f"{who} {int(fact['short'])} points short this week."
    return (
        f"{int(fact['free_left'])} points are still free, but no single eligible worker has "
        f"the {int(fact['points'])} this case needs."
    )


def _place_flags(facts: pd.DataFrame, context: ExplainContext) -> pd.DataFrame:
    """Per candidate: its places, whether any active worker is there, and whether any of them has
    every safeguarding skill the household needs (`guard`)."""
    active = context.workers.loc[context.workers["active"]]
    staffed = set(active["locality"])
    places = facts["locality"].map(lambda home: context.places.get(home, [home]))
    trained = {
        guard: set(
            active.loc[active["skills"].map(lambda skills, g=guard: covers(skills, g)), "locality"]
        )
        for guard in set(facts["guard"])
    }
    return pd.DataFrame(
        {
            "places": places,
            "any_active": places.map(lambda names: bool(staffed.intersection(names))),
            "any_trained": [
                bool(trained[guard].intersection(names))
                for guard, names in zip(facts["guard"], places, strict=True)
            ],
        },
        index=facts.index,
    )


def _guards(needs: pd.Series, safeguarding: Sequence[str]) -> pd.Series:
    """Each household's safeguarding needs, as a tuple (empty: none)."""
    return needs.map(lambda text: safeguarding_needs(text, safeguarding))


def explain(rows: pd.DataFrame, *, context: ExplainContext, short: pd.DataFrame) -> pd.Series:
    """One group of sentences per proposal row (rows must have a default RangeIndex)."""
    facts = _facts(rows, context)
    facts = facts.assign(guard=_guards(facts["needs"], context.safeguarding))
    facts = facts.join(_place_flags(facts, context))
    facts = facts.merge(short, on=["locality", "guard"], how="left").fillna(
        {"short": 0, "free_left": 0}
    )
    texts = [
        _assigned_text(fact, context.tolerance)
        if fact["status"] == "assigned"
        else _waitlisted_text(fact)
        for fact in facts.to_dict("records")
    ]
    return pd.Series(texts, index=rows.index, dtype="str")


def shortfall(
    rows: pd.DataFrame,
    *,
    workers: pd.DataFrame,
    places: dict[str, list[str]],
    safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING,
) -> pd.DataFrame:
    """Per locality and safeguarding need (`guard`: the skills needed, () for the locality as a
    whole; `safeguarding`: whether any): points short this week (waiting demand beyond the free
    points left among eligible workers) and those free points."""
    active = workers.loc[workers["active"]]
    guards = _guards(rows["needs"], safeguarding)
    records = []
    for locality in sorted(rows["locality"].unique()):
        nearby = active.loc[active["locality"].isin(places.get(locality, [locality]))]
        waiting = (rows["locality"] == locality) & (rows["status"] == "waitlisted")
        for guard in sorted({(), *guards[waiting]}):
            pool = nearby.loc[nearby["skills"].map(lambda skills, g=guard: covers(skills, g))]
            demand = rows.loc[waiting & guards.map(guard.__eq__) if guard else waiting]
            left = int(pool["free_after"].clip(lower=0).sum())
            short = max(0, int(demand["points"].sum()) - left)
            records.append((locality, bool(guard), guard, short, left))
    return pd.DataFrame(
        records, columns=["locality", "safeguarding", "guard", "short", "free_left"]
    )
