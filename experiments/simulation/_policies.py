"""The allocation policies compared in the simulation, all through the same allocation rules.

Every policy only decides the order in which households without an open case are considered
(`rank`) and, for the optimiser, their priority (`risk`). Points, capacity, locality and
safeguarding rules are the product's own (`allocation.propose_allocation` /
`greedy_allocation`), and every policy's candidates get their needs the product's way: the
skills of the model's reasons (models.explain) on the candidates' features.

The oracle knows the hidden chain: it ranks on what a case truly buys, the exact expected crises
a case opened now prevents in the next 26 weeks (`CitySimulator.case_benefit`), and gives the
optimiser that (scaled into [0, 1]) as the priority.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from allocation import AllocationSettings, greedy_allocation, propose_allocation
from experiments.simulation._features import no_events
from models import ranking_order
from models.explain import explain_households

POLICIES: tuple[str, ...] = ("product", "greedy", "fcfs", "random", "oracle", "none")
POLICY_NAMES: dict[str, str] = {
    "product": "Optimiser on model risk (the product)",
    "greedy": "Greedy rule on model risk",
    "fcfs": "First come, first served on referrals",
    "random": "Random",
    "oracle": "Oracle: optimiser on the true benefit of a case",
    "none": "No new key-worker cases",
}
OPTIMISED = ("product", "oracle")
ALLOCATION_COLUMNS = ["household_id", "worker_id", "complexity_points"]


@dataclass(frozen=True)
class WeekInputs:
    """What a policy may use to decide one week (risk from the model, or the truth for oracle)."""

    household_ids: np.ndarray
    locality: np.ndarray
    eligible: np.ndarray  # no open case and in a ward where the programme has started
    model_raw: np.ndarray | None
    model_risk: np.ndarray | None
    true_benefit: np.ndarray | None  # oracle: expected crises a case opened now prevents
    queue_order: np.ndarray | None  # fcfs: position in the referral queue, -1 if not queued


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose from {', '.join(POLICIES)}")
    return policy


def policy_order(policy: str, inputs: WeekInputs, *, rng: np.random.Generator) -> np.ndarray:
    """Positions of eligible households in the order the policy considers them."""
    ids = inputs.household_ids
    if policy in ("product", "greedy"):
        order = ranking_order(inputs.model_raw, ids)
    elif policy == "oracle":
        order = ranking_order(inputs.true_benefit, ids)
    elif policy == "random":
        order = rng.permutation(len(ids))
    elif policy == "fcfs":
        queued = np.flatnonzero(inputs.queue_order >= 0)
        order = queued[np.argsort(inputs.queue_order[queued], kind="stable")]
    else:
        return np.zeros(0, dtype=np.int64)
    return order[inputs.eligible[order]]


def candidate_scores(
    policy: str,
    inputs: WeekInputs,
    *,
    features: pd.DataFrame,
    booster,
    as_of,
    top_n: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The scores frame the allocation reads, for the policy's first top_n eligible households."""
    chosen = policy_order(policy, inputs, rng=rng)[:top_n]
    if not len(chosen):
        return pd.DataFrame(columns=["household_id", "locality", "risk", "rank", "needs"])
    risk = _oracle_priority(inputs.true_benefit) if policy == "oracle" else inputs.model_risk
    explained = explain_households(
        booster=booster,
        features=features.iloc[chosen],
        tables={"events": no_events()},
        as_of=as_of,
    )
    return pd.DataFrame(
        {
            "household_id": pd.array(inputs.household_ids[chosen], dtype="str"),
            "locality": pd.array(inputs.locality[chosen], dtype="str"),
            "risk": np.clip(risk[chosen], 0.0, 1.0),
            "rank": np.arange(1, len(chosen) + 1, dtype=np.int64),
            "needs": explained["needs"].to_numpy(),
        }
    )


def _oracle_priority(benefit: np.ndarray) -> np.ndarray:
    """The benefit as a priority in [0, 1]: one positive scale for all, so the optimiser's
    choice (linear in priority) is the one that maximises the expected crises prevented."""
    return benefit / max(1.0, float(benefit.max(initial=0.0)))


def allocate(
    policy: str,
    *,
    scores: pd.DataFrame,
    workers: pd.DataFrame,
    cases: pd.DataFrame,
    settings: AllocationSettings,
) -> tuple[pd.DataFrame, dict]:
    """This week's allocations (household_id, worker_id, complexity_points) and the summary."""
    if scores.empty or not workers["active"].any():
        return pd.DataFrame(columns=ALLOCATION_COLUMNS), {"status": "no_candidates"}
    decide = propose_allocation if policy in OPTIMISED else greedy_allocation
    proposal = decide(scores=scores, workers=workers, cases=cases, settings=settings)
    assigned = proposal.rows.loc[proposal.rows["status"] == "assigned"]
    allocations = pd.DataFrame(
        {
            "household_id": assigned["household_id"].to_numpy(),
            "worker_id": assigned["worker_id"].to_numpy(),
            "complexity_points": assigned["points"].to_numpy(np.int64),
        }
    )
    return allocations, proposal.summary


def seen_workers(workers: pd.DataFrame, *, capacity_share: float) -> pd.DataFrame:
    """The workforce a policy may allocate to: capacity scaled (a staffing scenario).

    A worker whose scaled capacity is below one point takes no new cases (inactive here).
    """
    if capacity_share == 1.0:
        return workers
    scaled = np.floor(workers["capacity_points"].to_numpy() * capacity_share).astype(np.int64)
    return workers.assign(
        capacity_points=np.maximum(scaled, 1), active=workers["active"].to_numpy() & (scaled >= 1)
    )
