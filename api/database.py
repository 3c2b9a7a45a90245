"""The service's own database in SQLite: the file, its schema, connections and the one writer.

One file, `<REBALANCE_HOME>/service.db`, in WAL mode so that readers never wait for a writer.
Within a process every write goes through one lock (`ServiceDB.write`), so threads queue in
Python instead of spinning on SQLite's busy handler; other processes (the `rebalance users` CLI)
are serialised by SQLite's own lock. Commits are synchronous=FULL: a decision or an audit entry
that was acknowledged survives a power cut.

Decisions and the audit log are append-only: triggers refuse UPDATE and DELETE on them, so not
even a bug in this service can rewrite history (see api.audit for the hash chain on top).
What is stored: users, tokens and sign-in failures (api.users_db); proposals, decisions and the
cases they open (api.service_db); the audit log (api.audit).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

SERVICE_DB_FILE = "service.db"
SCHEMA_VERSION = 1
ROLES: tuple[str, ...] = ("key_worker", "locality_manager", "data_scientist", "admin")

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
        with contextlib.closing(connect(self.path)) as connection:
            connection.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"ServiceDB({str(self.path)!r})"

    def read(self) -> sqlite3.Connection:
        """This thread's connection, for reads outside a write transaction."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = connect(self.path)
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


def connect(path: Path) -> sqlite3.Connection:
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


def as_dict(row: sqlite3.Row | None) -> dict | None:
    return None if row is None else dict(row)
