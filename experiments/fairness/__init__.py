"""The bias audit of escalation scores by household group, the fairness gate, and the council's
accepted findings.

- `bias_audit`: error rates at the capacity cut-off k by group, against a reference group
  (`_audit`, with the statistics from statsmodels and scipy in `_statistics`); `audit_chart`.
- `fairness_gate` with a `FairnessGate` policy: whether the audit is fair enough to promote
  (`_gate`); `AcceptedFinding` and `apply_acceptances`: findings a council accepts (`_acceptance`).
- `audit_for_run`, `audit_metrics`, `fairness_promotion_check`: the audit as a training run logs
  it and as promotion reads it back (`_run`).
- `fit_group_cut_offs`, `group_aware_adjustment`: group-aware cut-offs, a mitigation
  (`_mitigation`).

Household groups come from features.groups, the one reader of protected characteristics.
"""

from experiments.fairness._acceptance import (
    AcceptedFinding,
    accepted_finding,
    accepted_findings_from_config,
    apply_acceptances,
)
from experiments.fairness._audit import (
    GATE_METRICS,
    METRIC_LABELS,
    PREDICTION_COLUMNS,
    RANK_COLUMN,
    bias_audit,
    k_count,
)
from experiments.fairness._chart import audit_chart
from experiments.fairness._gate import (
    CORRECTIONS,
    FairnessGate,
    GateResult,
    adjusted_p_values,
    fairness_gate,
    fairness_gate_from_mapping,
    gate_policy_text,
    gated_rows,
)
from experiments.fairness._mitigation import fit_group_cut_offs, group_aware_adjustment
from experiments.fairness._run import (
    METRIC_PREFIX,
    FairnessAudit,
    audit_for_run,
    audit_from_metrics,
    audit_metrics,
    fairness_promotion_check,
)
from features.groups import AUDIT_ATTRIBUTES

__all__ = [
    "AUDIT_ATTRIBUTES",
    "CORRECTIONS",
    "GATE_METRICS",
    "METRIC_LABELS",
    "METRIC_PREFIX",
    "PREDICTION_COLUMNS",
    "RANK_COLUMN",
    "AcceptedFinding",
    "FairnessAudit",
    "FairnessGate",
    "GateResult",
    "accepted_finding",
    "accepted_findings_from_config",
    "adjusted_p_values",
    "apply_acceptances",
    "audit_chart",
    "audit_for_run",
    "audit_from_metrics",
    "audit_metrics",
    "bias_audit",
    "fairness_gate",
    "fairness_gate_from_mapping",
    "fairness_promotion_check",
    "fit_group_cut_offs",
    "gate_policy_text",
    "gated_rows",
    "group_aware_adjustment",
    "k_count",
]
