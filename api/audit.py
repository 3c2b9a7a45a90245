"""The append-only audit log: who read or decided what, when, and why.

Every read of household-level data, every refused attempt, every decision, sign-in and change to
a user is one entry in the `audit` table of service.db. Entries are never changed or removed
(SQLite triggers refuse it) and each carries the SHA-256 of its content chained to the entry
before it, so `verify_chain` can show that nobody edited the file behind the service's back.

Reads are audited before the data leaves the service: if the entry cannot be written, the
caller gets an error instead of the data. Concurrent requests share one durable commit (group
commit) so that auditing every read stays cheap under load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from api.access import AccessRefused, Principal
from api.service_db import ServiceDB, now_text

GENESIS_HASH = "0" * 64
# What an entry's `action` says; documented in docs/service.md.
AUDIT_ACTIONS: tuple[str, ...] = (
    "sign_in",
    "sign_out",
    "read_household",
    "read_caseload",
    "read_locality",
    "read_proposal",
    "create_proposal",
    "decide",
    "read_models",
    "read_features",
    "read_audit",
    "read_users",
    "user_added",
    "user_changed",
)
OUTCOMES: tuple[str, ...] = ("allowed", "refused", "failed")
_BATCH_LIMIT = 256
_WAIT_SECONDS = 30.0


class AuditUnavailable(Exception):
    """The audit entry could not be written, so the action must not go ahead."""


@dataclass(frozen=True)
class AuditEntry:
    """One audit record. `detail` holds ids and counts, never names or free-text about people."""

    actor: str
    role: str
    action: str
    target: str
    outcome: str = "allowed"
    purpose: str = ""
    detail: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in AUDIT_ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {self.outcome!r}")


def _content(entry: AuditEntry, *, at: str) -> str:
    return json.dumps(
        {
            "at": at,
            "actor": entry.actor,
            "role": entry.role,
            "action": entry.action,
            "target": entry.target,
            "outcome": entry.outcome,
            "purpose": entry.purpose,
            "detail": entry.detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )


def entry_hash(*, previous_hash: str, content: str) -> str:
    return hashlib.sha256(f"{previous_hash}\n{content}".encode()).hexdigest()


def append_entry(connection: sqlite3.Connection, entry: AuditEntry) -> int:
    """Add an entry inside the caller's write transaction; returns its id."""
    last = connection.execute(
        "SELECT entry_hash FROM audit ORDER BY entry_id DESC LIMIT 1"
    ).fetchone()
    previous_hash = GENESIS_HASH if last is None else last["entry_hash"]
    at = now_text()
    content = _content(entry, at=at)
    cursor = connection.execute(
        "INSERT INTO audit (at, actor, role, action, target, outcome, purpose, detail,"
        " previous_hash, entry_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            at,
            entry.actor,
            entry.role,
            entry.action,
            entry.target,
            entry.outcome,
            entry.purpose,
            json.dumps(entry.detail, sort_keys=True, separators=(",", ":"), default=str),
            previous_hash,
            entry_hash(previous_hash=previous_hash, content=content),
        ),
    )
    return int(cursor.lastrowid)


class AuditWriter:
    """Group commit: entries from concurrent requests are written in one durable transaction.

    `record` returns only once its entry is committed (or raises AuditUnavailable), so a caller
    can hand out data knowing the read is on record.
    """

    def __init__(self, db: ServiceDB) -> None:
        self.db = db
        self._pending: queue.Queue = queue.Queue()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def record(self, entry: AuditEntry) -> None:
        self._ensure_started()
        done, outcome = threading.Event(), {}
        self._pending.put((entry, done, outcome))
        if not done.wait(_WAIT_SECONDS) or "error" in outcome:
            raise AuditUnavailable("the audit log could not be written; nothing was shown")

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._pending.get()]
            while len(batch) < _BATCH_LIMIT:
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list) -> None:
        try:
            with self.db.write() as connection:
                for entry, _, _ in batch:
                    append_entry(connection, entry)
        except Exception as error:  # every waiter must hear about it, whatever it was
            for _, _, outcome in batch:
                outcome["error"] = type(error).__name__
        for _, done, _ in batch:
            done.set()


def record_now(db: ServiceDB, entry: AuditEntry) -> None:
    """Write one entry in its own transaction (for the CLI, where nothing runs concurrently)."""
    with db.write() as connection:
        append_entry(connection, entry)


def read_entries(
    connection: sqlite3.Connection,
    *,
    limit: int = 100,
    before_id: int | None = None,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
) -> list[dict]:
    """Entries newest first, optionally filtered; page with `before_id`."""
    conditions, values = [], []
    for column, value in (("actor", actor), ("action", action), ("target", target)):
        if value is not None:
            conditions.append(f"{column} = ?")
            values.append(value)
    if before_id is not None:
        conditions.append("entry_id < ?")
        values.append(before_id)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = connection.execute(
        f"SELECT * FROM audit {where} ORDER BY entry_id DESC LIMIT ?", (*values, limit)
    )
    return [dict(row) | {"detail": json.loads(row["detail"])} for row in rows]


def verify_chain(connection: sqlite3.Connection) -> dict[str, object]:
    """Recompute every entry's hash: the count checked and the ids that do not match."""
    previous_hash, broken, checked = GENESIS_HASH, [], 0
    for row in connection.execute("SELECT * FROM audit ORDER BY entry_id"):
        entry = AuditEntry(
            actor=row["actor"],
            role=row["role"],
            action=row["action"],
            target=row["target"],
            outcome=row["outcome"],
            purpose=row["purpose"],
            detail=json.loads(row["detail"]),
        )
        expected = entry_hash(previous_hash=previous_hash, content=_content(entry, at=row["at"]))
        if row["previous_hash"] != previous_hash or row["entry_hash"] != expected:
            broken.append(int(row["entry_id"]))
        previous_hash, checked = row["entry_hash"], checked + 1
    return {"entries": checked, "broken": broken, "intact": not broken}


@contextlib.contextmanager
def audited(
    writer: AuditWriter,
    principal: Principal,
    *,
    action: str,
    target: str,
    purpose: str,
    record_allowed: bool = True,
) -> Iterator[dict]:
    """Run an access check and record its outcome; the block may add ids and counts to the
    yielded detail. A refusal is recorded and re-raised; success is recorded before returning,
    so the caller hands out data only once the read is on record. (`record_allowed=False` when
    the caller records success itself, in the same transaction as the change it makes.)"""
    detail: dict = {}
    try:
        yield detail
    except AccessRefused as refusal:
        writer.record(
            _entry(
                principal,
                action=action,
                target=target,
                purpose=purpose,
                outcome="refused",
                detail=detail | {"status": refusal.status_code},
            )
        )
        raise
    writer.record(
        _entry(
            principal,
            action=action,
            target=target,
            purpose=purpose,
            outcome="allowed",
            detail=detail,
        )
    )


def record_failure(
    writer: AuditWriter,
    principal: Principal,
    *,
    action: str,
    target: str,
    purpose: str,
    detail: dict,
) -> None:
    """Record an allowed attempt that failed (a broken rule, a conflict): nothing changed."""
    writer.record(
        _entry(
            principal,
            action=action,
            target=target,
            purpose=purpose,
            outcome="failed",
            detail=detail,
        )
    )


def _entry(
    principal: Principal, *, action: str, target: str, purpose: str, outcome: str, detail: dict
) -> AuditEntry:
    return AuditEntry(
        actor=principal.username,
        role=principal.role,
        action=action,
        target=target,
        outcome=outcome,
        purpose=purpose,
        detail=detail,
    )
