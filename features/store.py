"""The working store: immutable snapshots of loaded extracts, one of which is current.

Layout under `<home>/store/`:

    snapshots/<snapshot id>/<table>.parquet   the five tables in canonical dtypes
    snapshots/<snapshot id>/manifest.json     where they came from, file hashes, row counts
    CURRENT                                   the id of the current snapshot
    ingest-log.jsonl                          one line per ingest attempt (no row data)

A snapshot is written under a temporary name inside the store, renamed into place only once it is
complete, and CURRENT is switched with `os.replace`; so a reader sees either the old snapshot or
the new one, never a part-written one, and a failed write leaves the store as it was. Snapshots are
never changed once in place, so a reader that has resolved CURRENT can read its tables at leisure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.contract import TABLE_NAMES, column_names, table_dtypes

# POSIX: the lock is released by the kernel even if the process dies. Windows has no fcntl; one
# ingest at a time is then on trust.
try:
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

STORE_DIR = "store"
SNAPSHOTS_DIR = "snapshots"
CURRENT_FILE = "CURRENT"
MANIFEST_FILE = "manifest.json"
LOG_FILE = "ingest-log.jsonl"
_LOCK_FILE = ".lock"
_INCOMING_PREFIX = ".incoming-"
_SNAPSHOT_ID = re.compile(r"[0-9a-f]{8,64}")


class StoreError(Exception):
    """The store cannot answer: an unknown snapshot, an unknown table, or a damaged store."""


class StoreBusyError(StoreError):
    """Another ingest holds the store's write lock."""


class EmptyStoreError(StoreError):
    """Nothing has been ingested yet."""

    def __init__(self) -> None:
        super().__init__("no data ingested yet: run `rebalance ingest DIR`")


class Store:
    """Snapshots of ingested extracts under `<home>/store`, read back in canonical dtypes."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.root = self.home / STORE_DIR
        self.snapshots_dir = self.root / SNAPSHOTS_DIR
        self.log_path = self.root / LOG_FILE

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    # Reading ----------------------------------------------------------------------------------

    def current_snapshot_id(self) -> str | None:
        """The id CURRENT names, or None before the first successful ingest."""
        try:
            snapshot_id = (self.root / CURRENT_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return snapshot_id or None

    def snapshot_ids(self) -> list[str]:
        """Every complete snapshot, oldest first (by the time it was ingested)."""
        if not self.snapshots_dir.is_dir():
            return []
        complete = [
            path.name
            for path in self.snapshots_dir.iterdir()
            if _SNAPSHOT_ID.fullmatch(path.name) and (path / MANIFEST_FILE).is_file()
        ]
        return sorted(
            complete, key=lambda snapshot_id: (self._ingested_at(snapshot_id), snapshot_id)
        )

    def has_snapshot(self, snapshot_id: str) -> bool:
        path = self.snapshots_dir / snapshot_id
        return bool(_SNAPSHOT_ID.fullmatch(snapshot_id)) and (path / MANIFEST_FILE).is_file()

    def manifest(self, snapshot_id: str | None = None) -> dict:
        """The manifest of a snapshot (default: the current one)."""
        path = self._snapshot_path(snapshot_id) / MANIFEST_FILE
        return json.loads(path.read_text(encoding="utf-8"))

    def read_table(
        self,
        name: str,
        *,
        snapshot_id: str | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """One contract table (default: from the current snapshot) in canonical dtypes."""
        if name not in TABLE_NAMES:
            raise StoreError(f"unknown table {name!r}: the tables are {', '.join(TABLE_NAMES)}")
        dtypes = table_dtypes(name)
        unknown = [column for column in columns or [] if column not in dtypes]
        if unknown:
            raise StoreError(
                f"table {name} has no column {', '.join(unknown)}: "
                f"its columns are {', '.join(column_names(name))}"
            )
        path = self._snapshot_path(snapshot_id) / f"{name}.parquet"
        if not path.is_file():
            raise StoreError(f"the store is damaged: {path} is missing")
        table = pd.read_parquet(path, columns=list(columns) if columns is not None else None)
        return table.astype({column: dtypes[column] for column in table.columns})

    def read_tables(self, *, snapshot_id: str | None = None) -> dict[str, pd.DataFrame]:
        """All five tables of one snapshot (default: the current one, resolved once)."""
        resolved = snapshot_id or self._require_current()
        return {name: self.read_table(name, snapshot_id=resolved) for name in TABLE_NAMES}

    def verify(self, snapshot_id: str | None = None) -> list[str]:
        """Tables whose stored file no longer matches the hash in the manifest (empty = intact)."""
        path = self._snapshot_path(snapshot_id)
        recorded = self.manifest(snapshot_id)["tables"]
        return [
            name
            for name, entry in recorded.items()
            if not (path / entry["file"]).is_file()
            or _file_sha256(path / entry["file"]) != entry["sha256"]
        ]

    # Writing (used by ingest, under `locked()`) ------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's write lock: one ingest at a time (StoreBusyError if it is taken)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / _LOCK_FILE, "a+b") as lock_file:
            if fcntl is not None:
                try:
                    fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StoreBusyError(
                        f"another ingest into {self.home} is running: try again when it has ended"
                    ) from None
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)

    def remove_incomplete(self) -> None:
        """Delete what an interrupted write left behind (never a complete snapshot)."""
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if not path.name.startswith(_INCOMING_PREFIX):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def add_snapshot(
        self, *, snapshot_id: str, tables: dict[str, pd.DataFrame], manifest: dict
    ) -> None:
        """Write a complete snapshot and make it current; on any failure the store is unchanged."""
        incoming = self.root / f"{_INCOMING_PREFIX}{uuid.uuid4().hex}"
        target = self.snapshots_dir / snapshot_id
        first_snapshot = not self.snapshots_dir.exists()
        try:
            incoming.mkdir(parents=True)
            stored = {
                name: _write_table(incoming / f"{name}.parquet", tables[name]) for name in tables
            }
            _write_json(incoming / MANIFEST_FILE, {**manifest, "tables": stored})
            _sync_directory(incoming)
            self.snapshots_dir.mkdir(exist_ok=True)
            os.rename(incoming, target)
            _sync_directory(self.snapshots_dir)
            self.set_current(snapshot_id)
        except BaseException:
            # Undo in reverse: the store must look exactly as it did before this call.
            shutil.rmtree(incoming, ignore_errors=True)
            if target.exists() and self.current_snapshot_id() != snapshot_id:
                shutil.rmtree(target, ignore_errors=True)
            if first_snapshot and self.snapshots_dir.is_dir():
                with contextlib.suppress(OSError):
                    self.snapshots_dir.rmdir()
            raise

    def set_current(self, snapshot_id: str) -> None:
        """Point CURRENT at a complete snapshot, atomically."""
        if not self.has_snapshot(snapshot_id):
            raise StoreError(f"no complete snapshot {snapshot_id!r} in {self.snapshots_dir}")
        pending = self.root / f"{_INCOMING_PREFIX}{CURRENT_FILE}-{uuid.uuid4().hex}"
        try:
            with open(pending, "w", encoding="utf-8") as current_file:
                current_file.write(snapshot_id + "\n")
                current_file.flush()
                os.fsync(current_file.fileno())
            os.replace(pending, self.root / CURRENT_FILE)
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        _sync_directory(self.root)

    def append_log(self, entry: dict) -> None:
        """Add one line to the ingest log; callers pass outcomes and counts, never row data."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            log_file.write(json.dumps(entry, sort_keys=True) + "\n")
            log_file.flush()
            os.fsync(log_file.fileno())

    # Internals --------------------------------------------------------------------------------

    def _require_current(self) -> str:
        snapshot_id = self.current_snapshot_id()
        if snapshot_id is None:
            raise EmptyStoreError()
        return snapshot_id

    def _snapshot_path(self, snapshot_id: str | None) -> Path:
        resolved = snapshot_id or self._require_current()
        if not _SNAPSHOT_ID.fullmatch(resolved):
            raise StoreError(f"{resolved!r} is not a snapshot id")
        path = self.snapshots_dir / resolved
        if not (path / MANIFEST_FILE).is_file():
            known = ", ".join(self.snapshot_ids()) or "none"
            raise StoreError(f"no snapshot {resolved} in {self.snapshots_dir} (snapshots: {known})")
        return path

    def _ingested_at(self, snapshot_id: str) -> str:
        return str(self.manifest(snapshot_id).get("ingested_at", ""))


def _write_table(path: Path, table: pd.DataFrame) -> dict:
    """Write one table as Parquet, flushed to disk; return its file name and hash."""
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path)
    _sync_file(path)
    return {"file": path.name, "sha256": _file_sha256(path), "rows": len(table)}


def _write_json(path: Path, payload: dict) -> None:
    with open(path, "w", encoding="utf-8") as json_file:
        json_file.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        json_file.flush()
        os.fsync(json_file.fileno())


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stored:
        for block in iter(lambda: stored.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sync_file(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _sync_directory(path: Path) -> None:
    """Make a rename inside `path` durable (a no-op where directories cannot be opened)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
