"""Proposals, decisions and the cases decisions open, in the service database (api.database).

A proposal is stored with one row per candidate household; a decision on a row is written with
the row's new version in one transaction, and a decision that opens a case writes the case in
that transaction too (`decide_row`), so two managers cannot both take a worker's last points.
`decided_cases` gives the cases opened by decisions that partners' records have not taken over,
in the contract's `cases` format.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from api.database import ConflictError, as_dict, connect, now_text, service_db_path
from api.settings import Settings
from features.cases import open_cases
from features.contract import table_dtypes
from features.store import Store

DECISION_ACTIONS: tuple[str, ...] = ("accept", "override", "waitlist", "reject")


# --- proposals ----------------------------------------------------------------------------------

PROPOSAL_ROW_COLUMNS: tuple[str, ...] = (
    "household_id",
    "position",
    "locality",
    "risk",
    "needs",
    "reasons",
    "points",
    "status",
    "worker_id",
    "value",
    "explanation",
)


@dataclass(frozen=True)
class NewProposal:
    """A proposal to store: its header and one row per candidate household."""

    proposal_id: str
    locality: str
    as_of: str
    source: str
    created_by: str
    model_version: str | None
    summary: Mapping[str, object]
    workers: list[dict]
    locks: list[dict]
    rows: list[dict]


def insert_proposal(connection: sqlite3.Connection, proposal: NewProposal) -> None:
    connection.execute(
        "INSERT INTO proposals (proposal_id, locality, as_of, source, created_by, created_at,"
        " model_version, summary, workers, locks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            proposal.proposal_id,
            proposal.locality,
            proposal.as_of,
            proposal.source,
            proposal.created_by,
            now_text(),
            proposal.model_version,
            json.dumps(proposal.summary, default=str, sort_keys=True),
            json.dumps(proposal.workers, default=str),
            json.dumps(proposal.locks, default=str),
        ),
    )
    placeholders = ", ".join("?" for _ in PROPOSAL_ROW_COLUMNS)
    connection.executemany(
        f"INSERT INTO proposal_rows (proposal_id, {', '.join(PROPOSAL_ROW_COLUMNS)})"
        f" VALUES (?, {placeholders})",
        [
            (proposal.proposal_id, *(row[name] for name in PROPOSAL_ROW_COLUMNS))
            for row in proposal.rows
        ],
    )


def _proposal_header(row: sqlite3.Row) -> dict:
    header = dict(row)
    for name in ("summary", "workers", "locks"):
        header[name] = json.loads(header[name])
    return header


def proposal_by_id(connection: sqlite3.Connection, proposal_id: str) -> dict | None:
    row = connection.execute(
        "SELECT * FROM proposals WHERE proposal_id = ?", (proposal_id,)
    ).fetchone()
    return None if row is None else _proposal_header(row)


def latest_proposal(
    connection: sqlite3.Connection, *, locality: str, as_of: str | None = None
) -> dict | None:
    """The most recent proposal of a locality (for one as-of date when given)."""
    condition, values = "locality = ?", [locality]
    if as_of is not None:
        condition, values = "locality = ? AND as_of = ?", [locality, as_of]
    row = connection.execute(
        f"SELECT * FROM proposals WHERE {condition} ORDER BY created_at DESC, proposal_id DESC"
        " LIMIT 1",
        values,
    ).fetchone()
    return None if row is None else _proposal_header(row)


def proposals_of_locality(connection: sqlite3.Connection, *, locality: str) -> list[dict]:
    rows = connection.execute(
        "SELECT * FROM proposals WHERE locality = ? ORDER BY created_at DESC, proposal_id DESC",
        (locality,),
    )
    return [_proposal_header(row) for row in rows]


def proposal_rows(connection: sqlite3.Connection, proposal_id: str) -> list[dict]:
    rows = connection.execute(
        "SELECT * FROM proposal_rows WHERE proposal_id = ? ORDER BY position", (proposal_id,)
    )
    return [dict(row) for row in rows]


def proposal_row(
    connection: sqlite3.Connection, *, proposal_id: str, household_id: str
) -> dict | None:
    row = connection.execute(
        "SELECT * FROM proposal_rows WHERE proposal_id = ? AND household_id = ?",
        (proposal_id, household_id),
    ).fetchone()
    return as_dict(row)


# --- decisions and the cases they open ----------------------------------------------------------


@dataclass(frozen=True)
class NewDecision:
    """A manager's decision on one proposal row, as it will be stored."""

    proposal_id: str
    household_id: str
    locality: str
    action: str
    proposed_worker: str | None
    chosen_worker: str | None
    reason: str
    decided_by: str
    shown_risk: float
    shown_reasons: list[str]
    override_record: Mapping[str, object] | None


@dataclass(frozen=True)
class NewCase:
    """The key-worker case a decision opens (contract `cases` columns)."""

    household_id: str
    worker_id: str
    opened_at: str
    complexity_points: int


def decide_row(
    connection: sqlite3.Connection, *, decision: NewDecision, version: int, case: NewCase | None
) -> dict:
    """Store a decision on a row still at `version`, and open its case; inside a transaction.

    Raises ConflictError when the row was decided or changed since it was read, or when the
    household already has a case opened through the service.
    """
    current = proposal_row(
        connection, proposal_id=decision.proposal_id, household_id=decision.household_id
    )
    if current is None:
        raise LookupError(
            f"proposal {decision.proposal_id} has no household {decision.household_id}"
        )
    if current["version"] != version or current["decision"] is not None:
        raise ConflictError(_conflict_message(current, version=version))
    decided_at = now_text()
    decision_id = _insert_decision(connection, decision=decision, decided_at=decided_at)
    if case is not None:
        _insert_case(
            connection, case=case, proposal_id=decision.proposal_id, decision_id=decision_id
        )
    connection.execute(
        "UPDATE proposal_rows SET version = version + 1, decision = ?, decided_worker = ?,"
        " decision_reason = ?, decided_by = ?, decided_at = ?"
        " WHERE proposal_id = ? AND household_id = ? AND version = ?",
        (
            decision.action,
            decision.chosen_worker,
            decision.reason,
            decision.decided_by,
            decided_at,
            decision.proposal_id,
            decision.household_id,
            version,
        ),
    )
    return proposal_row(
        connection, proposal_id=decision.proposal_id, household_id=decision.household_id
    )


def _conflict_message(current: Mapping[str, object], *, version: int) -> str:
    if current["decision"] is not None:
        return (
            f"household {current['household_id']} was already decided ({current['decision']}) "
            f"by {current['decided_by']} at {current['decided_at']}: reload the proposal"
        )
    return (
        f"household {current['household_id']} changed since you loaded it (version "
        f"{current['version']}, you sent {version}): reload the proposal"
    )


def _insert_decision(
    connection: sqlite3.Connection, *, decision: NewDecision, decided_at: str
) -> int:
    cursor = connection.execute(
        "INSERT INTO decisions (proposal_id, household_id, locality, action, proposed_worker,"
        " chosen_worker, reason, decided_by, decided_at, shown_risk, shown_reasons,"
        " override_record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            decision.proposal_id,
            decision.household_id,
            decision.locality,
            decision.action,
            decision.proposed_worker,
            decision.chosen_worker,
            decision.reason,
            decision.decided_by,
            decided_at,
            decision.shown_risk,
            json.dumps(decision.shown_reasons),
            None
            if decision.override_record is None
            else json.dumps(decision.override_record, default=str, sort_keys=True),
        ),
    )
    return int(cursor.lastrowid)


def _insert_case(
    connection: sqlite3.Connection, *, case: NewCase, proposal_id: str, decision_id: int
) -> None:
    # One open case per household: a second decision in the same week must not open another.
    existing = connection.execute(
        "SELECT case_id, worker_id FROM decided_cases WHERE household_id = ? AND opened_at >= ?",
        (case.household_id, case.opened_at),
    ).fetchone()
    if existing is not None:
        raise ConflictError(
            f"household {case.household_id} already has a case opened here "
            f"({existing['case_id']} with {existing['worker_id']})"
        )
    connection.execute(
        "INSERT INTO decided_cases (case_id, household_id, worker_id, opened_at,"
        " complexity_points, proposal_id, decision_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            f"EH-{decision_id:08d}",
            case.household_id,
            case.worker_id,
            case.opened_at,
            int(case.complexity_points),
            proposal_id,
            decision_id,
        ),
    )


def decided_cases_of_worker(connection: sqlite3.Connection, *, worker_id: str) -> list[dict]:
    rows = connection.execute(
        "SELECT case_id, household_id, opened_at, complexity_points FROM decided_cases"
        " WHERE worker_id = ?",
        (worker_id,),
    )
    return [dict(row) for row in rows]


def decided_cases_of_household(connection: sqlite3.Connection, *, household_id: str) -> list[dict]:
    rows = connection.execute(
        "SELECT case_id, worker_id, opened_at, complexity_points FROM decided_cases"
        " WHERE household_id = ?",
        (household_id,),
    )
    return [dict(row) for row in rows]


def decided_case_rows(connection: sqlite3.Connection) -> list[dict]:
    rows = connection.execute(
        "SELECT case_id, household_id, worker_id, opened_at, complexity_points"
        " FROM decided_cases ORDER BY case_id"
    )
    return [dict(row) for row in rows]


def decisions_of_locality(
    connection: sqlite3.Connection, *, locality: str, before: str | None = None, limit: int = 500
) -> list[dict]:
    """A locality's decisions, most recent first (optionally only those on earlier weeks)."""
    query = (
        "SELECT decisions.*, proposals.as_of FROM decisions"
        " JOIN proposals ON proposals.proposal_id = decisions.proposal_id"
        " WHERE decisions.locality = ?"
    )
    values: list[object] = [locality]
    if before is not None:
        query += " AND proposals.as_of < ?"
        values.append(before)
    query += " ORDER BY decisions.decision_id DESC LIMIT ?"
    rows = connection.execute(query, (*values, limit))
    return [dict(row) | {"shown_reasons": json.loads(row["shown_reasons"])} for row in rows]


def decisions_for_export(connection: sqlite3.Connection, *, since: str | None = None) -> list[dict]:
    """Every decision (optionally those decided at or after `since`), oldest first, with the
    week and model version of the proposal it was made on."""
    query = (
        "SELECT decisions.*, proposals.as_of, proposals.model_version FROM decisions"
        " JOIN proposals ON proposals.proposal_id = decisions.proposal_id"
    )
    values: list[object] = []
    if since is not None:
        query += " WHERE decisions.decided_at >= ?"
        values.append(since)
    rows = connection.execute(query + " ORDER BY decisions.decision_id", values)
    return [dict(row) for row in rows]


def decided_cases(settings: Settings) -> pd.DataFrame:
    """Cases opened by managers' decisions that partners' case records have not yet taken over,
    in the contract's `cases` format and dtypes (all open: closed_at NaT).

    `opened_at` is the as-of date of the proposal decided on, so that a re-run of the same week
    counts them as open. Once a partner extract holds a case for the household opened on or
    after that date, the partner's record is the truth and the decided case is left out.
    """
    decided = stored_decided_cases(settings)
    store = Store(settings.home)
    if store.current_snapshot_id() is None:
        return decided
    partner_cases = store.read_table("cases", columns=["household_id", "opened_at", "closed_at"])
    return pending_decided_cases(decided, partner_cases=partner_cases)


def stored_decided_cases(settings: Settings) -> pd.DataFrame:
    """Every case a decision opened, as a contract `cases` table (none without a service.db)."""
    path = service_db_path(settings.home)
    rows = []
    if path.exists():
        with contextlib.closing(connect(path)) as connection:
            rows = decided_case_rows(connection)
    return decided_case_frame(rows)


def cases_with_decisions(
    partner_cases: pd.DataFrame, decided: pd.DataFrame, *, workers: pd.DataFrame
) -> pd.DataFrame:
    """The partners' cases plus the cases decisions opened that partners have not taken over
    (pending_decided_cases), of workers still in the workers table: the one merge the weekly
    job and the service's re-runs both count capacity by."""
    pending = pending_decided_cases(decided, partner_cases=partner_cases)
    pending = pending.loc[pending["worker_id"].isin(workers["worker_id"])]
    if pending.empty:
        return partner_cases
    return pd.concat([partner_cases, pending], ignore_index=True)


def decided_case_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows of decided_cases as a contract `cases` table."""
    cases = pd.DataFrame(
        rows, columns=["case_id", "household_id", "worker_id", "opened_at", "complexity_points"]
    )
    cases = cases.assign(
        opened_at=pd.to_datetime(cases["opened_at"]),
        closed_at=pd.NaT,
        close_reason=pd.Series(pd.NA, index=cases.index, dtype="str"),
    )
    dtypes = table_dtypes("cases")
    return cases.astype(dtypes)[list(dtypes)].reset_index(drop=True)


def pending_decided_cases(decided: pd.DataFrame, *, partner_cases: pd.DataFrame) -> pd.DataFrame:
    """The decided cases partners' records have not taken over: no partner case for the household
    opened since, and no partner case for it still open (the partner's record is the truth)."""
    latest_partner_case = partner_cases.groupby("household_id")["opened_at"].max()
    taken_over = decided["household_id"].map(latest_partner_case) >= decided["opened_at"]
    partner_open = open_cases(partner_cases)["household_id"]
    keep = ~taken_over.fillna(False).astype(bool) & ~decided["household_id"].isin(partner_open)
    return decided.loc[keep].reset_index(drop=True)
