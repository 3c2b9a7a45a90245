"""`rebalance synth`, `check`, `ingest`, `snapshots`: the city and the partners' extracts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli._shared import Home, console, fail, parse_date
from api.cli.weekly import run_publish
from api.settings import load_settings
from features.store import Store, StoreError

# The stages are imported inside the verbs that run them, for start-up time (figures in
# api/cli/__init__.py).


def parse_bias(spec: str | None) -> dict | None:
    from experiments.city import parse_under_reporting

    try:
        return parse_under_reporting(spec) if spec else None
    except ValueError as error:
        fail(str(error))


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


def snapshots(home: Home = None) -> None:
    """List the ingested snapshots, oldest first; the current one is marked."""
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
