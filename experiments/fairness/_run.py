"""The audit of a training run, the audit as run metrics, and the gate read back from them.

Promotion re-runs the gate on the metrics logged with the run, under the council's current policy,
so a policy change needs no retraining.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from matplotlib.figure import Figure

from experiments.fairness._acceptance import AcceptedFinding, apply_acceptances
from experiments.fairness._audit import GATE_METRICS, bias_audit
from experiments.fairness._chart import audit_chart
from experiments.fairness._gate import FairnessGate, GateResult, fairness_gate
from features.groups import AUDIT_ATTRIBUTES, household_groups


@dataclass(frozen=True)
class FairnessAudit:
    """What a training run logs and what promotion checks: table, chart and gate verdict."""

    table: pd.DataFrame
    figure: Figure
    gate: GateResult


def audit_for_run(
    *,
    predictions: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    as_of,
    k: int | float,
    settings: FairnessGate | None = None,
    reference: str | Mapping[str, str] = "largest",
) -> FairnessAudit:
    """Audit holdout predictions (household_id, score, label) scored as of `as_of`."""
    settings = settings or FairnessGate()
    groups = household_groups(households=tables["households"], people=tables["people"], as_of=as_of)
    table = bias_audit(predictions=predictions, groups=groups, k=k, reference=reference)
    return FairnessAudit(
        table=table,
        figure=audit_chart(table, settings=settings),
        gate=fairness_gate(table, settings=settings),
    )


METRIC_PREFIX = "fairness"
_LOGGED_COLUMNS: tuple[str, ...] = (
    "households",
    "positives",
    "is_reference",
    *(f"{metric}_{suffix}" for metric in GATE_METRICS for suffix in ("ratio", "p_value")),
)
# Characters every tracking store accepts in a metric name; others become _x<hex>_.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\- ]")
_ESCAPED = re.compile(r"_x([0-9a-f]{2,6})_")


def audit_metrics(audit: pd.DataFrame) -> dict[str, float]:
    """The gate's inputs as flat run metrics: fairness/<attribute>/<group>/<column> -> number.

    Group names are escaped to characters every tracking store accepts ("65+" -> "65_x2b_");
    `audit_from_metrics` reverses it, so promotion can re-run the gate with its own settings.
    """
    metrics = {f"{METRIC_PREFIX}/k": float(audit["k"].iloc[0])} if "k" in audit else {}
    for row in audit.to_dict("records"):
        stem = f"{METRIC_PREFIX}/{_metric_safe(row['attribute'])}/{_metric_safe(row['group'])}"
        # Not-a-number and infinite values are left out (JSON and some stores refuse them);
        # read back they are NaN, which the gate treats as "cannot be computed": a failure.
        metrics |= {
            f"{stem}/{column}": float(row[column])
            for column in _LOGGED_COLUMNS
            if math.isfinite(float(row[column]))
        }
    return metrics


def audit_from_metrics(metrics: Mapping[str, float]) -> pd.DataFrame:
    """The audit rows the gate needs, rebuilt from `audit_metrics` output (empty if none)."""
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for name, value in metrics.items():
        parts = name.split("/")
        if len(parts) == 4 and parts[0] == METRIC_PREFIX and parts[3] in _LOGGED_COLUMNS:
            key = (_metric_unsafe(parts[1]), _metric_unsafe(parts[2]))
            cells.setdefault(key, {})[parts[3]] = float(value)
    rows = [{"attribute": a, "group": g, **values} for (a, g), values in cells.items()]
    audit = pd.DataFrame(rows, columns=["attribute", "group", *_LOGGED_COLUMNS]).astype(
        {column: "float64" for column in _LOGGED_COLUMNS}
    )
    audit = audit.assign(is_reference=audit["is_reference"] == 1.0)
    order = {name: position for position, name in enumerate(AUDIT_ATTRIBUTES)}
    return audit.sort_values(
        ["attribute", "households", "group"],
        ascending=[True, False, True],
        key=lambda column: column.map(order) if column.name == "attribute" else column,
        ignore_index=True,
    )


def fairness_promotion_check(
    settings: FairnessGate | None = None,
    *,
    accepted: Sequence[AcceptedFinding] = (),
    today: date | None = None,
):
    """A promotion gate check reading a run's logged audit, with the council's acceptances.

    check(challenger=, **_) -> (passed, message, failures, accepted, unused_acceptances): the
    signature of models' promotion gates (`Gate("fairness", fairness_promotion_check(policy))`);
    failures name group and metric. `today` judges the acceptances' review dates (default: the
    UTC date when the check runs).
    """
    settings = settings or FairnessGate()

    def check(*, challenger: Mapping[str, float], **_) -> tuple:
        audit = audit_from_metrics(challenger)
        if audit.empty:
            return False, "no fairness audit was recorded with this run", [], [], []
        result = fairness_gate(audit, settings=settings)
        if accepted:
            day = today or datetime.now(UTC).date()
            result = apply_acceptances(result, accepted=accepted, today=day)
        return (
            result.passed,
            result.message,
            result.failures,
            result.accepted,
            result.unused_acceptances,
        )

    return check


def _metric_safe(text: str) -> str:
    return _UNSAFE.sub(lambda match: f"_x{ord(match.group()):02x}_", str(text))


def _metric_unsafe(text: str) -> str:
    return _ESCAPED.sub(lambda match: chr(int(match.group(1), 16)), text)
