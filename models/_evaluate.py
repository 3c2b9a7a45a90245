"""Measuring a training run: every scorer's metrics per fold and pooled, calibration tables,
precision curves, list churn and, on the synthetic city, the gap to the true risk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models._estimator import EscalationModel
from models._examples import TrainingData
from models._metrics import (
    calibration_table,
    capacity_k,
    discrimination_and_calibration,
    precision_curve,
    score_metrics,
    top_k_overlap,
)
from models._plan import Fold
from models._settings import TrainSettings

MODEL_NAMES: tuple[str, ...] = ("model", "logistic", "rule", "prior")
CHURN_GAP_WEEKS = 1


def predictions(fitted: Mapping[str, object], features: pd.DataFrame) -> dict[str, tuple]:
    """(ranking score, calibrated risk) of every fitted scorer on the same households."""
    result = {}
    for name, scorer in fitted.items():
        if isinstance(scorer, EscalationModel):
            raw = scorer.predict_raw(features)
            result[name] = (raw, scorer.calibrator_.predict(raw))
            continue
        risk = scorer.predict_proba(features)[:, 1]
        ranking = scorer.ranking_score(features) if hasattr(scorer, "ranking_score") else risk
        result[name] = (ranking, risk)
    return result


@dataclass(frozen=True)
class FoldEvaluation:
    """One fold's outcomes and every scorer's predictions on its test date."""

    fold: Fold
    labels: np.ndarray
    household_ids: np.ndarray
    predicted: dict[str, tuple]
    k_capacity: int


def fold_metric_rows(evaluation: FoldEvaluation, *, settings: TrainSettings) -> list[dict]:
    """One metrics row per scorer for one fold."""
    return [
        {"fold": evaluation.fold.number, "model": name, "test_as_of": evaluation.fold.test_as_of}
        | score_metrics(
            labels=evaluation.labels,
            score=score,
            risk=risk,
            household_ids=evaluation.household_ids,
            k_capacity=evaluation.k_capacity,
            top_fractions=settings.top_fractions,
            bins=settings.calibration_bins,
        )
        for name, (score, risk) in evaluation.predicted.items()
    ]


def overall_metric_rows(
    evaluations: list[FoldEvaluation], fold_rows: list[dict], *, settings: TrainSettings
) -> list[dict]:
    """Per scorer: threshold-free metrics pooled over every fold; list metrics averaged."""
    fold_frame = pd.DataFrame(fold_rows)
    list_columns = [column for column in fold_frame.columns if "_at_" in column]
    rows = []
    for name in MODEL_NAMES:
        pooled = discrimination_and_calibration(
            labels=np.concatenate([evaluation.labels for evaluation in evaluations]),
            score=np.concatenate([evaluation.predicted[name][0] for evaluation in evaluations]),
            risk=np.concatenate([evaluation.predicted[name][1] for evaluation in evaluations]),
            bins=settings.calibration_bins,
        )
        averaged = fold_frame.loc[fold_frame["model"] == name, list_columns].mean().to_dict()
        rows.append({"fold": "all", "model": name, "test_as_of": pd.NaT} | pooled | averaged)
    return rows


def metrics_frame(evaluations: list[FoldEvaluation], *, settings: TrainSettings) -> pd.DataFrame:
    """Rows per (fold, scorer), plus `all` (over folds) and `holdout` (the latest fold)."""
    fold_rows = [
        row for evaluation in evaluations for row in fold_metric_rows(evaluation, settings=settings)
    ]
    holdout_rows = [
        row | {"fold": "holdout"} for row in fold_rows if row["fold"] == evaluations[-1].fold.number
    ]
    overall = overall_metric_rows(evaluations, fold_rows, settings=settings)
    return pd.DataFrame([*fold_rows, *overall, *holdout_rows]).astype({"fold": "str"})


def calibration_frame(
    evaluations: list[FoldEvaluation], *, settings: TrainSettings
) -> pd.DataFrame:
    """Reliability tables of every scorer: per fold, and over all folds' test predictions."""
    groups = [(str(item.fold.number), [item]) for item in evaluations] + [("all", evaluations)]
    frames = [
        calibration_table(
            np.concatenate([item.labels for item in members]),
            np.concatenate([item.predicted[name][1] for item in members]),
            bins=settings.calibration_bins,
        ).assign(fold=fold, model=name)
        for fold, members in groups
        for name in MODEL_NAMES
    ]
    return pd.concat(frames, ignore_index=True)


def precision_curves_frame(evaluation: FoldEvaluation) -> pd.DataFrame:
    """Precision and recall against k on one fold, per scorer, up to well past the capacity k."""
    max_k = max(4 * evaluation.k_capacity, len(evaluation.labels) // 10)
    frames = [
        precision_curve(
            labels=evaluation.labels,
            score=score,
            household_ids=evaluation.household_ids,
            max_k=max_k,
        ).assign(model=name, k_capacity=evaluation.k_capacity)
        for name, (score, _) in evaluation.predicted.items()
    ]
    return pd.concat(frames, ignore_index=True)


def list_churn(
    model: EscalationModel, data: TrainingData, *, evaluation_as_of: pd.Timestamp
) -> dict[str, float]:
    """Overlap of the final model's top-k lists scored a week apart (1 = the same households)."""
    last_week = evaluation_as_of - pd.Timedelta(weeks=CHURN_GAP_WEEKS)
    household_ids = data.cache.household_ids.to_numpy(dtype=object)
    before = model.predict_raw(data.cache[last_week])
    after = model.predict_raw(data.cache[evaluation_as_of])
    k = capacity_k(workers=data.workers, cases=data.cases, as_of=evaluation_as_of)
    top1pct = max(1, round(0.01 * len(household_ids)))
    return {
        "k_capacity": float(k),
        "overlap_at_capacity": top_k_overlap(
            score_before=before, score_after=after, household_ids=household_ids, k=k
        ),
        "overlap_at_top1pct": top_k_overlap(
            score_before=before, score_after=after, household_ids=household_ids, k=top1pct
        ),
    }


def truth_comparison(
    truth: pd.DataFrame, evaluations: list[FoldEvaluation], *, settings: TrainSettings
) -> pd.DataFrame | None:
    """Model against the simulator's true risk on the latest fold the truth table covers."""
    truth_as_of = pd.to_datetime(truth["as_of"])
    truth_dates = set(truth_as_of.unique())
    covered = [
        evaluation for evaluation in evaluations if evaluation.fold.test_as_of in truth_dates
    ]
    if not covered:
        return None
    evaluation = covered[-1]
    on_date = truth.loc[truth_as_of == evaluation.fold.test_as_of]
    p_true = (
        on_date.set_index(on_date["household_id"].astype("str"))["p_true"]
        .reindex(evaluation.household_ids)
        .to_numpy(dtype=np.float64)
    )
    known = ~np.isnan(p_true)
    score, risk = (values[known] for values in evaluation.predicted["model"])
    scorers = {"model": (score, risk), "truth": (p_true[known], p_true[known])}
    rows = [
        {"scorer": name, "as_of": evaluation.fold.test_as_of}
        | score_metrics(
            labels=evaluation.labels[known],
            score=ranking,
            risk=probability,
            household_ids=evaluation.household_ids[known],
            k_capacity=evaluation.k_capacity,
            top_fractions=settings.top_fractions,
            bins=settings.calibration_bins,
        )
        for name, (ranking, probability) in scorers.items()
    ]
    comparison = pd.DataFrame(rows)
    ratio = comparison.loc[0, "auc"] / comparison.loc[1, "auc"]
    return comparison.assign(auc_ratio_to_truth=[ratio, 1.0])


def fold_predictions(evaluation: FoldEvaluation) -> pd.DataFrame:
    """The escalation model's predictions on a fold's test date, as the bias audit takes them:
    household_id, score (calibrated risk), rank_score (raw log-odds, the list's order), label."""
    raw_score, risk = evaluation.predicted["model"]
    return pd.DataFrame(
        {
            "household_id": pd.array(evaluation.household_ids, dtype="str"),
            "score": np.asarray(risk, dtype="float64"),
            "rank_score": np.asarray(raw_score, dtype="float64"),
            "label": np.asarray(evaluation.labels, dtype="int64"),
        }
    )
