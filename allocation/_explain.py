"""Plain-English reasons for every line of the proposal: why this worker, the best alternative and
why not; for a waitlisted household, what stood in the way and how short its locality is."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from allocation._candidates import SAFEGUARDING_SKILL
from allocation._inputs import split_skills

SAME_VALUE = 1e-12


def skill_label(skill: str) -> str:
    """How a skill reads in a sentence."""
    return {"asb": "anti-social behaviour"}.get(skill, skill.replace("_", " "))


def join_words(words: list[str]) -> str:
    """['a'] -> 'a'; ['a', 'b'] -> 'a and b'; ['a', 'b', 'c'] -> 'a, b and c'."""
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def cover_phrase(needs: str, skills: str) -> str:
    """Which of the household's needs the worker's skills cover."""
    wanted = split_skills(needs)
    if not wanted:
        return "no specific needs recorded"
    covered = [skill for skill in wanted if skill in set(split_skills(skills))]
    if not covered:
        return f"covers none of its needs ({join_words([skill_label(s) for s in wanted])})"
    share = f"{len(covered)} of {len(wanted)} needs"
    return f"covers {join_words([skill_label(s) for s in covered])} ({share})"


@dataclass(frozen=True)
class ExplainContext:
    """Everything the sentences draw on, keyed for lookup."""

    options: pd.DataFrame  # eligible pairs after exclusions: household_id, worker_id, value, ...
    workers: pd.DataFrame  # per-worker summary indexed by worker_id (free_before, free_after, ...)
    places: dict[str, list[str]]  # household locality -> localities whose workers may take it
    short: dict[tuple[str, bool], int]  # (locality, safeguarding) -> points short this week
    free_left: dict[tuple[str, bool], int]  # (locality, safeguarding) -> free points left
    tolerance: float


def _worker_sentence(row: pd.Series, worker: pd.Series, option: pd.Series) -> str:
    where = ("same locality" if option["same_locality"]
             else f"neighbouring locality ({worker['locality']})")
    safeguarding = (", has domestic-abuse skill (safeguarding)"
                    if SAFEGUARDING_SKILL in split_skills(row["needs"]) else "")
    return (
        f"{row['worker_id']}: {where}, {cover_phrase(row['needs'], worker['skills'])}"
        f"{safeguarding}; {int(worker['free_before'])} of {int(worker['capacity_points'])} points "
        f"free before this week, {int(worker['free_after'])} after."
    )


def _alternative_sentence(row: pd.Series, others: pd.DataFrame, context: ExplainContext) -> str:
    if others.empty:
        return f"No other eligible worker{_group_words(row, context)}."
    best = others.iloc[0]
    alternative = context.workers.loc[best["worker_id"]]
    cover = cover_phrase(row["needs"], alternative["skills"])
    free_after, points = int(alternative["free_after"]), int(row["points"])
    if best["value"] < row["value"] - SAME_VALUE:
        return f"Best alternative {best['worker_id']}: {cover} (value {best['value']:.3f} vs " \
               f"{row['value']:.3f})."
    if free_after < points:
        verb = "fits equally well" if best["value"] <= row["value"] + SAME_VALUE else \
            f"would cover more ({cover})"
        return (f"Best alternative {best['worker_id']} {verb} but has only {free_after} points "
                f"left after this week's allocations (this case needs {points}).")
    if best["value"] <= row["value"] + SAME_VALUE:
        return (f"Best alternative {best['worker_id']} fits equally well ({free_after} points "
                "free after); between equals the proposal keeps the highest caseload lowest, "
                "then follows a fixed tie-break.")
    return (f"{best['worker_id']} would cover more ({cover}); {row['worker_id']} keeps the "
            f"highest caseload lower, within the {context.tolerance:.1%} optimality tolerance.")


def explain_assigned(row: pd.Series, context: ExplainContext) -> str:
    """Why this worker, and the best alternative and why not."""
    options = context.options.loc[context.options["household_id"] == row["household_id"]]
    chosen = options.loc[options["worker_id"] == row["worker_id"]].iloc[0]
    others = options.loc[options["worker_id"] != row["worker_id"]].merge(
        context.workers[["free_after"]], left_on="worker_id", right_index=True
    ).sort_values(["value", "free_after", "worker_id"], ascending=[False, False, True])
    lock = "Assigned by a manager's lock. " if row["locked"] else ""
    worker = context.workers.loc[row["worker_id"]]
    return (lock + _worker_sentence(row, worker, chosen) + " "
            + _alternative_sentence(row, others, context))


def _group_words(row: pd.Series, context: ExplainContext) -> str:
    places = join_words(context.places.get(row["locality"], [row["locality"]])).replace(
        " and ", " or ")
    skill = " with domestic-abuse skill" if _needs_safeguarding(row) else ""
    return f"{skill} in {places}"


def _needs_safeguarding(row: pd.Series) -> bool:
    return SAFEGUARDING_SKILL in split_skills(row["needs"])


def _shortfall_sentence(row: pd.Series, context: ExplainContext) -> str:
    key = (row["locality"], _needs_safeguarding(row))
    short, free_left = context.short.get(key, 0), context.free_left.get(key, 0)
    who = (f"{row['locality']}'s workers with domestic-abuse skill are" if key[1]
           else f"{row['locality']} is")
    if short > 0:
        return f" {who} {short} points short this week."
    return (f" {free_left} points are still free, but no single eligible worker has the "
            f"{int(row['points'])} this case needs.")


def explain_waitlisted(row: pd.Series, context: ExplainContext, *, active: pd.DataFrame) -> str:
    """Why no worker could take the household this week, and how short its locality is."""
    places = context.places.get(row["locality"], [row["locality"]])
    nearby = active.loc[active["locality"].isin(places)]
    if nearby.empty:
        return f"No active key worker in {join_words(places).replace(' and ', ' or ')} this week."
    if _needs_safeguarding(row) and not nearby["skills"].map(
            lambda skills: SAFEGUARDING_SKILL in split_skills(skills)).any():
        return (f"Needs a worker with domestic-abuse skill (safeguarding); no active worker in "
                f"{join_words(places).replace(' and ', ' or ')} has it.")
    options = context.options.loc[context.options["household_id"] == row["household_id"]]
    if options.empty:
        return "Every eligible worker is excluded by a manager's lock."
    free = context.workers.loc[options["worker_id"]].sort_values(
        ["free_after", "free_before"], ascending=False, kind="stable")
    nearest = free.iloc[0]
    points = int(row["points"])
    if free["free_before"].max() < points:
        first = (f"No worker{_group_words(row, context)} had {points} points free this week "
                 f"(most free: {nearest.name}, {int(free['free_before'].max())} points).")
    else:
        first = (f"The free points of every worker{_group_words(row, context)} went to "
                 f"higher-value allocations this week (most free now: {nearest.name}, "
                 f"{int(nearest['free_after'])} of the {points} points needed).")
    return first + _shortfall_sentence(row, context)


def explain(rows: pd.DataFrame, *, context: ExplainContext, active: pd.DataFrame) -> pd.Series:
    """One sentence group per proposal row."""
    texts = [
        explain_assigned(row, context) if row["status"] == "assigned"
        else explain_waitlisted(row, context, active=active)
        for _, row in rows.iterrows()
    ]
    return pd.Series(texts, index=rows.index, dtype="str")


def shortfall(rows: pd.DataFrame, *, workers: pd.DataFrame,
              places: dict[str, list[str]]) -> tuple[dict, dict]:
    """(locality, safeguarding) -> points short, and -> free points left among eligible workers."""
    active = workers.loc[workers["active"]]
    short, free_left = {}, {}
    for locality in rows["locality"].unique():
        nearby = active.loc[active["locality"].isin(places.get(locality, [locality]))]
        trained = nearby["skills"].map(lambda s: SAFEGUARDING_SKILL in split_skills(s))
        waiting = rows.loc[(rows["locality"] == locality) & (rows["status"] == "waitlisted")]
        safeguarding = waiting["needs"].map(lambda s: SAFEGUARDING_SKILL in split_skills(s))
        for flag, pool, demand in ((False, nearby, waiting),
                                   (True, nearby.loc[trained], waiting.loc[safeguarding])):
            left = int(pool["free_after"].clip(lower=0).sum())
            free_left[(locality, flag)] = left
            short[(locality, flag)] = max(0, int(demand["points"].sum()) - left)
    return short, free_left
