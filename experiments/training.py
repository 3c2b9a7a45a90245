"""A training run with its bias audit: models fits and evaluates, this module audits the holdout.

models.fit_and_evaluate knows nothing of protected characteristics; it returns the holdout's
predictions with household ids and its capacity k. `fit_and_audit` gives it the households' groups
(features.groups) for reweighting when the settings ask for it, then audits those predictions at
the holdout's capacity k (experiments.fairness) and returns both as an `AuditedOutcome`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from experiments.fairness import bias_audit
from features.groups import groups_as_of_tables, household_groups
from models import TrainingOutcome, TrainSettings, fit_and_evaluate


@dataclass(frozen=True)
class AuditedOutcome(TrainingOutcome):
    """A training outcome with the bias audit of its holdout (None without a people table)."""

    # The bias audit of the holdout predictions at the holdout's capacity k.
    fairness: pd.DataFrame | None = None


def audit_k(k_capacity: int, *, households: int) -> int | float:
    """The audit's k: the product's capacity k; the top 1% when there is no free capacity."""
    return int(k_capacity) if 1 <= k_capacity <= households else 0.01


def holdout_audit(
    tables: Mapping[str, pd.DataFrame], *, outcome: TrainingOutcome
) -> pd.DataFrame | None:
    """The bias audit of the outcome's holdout at its capacity k (None without a people table)."""
    if "people" not in tables or outcome.holdout_predictions is None:
        return None
    groups = household_groups(
        households=tables["households"], people=tables["people"], as_of=outcome.holdout.test_as_of
    )
    predictions = outcome.holdout_predictions
    k = audit_k(int(outcome.holdout_k_capacity or 0), households=len(predictions))
    return bias_audit(predictions=predictions, groups=groups, k=k)


def audited(outcome: TrainingOutcome, *, tables: Mapping[str, pd.DataFrame]) -> AuditedOutcome:
    """The outcome with its holdout's bias audit attached."""
    values = {field.name: getattr(outcome, field.name) for field in dataclasses.fields(outcome)}
    return AuditedOutcome(**values, fairness=holdout_audit(tables, outcome=outcome))


def fit_and_audit(
    *,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    settings: TrainSettings,
    truth: pd.DataFrame | None = None,
) -> AuditedOutcome:
    """Cross-validate and fit the model (reweighted by group if the settings ask), then audit it."""
    outcome = fit_and_evaluate(
        tables=tables,
        as_of=as_of,
        settings=settings,
        truth=truth,
        groups_as_of=groups_as_of_tables(tables),
    )
    return audited(outcome, tables=tables)
