"""`rebalance serve` and `demo`: the service, and the weekly job end to end on a synthetic city."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape

from api import pipeline
from api.cli._shared import Home, console, fail, out
from api.settings import load_settings

# The stages are imported inside the verbs that run them, for start-up time (figures in
# api/cli/__init__.py).


def serve(
    home: Home = None,
    host: Annotated[str | None, typer.Option(help="Address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=8, help="Worker processes (2 for a whole city: about 1.4 GB each)."
        ),
    ] = 1,
) -> None:
    """Serve the web pages and the JSON API."""
    settings = load_settings(home=home)
    run_server(settings, host=host or settings.host, port=port or settings.port, workers=workers)


def run_server(settings, *, host: str, port: int, workers: int = 1) -> None:
    from api.app import serve as serve_app

    console.print(f"Rebalance is at http://{host}:{port}  (Ctrl-C to stop)")
    serve_app(settings, host=host, port=port, workers=workers)


DEMO_END = "2026-11-15"


def demo(
    households: Annotated[int, typer.Option(min=200, help="Size of the synthetic city.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Random seed of the city.")] = 0,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve the pages when done.")
    ] = True,
    home: Home = None,
) -> None:
    """The weekly job end to end on the built-in synthetic city, then serve it."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    settings = load_settings(home=home)
    steps = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    )
    try:
        with steps:
            week = run_demo(settings, households=households, seed=seed, progress=steps)
    except DemoStopped as stopped:
        fail(escape(str(stopped)))
    print_demo(settings, week)
    if serve_after:
        run_server(settings, host=settings.host, port=settings.port)


def check_demo_champion(settings, decision) -> None:
    """Stop with the gate's words when the new model was refused and no earlier champion exists."""
    if decision.promoted:
        return
    try:
        pipeline.champion(settings)
    except LookupError:
        raise DemoStopped(
            f"{decision.message}. Nothing was scored: there is no champion. The promotion record "
            f"is in {settings.home / 'audit' / 'promotions.jsonl'}; `rebalance promote --accept "
            'FINDING --reason "..."` accepts a specific fairness finding on the record '
            "(docs/fairness.md)."
        ) from None


class DemoStopped(Exception):
    """The demo cannot go on; the message says why and what to do."""


def run_demo(settings, *, households: int, seed: int, progress) -> dict:
    """Each stage of the weekly job, one progress line each."""
    from allocation import write_proposal
    from api.demo_users import create_demo_users
    from experiments.city import generate_city, write_city
    from features.ingest import ingest_folder

    def stage(description: str, work):
        task = progress.add_task(description, total=1)
        result = work()
        progress.update(task, completed=1)
        return result

    city = stage(
        f"Simulating a city of {households:,} households",
        lambda: generate_city(households=households, seed=seed, end=date.fromisoformat(DEMO_END)),
    )
    stage("Writing the partner extracts", lambda: write_city(city, settings.extract_dir))
    stage(
        "Checking and ingesting them",
        lambda: ingest_folder(settings.extract_dir, home=settings.home),
    )
    as_of = pipeline.latest_as_of(settings)
    trained, decision = stage(
        "Training the escalation model (temporal validation, MLflow)",
        lambda: pipeline.train_model(settings, as_of=as_of, promote=True),
    )
    check_demo_champion(settings, decision)
    # Last week's scores too, so that "what changed" has a week to compare with.
    stage(
        "Scoring last week, for what changed",
        lambda: pipeline.score_week(settings, as_of=as_of - pd.Timedelta(days=7)),
    )
    scores = stage(
        "Scoring every household with reasons", lambda: pipeline.score_week(settings, as_of=as_of)
    )
    stage(
        "Making every household's record for the service",
        lambda: pipeline.publish_week(settings, as_of=as_of),
    )
    proposal = stage(
        "Proposing this week's key-worker allocation (OR-Tools)",
        lambda: pipeline.allocate_week(settings, as_of=as_of),
    )
    week_dir = settings.week_dir(as_of)
    write_proposal(proposal, out=week_dir / "proposal.csv")
    pipeline.write_summary(
        path=week_dir / "summary.md", scores=scores, proposal=proposal, as_of=as_of
    )
    users = create_demo_users(settings, workers=city.workers, households=city.households)
    return {
        "as_of": as_of,
        "trained": trained,
        "decision": decision,
        "proposal": proposal,
        "week_dir": week_dir,
        "users": users,
    }


def print_demo(settings, week: dict) -> None:
    summary = week["proposal"].summary
    out.print(f"\nWeek as of {week['as_of'].date()}: outputs in {week['week_dir']}", markup=False)
    out.print(
        f"Model version {week['trained'].model_version}: {week['decision'].message}", markup=False
    )
    out.print(
        f"{summary['assigned']:,} households proposed for a key worker, "
        f"{summary['waitlisted']:,} waitlisted.",
        markup=False,
    )
    out.print("\nDemo sign-ins (one per role):")
    for user in week["users"]:
        scope = user.get("locality") or user.get("worker_id") or ""
        out.print(
            f"  {user['role']:<17} {user['username']:<14} password {user['password']}  {scope}",
            markup=False,
        )
