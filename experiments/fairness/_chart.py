"""The bias audit's chart: ratios to the reference group per attribute, and calibration by group."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from experiments.fairness._audit import METRIC_LABELS
from experiments.fairness._gate import FairnessGate, gated_rows


def audit_chart(audit: pd.DataFrame, *, settings: FairnessGate | None = None) -> Figure:
    """Ratios to the reference group per attribute (gate band shaded) and calibration by group.

    Grey bars are groups too small to gate. An Agg-backed Figure, ready for savefig or MLflow.
    """
    settings = settings or FairnessGate()
    attributes = list(dict.fromkeys(audit["attribute"]))
    figure = Figure(figsize=(13, 1.1 + 0.42 * len(audit) + 0.5 * len(attributes)))
    FigureCanvasAgg(figure)
    heights = [max(2, int((audit["attribute"] == a).sum())) for a in attributes]
    axes = figure.subplots(
        len(attributes), 3, squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    large = gated_rows(audit, settings=settings)
    for row_axes, attribute in zip(axes, attributes, strict=True):
        rows = audit.loc[audit["attribute"] == attribute]
        _ratio_panel(row_axes[0], rows, large=large, metric="recall_at_k", settings=settings)
        _ratio_panel(
            row_axes[1], rows, large=large, metric="false_negative_rate", settings=settings
        )
        _calibration_panel(row_axes[2], rows)
        row_axes[0].set_ylabel(attribute)
    k = int(audit["k"].iloc[0]) if "k" in audit else 0
    figure.suptitle(
        f"Bias audit at k = {k}: ratio to the reference group "
        "(green band: gate bounds; red: outside; grey: too small to gate)"
    )
    figure.subplots_adjust(left=0.16, right=0.88, top=0.93, bottom=0.03, wspace=0.75, hspace=0.5)
    return figure


def _ratio_panel(axis, rows: pd.DataFrame, *, large: pd.Series, metric: str, settings) -> None:
    ratios = rows[f"{metric}_ratio"].replace(np.inf, 3.0).fillna(0.0).clip(upper=3.0)
    positions = np.arange(len(rows))[::-1]
    outside = (ratios < settings.min_ratio) | (ratios > settings.max_ratio)
    colours = [
        ("tab:red" if outside.loc[index] else "tab:blue") if large.loc[index] else "lightgrey"
        for index in rows.index
    ]
    axis.barh(positions, ratios, color=colours)
    axis.axvspan(settings.min_ratio, settings.max_ratio, color="tab:green", alpha=0.12)
    axis.axvline(1.0, color="black", linewidth=0.8)
    labels = [
        f"{group}{' (ref)' if is_ref else ''} n={households}"
        for group, is_ref, households in zip(
            rows["group"], rows["is_reference"], rows["households"], strict=True
        )
    ]
    axis.set_yticks(positions, labels, fontsize=8)
    axis.set_xlim(0, max(2.0, float(ratios.max()) * 1.05))
    axis.set_title(f"{METRIC_LABELS[metric]} ratio", fontsize=9)


def _calibration_panel(axis, rows: pd.DataFrame) -> None:
    positions = np.arange(len(rows))[::-1]
    axis.scatter(rows["mean_predicted"], positions, marker="o", label="mean predicted")
    axis.scatter(rows["base_rate"], positions, marker="x", label="observed", color="tab:red")
    axis.set_yticks(positions, list(rows["group"]), fontsize=8)
    highest = float(np.nanmax([rows["mean_predicted"].max(), rows["base_rate"].max()]))
    axis.set_xlim(0, highest * 1.2 if highest > 0 else 1.0)
    axis.set_title("calibration: predicted vs observed rate", fontsize=9)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
