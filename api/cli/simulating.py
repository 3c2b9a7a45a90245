"""`rebalance simulate`: the synthetic city run forward under allocation policies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from api import pipeline
from api.cli._shared import Home, TrackingUri, console, fail, out
from api.settings import load_settings

# The stages are imported inside the verbs that run them, for start-up time (figures in
# api/cli/__init__.py).


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
