"""Baselines the model must beat, fitted and scored on exactly the same splits.

- prior rate: everyone gets the training escalation rate (no ranking at all);
- logistic regression on the same features (missing values imputed with a flag, scaled);
- the rule a council uses today: count the distinct problem indicators a household has in the last
  52 weeks, in the spirit of the Troubled Families criteria. Its risk is the training escalation
  rate among households with the same count, so it can be scored for calibration too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

# 10% of the ~380 sessions in a school year: the Department for Education's persistent absence line.
PERSISTENT_ABSENCE_SESSIONS_52W = 38


def _any_recent(features: pd.DataFrame, event_types: tuple[str, ...]) -> pd.Series:
    return (features[[f"{name}_count_52w" for name in event_types]] > 0).any(axis=1)


def _crime_or_asb(features: pd.DataFrame) -> pd.Series:
    return _any_recent(features, ("asb_report", "arrest", "probation_breach", "deliberate_fire"))


def _school(features: pd.DataFrame) -> pd.Series:
    persistent = features["school_absence_sessions_52w"] >= PERSISTENT_ABSENCE_SESSIONS_52W
    return persistent | _any_recent(features, ("school_exclusion",))


def _children_need_help(features: pd.DataFrame) -> pd.Series:
    return _any_recent(
        features,
        ("social_care_contact", "child_protection_plan", "child_taken_into_care", "missing_person"),
    )


def _out_of_work(features: pd.DataFrame) -> pd.Series:
    return _any_recent(features, ("unemployment_claim", "benefit_sanction"))


def _domestic_abuse(features: pd.DataFrame) -> pd.Series:
    return _any_recent(features, ("domestic_abuse_incident",))


def _health(features: pd.DataFrame) -> pd.Series:
    frequent_ae = features["ae_attendance_count_52w"] >= 2
    return frequent_ae | _any_recent(features, ("emergency_admission", "mental_health_crisis"))


def _financial_exclusion(features: pd.DataFrame) -> pd.Series:
    in_arrears = (features["rent_arrears_balance_latest"] > 0) | (
        features["council_tax_arrears_balance_latest"] > 0
    )
    housing_action = _any_recent(
        features, ("eviction_notice", "possession_order", "homelessness_presentation")
    )
    return in_arrears | housing_action


PROBLEM_INDICATORS: dict[str, Callable[[pd.DataFrame], pd.Series]] = {
    "crime or anti-social behaviour": _crime_or_asb,
    "school attendance or exclusion": _school,
    "children who need help": _children_need_help,
    "out of work or on benefits": _out_of_work,
    "domestic abuse": _domestic_abuse,
    "health problems": _health,
    "financial exclusion or arrears": _financial_exclusion,
}


def problem_indicator_count(features: pd.DataFrame) -> pd.Series:
    """How many distinct problem indicators each household has (0 to 7)."""
    flags = pd.DataFrame({name: test(features) for name, test in PROBLEM_INDICATORS.items()})
    return flags.sum(axis=1).astype(np.int64).rename("problem_indicators")


class PriorRate(ClassifierMixin, BaseEstimator):
    """Predicts the training escalation rate for everyone."""

    def fit(self, X: pd.DataFrame, y) -> PriorRate:
        self.rate_ = float(np.mean(y))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        risk = np.full(len(X), self.rate_)
        return np.column_stack([1.0 - risk, risk])


class ProblemIndicatorRule(ClassifierMixin, BaseEstimator):
    """Ranks by the count of problem indicators; risk is the training rate at that count."""

    def __init__(self, *, smoothing: float = 20.0) -> None:
        self.smoothing = smoothing

    def fit(self, X: pd.DataFrame, y) -> ProblemIndicatorRule:
        counts = problem_indicator_count(X).to_numpy()
        labels = np.asarray(y, dtype=np.float64)
        self.prior_ = float(labels.mean())
        # Shrink sparse counts towards the prior so a handful of households cannot give 0% or 100%.
        levels = np.arange(len(PROBLEM_INDICATORS) + 1)
        positives = np.bincount(counts, weights=labels, minlength=len(levels))
        totals = np.bincount(counts, minlength=len(levels))
        self.rate_by_count_ = (positives + self.smoothing * self.prior_) / (totals + self.smoothing)
        self.classes_ = np.array([0, 1])
        return self

    def ranking_score(self, X: pd.DataFrame) -> np.ndarray:
        """The rule's ranking: the indicator count itself (many ties, as with the real rule)."""
        return problem_indicator_count(X).to_numpy(dtype=np.float64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        risk = self.rate_by_count_[problem_indicator_count(X).to_numpy()]
        return np.column_stack([1.0 - risk, risk])


def logistic_baseline(*, seed: int) -> Pipeline:
    """Logistic regression on the model's features: impute (with missingness flags), scale, fit.

    Mean imputation: scikit-learn's median took minutes on a large city, and with a missingness
    flag per column the flag's coefficient absorbs the fill value, so the choice hardly matters.
    """
    return make_pipeline(
        SimpleImputer(strategy="mean", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=300, random_state=seed),
    )
