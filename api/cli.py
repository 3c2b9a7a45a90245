"""The `rebalance` command: a thin adapter from verbs to the stage functions in api.pipeline."""

from __future__ import annotations

import logging
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api import pipeline
from api.settings import load_settings

app = typer.Typer(
    name="rebalance",
    help="Household risk prioritisation and key-worker allocation for early help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)

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
    from experiments.city import generate_city, parse_under_reporting, write_city

    with console.status(f"Simulating {households:,} households..."):
        city = generate_city(
            households=households,
            seed=seed,
            end=parse_date(end, option="--end"),
            under_reporting=parse_under_reporting(under_reporting) if under_reporting else None,
        )
        written = write_city(city, out, fmt=fmt)
    for table, path in written.items():
        console.print(f"  {table:<10} {path}")


@app.command()
def ingest(
    folder: Annotated[Path, typer.Argument(help="Folder of partner extracts (CSV or Parquet).")],
    home: Home = None,
    max_problems: Annotated[int, typer.Option(min=100, help="Problems listed in a report.")] = 100,
) -> None:
    """Check a folder against the data contract and load it as the current snapshot."""
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


def main() -> None:
    app(prog_name="rebalance")


if __name__ == "__main__":
    sys.exit(main())
