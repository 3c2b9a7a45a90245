"""The `rebalance` command: a thin adapter from verbs to the stage functions in api.pipeline."""

from __future__ import annotations

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
console = Console(stderr=True)

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


def main() -> None:
    app(prog_name="rebalance")


if __name__ == "__main__":
    sys.exit(main())
