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

import asyncio
import contextlib
import fcntl
import hashlib
import json
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field

from api.access import AccessRefused, Principal
from api.database import ServiceDB, now_text

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
    _insert(connection, entry, previous_hash=_last_hash(connection))
    return int(connection.execute("SELECT last_insert_rowid()").fetchone()[0])


def _last_hash(connection: sqlite3.Connection) -> str:
    last = connection.execute(
        "SELECT entry_hash FROM audit ORDER BY entry_id DESC LIMIT 1"
    ).fetchone()
    return GENESIS_HASH if last is None else last["entry_hash"]


def _insert(connection: sqlite3.Connection, entry: AuditEntry, *, previous_hash: str) -> str:
    """Insert the entry chained to `previous_hash`; returns its own hash."""
    at = now_text()
    chained = entry_hash(previous_hash=previous_hash, content=_content(entry, at=at))
    connection.execute(
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
            chained,
        ),
    )
    return chained


class AuditWriter:
    """Group commit: entries from concurrent requests are written in one durable transaction.

    One writer thread takes every entry waiting, appends them in arrival order inside one
    BEGIN IMMEDIATE ... COMMIT (synchronous=FULL: one fsync for the batch) and only then tells
    each caller. `record` (for threads) and `record_async` (for the event loop, without tying
    up a worker thread) return only once their entry is committed, or raise AuditUnavailable,
    so a caller hands out data knowing the read is on record. Several service processes may
    each run a writer: SQLite's write lock serialises their batches and each batch reads the
    chain's last hash inside its transaction, so the chain stays one and in commit order.
    """

    def __init__(self, db: ServiceDB) -> None:
        self.db = db
        self._pending: queue.SimpleQueue = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lock_file = None
        self.batches = 0

    def record(self, entry: AuditEntry) -> None:
        self._ensure_started()
        waiter = _ThreadWaiter()
        self._pending.put((entry, waiter))
        if not waiter.done.wait(_WAIT_SECONDS) or waiter.error:
            raise AuditUnavailable("the audit log could not be written; nothing was shown")

    async def record_async(self, entry: AuditEntry) -> None:
        """`record` for a coroutine: the event loop serves others while the batch commits."""
        self._ensure_started()
        future = asyncio.get_running_loop().create_future()
        self._pending.put((entry, future))
        try:
            error = await asyncio.wait_for(future, _WAIT_SECONDS)
        except TimeoutError:
            error = "timeout"
        if error:
            raise AuditUnavailable("the audit log could not be written; nothing was shown")

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
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
        error = ""
        try:
            with self._other_processes_wait(), self.db.write() as connection:
                previous_hash = _last_hash(connection)
                for entry, _ in batch:
                    previous_hash = _insert(connection, entry, previous_hash=previous_hash)
        except Exception as failure:  # every waiter must hear about it, whatever it was
            error = type(failure).__name__
        self.batches += 1
        _settle(batch, error=error)

    @contextlib.contextmanager
    def _other_processes_wait(self) -> Iterator[None]:
        """Queue the writers of other service processes on a file lock: SQLite's own busy
        handler would have them sleep 1, 2, 5, 10... ms and retry, adding that to every read
        that waits on the batch, where a lock wakes the next writer as soon as one commits."""
        if self._lock_file is None:
            # Held open for the writer's life: the lock is on the open file.
            path = self.db.path.with_name(f"{self.db.path.name}.audit-lock")
            self._lock_file = path.open("a")  # noqa: SIM115
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)


@dataclass
class _ThreadWaiter:
    done: threading.Event = field(default_factory=threading.Event)
    error: str = ""


def _settle(batch: list, *, error: str) -> None:
    # One wake-up per event loop per batch, not one per entry.
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future]] = {}
    for _, waiter in batch:
        if isinstance(waiter, _ThreadWaiter):
            waiter.error = error
            waiter.done.set()
        else:
            by_loop.setdefault(waiter.get_loop(), []).append(waiter)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop that has closed has nobody waiting
            loop.call_soon_threadsafe(_resolve, futures, error)


def _resolve(futures: list[asyncio.Future], error: str) -> None:
    for future in futures:
        if not future.done():
            future.set_result(error)


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
    what = {"action": action, "target": target, "purpose": purpose}
    try:
        yield detail
    except AccessRefused as refusal:
        writer.record(_refused(principal, refusal, detail=detail, **what))
        raise
    if record_allowed:
        writer.record(_entry(principal, outcome="allowed", detail=detail, **what))


@contextlib.asynccontextmanager
async def audited_async(
    writer: AuditWriter, principal: Principal, *, action: str, target: str, purpose: str
) -> AsyncIterator[dict]:
    """`audited` for coroutines: the same entries, awaited instead of blocking a thread."""
    detail: dict = {}
    what = {"action": action, "target": target, "purpose": purpose}
    try:
        yield detail
    except AccessRefused as refusal:
        await writer.record_async(_refused(principal, refusal, detail=detail, **what))
        raise
    await writer.record_async(_entry(principal, outcome="allowed", detail=detail, **what))


def _refused(principal: Principal, refusal: AccessRefused, *, detail: dict, **what) -> AuditEntry:
    return _entry(
        principal, outcome="refused", detail=detail | {"status": refusal.status_code}, **what
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
