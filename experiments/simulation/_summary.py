"""A simulation's summaries: policies and costs with 95% intervals, the per-case check, its
files on disk and its MLflow runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from experiments.simulation._costs import cost_sources
from experiments.simulation._policies import (
    POLICIES,
    POLICY_NAMES,
)
from experiments.simulation._report import read_summary, write_results
from experiments.simulation._settings import PER_CASE_BAND_GBP, SimulationResult
from features.contract import SOURCES

SUMMARY_METRICS: tuple[str, ...] = (
    "crises_prevented",
    "expected_crises_prevented",
    "expected_crises_prevented_in_run",
    "households_helped",
    "cases_opened",
    "utilisation",
    "cost_avoided",
    "cost_avoided_per_case",
    "expected_crisis_cost_avoided",
    "expected_crisis_cost_avoided_per_case",
)


def mean_interval(values: pd.Series, *, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and t interval over seeds (NaN bounds with a single seed)."""
    values = values.dropna().astype(np.float64)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    spread = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1)) / np.sqrt(
        len(values)
    )
    return mean, mean - spread, mean + spread


def policy_table(result: SimulationResult) -> pd.DataFrame:
    """One row per policy: each metric's mean over seeds and its 95% interval."""
    rows = []
    for policy, group in result.runs.groupby("policy", sort=False):
        row: dict[str, object] = {
            "policy": policy,
            "name": POLICY_NAMES[policy],
            "seeds": len(group),
        }
        for metric in SUMMARY_METRICS:
            row[metric], row[f"{metric}_low"], row[f"{metric}_high"] = mean_interval(group[metric])
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(result: SimulationResult) -> pd.DataFrame:
    """Cost avoided by policy and agency (mean over seeds, 95% interval), plus each total."""
    rows = []
    for (policy, agency), group in result.costs.groupby(["policy", "agency"], sort=False):
        mean, low, high = mean_interval(group["cost_avoided"])
        rows.append(
            {"policy": policy, "agency": agency, "cost_avoided": mean, "low": low, "high": high}
        )
    table = pd.DataFrame(rows)
    order = {agency: position for position, agency in enumerate(SOURCES)}
    return table.sort_values(
        ["policy", "agency"],
        key=lambda column: (
            column.map(order)
            if column.name == "agency"
            else column.map({name: position for position, name in enumerate(POLICIES)})
        ),
    ).reset_index(drop=True)


def _band_position(value: float) -> str:
    band_low, band_high = PER_CASE_BAND_GBP
    if not np.isfinite(value):
        return "no cases were opened"
    if value < band_low:
        return "below the band"
    return "above the band" if value > band_high else "within the band"


def per_case_check(result: SimulationResult, *, policy: str = "product") -> dict[str, object]:
    """Cost avoided per case opened against the GBP 6,200-14,500 band of the programme's seeds.

    `per_case` is on every event avoided (realised counts, common random numbers); `expected_*`
    is the crisis part alone on the expected count of crises (no event noise).
    """
    runs = result.runs.loc[result.runs["policy"] == policy]
    mean, low, high = mean_interval(runs["cost_avoided_per_case"])
    expected, expected_low, expected_high = mean_interval(
        runs["expected_crisis_cost_avoided_per_case"]
    )
    band_low, band_high = PER_CASE_BAND_GBP
    return {
        "policy": policy,
        "per_case": mean,
        "low": low,
        "high": high,
        "position": _band_position(mean),
        "expected_per_case": expected,
        "expected_low": expected_low,
        "expected_high": expected_high,
        "expected_position": _band_position(expected),
        "band_low": band_low,
        "band_high": band_high,
        "follow_up_weeks": result.settings.follow_up_weeks,
    }


def write_simulation(result: SimulationResult, out: Path) -> dict[str, Path]:
    """Write the results (CSV, JSON, plots) into `out`; see experiments/_simulation_report.py."""
    return write_results(
        result,
        Path(out),
        policies=policy_table(result),
        costs=cost_table(result),
        per_case=per_case_check(result),
        cost_sources=cost_sources(),
    )


def read_simulation_summary(folder: Path) -> dict | None:
    """summary.json of the latest simulation written into `folder`, or None."""
    return read_summary(Path(folder))


def tracking_runs(result: SimulationResult) -> list[dict[str, object]]:
    """One MLflow run per policy (its seeds together): run name, params, metrics, tags."""
    settings = result.settings.as_dict()
    runs = []
    for row in policy_table(result).to_dict(orient="records"):
        metrics = {
            key: value
            for key, value in row.items()
            if key not in ("policy", "name")
            and isinstance(value, int | float)
            and np.isfinite(value)
        }
        runs.append(
            {
                "run_name": f"simulate-{row['policy']}-{settings['weeks']}w",
                "params": {key: str(value) for key, value in settings.items()}
                | {"policy": row["policy"]},
                "metrics": metrics,
                "tags": {"policy": str(row["policy"]), "kind": "policy-simulation"},
            }
        )
    return runs
