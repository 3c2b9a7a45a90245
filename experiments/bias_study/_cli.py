"""`python -m experiments.bias_study study|reweighting|record ...`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from experiments.bias_study._arms import DEFAULT_UNDER_REPORTED
from experiments.bias_study._record import write_demo_record
from experiments.bias_study._reweighting import reweighting_study
from experiments.bias_study._study import run_bias_study
from experiments.fairness import (
    FairnessGate,
)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m experiments.bias_study study|reweighting|record ...`."""
    arguments = _parser().parse_args(argv)
    city = {"households": arguments.households, "seed": arguments.seed, "end": arguments.end}
    gate = FairnessGate(metrics=tuple(arguments.gate_metrics.split(",")))
    if arguments.command == "record":
        decision = write_demo_record(**city, out=arguments.out, gate=gate)
        print(f"transparency record of version {decision.champion_after} -> {arguments.out}")
        print(decision.fairness.message if decision.fairness else "")
        return
    bias = {
        "group": arguments.group,
        "event_types": arguments.event_types.split(","),
        "reporting_probability": arguments.reporting_probability,
    }
    if arguments.command == "reweighting":
        table = reweighting_study(
            **city, **bias, attribute=arguments.attribute, strength=arguments.strength, gate=gate
        )
        Path(arguments.out).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(arguments.out, index=False)
        print(table.to_string(index=False))
        return
    study = run_bias_study(
        **city,
        **bias,
        out_dir=arguments.out,
        k=arguments.k,
        gate=gate,
        control=not arguments.no_control,
    )
    print(f"bias study report written to {study.files['report']}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.bias_study")
    parser.add_argument("command", choices=("study", "reweighting", "record"))
    parser.add_argument("--households", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 15))
    parser.add_argument("--group", default="asian")
    parser.add_argument("--event-types", default=",".join(DEFAULT_UNDER_REPORTED))
    parser.add_argument("--reporting-probability", type=float, default=0.1)
    parser.add_argument("--k", type=float, default=0.05)
    parser.add_argument("--attribute", default="ethnicity", help="reweighting: the attribute")
    parser.add_argument("--strength", type=float, default=1.0, help="reweighting: 0-1")
    parser.add_argument(
        "--gate-metrics",
        default=",".join(FairnessGate().metrics),
        help="comma-separated: false_negative_rate, recall_at_k, selection_rate, "
        "precision_at_k, predicted_to_observed",
    )
    parser.add_argument("--no-control", action="store_true")
    parser.add_argument("--out", required=True)
    return parser
