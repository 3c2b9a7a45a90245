"""The under-reporting study's report: Markdown sections, files and a JSON summary."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from experiments.bias_study._arms import STUDY_SETTINGS, StudyArm
from experiments.fairness import (
    FairnessGate,
    GateResult,
    audit_chart,
)
from models import TrainSettings


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
            row = group_row(audit, setup=setup)
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


def group_row(audit: pd.DataFrame, *, setup: Mapping[str, object]) -> pd.Series:
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
            row = group_row(audit, setup=setup)
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
