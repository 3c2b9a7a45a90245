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
from allocation.rules import safeguarding_needs, split_skills
from experiments.city import generate_city
from experiments.training import fit_and_audit
from features.build import features_as_of, prepare_tables
from features.contract import SKILLS
from models import ChampionModel, TrainSettings, score_features
from models.explain import explain_households

DEMO_END = date(2026, 11, 15)  # api/cli.py DEMO_END
TOP = 500
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


def proposal_changes(old, new, *, workers: pd.DataFrame, safeguarding) -> dict[str, int]:
    """Moved to a skilled worker: a household with a safeguarding need (new rule) that the old
    proposal gave to a worker without the skill and the new one gives to a worker with it.
    Waitlisted for lack of one: assigned before, waitlisted now, told it needs the skill."""
    skills = workers.set_index("worker_id")["skills"]
    both = old.rows.merge(new.rows, on="household_id", suffixes=("_old", "_new"))
    guard = both["needs_new"].map(lambda text: safeguarding_needs(text, safeguarding))

    def covered(worker_ids: pd.Series) -> pd.Series:
        return pd.Series(
            [
                isinstance(worker, str)
                and worker in skills.index
                and set(needed) <= set(split_skills(skills[worker]))
                for needed, worker in zip(guard, worker_ids, strict=True)
            ],
            index=both.index,
        )

    assigned_old, assigned_new = both["status_old"] == "assigned", both["status_new"] == "assigned"
    guarded = guard.map(bool)
    return {
        "candidates": len(both),
        "assigned (old, new)": (int(assigned_old.sum()), int(assigned_new.sum())),
        "with a safeguarding need (new rule)": int(guarded.sum()),
        "old proposal gave them a worker without the skill": int(
            (guarded & assigned_old & ~covered(both["worker_id_old"])).sum()
        ),
        "moved to a worker with the skill": int(
            (guarded & assigned_old & ~covered(both["worker_id_old"]) & assigned_new).sum()
        ),
        "waitlisted for lack of a skilled worker": int(
            (
                guarded & ~assigned_new & both["explanation_new"].str.contains("skill", regex=False)
            ).sum()
        ),
        "of whom assigned by the old proposal": int(
            (
                guarded
                & assigned_old
                & ~assigned_new
                & both["explanation_new"].str.contains("skill", regex=False)
            ).sum()
        ),
        "worker changed (any household)": int(
            (both["worker_id_old"].fillna("") != both["worker_id_new"].fillna("")).sum()
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
    for safeguarding in (("domestic_abuse",), ("domestic_abuse", "parenting")):
        settings = AllocationSettings(safeguarding=safeguarding)
        common = {"workers": tables["workers"], "cases": tables["cases"], "as_of": as_of}
        old = propose_allocation(scores=old_scores, settings=AllocationSettings(), **common)
        new = propose_allocation(scores=scores, settings=settings, **common)
        print(f"\nProposal, safeguarding {', '.join(safeguarding)} (old rule: needs from reasons):")
        changes = proposal_changes(old, new, workers=tables["workers"], safeguarding=safeguarding)
        for label, figure in changes.items():
            print(f"  {label}: {figure}")


if __name__ == "__main__":
    main()
