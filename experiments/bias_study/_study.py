"""The under-reporting study: does the bias audit see it when an agency under-records one group?

Real agency data record some communities' contact less completely than others'. The synthetic city
can switch that on: each event of the chosen types about the group's households is recorded only
with a given probability; what happens to the households is unchanged. The study

1. generates the city with under-reporting, and (with `control`) the same city without it: the
   same seed gives the same households and the same lives, only the records differ;
2. trains the escalation model on each with fast settings and scores the latest two test dates
   (rolling origin: each model only sees records shared before its test date);
3. audits the latest test date against recorded outcomes (what a council can run) and against
   the city's true outcomes (what only a simulation can know);
4. fits group-aware cut-offs on the earlier test date and applies them to the latest one (so the
   mitigation is judged out of time, not on the data it was fitted to), and audits again;
5. writes a Markdown report with before/after figures, the audit tables (CSV) and charts (PNG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.bias_study._arms import (
    ARMS,
    STUDY_SETTINGS,
    BiasStudy,
    StudyArm,
)
from experiments.bias_study._report import study_report, write_study
from experiments.city import generate_city
from experiments.fairness import (
    FairnessGate,
    bias_audit,
    fairness_gate,
    fit_group_cut_offs,
    group_aware_adjustment,
)
from features.contract import ETHNICITIES, EVENT_TYPES, LOCALITIES, TABLE_NAMES
from features.groups import household_groups
from models import HoldoutPredictions, TrainSettings, holdout_predictions


def run_bias_study(
    *,
    households: int,
    seed: int,
    end: date,
    group: str,
    event_types: Sequence[str],
    reporting_probability: float,
    out_dir: str | Path,
    k: int | float = 0.05,
    settings: TrainSettings | None = None,
    gate: FairnessGate | None = None,
    control: bool = True,
) -> BiasStudy:
    """Run the study and write report.md, audit CSVs and charts into out_dir.

    group: an ethnicity (e.g. "asian") or "locality=<town>", the audit attributes the city can
    under-report. k: households selected at each test date (a fraction when below 1).
    """
    attribute, value = audit_group(group)
    _check_event_types(event_types, reporting_probability=reporting_probability)
    settings = settings or TrainSettings(**STUDY_SETTINGS)
    if settings.folds < 2:
        raise ValueError("the study needs at least 2 folds: one to fit the cut-offs, one to test")
    gate = gate or FairnessGate()
    setup = {
        "households": households,
        "seed": seed,
        "end": str(end),
        "group": group,
        "attribute": attribute,
        "value": value,
        "event_types": list(event_types),
        "reporting_probability": float(reporting_probability),
        "k": k,
    }
    under_reporting = {group: {name: float(reporting_probability) for name in event_types}}
    arms = {
        name: study_arm(
            name=name,
            city_args={"households": households, "seed": seed, "end": end},
            under_reporting=under_reporting if name == "under-reported" else None,
            attribute=attribute,
            k=k,
            settings=settings,
            gate=gate,
        )
        for name in (ARMS if control else ARMS[1:])
    }
    report = study_report(arms, setup=setup, settings=settings, gate=gate)
    files = write_study(arms, report=report, setup=setup, out_dir=Path(out_dir), gate=gate)
    return BiasStudy(arms=arms, report=report, files=files)


def audit_group(group: str) -> tuple[str, str]:
    """(audit attribute, value) of a city under-reporting group: an ethnicity or locality=town."""
    column, _, value = group.rpartition("=") if "=" in group else ("ethnicity", "=", group)
    allowed = {"ethnicity": ETHNICITIES, "locality": LOCALITIES}
    if column not in allowed or value not in allowed[column]:
        raise ValueError(
            f"group {group!r}: expected an ethnicity ({', '.join(ETHNICITIES)}) or "
            f"locality=<town> ({', '.join(LOCALITIES)}), which the city and the audit both know"
        )
    return column, value


def _check_event_types(event_types: Sequence[str], *, reporting_probability: float) -> None:
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown or not event_types:
        raise ValueError(f"event_types must be contract event types; unknown: {unknown}")
    if not 0.0 <= reporting_probability <= 1.0:
        raise ValueError(f"reporting_probability must be in [0, 1], not {reporting_probability}")


def study_arm(
    *,
    name: str,
    city_args: Mapping[str, object],
    under_reporting: Mapping[str, Mapping[str, float]] | None,
    attribute: str,
    k: int | float,
    settings: TrainSettings,
    gate: FairnessGate,
) -> StudyArm:
    """Generate one city, train, audit the latest test date, mitigate and audit again."""
    city = generate_city(**city_args, under_reporting=under_reporting)
    tables = {name: table for name, table in city.tables().items() if name in TABLE_NAMES}
    earlier, latest = holdout_predictions(tables=tables, as_of=city.end, settings=settings, last=2)
    groups = {
        date_predictions.as_of: household_groups(
            households=tables["households"], people=tables["people"], as_of=date_predictions.as_of
        )
        for date_predictions in (earlier, latest)
    }
    cut_offs = fit_group_cut_offs(
        predictions=earlier.predictions,
        groups=groups[earlier.as_of],
        attribute=attribute,
        k=k,
        min_households=gate.min_households,
        min_positives=gate.min_positives,
    )
    audits = _arm_audits(
        latest, groups=groups[latest.as_of], truth=city.truth, cut_offs=cut_offs, k=k
    )
    gates = {key: fairness_gate(audit, settings=gate) for key, audit in audits.items()}
    return StudyArm(name=name, as_of=latest.as_of, audits=audits, gates=gates, cut_offs=cut_offs)


def _arm_audits(
    latest: HoldoutPredictions,
    *,
    groups: pd.DataFrame,
    truth: pd.DataFrame,
    cut_offs: pd.DataFrame,
    k: int | float,
) -> dict[str, pd.DataFrame]:
    recorded = latest.predictions
    true_outcome = recorded.assign(label=true_labels(truth, recorded, as_of=latest.as_of))
    adjusted = group_aware_adjustment(scores=recorded, groups=groups, cut_offs=cut_offs)
    priority = adjusted["adjusted_rank_score"].to_numpy()
    return {
        "recorded_before": bias_audit(predictions=recorded, groups=groups, k=k),
        "recorded_after": bias_audit(
            predictions=recorded.assign(rank_score=priority), groups=groups, k=k
        ),
        "truth_before": bias_audit(predictions=true_outcome, groups=groups, k=k),
        "truth_after": bias_audit(
            predictions=true_outcome.assign(rank_score=priority), groups=groups, k=k
        ),
    }


def true_labels(truth: pd.DataFrame, predictions: pd.DataFrame, *, as_of) -> np.ndarray:
    """Whether each predicted household really had a crisis in the window (recorded or not)."""
    on_date = truth.loc[pd.to_datetime(truth["as_of"]) == pd.Timestamp(as_of)]
    if on_date.empty:
        raise ValueError(f"the city's truth table has no rows as of {pd.Timestamp(as_of).date()}")
    escalated = on_date.set_index(on_date["household_id"].astype("str"))["escalated"]
    return escalated.reindex(predictions["household_id"].astype("str")).to_numpy(dtype="int64")
