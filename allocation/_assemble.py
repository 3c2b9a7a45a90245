"""A decided week assembled into the proposal: rows, workers, continuing cases, the lock report and
a JSON-ready summary with no personal data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from allocation._explain import ExplainContext, explain, shortfall
from allocation._locks import APPLIED
from allocation._prepare import Prepared
from allocation._settings import AllocationSettings, Proposal
from allocation._solver import ORTOOLS_VERSION, SOLVER_SETTINGS, VALUE_SCALE

OPTIMISER = "highs+cp-sat"  # proposal.json "method" of the optimiser (the baseline: "greedy")

ROW_COLUMNS = [
    "household_id",
    "rank",
    "locality",
    "risk",
    "needs",
    "points",
    "status",
    "worker_id",
    "value",
    "locked",
    "explanation",
]


def row_columns(rows: pd.DataFrame) -> list[str]:
    """The proposal's row columns: needs_evidence after needs when the scores had it."""
    if "needs_evidence" not in rows.columns:
        return ROW_COLUMNS
    at = ROW_COLUMNS.index("needs") + 1
    return [*ROW_COLUMNS[:at], "needs_evidence", *ROW_COLUMNS[at:]]


WORKER_COLUMNS = [
    "worker_id",
    "locality",
    "skills",
    "active",
    "capacity_points",
    "open_cases",
    "points_before",
    "new_cases",
    "new_points",
    "points_after",
    "free_before",
    "free_after",
    "utilisation_before",
    "utilisation_after",
]

CONTINUING_COLUMNS = [
    "case_id",
    "household_id",
    "worker_id",
    "locality",
    "rank",
    "risk",
    "opened_at",
    "complexity_points",
    "status",
    "explanation",
]


def _assignment(prepared: Prepared, chosen: pd.Series) -> pd.DataFrame:
    """household_id, worker_id, locked for every household given a worker this week."""
    decided = prepared.pairs.loc[chosen, ["household_id", "worker_id"]].assign(locked=False)
    return pd.concat([prepared.locked.assign(locked=True), decided], ignore_index=True)


def _rows(prepared: Prepared, assignment: pd.DataFrame) -> pd.DataFrame:
    rows = prepared.candidates.merge(assignment, on="household_id", how="left")
    values = prepared.options.set_index(["household_id", "worker_id"])["value"]
    keys = pd.MultiIndex.from_frame(rows[["household_id", "worker_id"]])
    assigned = rows["worker_id"].notna()
    return rows.assign(
        status=assigned.map({True: "assigned", False: "waitlisted"}).astype("str"),
        value=pd.Series(values.reindex(keys).to_numpy(), index=rows.index).where(assigned, 0.0),
        locked=rows["locked"].fillna(False).astype("bool"),
    ).sort_values(["rank", "household_id"], ignore_index=True)


def _worker_summary(prepared: Prepared, rows: pd.DataFrame) -> pd.DataFrame:
    taken = (
        rows.loc[rows["status"] == "assigned"]
        .groupby("worker_id")
        .agg(new_cases=("household_id", "size"), new_points=("points", "sum"))
    )
    workers = prepared.workers.merge(taken, how="left", left_on="worker_id", right_index=True)
    workers = workers.fillna({"new_cases": 0, "new_points": 0}).astype(
        {"new_cases": "int64", "new_points": "int64"}
    )
    return workers.assign(
        points_before=workers["open_points"],
        points_after=workers["open_points"] + workers["new_points"],
        free_before=workers["capacity_points"] - workers["open_points"],
        free_after=lambda frame: frame["capacity_points"] - frame["points_after"],
        utilisation_before=(workers["open_points"] / workers["capacity_points"]).round(4),
        utilisation_after=lambda frame: (frame["points_after"] / frame["capacity_points"]).round(4),
    )[WORKER_COLUMNS].sort_values("worker_id", ignore_index=True)


def _continuing(prepared: Prepared, workers: pd.DataFrame) -> pd.DataFrame:
    cases = prepared.open_cases.merge(
        prepared.scores[["household_id", "locality", "rank", "risk"]], on="household_id", how="left"
    )
    active = workers.set_index("worker_id")["active"]
    notes = [
        f"Open case with {worker_id} since {pd.Timestamp(opened).date()} continues: support ends "
        "only when the household agrees."
        + (
            ""
            if active.get(worker_id, True)
            else f" {worker_id} is not active: a manager should review this case."
        )
        for worker_id, opened in zip(cases["worker_id"], cases["opened_at"], strict=True)
    ]
    return cases.assign(
        status="continuing", explanation=pd.Series(notes, index=cases.index, dtype="str")
    )[CONTINUING_COLUMNS].sort_values(["worker_id", "case_id"], ignore_index=True)


def _messages(prepared: Prepared, rows: pd.DataFrame, workers: pd.DataFrame) -> list[str]:
    messages = []
    scope = f" in {prepared.locality}" if prepared.locality else ""
    if rows.empty:
        messages.append(
            f"No candidates{scope}: every scored household{scope} already has an "
            "open case, or there are no scores (or top_n is 0)."
        )
    if not workers["active"].any():
        messages.append(f"No active key worker{scope}: every candidate is waitlisted.")
    active_places = set(workers.loc[workers["active"], "locality"])
    for locality, count in rows.groupby("locality").size().items():
        if not active_places & set(prepared.places.get(locality, [locality])):
            messages.append(
                f"No active key worker can take households from {locality}: its "
                f"{count} candidate(s) are waitlisted."
            )
    refused = int((prepared.lock_report["status"] != APPLIED).sum())
    if refused:
        messages.append(f"{refused} lock(s) could not be honoured; see the lock report.")
    idle = workers.loc[~workers["active"] & (workers["open_cases"] > 0)]
    if len(idle):
        messages.append(
            f"{len(idle)} inactive worker(s) still hold {int(idle['open_cases'].sum())}"
            " open case(s); they continue and are listed for review."
        )
    return messages


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, NaN and infinity to None."""
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _status(
    rows: pd.DataFrame, gap: float | None, *, method: str, settings: AllocationSettings
) -> str:
    if rows.empty:
        return "no_candidates"
    if not (rows["status"] == "assigned").any():
        return "no_capacity"
    if method == "greedy" or gap is None:
        return method
    if gap <= 1e-6:
        return "optimal"
    return "within_tolerance" if gap <= settings.relative_gap + 1e-9 else "time_limit"


def _locality_summary(rows: pd.DataFrame, short: pd.DataFrame) -> dict[str, dict[str, int]]:
    counts = rows.groupby("locality")["status"].value_counts().unstack(fill_value=0)
    points_short = short.loc[~short["safeguarding"]].set_index("locality")["short"]
    return {
        locality: {
            "candidates": int(counts.loc[locality].sum()),
            "assigned": int(counts.loc[locality].get("assigned", 0)),
            "waitlisted": int(counts.loc[locality].get("waitlisted", 0)),
            "points_short": int(points_short.get(locality, 0)),
        }
        for locality in counts.index
    }


def _quality(rows: pd.DataFrame, stats: list[dict], *, method: str) -> dict[str, Any]:
    """Objective, proven bound and gap over the whole proposal (locked households included)."""
    objective = float(rows["value"].sum())
    if method != OPTIMISER:
        return {"objective": objective, "best_bound": None, "gap": None, "reproducible": True}
    locked_value = float(rows.loc[rows["locked"], "value"].sum())
    bound = max(objective, locked_value + sum(p["bound_scaled"] for p in stats) / VALUE_SCALE)
    # Work limits end runs identically every time; only the clock (a busy machine) does not.
    clocked = any(
        stage.get("clock_stopped", False)
        for part in stats
        for stage in part.get("stages", {}).values()
    )
    return {
        "objective": objective,
        "best_bound": bound,
        "gap": 0.0 if bound <= 0 else (bound - objective) / bound,
        "reproducible": not clocked,
    }


def _counts(prepared: Prepared, rows: pd.DataFrame, workers: pd.DataFrame) -> dict[str, Any]:
    assigned = rows["status"] == "assigned"
    active = workers.loc[workers["active"]]
    report = prepared.lock_report["status"]
    return {
        "candidates": len(rows),
        "assigned": int(assigned.sum()),
        "waitlisted": int((~assigned).sum()),
        "continuing": len(prepared.open_cases),
        "points_assigned": int(rows.loc[assigned, "points"].sum()),
        "max_utilisation_after": float(active["utilisation_after"].max()) if len(active) else None,
        "locks": {
            "applied": int((report == APPLIED).sum()),
            "infeasible": int((report != APPLIED).sum()),
        },
    }


def _summary(
    prepared: Prepared,
    rows: pd.DataFrame,
    workers: pd.DataFrame,
    stats: list[dict],
    *,
    method: str,
    settings: AllocationSettings,
    seconds: float,
    filled: int,
    short: pd.DataFrame,
) -> dict[str, Any]:
    """proposal.json: JSON-ready facts about the solve, with no personal data."""
    quality = _quality(rows, stats, method=method)
    versions = prepared.candidates.get("model_version", pd.Series(dtype="str")).dropna()
    return _clean(
        {
            "status": _status(rows, quality["gap"], method=method, settings=settings),
            "method": method,
            **quality,
            "solve_seconds": round(seconds, 3),
            **_counts(prepared, rows, workers),
            "filled_after_solve": filled,
            "locality": prepared.locality,
            "localities": _locality_summary(rows, short),
            "messages": _messages(prepared, rows, workers),
            "model_version": sorted(set(versions.astype("str"))),
            "settings": settings.as_dict(),
            "solver": SOLVER_SETTINGS,
            "ortools_version": ORTOOLS_VERSION,
            "components": stats,
        }
    )


@dataclass(frozen=True)
class Run:
    """How the week's allocation was decided."""

    method: str
    settings: AllocationSettings
    stats: list[dict]
    seconds: float
    filled: int


def assemble(prepared: Prepared, chosen: pd.Series, run: Run) -> Proposal:
    rows = _rows(prepared, _assignment(prepared, chosen))
    workers = _worker_summary(prepared, rows)
    safeguarding = run.settings.safeguarding
    short = shortfall(rows, workers=workers, places=prepared.places, safeguarding=safeguarding)
    context = ExplainContext(
        prepared.options, workers, prepared.places, run.settings.relative_gap, safeguarding
    )
    rows = rows.assign(
        worker_id=rows["worker_id"].astype("str"),
        explanation=explain(rows, context=context, short=short),
    )[row_columns(rows)]
    summary = _summary(
        prepared,
        rows,
        workers,
        run.stats,
        method=run.method,
        settings=run.settings,
        seconds=run.seconds,
        filled=run.filled,
        short=short,
    )
    return Proposal(
        rows=rows,
        workers=workers,
        continuing=_continuing(prepared, workers),
        summary=summary,
        lock_report=prepared.lock_report,
    )
