"""Figures for docs/reasons.md: needs from the reasons (the old rule) against needs from the records
(features.needs), on the demo city, and what that changes in the weekly proposal.

The city is the demo's (`rebalance demo`: 20,000 households, seed 0, records to 2026-11-15), scored
as of its last record date with a model trained the demo's way (production training settings; no
MLflow: the fitted model is used directly). Printed: how many of the top 500 carry each need under
each rule, and how many had a record of each safeguarding kind; then the proposal under each rule
(default safeguarding set, and the set with parenting): assigned, waitlisted, households moved to
a worker with the safeguarding skill, households waitlisted for lack of one.

    .venv/bin/python bench/bench_needs_demo.py [--households 20000] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import pandas as pd

from allocation import AllocationSettings, propose_allocation
from allocation.rules import covers, safeguarding_needs, split_skills
from experiments.city import generate_city
from experiments.training import fit_and_audit
from features.build import features_as_of, prepare_tables
from features.contract import SKILLS
from models import ChampionModel, TrainSettings, score_features
from models.explain import explain_households

DEMO_END = date(2026, 11, 15)  # api/cli.py DEMO_END
TOP = 500
POINTS_AS_CONFIGURED: dict[str, int] = {}
FLAT_POINTS = {"base_points": 12, "points_per_need": 0, "max_points": 12}
# The three checks: a record in the last 26 weeks -> the need it calls for.
RECORD_CHECKS = {
    "domestic_abuse_incident": "domestic_abuse",
    "mental_health_crisis": "mental_health",
    "child_protection_plan": "parenting",
}


def _has(needs: pd.Series, skill: str) -> pd.Series:
    return needs.fillna("").map(lambda text: skill in split_skills(text))


def need_counts(top: pd.DataFrame) -> pd.DataFrame:
    """Per need: households of the top 500 carrying it under the old and the new rule."""
    return pd.DataFrame(
        {
            "old (reasons)": [int(_has(top["needs_old"], skill).sum()) for skill in SKILLS],
            "new (records)": [int(_has(top["needs"], skill).sum()) for skill in SKILLS],
        },
        index=list(SKILLS),
    )


def record_checks(top: pd.DataFrame, events: pd.DataFrame, as_of: pd.Timestamp) -> list[str]:
    lines = []
    recent = events.loc[
        (events["known_at"] <= as_of) & (events["occurred_at"] > as_of - pd.Timedelta(weeks=26))
    ]
    for event_type, skill in RECORD_CHECKS.items():
        holders = set(recent.loc[recent["event_type"] == event_type, "household_id"])
        mine = top.loc[top["household_id"].isin(holders)]
        old, new = _has(mine["needs_old"], skill).sum(), _has(mine["needs"], skill).sum()
        lines.append(
            f"  {event_type} in the last 26 weeks: {len(mine)} households; "
            f"with {skill}: old {old}, new {new}"
        )
    return lines


def _outcome(rows: pd.DataFrame, guard: pd.Series, skills: pd.Series) -> pd.Series:
    """Per candidate: "skilled" (assigned to a worker with its safeguarding skills), "unskilled"
    (assigned to one without), or "waitlisted"."""
    assigned = rows["status"] == "assigned"
    covered = [
        assigned_here and covers(skills.get(worker, ""), needed)
        for needed, worker, assigned_here in zip(guard, rows["worker_id"], assigned, strict=True)
    ]
    outcome = pd.Series("waitlisted", index=rows.index)
    outcome[assigned] = "unskilled"
    outcome[pd.Series(covered, index=rows.index)] = "skilled"
    return outcome


def proposal_changes(old, new, *, workers: pd.DataFrame, safeguarding) -> dict[str, object]:
    """For the households with a safeguarding need (by the records): where the old proposal put
    them and where the new one does; and the proposal as a whole."""
    skills = workers.set_index("worker_id")["skills"]
    both = old.rows.merge(new.rows, on="household_id", suffixes=("_old", "_new"))
    guard = both["needs_new"].map(lambda text: safeguarding_needs(text, safeguarding))
    guarded = guard.map(bool)
    before = _outcome(both.rename(columns=lambda c: c.removesuffix("_old")), guard, skills)
    after = _outcome(both.rename(columns=lambda c: c.removesuffix("_new")), guard, skills)
    waiting = both["explanation_new"]
    return {
        "candidates": len(both),
        "assigned (old, new)": (int(old.summary["assigned"]), int(new.summary["assigned"])),
        "points per candidate, mean (old, new)": (
            round(float(both["points_old"].mean()), 1),
            round(float(both["points_new"].mean()), 1),
        ),
        "with a safeguarding need (by the records)": int(guarded.sum()),
        "  old proposal: to a worker with the skill / without it / waitlisted": tuple(
            int((guarded & (before == kind)).sum())
            for kind in ("skilled", "unskilled", "waitlisted")
        ),
        "  new proposal: to a worker with the skill / without it / waitlisted": tuple(
            int((guarded & (after == kind)).sum())
            for kind in ("skilled", "unskilled", "waitlisted")
        ),
        "  moved from a worker without the skill to one with it": int(
            (guarded & (before == "unskilled") & (after == "skilled")).sum()
        ),
        "  given a worker without the skill before, waitlisted now": int(
            (guarded & (before == "unskilled") & (after == "waitlisted")).sum()
        ),
        "  waitlisted: no active worker with the skill in reach": int(
            (guarded & (after == "waitlisted") & waiting.str.startswith("Needs a worker")).sum()
        ),
        "  waitlisted: the skilled workers had no room": int(
            (guarded & (after == "waitlisted") & ~waiting.str.startswith("Needs a worker")).sum()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    started = time.perf_counter()
    city = generate_city(households=arguments.households, seed=arguments.seed, end=DEMO_END)
    tables = {name: table for name, table in city.tables().items() if name != "truth"}
    as_of = pd.Timestamp(tables["events"]["known_at"].max()).normalize()
    outcome = fit_and_audit(tables=tables, as_of=as_of, settings=TrainSettings(), truth=city.truth)
    model = ChampionModel(
        estimator=outcome.model, name="demo", version="1", run_id="bench", horizon_weeks=26
    )
    features = features_as_of(prepare_tables(tables), as_of=as_of)
    scores = score_features(features=features, tables=tables, as_of=as_of, model=model)
    by_reasons = explain_households(
        booster=model.estimator.booster_, features=features, tables=tables, as_of=as_of
    ).set_index("household_id")["needs"]
    scores = scores.assign(needs_old=scores["household_id"].map(by_reasons).fillna(""))
    top = scores.head(TOP)
    seconds = time.perf_counter() - started
    print(f"city: {len(scores):,} households as of {as_of.date()} ({seconds:.0f} s)")
    print(f"\nNeeds among the top {TOP}:")
    print(need_counts(top).to_string())
    print("\nRecords in the top 500 and the need they call for:")
    print("\n".join(record_checks(top, tables["events"], as_of)))
    old_scores = scores.assign(needs=scores["needs_old"]).drop(columns=["needs_evidence"])
    common = {"workers": tables["workers"], "cases": tables["cases"], "as_of": as_of}
    # Case points grow with the number of needs (docs/allocation.md), and needs from the records
    # are more than the reasons' skills: the flat runs count every case at 12 points (about the old
    # mean) to show the safeguarding rule's effect apart from the points.
    for points, label in ((POINTS_AS_CONFIGURED, "points as configured"), (FLAT_POINTS, "flat")):
        for safeguarding in (("domestic_abuse",), ("domestic_abuse", "parenting")):
            settings = AllocationSettings(**points, safeguarding=safeguarding)
            old = propose_allocation(
                scores=old_scores, settings=AllocationSettings(**points), **common
            )
            new = propose_allocation(scores=scores, settings=settings, **common)
            print(
                f"\nProposal ({label}), safeguarding {', '.join(safeguarding)}; "
                "old: needs from reasons"
            )
            changes = proposal_changes(
                old, new, workers=tables["workers"], safeguarding=safeguarding
            )
            for name, figure in changes.items():
                print(f"  {name}: {figure}")


if __name__ == "__main__":
    main()
