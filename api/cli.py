"""The `rebalance` command: a thin adapter from verbs to the stage functions in api.pipeline."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape

from api import pipeline
from api.settings import load_settings
from features.store import StoreError

app = typer.Typer(
    name="rebalance",
    help="Household risk prioritisation and key-worker allocation for early help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

Home = Annotated[
    Path | None,
    typer.Option("--home", envvar="REBALANCE_HOME", help="Working store (default ./.rebalance)."),
]
TrackingUri = Annotated[
    str | None,
    typer.Option("--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI."),
]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="As-of date YYYY-MM-DD (default: the latest known record)."),
]


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def parse_date(text: str, *, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} must be a date YYYY-MM-DD, got {text!r}")
        raise


@app.callback()
def configure(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show progress logs.")] = False,
) -> None:
    """Household risk prioritisation and key-worker allocation for early help."""
    # Logs carry counts and ids of snapshots and models, never household rows.
    logging.basicConfig(
        level=logging.INFO if verbose else logging.ERROR,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def parse_bias(spec: str | None) -> dict | None:
    from experiments.city import parse_under_reporting

    try:
        return parse_under_reporting(spec) if spec else None
    except ValueError as error:
        fail(str(error))


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the extract into.")],
    households: Annotated[int, typer.Option(min=200, help="Number of households.")] = 110_000,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
    end: Annotated[str, typer.Option(help="Last day of the extract, YYYY-MM-DD.")] = "2026-11-15",
    fmt: Annotated[str, typer.Option("--format", help="csv or parquet.")] = "csv",
    under_reporting: Annotated[
        str | None,
        typer.Option(help="Reporting bias, e.g. 'asian:police_callout=0.6,asb_report=0.6'."),
    ] = None,
) -> None:
    """Write a synthetic city that satisfies the data contract, with its truth file."""
    from experiments.city import generate_city, write_city

    with console.status(f"Simulating {households:,} households..."):
        city = generate_city(
            households=households,
            seed=seed,
            end=parse_date(end, option="--end"),
            under_reporting=parse_bias(under_reporting),
        )
        written = write_city(city, out, fmt=fmt)
    for table, path in written.items():
        console.print(f"  {table:<10} {path}")


@app.command()
def ingest(
    folder: Annotated[Path, typer.Argument(help="Folder of partner extracts (CSV or Parquet).")],
    home: Home = None,
    max_problems: Annotated[int, typer.Option(min=100, help="Problems listed in a report.")] = 100,
    publish: Annotated[
        bool,
        typer.Option(
            help="Make the latest week's household records again from the new snapshot, so "
            "the service goes on reading published records (see `rebalance publish`)."
        ),
    ] = True,
) -> None:
    """Check a folder against the data contract and load it as the current snapshot."""
    from api.week import week_dirs
    from features.ingest import ingest_folder
    from features.store import StoreError
    from features.validation import ContractError

    settings = load_settings(home=home)
    try:
        result = ingest_folder(folder, home=settings.home, max_problems=max_problems)
    except ContractError as error:
        console.print(error.report(), markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    except StoreError as error:
        fail(str(error))
    for warning in result.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    outcome = {
        "created": "loaded as new snapshot",
        "unchanged": "already loaded, still current: snapshot",
        "reinstated": "loaded before; made current again: snapshot",
    }[result.outcome]
    console.print(f"{folder}: {outcome} {result.snapshot_id}", markup=False)
    for table, rows in result.row_counts.items():
        console.print(f"  {table:<10} {rows:>12,} rows")
    latest_weeks = week_dirs(settings)
    if publish and result.outcome != "unchanged" and latest_weeks:
        run_publish(settings, as_of=latest_weeks[-1].name)


@app.command()
def check(
    folder: Annotated[Path, typer.Argument(help="Folder of partner extracts (CSV or Parquet).")],
    max_problems: Annotated[int, typer.Option(min=100, help="Problems listed in a report.")] = 100,
) -> None:
    """Check a folder against the data contract without loading it."""
    from features.validation import ContractError, read_extract

    try:
        extract = read_extract(folder, max_problems=max_problems)
    except ContractError as error:
        console.print(error.report(), markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    for warning in extract.warnings:
        console.print(f"warning: {warning}", markup=False, highlight=False)
    rows = ", ".join(f"{table} {len(frame):,}" for table, frame in extract.items())
    console.print(f"{folder} meets the data contract ({rows}).", markup=False)


@app.command()
def snapshots(home: Home = None) -> None:
    """List the ingested snapshots, oldest first; the current one is marked."""
    from features.store import Store

    store = Store(load_settings(home=home).home)
    current = store.current_snapshot_id()
    for snapshot_id in store.snapshot_ids():
        manifest = store.manifest(snapshot_id)
        marker = "*" if snapshot_id == current else " "
        rows = manifest.get("row_counts", {})
        console.print(
            f"{marker} {snapshot_id}  {manifest.get('ingested_at', '')}  "
            f"households {rows.get('households', 0):,}  events {rows.get('events', 0):,}",
            markup=False,
        )


def as_of_date(settings, as_of: str | None):
    if as_of is not None:
        parse_date(as_of, option="--as-of")
    return pipeline.resolve_as_of(settings, as_of)


@app.command()
def train(
    as_of: AsOf = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Promote if every gate passes.")
    ] = False,
    step_weeks: Annotated[
        int | None, typer.Option(min=1, help="Weeks between as-of dates.")
    ] = None,
    folds: Annotated[int | None, typer.Option(min=1, help="Temporal validation folds.")] = None,
    reweight: Annotated[
        str | None,
        typer.Option(
            help="Mitigation: reweight training by sex, ethnicity, disability, age_band or "
            "locality (docs/fairness.md)."
        ),
    ] = None,
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Train a challenger: temporal validation, calibration, baselines, bias audit (MLflow)."""
    settings = load_settings(home=home, tracking_uri=tracking_uri)
    overrides = {"step_weeks": step_weeks, "folds": folds, "reweight_attribute": reweight}
    settings = replace(
        settings,
        training=settings.training | {k: v for k, v in overrides.items() if v is not None},
    )
    try:
        with console.status("Training: temporal cross-validation, calibration, baselines..."):
            result, decision = pipeline.train_model(
                settings, as_of=as_of_date(settings, as_of), promote=promote
            )
    except (ValueError, LookupError, StoreError) as error:
        fail(str(error))
    out.print(f"Model {result.model_name} version {result.model_version} (run {result.run_id})")
    for name, value in result.headline().items():
        out.print(f"  {name:<34} {value:.4f}")
    if result.fairness_gate is not None:
        verdict = "passed" if result.fairness_gate.passed else "FAILED"
        out.print(f"  bias audit: {verdict}: {result.fairness_gate.message}", markup=False)
    if decision is not None:
        print_decision(decision)


def print_decision(decision) -> None:
    for gate in decision.gates:
        mark = "pass" if gate.passed else "FAIL"
        out.print(f"  [{mark}] {gate.name}: {gate.message}", markup=False)
    out.print(decision.message, markup=False)
    if decision.accepted_findings:
        # As visible as the finding: every acceptance that let this version through, by name.
        out.print(
            f"PROMOTED WITH {len(decision.accepted_findings)} ACCEPTED FAIRNESS FINDING(S), "
            f"accepted by {decision.decided_by} at {decision.decided_at}:",
            style="bold yellow",
            markup=False,
        )
        for item in decision.accepted_findings:
            out.print(f"  accepted: {item['text']}", markup=False)
            out.print(
                f"    reason: {item['reason']} (review by {item['review_by']}; "
                f"given in {item['source']})",
                markup=False,
            )
    for item in decision.unused_acceptances:
        out.print(f"  note: acceptance {item['finding']} {item['why']}", markup=False)
    for path in decision.records:
        out.print(f"  record: {path}", markup=False)


@app.command()
def promote(
    accept: Annotated[
        list[str] | None,
        typer.Option(
            "--accept",
            help="Accept one fairness finding for this promotion, as ATTRIBUTE=GROUP:METRIC "
            '(e.g. "age_band=65+:recall_at_k"); repeat for several. Needs --reason.',
        ),
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="Why the council accepts the finding(s); recorded with your user name.",
        ),
    ] = None,
    review_by: Annotated[
        str | None,
        typer.Option(
            "--review-by",
            help="YYYY-MM-DD after which the acceptance no longer counts "
            f"(default {pipeline.DEFAULT_REVIEW_DAYS} days from today).",
        ),
    ] = None,
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Make the challenger the champion if it passes every gate (fairness included).

    A fairness failure blocks promotion unless the council accepts exactly that finding
    (--accept with --reason, or [fairness] accepted in rebalance.toml); every acceptance is
    recorded with who, when, why and the review date.
    """
    review_date = None if review_by is None else parse_date(review_by, option="--review-by")
    try:
        decision = pipeline.promote_model(
            load_settings(home=home, tracking_uri=tracking_uri),
            accept=tuple(accept or ()),
            reason=reason,
            review_by=review_date,
        )
    except (ValueError, LookupError) as error:
        # Escaped: "[fairness]" in a message is text, not console markup.
        fail(escape(str(error)))
    print_decision(decision)
    if not decision.promoted:
        raise typer.Exit(code=1)


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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
    from api.auth import create_demo_users
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


@app.command()
def simulate(
    weeks: Annotated[int, typer.Option(min=1, max=520, help="Weeks to simulate.")] = 52,
    policy: Annotated[
        str, typer.Option(help="product, greedy, fcfs, random, oracle, none, or all.")
    ] = "all",
    households: Annotated[int, typer.Option(min=200, help="Households in the city.")] = 110_000,
    seeds: Annotated[int, typer.Option(min=1, max=50, help="Seeds (cities) per policy.")] = 3,
    rollout: Annotated[str, typer.Option(help="all, or staggered (early and late wards).")] = "all",
    late_start: Annotated[
        int, typer.Option(min=1, help="Week the late wards start (staggered roll-out).")
    ] = 26,
    time_limit: Annotated[
        float, typer.Option(min=0.6, help="Seconds for each weekly optimiser run.")
    ] = 2.0,
    follow_up_weeks: Annotated[
        int,
        typer.Option(min=0, max=104, help="Weeks after the run in which open cases still count."),
    ] = 26,
    model: Annotated[str, typer.Option(help="auto, champion or train.")] = "auto",
    home: Home = None,
    tracking_uri: TrackingUri = None,
) -> None:
    """Run the synthetic city forward under allocation policies; write the programme results."""
    from experiments.simulation import POLICIES, SimulationSettings

    policies = POLICIES if policy == "all" else (policy,)
    if model not in ("auto", "champion", "train"):
        fail(f"--model must be auto, champion or train, not {model!r}")
    try:
        simulation = SimulationSettings(
            weeks=weeks,
            households=households,
            seeds=tuple(range(seeds)),
            policies=policies,
            rollout=rollout,
            late_start_week=min(late_start, weeks),
            time_limit_s=time_limit,
            follow_up_weeks=follow_up_weeks,
        )
    except ValueError as error:
        fail(str(error))
    settings = load_settings(home=home, tracking_uri=tracking_uri)
    try:
        with console.status("Simulating...") as status:
            result, paths, _ = pipeline.simulate_programme(
                settings,
                simulation=simulation,
                model_choice=model,
                progress=lambda message: status.update(message),
            )
    except (ValueError, LookupError) as error:
        fail(str(error))
    print_simulation(result, folder=paths["summary"].parent)


def interval_cell(row: dict, name: str, *, digits: int = 0) -> str:
    low, high = row[f"{name}_low"], row[f"{name}_high"]
    band = "" if pd.isna(low) else f" ({low:,.{digits}f} to {high:,.{digits}f})"
    return f"{row[name]:,.{digits}f}{band}"


def print_simulation(result, *, folder: Path) -> None:
    from rich.table import Table

    from experiments.simulation import per_case_check, policy_table

    table = Table(title="Policies (mean over seeds, 95% interval)")
    for column in (
        "policy",
        "crises prevented",
        "expected",
        "helped",
        "utilisation",
        "cost avoided",
    ):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for row in policy_table(result).to_dict(orient="records"):
        table.add_row(
            row["policy"],
            interval_cell(row, "crises_prevented"),
            interval_cell(row, "expected_crises_prevented", digits=1),
            interval_cell(row, "households_helped"),
            f"{row['utilisation']:.0%}",
            f"£{row['cost_avoided']:,.0f}",
        )
    out.print(table)
    check = per_case_check(result)
    out.print(
        f"Cost avoided per case ({check['policy']}): £{check['per_case']:,.0f}, "
        f"{check['position']} £{check['band_low']:,.0f}-£{check['band_high']:,.0f}; "
        f"crises alone on expected counts: £{check['expected_per_case']:,.0f}, "
        f"{check['expected_position']} (run + {check['follow_up_weeks']} weeks' follow-up)",
        markup=False,
    )
    out.print(f"Results: {folder}", markup=False)


def register_subcommands() -> None:
    from api.users_cli import users_app

    app.add_typer(users_app, name="users", help="Manage the service's users.")


register_subcommands()


def main() -> None:
    app(prog_name="rebalance")


if __name__ == "__main__":
    sys.exit(main())
