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

import argparse
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.city import generate_city
from experiments.fairness import (
    FairnessGate,
    GateResult,
    audit_chart,
    audit_for_run,
    bias_audit,
    fairness_gate,
    fit_group_cut_offs,
    group_aware_adjustment,
)
from experiments.promotion import PromotionDecision, promote
from experiments.registry import train
from features.contract import ETHNICITIES, EVENT_TYPES, LOCALITIES, TABLE_NAMES
from features.groups import groups_as_of_tables, household_groups
from models import HoldoutPredictions, TrainSettings, holdout_predictions

# Fast but faithful: the product's model and temporal design with fewer dates and trees.
STUDY_SETTINGS: dict[str, object] = {
    "folds": 2,
    "history_dates": 4,
    "n_estimators": 200,
    "early_stopping_rounds": 20,
    # The fold evaluation also fits the baselines, which the study does not use: keep them cheap.
    "logistic_max_rows": 10_000,
}
ARMS: tuple[str, ...] = ("control", "under-reported")
# Contact that a community may report less, or an agency record less, for some households.
DEFAULT_UNDER_REPORTED: tuple[str, ...] = (
    "police_callout",
    "domestic_abuse_incident",
    "asb_report",
    "missing_person",
    "ae_attendance",
    "social_care_contact",
    "fire_callout",
)


@dataclass(frozen=True)
class StudyArm:
    """One city's audits before and after mitigation, on recorded and on true outcomes."""

    name: str
    as_of: pd.Timestamp
    audits: dict[str, pd.DataFrame]  # keys: "<recorded|truth>_<before|after>"
    gates: dict[str, GateResult]
    cut_offs: pd.DataFrame


@dataclass(frozen=True)
class BiasStudy:
    """The study's arms, the report and the files written."""

    arms: dict[str, StudyArm]
    report: str
    files: dict[str, Path]


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


# --- the report ---------------------------------------------------------------------------------


def study_report(
    arms: Mapping[str, StudyArm],
    *,
    setup: Mapping[str, object],
    settings: TrainSettings,
    gate: FairnessGate,
) -> str:
    """The study's Markdown report: setup, the group's figures before and after, the gates."""
    sections = [
        _setup_section(arms, setup=setup, settings=settings),
        _group_section(arms, setup=setup),
        _gate_section(arms, setup=setup),
        _cost_section(arms),
        _cut_off_section(arms),
        _reading_section(setup=setup, gate=gate),
    ]
    return "\n\n".join(section.strip() for section in sections) + "\n"


def _setup_section(
    arms: Mapping[str, StudyArm], *, setup: Mapping[str, object], settings: TrainSettings
) -> str:
    latest = next(iter(arms.values()))
    k_text = setup["k"] if setup["k"] >= 1 else f"{setup['k']:.0%} of households"
    events = ", ".join(str(name) for name in setup["event_types"])
    trained = ", ".join(
        f"{name}={getattr(settings, name)}" for name in STUDY_SETTINGS if "logistic" not in name
    )
    selected = int(latest.audits["recorded_before"]["k"].iloc[0])
    return f"""
# Under-reporting study: {setup["attribute"]}={setup["value"]}

- City: {setup["households"]:,} households, seed {setup["seed"]}, records up to {setup["end"]}.
- Under-reporting: events of type {events} about households whose {setup["attribute"]} is
  {setup["value"]} are recorded with probability {setup["reporting_probability"]:.2f}; nothing
  else differs. Arms: {", ".join(arms)} (same seed: same households, same lives).
- Model: the product's escalation model with {trained}; audited on the latest test date
  ({latest.as_of.date()}), k = {k_text} ({selected:,} households).
- Mitigation: group-aware cut-offs on {setup["attribute"]}, fitted on the previous test date and
  applied to the latest one.
- Outcomes: "recorded" = crises the agencies recorded (what a council can audit); "truth" = the
  crises that happened, recorded or not (known only in the simulation).
"""


def _group_section(arms: Mapping[str, StudyArm], *, setup: Mapping[str, object]) -> str:
    lines = [
        "| Arm | Outcomes | Mitigation | Group households | Escalated | Selected | "
        "Recall at k | FNR | Reference recall | Recall ratio | FNR ratio | "
        "Predicted/observed ratio |",
        "|---" * 12 + "|",
    ]
    for arm in arms.values():
        for key, audit in arm.audits.items():
            outcomes, stage = key.split("_")
            row = _group_row(audit, setup=setup)
            reference = _reference_row(audit, attribute=str(setup["attribute"]))
            cells = [
                arm.name,
                outcomes,
                stage,
                f"{int(row['households']):,}",
                f"{int(row['positives']):,}",
                f"{int(row['selected']):,}",
                f"{row['recall_at_k']:.3f}",
                f"{row['false_negative_rate']:.3f}",
                f"{reference['recall_at_k']:.3f} ({reference['group']})",
                f"{row['recall_at_k_ratio']:.2f}",
                f"{row['false_negative_rate_ratio']:.2f}",
                f"{row['predicted_to_observed_ratio']:.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    title = f"## The {setup['attribute']}={setup['value']} group against its reference group"
    return title + "\n\n" + "\n".join(lines)


def _group_row(audit: pd.DataFrame, *, setup: Mapping[str, object]) -> pd.Series:
    rows = audit.loc[
        (audit["attribute"] == setup["attribute"]) & (audit["group"] == setup["value"])
    ]
    if rows.empty:
        raise ValueError(f"no {setup['attribute']}={setup['value']} households on the test date")
    return rows.iloc[0]


def _reference_row(audit: pd.DataFrame, *, attribute: str) -> pd.Series:
    return audit.loc[(audit["attribute"] == attribute) & audit["is_reference"]].iloc[0]


def _gate_section(arms: Mapping[str, StudyArm], *, setup: Mapping[str, object]) -> str:
    lines = [
        f"| Arm | Audit | {setup['attribute']}={setup['value']} flagged | Gate | Failures |",
        "|---|---|---|---|---|",
    ]
    for arm in arms.values():
        for key, result in arm.gates.items():
            flagged = "yes" if _flagged(result, setup=setup) else "no"
            verdict = "passed" if result.passed else "failed"
            failures = "; ".join(str(f["text"]) for f in result.failures) or "-"
            lines.append(
                f"| {arm.name} | {key.replace('_', ', ')} | {flagged} | {verdict} | {failures} |"
            )
    return "## Fairness gate (every attribute)\n\n" + "\n".join(lines)


def _flagged(result: GateResult, *, setup: Mapping[str, object]) -> bool:
    return any(
        failure["attribute"] == setup["attribute"] and failure["group"] == setup["value"]
        for failure in result.failures
    )


def _cost_section(arms: Mapping[str, StudyArm]) -> str:
    lines = [
        "| Arm | Outcomes | Escalations found in the top k, before | after | change |",
        "|---|---|---|---|---|",
    ]
    for arm in arms.values():
        for outcomes in ("recorded", "truth"):
            found = [
                int(_found(arm.audits[f"{outcomes}_{stage}"])) for stage in ("before", "after")
            ]
            change = found[1] - found[0]
            lines.append(f"| {arm.name} | {outcomes} | {found[0]:,} | {found[1]:,} | {change:+,} |")
    intro = (
        "Equalising recall within a fixed k moves places from the groups the model sees clearly "
        "to the group it sees less clearly, so the list can find fewer escalations in total."
    )
    return "## What the mitigation costs\n\n" + intro + "\n\n" + "\n".join(lines)


def _found(audit: pd.DataFrame) -> int:
    first = audit["attribute"].iloc[0]
    return int(audit.loc[audit["attribute"] == first, "true_positives"].sum())


def _cut_off_section(arms: Mapping[str, StudyArm]) -> str:
    lines = [
        "| Arm | Group | Households | Escalated | Adjusted | Odds multiplier | Recall before | "
        "Target recall |",
        "|---" * 8 + "|",
    ]
    for arm in arms.values():
        for row in arm.cut_offs.itertuples(index=False):
            lines.append(
                f"| {arm.name} | {row.group} | {row.households:,} | {row.positives:,} | "
                f"{'yes' if row.adjusted else 'no'} | {row.odds_multiplier:.2f} | "
                f"{row.recall_before:.3f} | {row.target_recall:.3f} |"
            )
    return "## Group-aware cut-offs (fitted on the previous test date)\n\n" + "\n".join(lines)


def _reading_section(*, setup: Mapping[str, object], gate: FairnessGate) -> str:
    return f"""
## How to read this

The gate passes a group when its recall at k and false negative rate are within
{gate.min_ratio:.2f}-{gate.max_ratio:.2f} of the reference group's, for groups of at least
{gate.min_households} households and {gate.min_positives} escalations. Under-recorded contact
makes the {setup["value"]} group's households look calmer than they are, so the model ranks them
lower and its recall falls; the control arm shows the same city without the bias. If crisis
types are among the under-recorded events, the recorded outcomes hide part of the harm: compare
the "truth" rows. The audit tables are in audit_<arm>_<outcomes>_<stage>.csv, the charts in
audit_<arm>_<stage>.png.
"""


def write_study(
    arms: Mapping[str, StudyArm],
    *,
    report: str,
    setup: Mapping[str, object],
    out_dir: Path,
    gate: FairnessGate,
) -> dict[str, Path]:
    """Write report.md, summary.json, each audit as CSV and the recorded audits as charts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"report": out_dir / "report.md", "summary": out_dir / "summary.json"}
    files["report"].write_text(report, encoding="utf-8")
    files["summary"].write_text(
        json.dumps(study_summary(arms, setup=setup), indent=1, sort_keys=True), encoding="utf-8"
    )
    for arm in arms.values():
        slug = arm.name.replace("-", "_")
        for key, audit in arm.audits.items():
            path = out_dir / f"audit_{slug}_{key}.csv"
            audit.to_csv(path, index=False)
            files[f"{slug}_{key}"] = path
        for stage in ("before", "after"):
            path = out_dir / f"audit_{slug}_{stage}.png"
            audit_chart(arm.audits[f"recorded_{stage}"], settings=gate).savefig(path, dpi=90)
            files[f"{slug}_{stage}_chart"] = path
        arm.cut_offs.to_csv(out_dir / f"cut_offs_{slug}.csv", index=False)
    return files


def study_summary(arms: Mapping[str, StudyArm], *, setup: Mapping[str, object]) -> dict:
    """The headline figures as plain numbers (for docs and for comparing runs)."""
    summary: dict[str, object] = {"setup": dict(setup)}
    for arm in arms.values():
        for key, audit in arm.audits.items():
            row = _group_row(audit, setup=setup)
            summary[f"{arm.name}/{key}"] = {
                "recall_at_k": float(row["recall_at_k"]),
                "recall_at_k_ratio": float(row["recall_at_k_ratio"]),
                "recall_at_k_p_value": float(row["recall_at_k_p_value"]),
                "selection_rate_ratio": float(row["selection_rate_ratio"]),
                "predicted_to_observed_ratio": float(row["predicted_to_observed_ratio"]),
                "predicted_to_observed_p_value": float(row["predicted_to_observed_p_value"]),
                "selected": int(row["selected"]),
                "false_negative_rate_ratio": float(row["false_negative_rate_ratio"]),
                "escalations_found": _found(audit),
                "gate_passed": arm.gates[key].passed,
                "group_flagged": _flagged(arm.gates[key], setup=setup),
            }
    return summary


# --- mitigation by reweighting, measured --------------------------------------------------------


def reweighting_study(
    *,
    households: int,
    seed: int,
    end: date,
    group: str,
    event_types: Sequence[str],
    reporting_probability: float,
    attribute: str,
    strength: float = 1.0,
    settings: TrainSettings | None = None,
    gate: FairnessGate | None = None,
) -> pd.DataFrame:
    """Before/after figures of reweighting by `attribute`, on the city with and without the bias.

    Each (city, training) pair trains the product's model (fast settings) and audits the latest
    test date at its capacity k with the gate: one row with the group's ratios, the gate's
    verdict and the holdout AUC.
    """
    audited, value = audit_group(group)
    settings = settings or TrainSettings(**STUDY_SETTINGS)
    gate = gate or FairnessGate()
    under_reporting = {group: {name: float(reporting_probability) for name in event_types}}
    rows = []
    for arm in ARMS:
        city = generate_city(
            households=households,
            seed=seed,
            end=end,
            under_reporting=under_reporting if arm == "under-reported" else None,
        )
        tables = {name: table for name, table in city.tables().items() if name in TABLE_NAMES}
        for training, arm_settings in (
            ("unweighted", settings),
            (
                f"reweighted by {attribute}",
                replace(settings, reweight_attribute=attribute, reweight_strength=strength),
            ),
        ):
            (latest,) = holdout_predictions(
                tables=tables,
                as_of=city.end,
                settings=arm_settings,
                last=1,
                groups_as_of=groups_as_of_tables(tables),
            )
            rows.append(
                _reweighting_row(latest, tables=tables, gate=gate, group=(audited, value))
                | {"city": arm, "training": training}
            )
    columns = ["city", "training"]
    table = pd.DataFrame(rows)
    return table[columns + [name for name in table.columns if name not in columns]]


def _reweighting_row(
    latest: HoldoutPredictions,
    *,
    tables: Mapping[str, pd.DataFrame],
    gate: FairnessGate,
    group: tuple[str, str],
) -> dict[str, object]:
    from sklearn.metrics import roc_auc_score

    audit = audit_for_run(
        predictions=latest.predictions,
        tables=tables,
        as_of=latest.as_of,
        k=max(1, latest.k_capacity),
        settings=gate,
    )
    row = _group_row(audit.table, setup={"attribute": group[0], "value": group[1]})
    predictions = latest.predictions
    return {
        "k": int(audit.table["k"].iloc[0]),
        "auc": float(roc_auc_score(predictions["label"], predictions["rank_score"])),
        "group_recall_ratio": float(row["recall_at_k_ratio"]),
        "group_fnr_ratio": float(row["false_negative_rate_ratio"]),
        "group_predicted_to_observed_ratio": float(row["predicted_to_observed_ratio"]),
        "group_predicted_to_observed_p_value": float(row["predicted_to_observed_p_value"]),
        "gate_passed": audit.gate.passed,
        "gate_failures": "; ".join(str(f["text"]) for f in audit.gate.failures) or "-",
    }


# --- the demo champion's transparency record -----------------------------------------------------


def write_demo_record(
    *,
    households: int,
    seed: int,
    end: date,
    out: str | Path,
    settings: TrainSettings | None = None,
    gate: FairnessGate | None = None,
) -> PromotionDecision:
    """Train and promote the demo champion exactly as `rebalance demo` does, copy its record.

    The city, training, bias audit, gates and record are the product's own (in a scratch
    REBALANCE_HOME); the record is generated, never edited by hand.
    """
    settings = settings or TrainSettings()
    city = generate_city(households=households, seed=seed, end=end)
    tables = {name: table for name, table in city.tables().items() if name in TABLE_NAMES}
    with tempfile.TemporaryDirectory(prefix="rebalance-demo-record-") as home:
        train(
            tables=tables,
            snapshot_id=f"demo-city-{households}-{seed}",
            as_of=city.end,
            settings=settings,
            home=home,
            truth=city.truth,
            fairness=gate,
        )
        decision = promote(home=home, settings=settings, fairness=gate)
        if not decision.promoted:
            raise ValueError(f"the demo model was not promoted: {decision.message}")
        record = Path(decision.records[-1]).read_text(encoding="utf-8")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record, encoding="utf-8")
    return decision


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


__all__ = [
    "BiasStudy",
    "StudyArm",
    "audit_group",
    "main",
    "reweighting_study",
    "run_bias_study",
    "write_demo_record",
]


if __name__ == "__main__":
    main()
