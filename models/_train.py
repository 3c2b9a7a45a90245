"""Temporal cross-validation, baselines on the same splits, and the final model.

`fit_and_evaluate` is the pure part of a training run (no tracking): it builds features once per
as-of date of the plan, fits every fold's model and baselines, scores them on the fold's test date,
fits the final model on the latest trainable window and measures list churn and, on the synthetic
city, the gap to the true risk.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.fairness import bias_audit, group_sample_weights, household_groups
from features.build import features_as_of, prepare_tables
from features.labels import build_labels
from models._baselines import PriorRate, ProblemIndicatorRule, logistic_baseline
from models._estimator import EscalationModel, check_no_protected_features
from models._metrics import (
    calibration_table,
    capacity_k,
    discrimination_and_calibration,
    precision_curve,
    score_metrics,
    top_k_overlap,
)
from models._plan import (
    Fold,
    TrainingWindow,
    check_history,
    fold_plan,
    plan_as_of_dates,
    training_window,
    window_is_closed,
)
from models._settings import TrainSettings

MODEL_NAMES: tuple[str, ...] = ("model", "logistic", "rule", "prior")
CHURN_GAP_WEEKS = 1


@dataclass(frozen=True)
class TrainingOutcome:
    """Everything a training run produces before it is logged."""

    model: EscalationModel
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    precision_curves: pd.DataFrame
    importance: pd.DataFrame
    churn: dict[str, float]
    truth: pd.DataFrame | None
    folds: tuple[Fold, ...]
    final_window: TrainingWindow
    data_summary: dict[str, object]
    # The latest fold's predictions (household_id, score, rank_score, label): household-level,
    # kept in memory for the audit and never logged.
    holdout_predictions: pd.DataFrame | None = None
    # The bias audit of those predictions at the holdout's capacity k (experiments.fairness).
    fairness: pd.DataFrame | None = None
    # Every household's features as of the holdout date (the model's float32 input), for the
    # run's global explanation: already built for the fold, so not built again.
    holdout_features: pd.DataFrame | None = None

    @property
    def holdout(self) -> Fold:
        return self.folds[-1]

    def flat_metrics(self) -> dict[str, float]:
        """Flat metric names: `<model>_<metric>` (all folds), `holdout_...` and `foldN_...`."""
        flat = {}
        for row in self.metrics.to_dict("records"):
            prefix = {"all": "", "holdout": "holdout_"}.get(row["fold"], f"fold{row['fold']}_")
            flat |= {
                f"{prefix}{row['model']}_{name}": value
                for name, value in row.items()
                if name not in ("fold", "model", "test_as_of") and pd.notna(value)
            }
        flat |= {f"churn_{name}": value for name, value in self.churn.items() if pd.notna(value)}
        if self.truth is not None:
            flat |= {
                f"truth_{row['scorer']}_{name}": value
                for row in self.truth.to_dict("records")
                for name, value in row.items()
                if name not in ("scorer", "as_of") and pd.notna(value)
            }
        return flat


@dataclass(frozen=True)
class FeatureCache:
    """Features per as-of date, built once: row-major float32 matrices sharing one household index.

    Row-major float32 is what LightGBM reads without copying; `cache[as_of]` wraps a matrix in a
    DataFrame without copying it either.
    """

    household_ids: pd.Index
    feature_names: list[str]
    matrices: Mapping[pd.Timestamp, np.ndarray]

    def __getitem__(self, as_of) -> pd.DataFrame:
        return pd.DataFrame(
            self.matrices[pd.Timestamp(as_of)],
            index=self.household_ids,
            columns=self.feature_names,
            copy=False,
        )


def feature_cache(
    tables: Mapping[str, pd.DataFrame], *, as_of_dates: list[pd.Timestamp]
) -> FeatureCache:
    """Features of every household for each as-of date (float32: the model's input precision)."""
    prepared = prepare_tables(tables)
    frames = {as_of: features_as_of(prepared, as_of=as_of) for as_of in as_of_dates}
    first = frames[as_of_dates[0]]
    check_no_protected_features(list(first.columns))
    return FeatureCache(
        household_ids=first.index,
        feature_names=list(first.columns),
        matrices={
            as_of: np.ascontiguousarray(frame.to_numpy(dtype=np.float32))
            for as_of, frame in frames.items()
        },
    )


@dataclass(frozen=True)
class Examples:
    """Stacked examples: features, labels, and each row's household (position in the cache)."""

    matrix: np.ndarray
    labels: np.ndarray
    households: np.ndarray

    def rows(self, mask: np.ndarray) -> Examples:
        return Examples(self.matrix[mask], self.labels[mask], self.households[mask])


def labelled_examples(
    cache: FeatureCache,
    crisis_events: pd.DataFrame,
    *,
    as_of_dates: tuple[pd.Timestamp, ...],
    known_by: pd.Timestamp,
    settings: TrainSettings,
) -> Examples:
    """Examples of several as-of dates; labels use only crisis records known by `known_by`."""
    labels = [
        build_labels(
            crisis_events,
            household_ids=cache.household_ids,
            as_of=as_of,
            horizon_weeks=settings.horizon_weeks,
            crisis_types=settings.crisis_types,
            known_by=known_by,
        ).to_numpy()
        for as_of in as_of_dates
    ]
    return Examples(
        matrix=np.concatenate([cache.matrices[as_of] for as_of in as_of_dates]),
        labels=np.concatenate(labels),
        households=np.tile(np.arange(len(cache.household_ids)), len(as_of_dates)),
    )


def household_roles(household_ids: pd.Index) -> np.ndarray:
    """Each household's fixed role, by a hash of its id: "trees", "stopping" or "calibration".

    The same households appear at every as-of date with overlapping label windows, so a model
    checked on its own households looks far better than it is (it recognises them). Early
    stopping and calibration therefore use households the trees never saw.
    """
    bucket = np.array([zlib.crc32(str(value).encode()) % 20 for value in household_ids], dtype=int)
    return np.select([bucket < 14, bucket < 17], ["trees", "stopping"], "calibration")


@dataclass(frozen=True)
class TrainingData:
    """What every fold reads: the feature cache, crisis records, household roles, caseloads."""

    cache: FeatureCache
    crisis_events: pd.DataFrame
    roles: np.ndarray
    workers: pd.DataFrame
    cases: pd.DataFrame
    # Only for group reweighting (a mitigation); never model features.
    households: pd.DataFrame | None = None
    people: pd.DataFrame | None = None

    def frame(self, matrix: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(matrix, columns=self.cache.feature_names, copy=False)


@dataclass(frozen=True)
class WindowExamples:
    """A training window's examples: the tree dates stacked, and the later calibration date."""

    tree: Examples
    late: Examples


def window_examples(
    cache: FeatureCache, crisis_events, *, window: TrainingWindow, settings: TrainSettings
) -> WindowExamples:
    """Examples of one window, refusing any whose label window is not closed by known_by."""
    if not window_is_closed(window, horizon_weeks=settings.horizon_weeks):
        raise ValueError(f"training window {window} uses label windows not closed by known_by")
    return WindowExamples(
        tree=labelled_examples(
            cache,
            crisis_events,
            as_of_dates=window.tree_as_of,
            known_by=window.known_by,
            settings=settings,
        ),
        late=labelled_examples(
            cache,
            crisis_events,
            as_of_dates=(window.calibration_as_of,),
            known_by=window.known_by,
            settings=settings,
        ),
    )


def _require_both_classes(labels: np.ndarray, *, what: str) -> None:
    if len(labels) == 0 or labels.min() == labels.max():
        raise ValueError(
            f"{what} does not have both escalated and non-escalated households: "
            "check the crisis types, the horizon and the as-of date, or use a larger extract"
        )


def fit_escalation_model(
    data: TrainingData,
    examples: WindowExamples,
    *,
    settings: TrainSettings,
    as_of: pd.Timestamp | None = None,
) -> EscalationModel:
    """Trees on the tree households' earlier dates; stopping and calibration on the latest date.

    With `settings.reweight_attribute`, the trees and the stopping set are weighted by group
    (groups as of `as_of`, the window's calibration date by default); calibration is not.
    """
    tree = examples.tree.rows(data.roles[examples.tree.households] == "trees")
    late_roles = data.roles[examples.late.households]
    stopping = examples.late.rows(late_roles == "stopping")
    calibration = examples.late.rows(late_roles == "calibration")
    _require_both_classes(tree.labels, what="the training households")
    _require_both_classes(stopping.labels, what="the early-stopping households")
    _require_both_classes(calibration.labels, what="the calibration households")
    weights = {}
    if settings.reweight_attribute:
        groups = _reweight_groups(data, as_of=as_of, settings=settings)
        weights = {
            "sample_weight": example_weights(data, tree, groups=groups, settings=settings),
            "valid_sample_weight": example_weights(
                data, stopping, groups=groups, settings=settings
            ),
        }
    return EscalationModel(**settings.model_params()).fit(
        data.frame(tree.matrix),
        tree.labels,
        X_valid=data.frame(stopping.matrix),
        y_valid=stopping.labels,
        X_calib=data.frame(calibration.matrix),
        y_calib=calibration.labels,
        **weights,
    )


def _reweight_groups(
    data: TrainingData, *, as_of: pd.Timestamp | None, settings: TrainSettings
) -> pd.DataFrame:
    if data.people is None or data.households is None or as_of is None:
        raise ValueError(
            f"reweighting by {settings.reweight_attribute} needs the households and people "
            "tables and the window's date"
        )
    return household_groups(households=data.households, people=data.people, as_of=as_of)


def example_weights(
    data: TrainingData, examples: Examples, *, groups: pd.DataFrame, settings: TrainSettings
) -> np.ndarray:
    """Reweighing weights of examples by their household's group, tempered by the strength.

    P(group) P(label) / P(group, label) (experiments.fairness.group_sample_weights), raised to
    `reweight_strength` and rescaled to mean 1.
    """
    labels = pd.DataFrame(
        {
            "household_id": data.cache.household_ids.to_numpy()[examples.households],
            "label": examples.labels,
        }
    )
    full = group_sample_weights(
        labels=labels, groups=groups, attribute=str(settings.reweight_attribute)
    ).to_numpy()
    tempered = full**settings.reweight_strength
    return tempered / tempered.mean()


def fit_baselines(
    data: TrainingData, examples: WindowExamples, *, settings: TrainSettings
) -> dict[str, object]:
    """The three baselines on every example of the window (the logistic one on a sample)."""
    X_all = data.frame(np.concatenate([examples.tree.matrix, examples.late.matrix]))
    y_all = np.concatenate([examples.tree.labels, examples.late.labels])
    # A linear model on ~150 features gains nothing from more rows than this, and on a large
    # city the full window would make the baseline slower to fit than the model itself.
    sample = np.sort(
        np.random.default_rng(settings.seed).permutation(len(y_all))[: settings.logistic_max_rows]
    )
    return {
        "logistic": logistic_baseline(seed=settings.seed).fit(X_all.iloc[sample], y_all[sample]),
        "rule": ProblemIndicatorRule().fit(X_all, y_all),
        "prior": PriorRate().fit(X_all, y_all),
    }


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


def evaluate_fold(data: TrainingData, *, fold: Fold, settings: TrainSettings) -> FoldEvaluation:
    """Fit on the fold's window, score its test date, with outcomes known by the evaluation date."""
    examples = window_examples(
        data.cache, data.crisis_events, window=fold.window, settings=settings
    )
    fitted = {
        "model": fit_escalation_model(
            data, examples, settings=settings, as_of=fold.window.calibration_as_of
        ),
        **fit_baselines(data, examples, settings=settings),
    }
    labels = build_labels(
        data.crisis_events,
        household_ids=data.cache.household_ids,
        as_of=fold.test_as_of,
        horizon_weeks=settings.horizon_weeks,
        crisis_types=settings.crisis_types,
        known_by=fold.labels_known_by,
    ).to_numpy()
    return FoldEvaluation(
        fold=fold,
        labels=labels,
        household_ids=data.cache.household_ids.to_numpy(dtype=object),
        predicted=predictions(fitted, data.cache[fold.test_as_of]),
        k_capacity=capacity_k(workers=data.workers, cases=data.cases, as_of=fold.test_as_of),
    )


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


def audit_k(k_capacity: int, *, households: int) -> int | float:
    """The audit's k: the product's capacity k; the top 1% when there is no free capacity."""
    return int(k_capacity) if 1 <= k_capacity <= households else 0.01


def holdout_audit(
    tables: Mapping[str, pd.DataFrame], *, evaluation: FoldEvaluation, predictions: pd.DataFrame
) -> pd.DataFrame | None:
    """The bias audit of the holdout at its capacity k (None without a people table)."""
    if "people" not in tables:
        return None
    groups = household_groups(
        households=tables["households"], people=tables["people"], as_of=evaluation.fold.test_as_of
    )
    k = audit_k(evaluation.k_capacity, households=len(predictions))
    return bias_audit(predictions=predictions, groups=groups, k=k)


@dataclass(frozen=True)
class HoldoutPredictions:
    """One test date's holdout predictions (see fold_predictions) and its capacity k."""

    as_of: pd.Timestamp
    predictions: pd.DataFrame
    k_capacity: int


def holdout_predictions(
    *, tables: Mapping[str, pd.DataFrame], as_of, settings: TrainSettings, last: int | None = None
) -> list[HoldoutPredictions]:
    """Holdout predictions at the rolling-origin test dates (the `last` few), oldest first.

    Exactly the training run's own fold evaluation: each date is scored by a model trained,
    stopped and calibrated only on what was known then; labels are the crises recorded by the
    evaluation date.
    """
    evaluation_as_of = checked_evaluation_as_of(tables, as_of)
    folds = fold_plan(evaluation_as_of=evaluation_as_of, settings=settings)
    check_history(
        folds=folds, first_event_day=tables["events"]["occurred_at"].min(), settings=settings
    )
    folds = folds[-last:] if last else folds
    dates = sorted({day for fold in folds for day in (*fold.window.as_of_dates, fold.test_as_of)})
    data = training_data(tables, as_of_dates=dates, settings=settings)
    evaluations = [evaluate_fold(data, fold=fold, settings=settings) for fold in folds]
    return [
        HoldoutPredictions(
            as_of=evaluation.fold.test_as_of,
            predictions=fold_predictions(evaluation),
            k_capacity=evaluation.k_capacity,
        )
        for evaluation in evaluations
    ]


def checked_evaluation_as_of(tables: Mapping[str, pd.DataFrame], as_of) -> pd.Timestamp:
    """The evaluation date, refused when it lies after the extract's last shared record."""
    evaluation_as_of = pd.Timestamp(as_of).normalize()
    last_known = tables["events"]["known_at"].max()
    if pd.isna(last_known) or evaluation_as_of > last_known:
        raise ValueError(
            f"as-of date {evaluation_as_of.date()} is after the last record in the extract "
            f"({'none' if pd.isna(last_known) else last_known.date()}): outcomes after that are "
            "unknown, so labels would be wrong; train as of a date within the extract"
        )
    return evaluation_as_of


def crisis_events_of(events: pd.DataFrame, *, settings: TrainSettings) -> pd.DataFrame:
    """Only the crisis records: labels are built dozens of times and need nothing else."""
    columns = ["household_id", "event_type", "occurred_at", "known_at"]
    return events.loc[events["event_type"].isin(list(settings.crisis_types)), columns]


def training_data(
    tables: Mapping[str, pd.DataFrame], *, as_of_dates: list[pd.Timestamp], settings: TrainSettings
) -> TrainingData:
    """Features for every as-of date of the plan, crisis records and household roles, once."""
    cache = feature_cache(tables, as_of_dates=as_of_dates)
    return TrainingData(
        cache=cache,
        crisis_events=crisis_events_of(tables["events"], settings=settings),
        roles=household_roles(cache.household_ids),
        workers=tables["workers"],
        cases=tables["cases"],
        households=tables["households"],
        people=tables.get("people"),
    )


def fit_and_evaluate(
    *,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    settings: TrainSettings,
    truth: pd.DataFrame | None = None,
) -> TrainingOutcome:
    """Cross-validate, compare with baselines (and truth), and fit the final escalation model."""
    evaluation_as_of = checked_evaluation_as_of(tables, as_of)
    folds = fold_plan(evaluation_as_of=evaluation_as_of, settings=settings)
    final_window = training_window(evaluation_as_of=evaluation_as_of, settings=settings)
    check_history(
        folds=folds, first_event_day=tables["events"]["occurred_at"].min(), settings=settings
    )
    data = training_data(
        tables,
        as_of_dates=sorted(
            set(plan_as_of_dates(folds, final_window))
            | {evaluation_as_of, evaluation_as_of - pd.Timedelta(weeks=CHURN_GAP_WEEKS)}
        ),
        settings=settings,
    )
    evaluations = [evaluate_fold(data, fold=fold, settings=settings) for fold in folds]
    final_examples = window_examples(
        data.cache, data.crisis_events, window=final_window, settings=settings
    )
    model = fit_escalation_model(
        data, final_examples, settings=settings, as_of=final_window.calibration_as_of
    )
    holdout_predictions = fold_predictions(evaluations[-1])
    return TrainingOutcome(
        model=model,
        metrics=metrics_frame(evaluations, settings=settings),
        calibration=calibration_frame(evaluations, settings=settings),
        precision_curves=precision_curves_frame(evaluations[-1]),
        importance=model.feature_importance(),
        churn=list_churn(model, data, evaluation_as_of=evaluation_as_of),
        truth=None if truth is None else truth_comparison(truth, evaluations, settings=settings),
        folds=folds,
        final_window=final_window,
        data_summary=data_summary(tables, model=model, evaluation_as_of=evaluation_as_of),
        holdout_predictions=holdout_predictions,
        fairness=holdout_audit(tables, evaluation=evaluations[-1], predictions=holdout_predictions),
        holdout_features=data.cache[folds[-1].test_as_of],
    )


def data_summary(
    tables: Mapping[str, pd.DataFrame], *, model: EscalationModel, evaluation_as_of: pd.Timestamp
) -> dict[str, object]:
    """Plain facts about the data and the final model, for the run log and the model card."""
    events = tables["events"]
    return {
        "evaluation_as_of": str(evaluation_as_of.date()),
        "households": len(tables["households"]),
        "events": len(events),
        "first_event": str(events["occurred_at"].min().date()),
        "last_known": str(events["known_at"].max().date()),
        "active_workers": int(tables["workers"]["active"].sum()),
        "features": len(model.feature_names_),
        "trees": model.best_iteration_,
        "calibration_method": model.calibrator_.method,
    }
