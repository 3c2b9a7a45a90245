"""`rebalance ingest DIR`: check a partner extract folder and make it the current snapshot.

The folder is checked as a whole (features.validation) before anything is written. A folder that
keeps the contract becomes a snapshot whose id is a hash of the files' contents, so loading the same
files again changes nothing, and a newer extract becomes a new snapshot while older ones stay
readable. Every attempt, refused or not, adds one line to the store's ingest log: when, which
folder, the outcome, the snapshot id and the number of problems; never a value from the data.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from features.contract import CONTRACT_VERSION, TABLE_NAMES
from features.store import Store, StoreBusyError
from features.validation import MAX_REPORTED_PROBLEMS, ContractError, Extract, read_extract

logger = logging.getLogger(__name__)

_SNAPSHOT_ID_LENGTH = 16


@dataclass(frozen=True)
class IngestResult:
    """What one successful ingest did."""

    snapshot_id: str
    created: bool  # False: these exact files had been ingested before
    previous_snapshot_id: str | None  # what CURRENT named before this ingest
    row_counts: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def current_changed(self) -> bool:
        return self.previous_snapshot_id != self.snapshot_id

    @property
    def outcome(self) -> str:
        """created (a new snapshot), reinstated (an older one current again) or unchanged."""
        if self.created:
            return "created"
        return "reinstated" if self.current_changed else "unchanged"


def snapshot_id_of(extract: Extract) -> str:
    """The content hash naming an extract's snapshot: the same files give the same id."""
    digest = hashlib.sha256(f"contract {CONTRACT_VERSION}\n".encode())
    for table in TABLE_NAMES:
        digest.update(f"{table} {extract.sources[table].sha256}\n".encode())
    return digest.hexdigest()[:_SNAPSHOT_ID_LENGTH]


def _manifest(extract: Extract, *, folder: Path, snapshot_id: str) -> dict:
    return {
        "snapshot_id": snapshot_id,
        "contract_version": CONTRACT_VERSION,
        "ingested_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "source_folder": str(folder.resolve()),
        "source_files": {
            table: {"file": source.path.name, "sha256": source.sha256, "bytes": source.size}
            for table, source in extract.sources.items()
        },
        "row_counts": _row_counts(extract),
        "warnings": list(extract.warnings),
    }


def _row_counts(extract: Extract) -> dict[str, int]:
    return {table: len(extract[table]) for table in TABLE_NAMES}


def _load(folder: Path, store: Store, *, max_problems: int) -> IngestResult:
    """Check the folder, then publish it as a new snapshot or point CURRENT at an existing one."""
    extract = read_extract(folder, max_problems=max_problems)
    snapshot_id = snapshot_id_of(extract)
    previous = store.current_snapshot_id()
    created = not store.has_snapshot(snapshot_id)
    if created:
        manifest = _manifest(extract, folder=folder, snapshot_id=snapshot_id)
        store.add_snapshot(snapshot_id=snapshot_id, tables=dict(extract), manifest=manifest)
    elif previous != snapshot_id:
        store.set_current(snapshot_id)
    return IngestResult(snapshot_id, created, previous, _row_counts(extract), extract.warnings)


def _log_entry(folder: Path, *, outcome: str, started: float, **details: object) -> dict:
    """One ingest-log line: outcome and counts only, never a value from the data."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "folder": str(folder.resolve()),
        "outcome": outcome,
        "snapshot_id": None,
        "problems": None,
        "seconds": round(time.perf_counter() - started, 3),
        **details,
    }


def ingest_folder(
    folder: Path, *, home: Path, max_problems: int = MAX_REPORTED_PROBLEMS
) -> IngestResult:
    """Check `folder` against the data contract and make it the current snapshot in `home`.

    Raises `ContractError` (with the report) when the folder breaks the contract, and
    `StoreBusyError` when another ingest is running; the store is then left exactly as it was,
    apart from one more line in its ingest log. The report lists the first `max_problems`.
    """
    folder, store = Path(folder), Store(home)
    started = time.perf_counter()
    try:
        with store.locked():
            return _ingest_locked(folder, store, started=started, max_problems=max_problems)
    except StoreBusyError:
        store.append_log(_log_entry(folder, outcome="busy", started=started))
        raise


def _ingest_locked(
    folder: Path, store: Store, *, started: float, max_problems: int
) -> IngestResult:
    store.remove_incomplete()
    try:
        result = _load(folder, store, max_problems=max_problems)
    except ContractError as error:
        entry = _log_entry(folder, outcome="refused", started=started, problems=error.total)
        store.append_log(entry)
        logger.warning("ingest refused: %d contract problems", error.total)
        raise
    except BaseException as error:
        store.append_log(
            _log_entry(folder, outcome="failed", started=started, error=type(error).__name__)
        )
        raise
    counts = {"problems": 0, "rows": result.row_counts, "warnings": len(result.warnings)}
    store.append_log(
        _log_entry(
            folder,
            outcome=result.outcome,
            started=started,
            snapshot_id=result.snapshot_id,
            **counts,
        )
    )
    logger.info("ingest %s: snapshot %s", result.outcome, result.snapshot_id)
    return result
