"""What managers do with a proposal: compare two (what moved and why) and ask what-if questions
about the workforce (add or remove a worker, change a capacity)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from allocation._inputs import validate_workers
from allocation._settings import AllocationInputError, Proposal
from features.contract import column_names

COMPARE_COLUMNS = [
    "household_id",
    "locality",
    "rank_before",
    "rank_after",
    "status_before",
    "worker_before",
    "status_after",
    "worker_after",
    "change",
    "reason",
]
_NOT_CANDIDATE = "not a candidate"


def _side(proposal: Proposal, suffix: str) -> pd.DataFrame:
    rows = proposal.rows[["household_id", "locality", "rank", "risk", "status", "worker_id"]]
    return rows.rename(
        columns={
            "rank": f"rank_{suffix}",
            "risk": f"risk_{suffix}",
            "status": f"status_{suffix}",
            "worker_id": f"worker_{suffix}",
            "locality": f"locality_{suffix}",
        }
    )


def _change(row: pd.Series) -> str:
    before, after = row["status_before"], row["status_after"]
    if before == _NOT_CANDIDATE:
        return "joined the candidates"
    if after == _NOT_CANDIDATE:
        return "left the candidates"
    if before != after:
        return "newly assigned" if after == "assigned" else "newly waitlisted"
    same_worker = row["worker_before"] == row["worker_after"] or (
        pd.isna(row["worker_before"]) and pd.isna(row["worker_after"])
    )
    return "unchanged" if same_worker else "moved"


def _lock_reasons(household_id: str, before: Proposal, after: Proposal) -> list[str]:
    def applied(proposal: Proposal) -> set[tuple[str, str]]:
        report = proposal.lock_report
        mine = report.loc[
            (report["household_id"] == household_id) & (report["status"] == "applied")
        ]
        return set(zip(mine["kind"], mine["worker_id"], strict=True))

    new = applied(after) - applied(before)
    gone = applied(before) - applied(after)
    return [f"manager's lock: {kind} {worker}" for kind, worker in sorted(new)] + [
        f"lock removed: {kind} {worker}" for kind, worker in sorted(gone)
    ]


def _worker_reasons(worker_ids: list[str], before: Proposal, after: Proposal) -> list[str]:
    old = before.workers.set_index("worker_id")
    new = after.workers.set_index("worker_id")
    reasons = []
    for worker_id in dict.fromkeys(w for w in worker_ids if isinstance(w, str)):
        if worker_id not in new.index or not new.at[worker_id, "active"]:
            reasons.append(f"{worker_id} is not taking cases in the new proposal")
        elif worker_id not in old.index or not old.at[worker_id, "active"]:
            reasons.append(f"{worker_id} is newly available")
        elif old.at[worker_id, "capacity_points"] != new.at[worker_id, "capacity_points"]:
            reasons.append(
                f"{worker_id}'s capacity changed from "
                f"{int(old.at[worker_id, 'capacity_points'])} to "
                f"{int(new.at[worker_id, 'capacity_points'])}"
            )
    return reasons


def _reason(row: pd.Series, before: Proposal, after: Proposal) -> str:
    reasons = _lock_reasons(row["household_id"], before, after)
    reasons += _worker_reasons([row["worker_before"], row["worker_after"]], before, after)
    if row["change"] == "left the candidates":
        continuing = set(after.continuing["household_id"])
        reasons.append(
            "now has an open case, which continues"
            if row["household_id"] in continuing
            else "no longer among the top-ranked candidates"
        )
    elif row["change"] == "joined the candidates":
        reasons.append("now among the top-ranked candidates (or named in a lock)")
    elif abs(row["risk_before"] - row["risk_after"]) > 1e-9:
        reasons.append(f"risk changed from {row['risk_before']:.3f} to {row['risk_after']:.3f}")
    if not reasons and row["change"] != "left the candidates":
        reasons.append(
            "capacity moved with other changes this week; now: " + str(row["explanation_after"])
        )
    return "; ".join(reasons)


def compare_proposals(before: Proposal, after: Proposal) -> pd.DataFrame:
    """One row per household whose outcome differs between two proposals, with the reason.

    change is one of: newly assigned, newly waitlisted, moved, joined the candidates, left the
    candidates. Sorted by the household's rank in the later proposal (then the earlier one).
    """
    merged = _side(before, "before").merge(
        _side(after, "after").assign(explanation_after=after.rows["explanation"]),
        on="household_id",
        how="outer",
    )
    merged = merged.assign(
        locality=merged["locality_after"].fillna(merged["locality_before"]),
        status_before=merged["status_before"].fillna(_NOT_CANDIDATE),
        status_after=merged["status_after"].fillna(_NOT_CANDIDATE),
    )
    merged = merged.assign(change=merged.apply(_change, axis=1) if len(merged) else "")
    moved = merged.loc[merged["change"] != "unchanged"]
    if moved.empty:
        return pd.DataFrame({column: pd.Series(dtype="object") for column in COMPARE_COLUMNS})
    moved = moved.assign(reason=moved.apply(_reason, axis=1, before=before, after=after))
    return moved.sort_values(["rank_after", "rank_before", "household_id"], ignore_index=True)[
        COMPARE_COLUMNS
    ]


def _new_workers(add: pd.DataFrame | Iterable[Mapping] | None) -> pd.DataFrame:
    if add is None:
        return pd.DataFrame(columns=column_names("workers"))
    added = add if isinstance(add, pd.DataFrame) else pd.DataFrame(list(add))
    if "active" not in added.columns:
        added = added.assign(active=True)
    missing = [c for c in column_names("workers") if c not in added.columns]
    if missing:
        raise AllocationInputError(f"what-if add: missing column(s) {', '.join(missing)}")
    return added[column_names("workers")]


def what_if(
    workers: pd.DataFrame,
    *,
    add: pd.DataFrame | Iterable[Mapping] | None = None,
    remove: Iterable[str] = (),
    capacity: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The workers table after a what-if: add workers, remove workers (they stop taking new cases;
    their open cases continue), change capacities. Pass the result to propose_allocation."""
    remove, capacity = list(remove), dict(capacity or {})
    unknown = sorted((set(remove) | set(capacity)) - set(workers["worker_id"]))
    if unknown:
        raise AllocationInputError(f"what-if: unknown worker(s) {', '.join(unknown)}")
    bad = {w: c for w, c in capacity.items() if not isinstance(c, int) or c < 1}
    if bad:
        raise AllocationInputError(f"what-if capacity: must be a whole number > 0 for {bad}")
    changed = workers.assign(
        active=workers["active"] & ~workers["worker_id"].isin(remove),
        capacity_points=workers["worker_id"]
        .map(capacity)
        .fillna(workers["capacity_points"])
        .astype("int64"),
    )
    added = _new_workers(add)
    clash = sorted(set(added["worker_id"]) & set(workers["worker_id"]))
    if clash:
        raise AllocationInputError(f"what-if add: worker id(s) already in use: {', '.join(clash)}")
    combined = changed if added.empty else pd.concat([changed, added], ignore_index=True)
    return validate_workers(combined.astype(workers.dtypes.to_dict()))
