"""A published week on disk: every household's record of a weekly run, in `records.db`.

SQLite, one row per household, its JSON body and page section each LZ4-compressed. A file is
written beside its final name and moved into place (api.published), and never changed in place,
so readers open it immutable. Its `key` (`record_key`) names what its records were made from; a
week is read only if that is what the service has loaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from markupsafe import Markup, escape

from api.pages import TEMPLATE_DIR
from models.explain import REASON_TEMPLATES_PATH

RECORDS_FILE = "records.db"
# Bump when what a record holds, or how it is written, changes: older files are then not read.
FORMAT_VERSION = 2
KEY_WORKERS_SLOT = "\x1fkey-workers\x1f"
# LZ4 (pyarrow's): a week's records are a gigabyte or two of text, compressed every week and
# decompressed on every read; LZ4 does both several times faster than zlib.
_CODEC = "lz4"
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (
    household_id TEXT PRIMARY KEY,
    json BLOB NOT NULL,
    json_size INTEGER NOT NULL,
    page BLOB NOT NULL,
    page_size INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class HouseholdRecord:
    """One household's record without its key workers: `json_start` is the API body up to the
    `key_workers` value; `page` the page section, with KEY_WORKERS_SLOT where they go."""

    json_start: bytes
    page: str

    def json(self, key_workers: list[str]) -> bytes:
        return self.json_start + json.dumps(key_workers).encode() + b"}"

    def html(self, key_workers: list[str]) -> Markup:
        shown = escape(", ".join(key_workers) or "none")
        return Markup(self.page.replace(KEY_WORKERS_SLOT, shown, 1))


def _file_digest(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def record_key(
    *, week_dir: Path, previous_week_dir: Path | None, snapshot_id: str, horizon_weeks: int
) -> dict[str, object]:
    """What a week's records are made from: if any of it changes, they are made again."""
    sources = [
        TEMPLATE_DIR / "_household.html",
        TEMPLATE_DIR / "_macros.html",
        REASON_TEMPLATES_PATH,
    ]
    return {
        "format": FORMAT_VERSION,
        "templates": hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest(),
        "scores": _file_digest(week_dir / "scores.csv"),
        "previous_scores": _file_digest(
            None if previous_week_dir is None else previous_week_dir / "scores.csv"
        ),
        "snapshot_id": snapshot_id,
        "horizon_weeks": int(horizon_weeks),
    }


def record_row(household_id: str, record: HouseholdRecord) -> tuple:
    """The household's row of the records table: each part compressed, with its size."""
    page = record.page.encode()
    return (
        household_id,
        _compressed(record.json_start),
        len(record.json_start),
        _compressed(page),
        len(page),
    )


def _compressed(data: bytes) -> bytes:
    return pa.compress(data, codec=_CODEC, asbytes=True)


def write_records(path: Path, row_batches: Iterable[list[tuple]], *, key: dict) -> None:
    """A new records file at `path`: the batches of `record_row`s, then the key."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.executescript(_SCHEMA)
        for rows in row_batches:
            connection.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?)", rows)
        connection.execute("INSERT INTO meta VALUES ('key', ?)", (json.dumps(key, sort_keys=True),))
        connection.commit()


def published_key(path: Path) -> dict | None:
    """The key a published week was made with (None when there is none, or it is unreadable)."""
    if not path.is_file():
        return None
    try:
        with contextlib.closing(_open_read_only(path)) as connection:
            return _key_of(connection)
    except sqlite3.DatabaseError:
        return None


def _key_of(connection: sqlite3.Connection) -> dict | None:
    row = connection.execute("SELECT value FROM meta WHERE key = 'key'").fetchone()
    return None if row is None else json.loads(row[0])


def _open_read_only(path: Path) -> sqlite3.Connection:
    # immutable: a published file is never changed in place (a new one is moved over it, and an
    # open connection goes on reading the file it opened), so SQLite can skip all locking.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)


class PublishedRecords:
    """A published week, read by any thread (one connection each). Each connection checks the
    file's key when it opens: a file published since (moved over this one) is not read, its
    records being for other scores or another snapshot than the week being served."""

    def __init__(self, path: Path, *, key: dict) -> None:
        self.path = path
        self.key = key
        self._local = threading.local()

    def get(self, household_id: str) -> HouseholdRecord | None:
        """The household's record (None if it is not here, or the file is no longer this week's)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect()
        if connection is False:
            return None
        row = connection.execute(
            "SELECT json, json_size, page, page_size FROM records WHERE household_id = ?",
            (household_id,),
        ).fetchone()
        if row is None:
            return None
        json_start, page = (
            pa.decompress(row[at], decompressed_size=row[at + 1], codec=_CODEC, asbytes=True)
            for at in (0, 2)
        )
        return HouseholdRecord(json_start=json_start, page=page.decode())

    def _connect(self) -> sqlite3.Connection | bool:
        try:
            connection = _open_read_only(self.path)
            return connection if _key_of(connection) == self.key else False
        except sqlite3.DatabaseError:
            return False


def open_published(path: Path, *, key: dict) -> PublishedRecords | None:
    """The published week at `path` if it was made with `key`, else None."""
    return PublishedRecords(path, key=key) if published_key(path) == key else None
