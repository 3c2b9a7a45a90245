"""`rebalance score`, `publish`, `explain`, `allocate`, `compare`: the week's outputs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from api import pipeline
from api.cli._shared import AsOf, Home, TrackingUri, as_of_date, console, fail, out
from api.settings import load_settings
from features.store import StoreError

# The stages are imported inside the verbs that run them, for start-up time (figures in
# api/cli/__init__.py).


def score(
    out_path: Annotated[Path, typer.Option("--out", help="scores.csv to write.")],
    as_of: AsOf = None,
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Score every household with the champion: risk, rank, needs and reasons."""
    from models import write_scores

    settings = load_settings(home=home, tracking_uri=tracking_uri)
    try:
        with console.status("Scoring every household..."):
            scores = pipeline.score_week(settings, as_of=as_of_date(settings, as_of))
    except (ValueError, LookupError, StoreError) as error:
        fail(str(error))
    write_scores(scores, out_path)
    out.print(f"{len(scores):,} households scored -> {out_path}")
    run_publish(settings, as_of=as_of)


def publish(as_of: AsOf = None, home: Home = None, tracking_uri: TrackingUri = None) -> None:
    """Make every scored household's record for the service's pages and API (`score` does this
    too; run it after ingesting a snapshot mid-week)."""
    run_publish(load_settings(home=home, tracking_uri=tracking_uri), as_of=as_of)


def run_publish(settings, *, as_of: str | None) -> None:
    try:
        with console.status("Making every household's record for the service..."):
            path, made = pipeline.publish_week(settings, as_of=as_of_date(settings, as_of))
    except (ValueError, LookupError, StoreError, OSError, sqlite3.Error) as error:
        fail(str(error))
    if made:
        out.print(f"{made:,} household records -> {path}")
    else:
        out.print(f"household records already made from these scores -> {path}")


def explain(
    household_id: Annotated[str, typer.Argument(help="Pseudonymised household id.")],
    as_of: AsOf = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Why a household was flagged, what changed since last week, and its timeline."""
    from models.explain import format_explanation

    settings = load_settings(home=home, tracking_uri=tracking_uri)
    try:
        explanation = pipeline.explain_week(
            settings, household_id=household_id, as_of=as_of_date(settings, as_of)
        )
    except (ValueError, LookupError, StoreError) as error:
        fail(str(error))
    if as_json:
        out.print_json(json.dumps(explanation, default=str))
    else:
        out.print(format_explanation(explanation), markup=False, highlight=False)


def parse_capacity(values: list[str]) -> dict[str, int]:
    capacity = {}
    for value in values:
        worker_id, _, points = value.partition("=")
        if not points.strip().isdigit():
            fail(f"--capacity expects WORKER=POINTS, got {value!r}")
        capacity[worker_id.strip()] = int(points)
    return capacity


def parse_new_workers(values: list[str]) -> list[dict]:
    workers = []
    for value in values:
        parts = value.split(":")
        if len(parts) != 4 or not parts[3].strip().isdigit():
            fail(f"--add-worker expects ID:LOCALITY:SKILL;SKILL:POINTS, got {value!r}")
        worker_id, locality, skills, points = (part.strip() for part in parts)
        workers.append(
            {
                "worker_id": worker_id,
                "locality": locality,
                "skills": skills,
                "capacity_points": int(points),
                "active": True,
            }
        )
    return workers


def allocate(
    out_path: Annotated[Path, typer.Option("--out", help="proposal.csv to write.")],
    as_of: AsOf = None,
    locks: Annotated[Path | None, typer.Option(help="Manager locks CSV.")] = None,
    locality: Annotated[str | None, typer.Option(help="Only this locality.")] = None,
    add_worker: Annotated[
        list[str] | None, typer.Option(help="What-if: ID:LOCALITY:SKILL;SKILL:POINTS.")
    ] = None,
    remove_worker: Annotated[list[str] | None, typer.Option(help="What-if: worker id.")] = None,
    capacity: Annotated[list[str] | None, typer.Option(help="What-if: WORKER=POINTS.")] = None,
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """The weekly allocation proposal (OR-Tools), with an explanation for every row."""
    from allocation import AllocationInputError, read_locks, write_proposal

    settings = load_settings(home=home, tracking_uri=tracking_uri)
    what_if = {
        "add": parse_new_workers(add_worker or []),
        "remove": remove_worker or [],
        "capacity": parse_capacity(capacity or []),
    }
    try:
        lock_table = read_locks(locks) if locks else None
        with console.status("Solving the weekly allocation..."):
            proposal = pipeline.allocate_week(
                settings,
                as_of=as_of_date(settings, as_of),
                locks=lock_table,
                locality=locality,
                what_if=what_if if any(what_if.values()) else None,
            )
    except (AllocationInputError, ValueError, LookupError, StoreError) as error:
        fail(str(error))
    write_proposal(proposal, out=out_path)
    print_proposal_summary(proposal, out_path=out_path)


def print_proposal_summary(proposal, *, out_path: Path) -> None:
    summary = proposal.summary
    out.print(
        f"{summary['assigned']:,} of {summary['candidates']:,} candidates proposed for a key "
        f"worker, {summary['waitlisted']:,} waitlisted ({summary['status']}, gap "
        f"{summary['gap']:.3%}, {summary['solve_seconds']:.1f} s) -> {out_path}",
        markup=False,
    )
    for message in summary.get("messages", []):
        out.print(f"  {message}", markup=False)
    for lock in proposal.lock_report.to_dict("records"):
        out.print(f"  lock {lock}", markup=False)


def compare(
    before: Annotated[Path, typer.Argument(help="Earlier proposal.csv.")],
    after: Annotated[Path, typer.Argument(help="Later proposal.csv.")],
) -> None:
    """What moved between two proposals, and why."""
    from allocation import AllocationInputError, compare_proposals, read_proposal

    try:
        changes = compare_proposals(read_proposal(before), read_proposal(after))
    except AllocationInputError as error:
        fail(str(error))
    if changes.empty:
        out.print("The two proposals allocate every household the same way.")
        return
    out.print(changes.to_string(index=False), markup=False, highlight=False)
