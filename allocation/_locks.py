"""A manager's locks (assign | exclude): each is honoured, or reported with its reason; never
silently dropped.

A lock can never break a hard rule (capacity, locality, safeguarding, activity, continuity of open
cases); a lock that would is reported as infeasible and the proposal is built without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from allocation.rules import DEFAULT_SAFEGUARDING, room_refusal, worker_refusal

APPLIED = "applied"
INFEASIBLE = "infeasible"
REPORT_COLUMNS = ["household_id", "worker_id", "kind", "status", "reason"]


@dataclass(frozen=True)
class LockContext:
    """Lookups a lock is judged against (all keyed by id)."""

    scored: pd.DataFrame  # scores indexed by household_id
    open_worker: pd.Series  # household_id -> worker_id of its open case
    workers: pd.DataFrame  # every worker, indexed by worker_id, with remaining_points
    neighbours: Mapping[str, Sequence[str]]  # as the proposal applies them (allocation.rules)
    points: pd.Series  # candidate household_id -> points
    locality: str | None
    safeguarding: Sequence[str] = DEFAULT_SAFEGUARDING  # AllocationSettings.safeguarding


def _open_case_verdict(kind: str, worker_id: str, open_worker: str) -> tuple[str, str]:
    if kind == "assign" and worker_id == open_worker:
        return APPLIED, f"already has an open case with {worker_id}, which continues"
    if kind == "assign":
        return INFEASIBLE, (
            f"has an open case with {open_worker}; open cases are never moved by the weekly "
            "proposal"
        )
    if worker_id == open_worker:
        return INFEASIBLE, (
            f"cannot exclude {worker_id}: the household's open case with {worker_id} continues "
            "(support ends only when the household agrees)"
        )
    return APPLIED, f"no effect: the household's open case is with {open_worker}"


def _assign_verdict(household_id: str, worker_id: str, context: LockContext) -> tuple[str, str]:
    worker = context.workers.loc[worker_id]
    refusal = worker_refusal(
        worker_id=worker_id,
        worker=worker,
        household_locality=context.scored.loc[household_id, "locality"],
        needs=context.scored.loc[household_id, "needs"],
        neighbours=context.neighbours,
        safeguarding=context.safeguarding,
    ) or room_refusal(
        worker_id=worker_id,
        capacity_points=int(worker["capacity_points"]),
        free_points=int(worker["remaining_points"]),
        points=int(context.points[household_id]),
    )
    if refusal:
        return INFEASIBLE, refusal
    return APPLIED, f"assigned to {worker_id} by a manager's lock"


def lock_verdict(lock: pd.Series, context: LockContext) -> tuple[str, str]:
    """Status and plain-English reason for one lock, judged on its own."""
    household_id, worker_id, kind = lock["household_id"], lock["worker_id"], lock["kind"]
    if household_id not in context.scored.index:
        return INFEASIBLE, "household not in this week's scores"
    if worker_id not in context.workers.index:
        return INFEASIBLE, "worker not in the workers table"
    home = context.scored.loc[household_id, "locality"]
    if context.locality is not None and home != context.locality:
        return INFEASIBLE, f"household is in {home}, outside this proposal ({context.locality})"
    if household_id in context.open_worker.index:
        return _open_case_verdict(kind, worker_id, context.open_worker[household_id])
    if kind == "exclude":
        return APPLIED, f"{worker_id} will not be proposed for this household"
    if context.locality is not None and context.workers.loc[worker_id, "locality"] != home:
        return INFEASIBLE, f"{worker_id} is outside this proposal ({context.locality})"
    return _assign_verdict(household_id, worker_id, context)


def _conflicts(locks: pd.DataFrame) -> pd.Series:
    """Reason an assign lock conflicts with other locks ('' when it does not)."""
    assigns = locks.loc[locks["kind"] == "assign"]
    excludes = set(
        zip(
            *(locks.loc[locks["kind"] == "exclude", c] for c in ("household_id", "worker_id")),
            strict=True,
        )
    )
    workers_per_household = assigns.groupby("household_id")["worker_id"].agg(
        lambda ids: ", ".join(sorted(ids))
    )

    def reason(row: pd.Series) -> str:
        if row["kind"] != "assign":
            return ""
        if (row["household_id"], row["worker_id"]) in excludes:
            return "conflicts with an exclude lock for the same household and worker"
        named = workers_per_household[row["household_id"]]
        return f"conflicting assign locks for this household ({named})" if "," in named else ""

    return locks.apply(reason, axis=1) if len(locks) else pd.Series(dtype="str")


def _within_capacity(report: pd.DataFrame, context: LockContext) -> pd.DataFrame:
    """Applied assign locks that fit together on their worker, taken in rank order."""
    assigns = report.loc[(report["kind"] == "assign") & (report["status"] == APPLIED)]
    assigns = assigns.loc[assigns["household_id"].isin(context.points.index)]
    ordered = assigns.assign(
        rank=assigns["household_id"].map(context.scored["rank"]).astype("int64"),
        points=assigns["household_id"].map(context.points).astype("int64"),
    ).sort_values(["rank", "household_id"], kind="stable")
    used = ordered.groupby("worker_id")["points"].cumsum()
    free = ordered["worker_id"].map(context.workers["remaining_points"]).astype("int64")
    return ordered.assign(fits=used <= free)


def judge_locks(locks: pd.DataFrame, context: LockContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lock report (one row per distinct lock) and the assign locks to pre-allocate."""
    verdicts = [lock_verdict(lock, context) for _, lock in locks.iterrows()]
    report = locks.assign(
        status=[status for status, _ in verdicts], reason=[reason for _, reason in verdicts]
    )
    conflict = _conflicts(report)
    clash = (report["status"] == APPLIED) & (conflict != "")
    report.loc[clash, "status"] = INFEASIBLE
    report.loc[clash, "reason"] = conflict[clash]
    placed = _within_capacity(report, context)
    over = placed.loc[~placed["fits"]]
    for index, row in over.iterrows():
        worker_id = row["worker_id"]
        free = int(context.workers.loc[worker_id, "remaining_points"])
        report.loc[index, ["status", "reason"]] = [
            INFEASIBLE,
            f"together with higher-priority locks for {worker_id} it exceeds {worker_id}'s "
            f"{free} free points",
        ]
    accepted = placed.loc[placed["fits"], ["household_id", "worker_id"]]
    report = report[REPORT_COLUMNS].sort_values(["household_id", "worker_id", "kind"])
    return report.reset_index(drop=True).astype("str"), accepted.reset_index(drop=True)
