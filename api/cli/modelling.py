"""`rebalance train` and `promote`: a challenger, its gates, and the champion."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.markup import escape

from api import pipeline
from api.cli._shared import AsOf, Home, TrackingUri, as_of_date, console, fail, out, parse_date
from api.settings import load_settings
from features.store import StoreError


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
