"""What every verb shares: the consoles, the common options, failing with a message, dates."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api import pipeline

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


def as_of_date(settings, as_of: str | None):
    if as_of is not None:
        parse_date(as_of, option="--as-of")
    return pipeline.resolve_as_of(settings, as_of)
