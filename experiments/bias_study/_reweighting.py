"""Mitigation by reweighting, measured: before/after figures on the city with and without the
under-reporting."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date

import pandas as pd
from sklearn.metrics import roc_auc_score

from experiments.bias_study._arms import ARMS, STUDY_SETTINGS
from experiments.bias_study._report import group_row
from experiments.bias_study._study import audit_group
from experiments.city import generate_city
from experiments.fairness import (
    FairnessGate,
    audit_for_run,
)
from features.contract import TABLE_NAMES
from features.groups import groups_as_of_tables
from models import HoldoutPredictions, TrainSettings, holdout_predictions


def reweighting_study(
    *,
    households: int,
    seed: int,
    end: date,
    group: str,
    event_types: Sequence[str],
    reporting_probability: float,
    attribute: str,
    strength: float = 1.0,
    settings: TrainSettings | None = None,
    gate: FairnessGate | None = None,
) -> pd.DataFrame:
    """Before/after figures of reweighting by `attribute`, on the city with and without the bias.

    Each (city, training) pair trains the product's model (fast settings) and audits the latest
    test date at its capacity k with the gate: one row with the group's ratios, the gate's
    verdict and the holdout AUC.
    """
    audited, value = audit_group(group)
    settings = settings or TrainSettings(**STUDY_SETTINGS)
    gate = gate or FairnessGate()
    under_reporting = {group: {name: float(reporting_probability) for name in event_types}}
    rows = []
    for arm in ARMS:
        city = generate_city(
            households=households,
            seed=seed,
            end=end,
            under_reporting=under_reporting if arm == "under-reported" else None,
        )
        tables = {name: table for name, table in city.tables().items() if name in TABLE_NAMES}
        for training, arm_settings in (
            ("unweighted", settings),
            (
                f"reweighted by {attribute}",
                replace(settings, reweight_attribute=attribute, reweight_strength=strength),
            ),
        ):
            (latest,) = holdout_predictions(
                tables=tables,
                as_of=city.end,
                settings=arm_settings,
                last=1,
                groups_as_of=groups_as_of_tables(tables),
            )
            rows.append(
                _reweighting_row(latest, tables=tables, gate=gate, group=(audited, value))
                | {"city": arm, "training": training}
            )
    columns = ["city", "training"]
    table = pd.DataFrame(rows)
    return table[columns + [name for name in table.columns if name not in columns]]


def _reweighting_row(
    latest: HoldoutPredictions,
    *,
    tables: Mapping[str, pd.DataFrame],
    gate: FairnessGate,
    group: tuple[str, str],
) -> dict[str, object]:
    audit = audit_for_run(
        predictions=latest.predictions,
        tables=tables,
        as_of=latest.as_of,
        k=max(1, latest.k_capacity),
        settings=gate,
    )
    row = group_row(audit.table, setup={"attribute": group[0], "value": group[1]})
    predictions = latest.predictions
    return {
        "k": int(audit.table["k"].iloc[0]),
        "auc": float(roc_auc_score(predictions["label"], predictions["rank_score"])),
        "group_recall_ratio": float(row["recall_at_k_ratio"]),
        "group_fnr_ratio": float(row["false_negative_rate_ratio"]),
        "group_predicted_to_observed_ratio": float(row["predicted_to_observed_ratio"]),
        "group_predicted_to_observed_p_value": float(row["predicted_to_observed_p_value"]),
        "gate_passed": audit.gate.passed,
        "gate_failures": "; ".join(str(f["text"]) for f in audit.gate.failures) or "-",
    }
