"""Policy simulation: the synthetic city run forward week by week under an allocation policy.

`simulate` runs every policy on every seed's city (`run_history`, `run_policy`) and returns a
`SimulationResult`; `policy_table`, `cost_table` and `per_case_check` summarise it,
`write_simulation` writes it out and `read_simulation_summary` reads it back, `tracking_runs`
gives its MLflow runs. Outcome measures and difference in differences: `_outcomes`; unit costs:
`_costs` (costs.toml); the policies: `_policies`. See docs/impact.md.
"""

from experiments.simulation._history import city_tables, run_history, train_simulation_model
from experiments.simulation._loop import run_policy
from experiments.simulation._policies import POLICIES, POLICY_NAMES
from experiments.simulation._settings import (
    ROLLOUTS,
    History,
    PolicyRun,
    SimulationResult,
    SimulationSettings,
)
from experiments.simulation._simulate import simulate
from experiments.simulation._summary import (
    cost_table,
    mean_interval,
    per_case_check,
    policy_table,
    read_simulation_summary,
    tracking_runs,
    write_simulation,
)

__all__ = [
    "POLICIES",
    "POLICY_NAMES",
    "ROLLOUTS",
    "History",
    "PolicyRun",
    "SimulationResult",
    "SimulationSettings",
    "city_tables",
    "cost_table",
    "mean_interval",
    "per_case_check",
    "policy_table",
    "read_simulation_summary",
    "run_history",
    "run_policy",
    "simulate",
    "tracking_runs",
    "train_simulation_model",
    "write_simulation",
]
