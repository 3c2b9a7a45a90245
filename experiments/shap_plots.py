"""The global view of the escalation model for data scientists, and the reference explainer.

This is the only module that imports the `shap` package. It draws, from the exact attributions of
`models.explain`, a SHAP summary (beeswarm) of the features, a bar chart of the reason groups a key
worker reads, and dependence plots of the features with the largest mean |SHAP|. MLflow logging
of the PNGs is done by whoever calls `global_explanation_plots` (training or the lead's CLI).
`reference_shap_values` is `shap.TreeExplainer` on the same model and rows, against which the bench
and the tests check the fast attributions.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap

from models.explain import (
    BASE_VALUE,
    feature_names_of,
    group_attributions,
    model_input,
    shap_attributions,
)

PLOT_ROWS = 5000
TOP_FEATURES = 6
SUMMARY_FEATURES = 20
DPI = 120


def reference_shap_values(booster, features: pd.DataFrame) -> tuple[np.ndarray, float]:
    """`shap.TreeExplainer(booster).shap_values(X)` on the model's float32 input, and its
    expected value (the base value)."""
    matrix = model_input(features, feature_names_of(booster))
    explainer = shap.TreeExplainer(booster)
    with warnings.catch_warnings():
        # shap announces a change in the output shape of binary LightGBM models; ours is fixed.
        warnings.filterwarnings("ignore", message="LightGBM binary classifier")
        values = np.asarray(explainer.shap_values(matrix))
    return values, float(np.ravel(explainer.expected_value)[0])


def _sample(features: pd.DataFrame, *, max_rows: int, seed: int) -> pd.DataFrame:
    if len(features) <= max_rows:
        return features
    return features.sample(n=max_rows, random_state=seed).sort_index()


def _explanation(booster, features: pd.DataFrame) -> tuple[pd.DataFrame, shap.Explanation]:
    names = feature_names_of(booster)
    attributions = shap_attributions(booster=booster, features=features)
    return attributions, shap.Explanation(
        values=attributions[names].to_numpy(),
        base_values=attributions[BASE_VALUE].to_numpy(),
        data=model_input(features, names).astype(np.float64),
        feature_names=names,
    )


def _save(figure, path: Path) -> Path:
    figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def summary_figure(explanation: shap.Explanation):
    """Beeswarm of the features with the largest mean |SHAP| (log-odds of escalation)."""
    figure = plt.figure(figsize=(9, 8))
    shap.plots.beeswarm(
        explanation, max_display=SUMMARY_FEATURES, ax=figure.gca(), show=False, plot_size=None
    )
    figure.gca().set_title("What moves the risk score (SHAP, log-odds)")
    return figure


def reason_groups_figure(attributions: pd.DataFrame):
    """Mean |SHAP| per reason group: the indicators key workers read as reasons."""
    importance = group_attributions(attributions).abs().mean(axis=0)
    importance = importance[importance > 0].sort_values()
    figure, axes = plt.subplots(figsize=(8, max(3.0, 0.3 * len(importance))))
    axes.barh(importance.index, importance.to_numpy(), color="#1E88E5")
    axes.set_xlabel("mean |SHAP| of the reason group (log-odds)")
    axes.set_title("Reason groups by average effect on the risk score")
    return figure


def dependence_figure(explanation: shap.Explanation, feature: str):
    """SHAP value against feature value for one feature."""
    figure = plt.figure(figsize=(7, 5))
    shap.plots.scatter(explanation[:, feature], ax=figure.gca(), show=False)
    return figure


def top_features(explanation: shap.Explanation, *, count: int) -> list[str]:
    """The features with the largest mean |SHAP| (ties by name), largest first."""
    importance = pd.Series(np.abs(explanation.values).mean(axis=0), index=explanation.feature_names)
    ordered = importance.reset_index().sort_values([0, "index"], ascending=[False, True])
    return [name for name, value in zip(ordered["index"], ordered[0], strict=True) if value > 0][
        :count
    ]


def global_explanation_plots(
    booster,
    features: pd.DataFrame,
    out_dir: str | Path,
    *,
    max_rows: int = PLOT_ROWS,
    top: int = TOP_FEATURES,
    seed: int = 0,
) -> list[Path]:
    """Write the summary, reason-group and top-feature dependence plots as PNGs; return paths.

    Plots use at most `max_rows` households (a seeded sample), so they stay readable and quick.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    attributions, explanation = _explanation(
        booster, _sample(features, max_rows=max_rows, seed=seed)
    )
    paths = [
        _save(summary_figure(explanation), out_dir / "shap_summary.png"),
        _save(reason_groups_figure(attributions), out_dir / "shap_reason_groups.png"),
    ]
    for feature in top_features(explanation, count=top):
        name = re.sub(r"[^A-Za-z0-9_]+", "_", feature)
        paths.append(
            _save(dependence_figure(explanation, feature), out_dir / f"shap_dependence_{name}.png")
        )
    return paths
