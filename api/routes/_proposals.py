"""Proposals: a manager reviews the week's allocation for their locality.

This week's proposal for a locality is the weekly run's proposal.csv rows for it, stored in
service.db the first time the manager opens it; `POST /api/proposals` re-runs the optimiser for
the locality now (with optional locks), counting the cases already opened by decisions (merged
as the weekly job merges them). Deciding rows: api.routes._decisions; the decisions' export:
api.routes._overrides.
"""

from __future__ import annotations

import re
import secrets

import pandas as pd

from allocation import AllocationInputError, propose_allocation
from api import access, service_db
from api.audit import AuditWriter, audited
from api.database import ServiceDB
from api.pipeline import allocation_settings
from api.published import split_evidence, split_needs
from api.service_db import NewProposal
from api.settings import Settings
from api.week import LoadedWeek
from models.explain import risk_band, split_reasons

WEEKLY_RUN, MANAGER_RUN = "weekly run", "manager re-run"


class RuleBroken(Exception):
    """A decision would break a hard allocation rule: 422 naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- building and storing proposals -------------------------------------------------------------


def _proposal_id(*, as_of: str, locality: str) -> str:
    place = re.sub(r"[^A-Za-z0-9]", "", locality)[:20] or "locality"
    return f"{as_of}-{place.lower()}-{secrets.token_hex(4)}"


def _row_records(rows: pd.DataFrame, *, week: LoadedWeek) -> list[dict]:
    """Proposal rows as stored: the optimiser's columns plus the reasons that were shown."""
    reasons = week.scores["reasons"].reindex(rows["household_id"]).to_numpy()
    return [
        {
            "household_id": str(row["household_id"]),
            "position": position,
            "locality": str(row["locality"]),
            "risk": float(row["risk"]),
            "needs": row["needs"] if isinstance(row["needs"], str) else "",
            "reasons": reason if isinstance(reason, str) else "",
            "points": int(row["points"]),
            "status": str(row["status"]),
            "worker_id": row["worker_id"] if isinstance(row["worker_id"], str) else None,
            "value": float(row["value"]) if pd.notna(row["value"]) else 0.0,
            "explanation": str(row["explanation"]) if pd.notna(row["explanation"]) else "",
        }
        for position, ((_, row), reason) in enumerate(zip(rows.iterrows(), reasons, strict=True))
    ]


def _records(frame: pd.DataFrame | None) -> list[dict]:
    if frame is None:
        return []
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def new_proposal(
    *,
    week: LoadedWeek,
    locality: str,
    rows: pd.DataFrame,
    workers: pd.DataFrame | None,
    summary: dict,
    locks: list[dict],
    source: str,
    created_by: str,
) -> NewProposal:
    """A proposal ready to store: its header, the per-worker summary and its rows."""
    versions = week.scores["model_version"].dropna().unique()
    return NewProposal(
        proposal_id=_proposal_id(as_of=week.as_of_text, locality=locality),
        locality=locality,
        as_of=week.as_of_text,
        source=source,
        created_by=created_by,
        model_version=str(versions[0]) if len(versions) else None,
        summary=summary,
        workers=_records(workers),
        locks=locks,
        rows=_row_records(rows, week=week),
    )


SUMMARY_FIELDS: tuple[str, ...] = ("status", "method", "gap", "solve_seconds", "ortools_version")


def locality_summary(summary: dict, *, locality: str) -> dict:
    """The weekly (city-wide) summary as it concerns one locality."""
    counts = summary.get("localities", {}).get(locality, {})
    messages = [text for text in summary.get("messages", []) if locality in text]
    return {name: summary[name] for name in SUMMARY_FIELDS if name in summary} | {
        "locality": locality,
        "candidates": counts.get("candidates", 0),
        "assigned": counts.get("assigned", 0),
        "waitlisted": counts.get("waitlisted", 0),
        "points_short": counts.get("points_short", 0),
        "messages": messages,
    }


def weekly_proposal(db: ServiceDB, *, week: LoadedWeek, locality: str) -> dict | None:
    """This week's proposal for the locality: the latest stored one, else the weekly run's."""
    stored = service_db.latest_proposal(db.read(), locality=locality, as_of=week.as_of_text)
    if stored is not None or week.proposal is None:
        return stored
    workers = week.proposal_workers
    if workers is not None and "locality" in workers.columns:
        workers = workers.loc[workers["locality"] == locality]
    proposal = new_proposal(
        week=week,
        locality=locality,
        rows=week.proposal.loc[week.proposal["locality"] == locality],
        workers=workers,
        summary=locality_summary(week.proposal_summary, locality=locality),
        locks=[],
        source=WEEKLY_RUN,
        created_by="weekly run",
    )
    with db.write() as connection:
        # Two managers opening the page at once must not store the weekly proposal twice.
        if service_db.latest_proposal(connection, locality=locality, as_of=week.as_of_text) is None:
            service_db.insert_proposal(connection, proposal)
    return service_db.latest_proposal(db.read(), locality=locality, as_of=week.as_of_text)


def cases_for_allocation(db: ServiceDB, *, week: LoadedWeek) -> pd.DataFrame:
    """Partners' cases plus the cases decisions opened, merged as the weekly job merges them
    (service_db.cases_with_decisions)."""
    decided = service_db.decided_case_frame(service_db.decided_case_rows(db.read()))
    return service_db.cases_with_decisions(week.cases, decided, workers=week.workers)


def generate_proposal(
    settings: Settings,
    db: ServiceDB,
    *,
    week: LoadedWeek,
    locality: str,
    locks: list[dict],
    created_by: str,
) -> str:
    """Run the optimiser for one locality now and store the result."""
    lock_frame = pd.DataFrame(locks, columns=["household_id", "worker_id", "kind"], dtype="str")
    try:
        proposal = propose_allocation(
            scores=week.scores.reset_index(drop=True),
            workers=week.workers.reset_index(drop=True),
            cases=cases_for_allocation(db, week=week),
            locks=lock_frame if locks else None,
            locality=locality,
            settings=allocation_settings(settings),
            as_of=week.as_of,
        )
    except AllocationInputError as error:
        raise RuleBroken("locks", str(error)) from None
    stored = new_proposal(
        week=week,
        locality=locality,
        rows=proposal.rows,
        workers=proposal.workers,
        summary=dict(proposal.summary) | {"lock_report": _records(proposal.lock_report)},
        locks=locks,
        source=MANAGER_RUN,
        created_by=created_by,
    )
    with db.write() as connection:
        service_db.insert_proposal(connection, stored)
    return stored.proposal_id


# --- reading a proposal -------------------------------------------------------------------------


def row_out(row: dict, *, week: LoadedWeek) -> dict:
    """A stored proposal row as shown: band, needs with the evidence behind them (this week's
    scores, which the proposal was made from), and reasons as lists."""
    return row | {
        "band": risk_band(row["risk"]),
        "needs": split_needs(row["needs"]),
        "needs_evidence": split_evidence(week.rows.value(row["household_id"], "needs_evidence")),
        "reasons": split_reasons(row["reasons"]),
    }


def _pending_points(db: ServiceDB, week: LoadedWeek, worker_id: str, connection=None) -> int:
    """Points of the worker's open cases opened by decisions and not yet in partners' records."""
    cases = service_db.decided_cases_of_worker(connection or db.read(), worker_id=worker_id)
    total = 0
    for case in cases:
        if week.decided_case_open(household_id=case["household_id"], opened_at=case["opened_at"]):
            total += int(case["complexity_points"])
    return total


def _still_proposed(rows: list[dict], *, worker_id: str, leave_out: str | None) -> int:
    """Points of the undecided rows a proposal gives the worker (leaving one household out)."""
    return sum(
        int(row["points"])
        for row in rows
        if row["decision"] is None
        and row["status"] == "assigned"
        and row["worker_id"] == worker_id
        and row["household_id"] != leave_out
    )


def worker_room(
    db: ServiceDB,
    week: LoadedWeek,
    *,
    worker_id: str,
    rows: list[dict],
    connection=None,
    leave_out: str | None = None,
) -> dict:
    """One worker now, in points: partners' open cases, cases opened by decisions, what the
    proposal's undecided rows still give them, and what is left (may be negative)."""
    worker = week.workers.loc[worker_id]
    total = int(worker["capacity_points"])
    existing = int(week.open_points.get(worker_id, 0))
    decided = _pending_points(db, week, worker_id, connection)
    proposed = _still_proposed(rows, worker_id=worker_id, leave_out=leave_out)
    return {
        "worker_id": worker_id,
        "skills": split_needs(worker["skills"]),
        "active": bool(worker["active"]),
        "capacity_points": total,
        "existing_points": existing,
        "decided_points": decided,
        "proposed_points": proposed,
        "free_points": total - existing - decided - proposed,
    }


def capacity_now(db: ServiceDB, *, week: LoadedWeek, locality: str, rows: list[dict]) -> list[dict]:
    """Each worker of the locality now (worker_room), in worker order."""
    team = week.workers.loc[week.workers["locality"] == locality].sort_values("worker_id")
    return [worker_room(db, week, worker_id=worker_id, rows=rows) for worker_id in team.index]


def proposal_document(db: ServiceDB, *, proposal_id: str, week: LoadedWeek) -> dict:
    header = service_db.proposal_by_id(db.read(), proposal_id)
    rows = [row_out(row, week=week) for row in service_db.proposal_rows(db.read(), proposal_id)]
    return header | {"rows": rows}


def read_proposal(
    *,
    principal: access.Principal,
    proposal_id: str,
    db: ServiceDB,
    audit: AuditWriter,
    week: LoadedWeek,
) -> dict:
    header = service_db.proposal_by_id(db.read(), proposal_id)
    with audited(
        audit,
        principal,
        action="read_proposal",
        target=f"proposal:{proposal_id}",
        purpose="allocation review",
    ) as detail:
        access.check_proposal(
            principal,
            proposal_id=proposal_id,
            locality=None if header is None else header["locality"],
        )
        detail["as_of"] = header["as_of"]
    return proposal_document(db, proposal_id=proposal_id, week=week)
