"""A simulation's results on disk (CSV + JSON + PNG plots) and read back for the programme page.

Folder layout (REBALANCE_HOME/programme/ by default):
summary.json, policies.csv, costs.csv, runs.csv, weekly.csv, outcomes_city.csv,
outcomes_locality.csv, did.csv (staggered roll-out only), plots/<measure>.png.
Nothing here names a household: every table is by policy, seed, week, ward or locality.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402

from experiments.plots import save_figure  # noqa: E402
from experiments.simulation._outcomes import MEASURES, aggregate_outcomes, did_table  # noqa: E402
from experiments.simulation._policies import POLICY_NAMES  # noqa: E402

PLOT_MEASURES: tuple[str, ...] = (
    "crises",
    "rent_arrears_households",
    "rent_arrears_balance",
    "evictions",
    "asb",
    "ae",
    "school_absence",
    "demand",
    "tier_3",
)


def _clean(value):
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def outcome_plot(
    city: pd.DataFrame, *, measure: str, path: Path, follow_up_from: int | None = None
) -> Path:
    """A measure over the weeks, city-wide, one line per policy (4-week means: records are
    monthly or termly); follow_up_from marks the first week without new allocations."""
    label, unit = MEASURES[measure]
    figure, axes = plt.subplots(figsize=(7, 4))
    for policy, series in city.groupby("policy", sort=False):
        smooth = series.set_index("week")[measure].rolling(4, min_periods=1).mean()
        axes.plot(smooth.index, smooth.to_numpy(), label=POLICY_NAMES.get(policy, policy))
    axes.axvline(0, color="grey", linestyle=":", label="Simulation starts")
    if follow_up_from is not None:
        axes.axvline(follow_up_from, color="grey", linestyle="--", label="Follow-up starts")
    axes.set(xlabel="Week (negative: history under the usual practice)", ylabel=unit, title=label)
    axes.legend(fontsize="x-small")
    return save_figure(figure, path, dpi=100)


def cost_plot(costs: pd.DataFrame, *, path: Path) -> Path:
    """Cost avoided by agency for each policy (mean over seeds)."""
    table = costs.pivot_table(index="agency", columns="policy", values="cost_avoided", sort=False)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    table.div(1000).plot.barh(ax=axes)
    axes.set(xlabel="Cost avoided (GBP thousand)", ylabel="", title="Cost avoided by agency")
    axes.legend(fontsize="x-small")
    return save_figure(figure, path, dpi=100)


def did_plot(panel: pd.DataFrame, *, early_wards: tuple[str, ...], path: Path) -> Path:
    """Crises in early and late wards over the weeks under the product policy."""
    frame = panel.assign(group=panel["ward"].isin(early_wards).map({True: "early", False: "late"}))
    series = aggregate_outcomes(frame, by=["group", "week"])
    figure, axes = plt.subplots(figsize=(7, 4))
    for group, values in series.groupby("group"):
        smooth = values.set_index("week")["crises"].rolling(4, min_periods=1).mean()
        axes.plot(smooth.index, smooth.to_numpy(), label=f"{group} wards")
    axes.axvline(0, color="grey", linestyle=":")
    axes.set(xlabel="Week", ylabel=MEASURES["crises"][1], title="Crises: early vs late wards")
    axes.legend(fontsize="small")
    return save_figure(figure, path, dpi=100)


def _write_did(result, *, out: Path, paths: dict[str, Path], plots: list[Path]) -> pd.DataFrame:
    """The staggered roll-out's difference in differences (did.csv and its plot) of the main
    policy run; adds to `paths` and `plots`."""
    settings, outcomes = result.settings, result.outcomes
    ran = list(dict.fromkeys(outcomes["policy"]))
    main = next((p for p in ("product", "oracle", "greedy") if p in ran), ran[0])
    panel = outcomes.loc[outcomes["policy"] == main]
    did = did_table(
        panel,
        early_wards=result.early_wards,
        pre_weeks=(-settings.pre_weeks, 0),
        post_weeks=(0, settings.late_start_week),
    ).assign(policy=main)
    paths["did"] = out / "did.csv"
    did.to_csv(paths["did"], index=False, float_format="%.6g")
    plots.append(
        did_plot(panel, early_wards=result.early_wards, path=out / "plots" / "did_crises.png")
    )
    return did


def write_results(
    result,
    out: Path,
    *,
    policies: pd.DataFrame,
    costs: pd.DataFrame,
    per_case: dict,
    cost_sources: dict[str, str],
) -> dict[str, Path]:
    """Write every table, the plots and summary.json; returns the paths by name."""
    out.mkdir(parents=True, exist_ok=True)
    settings = result.settings
    outcomes = result.outcomes
    mean_over_seeds = aggregate_outcomes(outcomes, by=["policy", "week", "seed"])
    city = mean_over_seeds.groupby(["policy", "week"], sort=False).mean(numeric_only=True)
    city = city.drop(columns="seed").reset_index()
    locality = aggregate_outcomes(outcomes, by=["policy", "locality", "week"])
    paths = {
        "policies": out / "policies.csv",
        "costs": out / "costs.csv",
        "runs": out / "runs.csv",
        "weekly": out / "weekly.csv",
        "outcomes_city": out / "outcomes_city.csv",
        "outcomes_locality": out / "outcomes_locality.csv",
    }
    policies.to_csv(paths["policies"], index=False, float_format="%.6g")
    costs.to_csv(paths["costs"], index=False, float_format="%.2f")
    result.runs.to_csv(paths["runs"], index=False, float_format="%.6g")
    result.weekly.to_csv(paths["weekly"], index=False, float_format="%.6g")
    city.to_csv(paths["outcomes_city"], index=False, float_format="%.6g")
    locality.to_csv(paths["outcomes_locality"], index=False, float_format="%.6g")
    follow_up_from = settings.weeks if settings.follow_up_weeks else None
    plots = [
        outcome_plot(
            city,
            measure=measure,
            path=out / "plots" / f"{measure}.png",
            follow_up_from=follow_up_from,
        )
        for measure in PLOT_MEASURES
    ]
    plots.append(cost_plot(costs, path=out / "plots" / "cost_by_agency.png"))
    did = None
    if settings.rollout == "staggered" and result.early_wards:
        did = _write_did(result, out=out, paths=paths, plots=plots)
    summary = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": settings.as_dict(),
        "early_wards": list(result.early_wards),
        "model": {key: value for key, value in result.model.items() if key != "stage_seconds"},
        "per_case": per_case,
        "cost_sources": cost_sources,
        "plots": [path.name for path in plots],
        "policies": policies.to_dict(orient="records"),
        "costs": costs.to_dict(orient="records"),
        "did": [] if did is None else did.to_dict(orient="records"),
    }
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(
        json.dumps(_clean(summary), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    return paths


def read_summary(folder: Path) -> dict | None:
    """The latest simulation's summary.json, or None when no simulation has been run."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
