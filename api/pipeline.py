"""Wiring: the weekly job as a chain of stage functions, shared by the CLI and the HTTP API.

Data flows one way: extract -> store -> features -> scores + reasons -> proposal -> decisions.
Each function here only connects stages and decides where files go; the logic lives in the packages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from api.settings import Settings
from features.store import Store


@dataclass(frozen=True)
class WeekOutputs:
    """Where one weekly run wrote its files."""

    as_of: pd.Timestamp
    scores_path: Path
    proposal_path: Path
    summary_path: Path


def open_store(settings: Settings) -> Store:
    return Store(settings.home)


def latest_as_of(settings: Settings) -> pd.Timestamp:
    """The default as-of date: the last day any partner record was known in the current snapshot."""
    events = open_store(settings).read_table("events", columns=["known_at"])
    return pd.Timestamp(events["known_at"].max()).normalize()


def train_settings(settings: Settings):
    from models import TrainSettings

    return TrainSettings(
        horizon_weeks=settings.horizon_weeks,
        crisis_types=settings.crisis_types,
        **settings.training,
    )


def allocation_settings(settings: Settings):
    from allocation import AllocationSettings

    return AllocationSettings(**settings.allocation)


def read_truth(settings: Settings) -> pd.DataFrame | None:
    """The synthetic city's truth file, when the extract came from the simulator."""
    truth_path = settings.extract_dir / "truth.csv"
    if not truth_path.exists():
        return None
    return pd.read_csv(truth_path, parse_dates=["as_of"], dtype={"household_id": "str"})


def write_summary(*, path: Path, scores: pd.DataFrame, proposal, as_of: pd.Timestamp) -> Path:
    """A short Markdown summary of the week for a locality manager."""
    summary = proposal.summary
    lines = [
        f"# Weekly proposal as of {as_of.date()}",
        "",
        f"- Households scored: {len(scores):,}",
        f"- Candidates considered: {summary['candidates']:,}",
        f"- Proposed for a key worker: {summary['assigned']:,}",
        f"- Waitlisted: {summary['waitlisted']:,}",
        f"- Solver: {summary['status']}, gap {summary['gap']:.4%}, "
        f"{summary['solve_seconds']:.1f} s",
        "",
        "This is advice: a locality manager reviews and decides every row.",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_json(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path
