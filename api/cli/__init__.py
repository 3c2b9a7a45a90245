"""The `rebalance` command: a thin adapter from verbs to the stage functions in api.pipeline.

`app` (the entry point, `api.cli:app`) gathers the verbs, one module per group: data.py (the
city and the extracts), modelling.py (train, promote), weekly.py (score, publish, explain,
allocate, compare), service.py (serve, demo), simulating.py and users.py (`rebalance users`).

Start-up: each verb imports the stages it runs (features.ingest and validation, models,
allocation, experiments, the web app) inside its function, so that `rebalance --help` and every
verb load only what they use. Measured 2026-12-07 on the 2-core development machine while
shared (CPU seconds, three runs each): `rebalance --help` 2.7-3.6 s (2.8-3.3 s before the CLI
was split into these modules); importing this package 2.6-2.8 s, with those stages imported
at the top as well 8.4-9.4 s, with the web app too 11.0-11.7 s.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from api.cli import data, modelling, service, simulating, users, weekly
from api.settings import SettingsError


class _Rebalance(typer.Typer):
    """The command: a settings file it cannot use ends in one plain line, never a traceback."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except SettingsError as error:
            logging.getLogger(__name__).debug("settings refused", exc_info=True)
            typer.echo(f"error: {error}", err=True)
            raise SystemExit(2) from None


app = _Rebalance(
    name="rebalance",
    help="Household risk prioritisation and key-worker allocation for early help.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
VERBS = (
    data.synth,
    data.ingest,
    data.check,
    data.snapshots,
    modelling.train,
    modelling.promote,
    weekly.score,
    weekly.publish,
    weekly.explain,
    weekly.allocate,
    weekly.compare,
    service.serve,
    service.demo,
    simulating.simulate,
)
for verb in VERBS:
    app.command()(verb)
app.add_typer(users.users_app, name="users", help="Manage the service's users.")


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


def main() -> None:
    app(prog_name="rebalance")


if __name__ == "__main__":
    sys.exit(main())
