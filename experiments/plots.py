"""Training-run plots (PNG): calibration, precision at k, and feature importance.

Drawn with matplotlib's Agg backend (no display needed on a server) from the tables a training run
already produced, so a plot never recomputes a metric.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import pandas as pd  # noqa: E402

MODEL_LABELS: dict[str, str] = {
    "model": "LightGBM (calibrated)",
    "logistic": "Logistic regression",
    "rule": "Problem-indicator rule",
    "prior": "Prior rate",
}


def save_figure(figure, path: Path, *, dpi: int = 110) -> Path:
    """Write a figure as PNG and close it; no software or time stamp, so the same data gives the
    same file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=dpi, metadata={"Software": None})
    plt.close(figure)
    return path


def calibration_plot(calibration: pd.DataFrame, *, path: Path) -> Path:
    """Observed against predicted escalation rate per risk bin, one line per scorer."""
    figure, axes = plt.subplots(figsize=(5.5, 5))
    top = float(calibration[["mean_predicted", "observed_rate"]].to_numpy().max()) * 1.05
    axes.plot([0, top], [0, top], color="grey", linestyle=":", label="Perfect calibration")
    for name, table in calibration.groupby("model", sort=False):
        axes.plot(
            table["mean_predicted"],
            table["observed_rate"],
            marker="o",
            label=MODEL_LABELS.get(name, name),
        )
    axes.set(
        xlabel="Mean predicted risk (bin)",
        ylabel="Observed escalation rate",
        title="Calibration on the test folds",
        xlim=(0, top),
        ylim=(0, top),
    )
    axes.legend(loc="upper left", fontsize="small")
    return save_figure(figure, path)


def precision_at_k_plot(curves: pd.DataFrame, *, path: Path) -> Path:
    """Precision of the top-k list against k, with the key workers' capacity marked."""
    figure, axes = plt.subplots(figsize=(6.5, 4.5))
    for name, curve in curves.groupby("model", sort=False):
        axes.plot(curve["k"], curve["precision"], label=MODEL_LABELS.get(name, name))
    capacity = int(curves["k_capacity"].iloc[0])
    if capacity > 0:
        axes.axvline(capacity, color="black", linestyle="--", label=f"Capacity k = {capacity}")
    axes.set(
        xlabel="k (households at the top of the list)",
        ylabel="Precision (share who escalated)",
        title="Precision at k on the latest holdout",
        ylim=(0, 1),
    )
    axes.legend(fontsize="small")
    return save_figure(figure, path)


def feature_importance_plot(importance: pd.DataFrame, *, path: Path, top: int = 20) -> Path:
    """Total gain of the `top` most important features of the final model."""
    shown = importance.head(top).iloc[::-1]
    figure, axes = plt.subplots(figsize=(7, 0.3 * len(shown) + 1.5))
    axes.barh(shown["feature"], shown["gain"], color="#3b6ea8")
    axes.set(xlabel="Total gain", title=f"Feature importance (top {len(shown)})")
    axes.tick_params(axis="y", labelsize="small")
    return save_figure(figure, path)
