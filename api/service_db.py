"""The service's own records in SQLite: users, sign-in tokens, proposals, decisions, cases, audit.

One file, `<REBALANCE_HOME>/service.db`, in WAL mode so that readers never wait for a writer.
Within a process every write goes through one lock (`ServiceDB.write`), so threads queue in
Python instead of spinning on SQLite's busy handler; other processes (the `rebalance users` CLI)
are serialised by SQLite's own lock. Commits are synchronous=FULL: a decision or an audit entry
that was acknowledged survives a power cut.

Decisions and the audit log are append-only: triggers refuse UPDATE and DELETE on them, so not
even a bug in this service can rewrite history (see api.audit for the hash chain on top).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from api.settings import Settings
from features.contract import table_dtypes
from features.store import Store

SERVICE_DB_FILE = "service.db"
SCHEMA_VERSION = 1
ROLES: tuple[str, ...] = ("key_worker", "locality_manager", "data_scientist", "admin")
DECISION_ACTIONS: tuple[str, ...] = ("accept", "override", "waitlist", "reject")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ({", ".join(repr(role) for role in ROLES)})),
    worker_id TEXT,
    locality TEXT,
    password_hash TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES users (username),
    kind TEXT NOT NULL CHECK (kind IN ('api', 'session')),
    csrf TEXT,
    created_at TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_user ON tokens (username);
CREATE TABLE IF NOT EXISTS sign_in_failures (
    throttle_key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    first_at REAL NOT NULL,
    locked_until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS proposals (
    proposal_id TEXT PRIMARY KEY,
    locality TEXT NOT NULL,
    as_of TEXT NOT NULL,
    source TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    model_version TEXT,
    summary TEXT NOT NULL,
    workers TEXT NOT NULL,
    locks TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_by_locality ON proposals (locality, as_of, created_at);
CREATE TABLE IF NOT EXISTS proposal_rows (
    proposal_id TEXT NOT NULL REFERENCES proposals (proposal_id),
    household_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    locality TEXT NOT NULL,
    risk REAL NOT NULL,
    needs TEXT NOT NULL,
    reasons TEXT NOT NULL,
    points INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('assigned', 'waitlisted')),
    worker_id TEXT,
    value REAL NOT NULL,
    explanation TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    decision TEXT,
    decided_worker TEXT,
    decision_reason TEXT,
    decided_by TEXT,
    decided_at TEXT,
    PRIMARY KEY (proposal_id, household_id)
);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id INTEGER PRIMARY KEY AUTOINCREMENT,
    proposal_id TEXT NOT NULL,
    household_id TEXT NOT NULL,
    locality TEXT NOT NULL,
    action TEXT NOT NULL,
    proposed_worker TEXT,
    chosen_worker TEXT,
    reason TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    shown_risk REAL NOT NULL,
    shown_reasons TEXT NOT NULL,
    override_record TEXT
);
CREATE INDEX IF NOT EXISTS decisions_by_locality ON decisions (locality, decided_at);
CREATE TABLE IF NOT EXISTS decided_cases (
    case_id TEXT PRIMARY KEY,
    household_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    complexity_points INTEGER NOT NULL CHECK (complexity_points > 0),
    proposal_id TEXT NOT NULL,
    decision_id INTEGER NOT NULL REFERENCES decisions (decision_id)
);
CREATE INDEX IF NOT EXISTS decided_cases_by_worker ON decided_cases (worker_id);
CREATE INDEX IF NOT EXISTS decided_cases_by_household ON decided_cases (household_id);
CREATE TABLE IF NOT EXISTS audit (
    entry_id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    purpose TEXT NOT NULL,
    detail TEXT NOT NULL,
    previous_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_actor ON audit (actor, entry_id);
CREATE INDEX IF NOT EXISTS audit_by_target ON audit (target, entry_id);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_are_append_only_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_are_append_only_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END;
PRAGMA user_version = {SCHEMA_VERSION};
"""


class ConflictError(Exception):
    """Someone else changed the row first (optimistic concurrency), or a rule now forbids it."""


class ServiceDB:
    """The service database: per-thread read connections and one serialised writer."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(_connect(self.path)) as connection:
            connection.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"ServiceDB({str(self.path)!r})"

    def read(self) -> sqlite3.Connection:
        """This thread's connection, for reads outside a write transaction."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = _connect(self.path)
        return connection

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE), committed on success, rolled back on error."""
        with self._write_lock:
            connection = self.read()
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def service_db_path(home: Path) -> Path:
    return Path(home) / SERVICE_DB_FILE


def open_service_db(home: Path) -> ServiceDB:
    """The service database under REBALANCE_HOME, created on first use."""
    return ServiceDB(service_db_path(home))


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _as_dict(row: sqlite3.Row | None) -> dict | None:
    return None if row is None else dict(row)


# --- users and tokens ------------------------------------------------------------------------


def insert_user(
    connection: sqlite3.Connection,
    *,
    username: str,
    role: str,
    password_hash: str,
    worker_id: str | None,
    locality: str | None,
) -> None:
    stamp = now_text()
    connection.execute(
        "INSERT INTO users (username, role, worker_id, locality, password_hash, active,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
        (username, role, worker_id, locality, password_hash, stamp, stamp),
    )


def update_user(
    connection: sqlite3.Connection, *, username: str, values: Mapping[str, object]
) -> None:
    allowed = {"role", "worker_id", "locality", "password_hash", "active"}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"cannot update user column(s) {sorted(unknown)}")
    assignments = ", ".join(f"{name} = ?" for name in values)
    connection.execute(
        f"UPDATE users SET {assignments}, updated_at = ? WHERE username = ?",
        (*values.values(), now_text(), username),
    )


def user_by_name(connection: sqlite3.Connection, username: str) -> dict | None:
    row = connection.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
    return _as_dict(row)


def list_users(connection: sqlite3.Connection) -> list[dict]:
    rows = connection.execute(
        "SELECT username, role, worker_id, locality, active, created_at, updated_at"
        " FROM users ORDER BY role, username"
    )
    return [dict(row) for row in rows]


def insert_token(
    connection: sqlite3.Connection,
    *,
    token_hash: str,
    username: str,
    kind: str,
    csrf: str | None,
    expires_at: float,
) -> None:
    connection.execute(
        "INSERT INTO tokens (token_hash, username, kind, csrf, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash, username, kind, csrf, now_text(), expires_at),
    )


def token_user(
    connection: sqlite3.Connection, *, token_hash: str, kind: str, now: float
) -> dict | None:
    """The active user a live token of this kind belongs to, with the token's CSRF secret."""
    row = connection.execute(
        "SELECT users.username, users.role, users.worker_id, users.locality, tokens.csrf"
        " FROM tokens JOIN users ON users.username = tokens.username"
        " WHERE tokens.token_hash = ? AND tokens.kind = ? AND tokens.expires_at > ?"
        " AND users.active = 1",
        (token_hash, kind, now),
    ).fetchone()
    return _as_dict(row)


def delete_tokens(
    connection: sqlite3.Connection, *, token_hash: str | None = None, username: str | None = None
) -> None:
    if token_hash is not None:
        connection.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,))
    if username is not None:
        connection.execute("DELETE FROM tokens WHERE username = ?", (username,))


def delete_expired_tokens(connection: sqlite3.Connection, *, now: float) -> None:
    connection.execute("DELETE FROM tokens WHERE expires_at <= ?", (now,))


# --- sign-in throttling -------------------------------------------------------------------------


def failure_state(connection: sqlite3.Connection, throttle_key: str) -> dict | None:
    row = connection.execute(
        "SELECT * FROM sign_in_failures WHERE throttle_key = ?", (throttle_key,)
    ).fetchone()
    return _as_dict(row)


def save_failure_state(
    connection: sqlite3.Connection,
    *,
    throttle_key: str,
    failures: int,
    first_at: float,
    locked_until: float,
) -> None:
    connection.execute(
        "INSERT INTO sign_in_failures (throttle_key, failures, first_at, locked_until)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (throttle_key) DO UPDATE SET"
        " failures = excluded.failures, first_at = excluded.first_at,"
        " locked_until = excluded.locked_until",
        (throttle_key, failures, first_at, locked_until),
    )


def clear_failures(connection: sqlite3.Connection, throttle_key: str) -> None:
    connection.execute("DELETE FROM sign_in_failures WHERE throttle_key = ?", (throttle_key,))


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
    return _as_dict(row)


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
    path = service_db_path(settings.home)
    rows = []
    if path.exists():
        with contextlib.closing(_connect(path)) as connection:
            rows = decided_case_rows(connection)
    decided = decided_case_frame(rows)
    store = Store(settings.home)
    if store.current_snapshot_id() is None:
        return decided
    partner_cases = store.read_table("cases", columns=["household_id", "opened_at", "closed_at"])
    return pending_decided_cases(decided, partner_cases=partner_cases)


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
    partner_open = partner_cases.loc[partner_cases["closed_at"].isna(), "household_id"]
    keep = ~taken_over.fillna(False).astype(bool) & ~decided["household_id"].isin(partner_open)
    return decided.loc[keep].reset_index(drop=True)
