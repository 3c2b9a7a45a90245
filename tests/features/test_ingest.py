"""Ingest and the store: content-addressed snapshots, an atomic CURRENT, and nothing half-written.

"Exactly as before" is checked byte for byte over every file under <home>/store except the ingest
log, which records every attempt by design (and the lock file, which exists from the first ingest).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import features.store
from features.contract import TABLE_NAMES, table_dtypes
from features.ingest import ingest_folder
from features.store import EmptyStoreError, Store, StoreBusyError, StoreError
from features.validation import ContractError, read_extract

_NOT_DATA = {"ingest-log.jsonl", ".lock"}


def _store_files(home: Path) -> dict[str, bytes]:
    root = home / "store"
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in _NOT_DATA
    }


def _store_dirs(home: Path) -> list[str]:
    root = home / "store"
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_dir())


def _log(home: Path) -> list[dict]:
    lines = (home / "store" / "ingest-log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _newer(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Next week's extract: one more police callout for household H002."""
    extra = (
        tables["events"]
        .iloc[[5]]
        .assign(
            event_id="E900",
            household_id="H002",
            person_id="P03",
            source="police",
            event_type="police_callout",
            occurred_at="2024-07-01",
            known_at="2024-07-02",
            value="",
        )
    )
    return {**tables, "events": pd.concat([tables["events"], extra], ignore_index=True)}


def test_ingest_makes_a_current_snapshot_read_back_in_canonical_dtypes(extract_dir, home):
    result = ingest_folder(extract_dir, home=home)

    store = Store(home)
    assert result.created and result.previous_snapshot_id is None
    assert store.current_snapshot_id() == result.snapshot_id
    assert store.snapshot_ids() == [result.snapshot_id]
    tables = store.read_tables()
    for name in TABLE_NAMES:
        dtypes = {column: str(dtype) for column, dtype in tables[name].dtypes.items()}
        assert dtypes == table_dtypes(name)
        assert len(tables[name]) == result.row_counts[name]
    manifest = store.manifest()
    assert manifest["snapshot_id"] == result.snapshot_id
    assert manifest["source_folder"] == str(extract_dir.resolve())
    assert manifest["row_counts"] == result.row_counts
    assert set(manifest["source_files"]) == set(TABLE_NAMES)
    assert store.verify() == []


def test_the_store_returns_what_validation_loaded(extract_dir, home):
    loaded = read_extract(extract_dir)
    ingest_folder(extract_dir, home=home)

    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(Store(home).read_table(name), loaded[name])


def test_reingesting_the_same_folder_is_a_no_op(extract_dir, home):
    first = ingest_folder(extract_dir, home=home)
    before = _store_files(home)

    again = ingest_folder(extract_dir, home=home)

    assert again.snapshot_id == first.snapshot_id
    assert not again.created and not again.current_changed and again.outcome == "unchanged"
    assert _store_files(home) == before
    assert [entry["outcome"] for entry in _log(home)] == ["created", "unchanged"]


def test_a_newer_extract_replaces_the_current_and_the_older_stays_readable(
    extract_dir, tables, write_extract, home
):
    older = ingest_folder(extract_dir, home=home)
    newer = ingest_folder(write_extract(_newer(tables)), home=home)

    store = Store(home)
    assert newer.created and newer.snapshot_id != older.snapshot_id
    assert newer.previous_snapshot_id == older.snapshot_id
    assert store.current_snapshot_id() == newer.snapshot_id
    assert store.snapshot_ids() == [older.snapshot_id, newer.snapshot_id]
    assert "E900" in set(store.read_table("events")["event_id"])
    old_events = store.read_table("events", snapshot_id=older.snapshot_id)
    assert "E900" not in set(old_events["event_id"]) and len(old_events) == 23


def test_ingesting_an_older_extract_again_makes_it_current_without_a_copy(
    extract_dir, tables, write_extract, home
):
    older = ingest_folder(extract_dir, home=home)
    ingest_folder(write_extract(_newer(tables)), home=home)

    again = ingest_folder(extract_dir, home=home)

    assert again.snapshot_id == older.snapshot_id and not again.created
    assert again.outcome == "reinstated"
    assert Store(home).current_snapshot_id() == older.snapshot_id
    assert len(Store(home).snapshot_ids()) == 2
    assert _log(home)[-1]["outcome"] == "reinstated"


def test_a_bad_folder_after_a_good_one_changes_no_data(extract_dir, tables, write_extract, home):
    good = ingest_folder(extract_dir, home=home)
    before = _store_files(home)
    tables["cases"].loc[1, "worker_id"] = "W99"

    with pytest.raises(ContractError) as refused:
        ingest_folder(write_extract(tables), home=home)

    assert refused.value.total == 1
    assert _store_files(home) == before
    assert Store(home).current_snapshot_id() == good.snapshot_id
    entry = _log(home)[-1]
    assert entry["outcome"] == "refused" and entry["problems"] == 1


def test_a_refused_first_load_creates_no_snapshot(tables, write_extract, home):
    tables["households"].loc[0, "adults"] = "-1"

    with pytest.raises(ContractError):
        ingest_folder(write_extract(tables), home=home)

    assert _store_files(home) == {}
    assert Store(home).snapshot_ids() == []
    with pytest.raises(EmptyStoreError, match="no data ingested yet: run `rebalance ingest DIR`"):
        Store(home).read_table("events")


def test_the_ingest_log_holds_no_row_data(extract_dir, tables, write_extract, home):
    ingest_folder(extract_dir, home=home)
    tables["events"].loc[0, "person_id"] = "P99"
    with pytest.raises(ContractError):
        ingest_folder(write_extract(tables), home=home)

    log_text = (home / "store" / "ingest-log.jsonl").read_text()

    values = {value for table in tables.values() for value in table.to_numpy().ravel()}
    leaked = {value for value in values if len(str(value)) >= 3 and str(value) in log_text}
    assert leaked == set()
    assert {"time", "folder", "outcome", "problems"} <= set(_log(home)[-1])


@pytest.mark.parametrize("fail_after_tables", [0, 2, 5])
def test_a_crash_while_writing_the_snapshot_leaves_the_store_as_before(
    extract_dir, tables, write_extract, home, monkeypatch, fail_after_tables
):
    ingest_folder(extract_dir, home=home)
    before_files, before_dirs = _store_files(home), _store_dirs(home)
    real_write = features.store._write_table
    written = []

    def crash_mid_write(path, table):
        if len(written) == fail_after_tables:
            path.write_bytes(b"PAR1 half a file")
            raise OSError("disk full")
        written.append(path)
        return real_write(path, table)

    monkeypatch.setattr(features.store, "_write_table", crash_mid_write)
    if fail_after_tables == 5:  # every table written: fail on the manifest instead
        monkeypatch.setattr(features.store, "_write_json", lambda path, payload: 1 / 0)

    with pytest.raises((OSError, ZeroDivisionError)):
        ingest_folder(write_extract(_newer(tables)), home=home)

    assert _store_files(home) == before_files
    assert _store_dirs(home) == before_dirs
    assert _log(home)[-1]["outcome"] == "failed"


def test_a_crash_while_switching_current_leaves_the_store_as_before(
    extract_dir, tables, write_extract, home, monkeypatch
):
    ingest_folder(extract_dir, home=home)
    before_files, before_dirs = _store_files(home), _store_dirs(home)

    def power_cut(source, target):
        raise OSError("power cut")

    monkeypatch.setattr(features.store.os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        ingest_folder(write_extract(_newer(tables)), home=home)

    assert _store_files(home) == before_files
    assert _store_dirs(home) == before_dirs


def test_a_crash_on_the_first_ingest_leaves_no_store_data(extract_dir, home, monkeypatch):
    monkeypatch.setattr(features.store.os, "rename", lambda source, target: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        ingest_folder(extract_dir, home=home)

    assert _store_files(home) == {}
    assert _store_dirs(home) == []
    assert Store(home).current_snapshot_id() is None


def test_leftovers_of_a_killed_ingest_are_cleared_by_the_next(extract_dir, home):
    ingest_folder(extract_dir, home=home)
    leftover = home / "store" / ".incoming-0123"
    leftover.mkdir()
    (leftover / "events.parquet").write_bytes(b"partial")

    ingest_folder(extract_dir, home=home)

    assert not leftover.exists()


def test_the_store_refuses_unknown_tables_columns_and_snapshots(extract_dir, home):
    ingest_folder(extract_dir, home=home)
    store = Store(home)

    assert list(store.read_table("cases", columns=["case_id", "closed_at"]).columns) == [
        "case_id",
        "closed_at",
    ]
    with pytest.raises(StoreError, match="unknown table"):
        store.read_table("persons")
    with pytest.raises(StoreError, match="no column"):
        store.read_table("events", columns=["name"])
    with pytest.raises(StoreError, match="not a snapshot id"):
        store.read_table("events", snapshot_id="../../etc")
    with pytest.raises(StoreError, match="no snapshot"):
        store.manifest("0123456789abcdef")


def test_verify_notices_a_changed_snapshot_file(extract_dir, home):
    result = ingest_folder(extract_dir, home=home)
    stored = home / "store" / "snapshots" / result.snapshot_id / "workers.parquet"
    stored.write_bytes(stored.read_bytes() + b"\0")

    assert Store(home).verify() == ["workers"]


def test_a_second_ingest_while_one_runs_is_turned_away(extract_dir, home):
    first = ingest_folder(extract_dir, home=home)
    before = _store_files(home)

    with Store(home).locked(), pytest.raises(StoreBusyError, match="another ingest"):
        ingest_folder(extract_dir, home=home)

    assert _store_files(home) == before and Store(home).current_snapshot_id() == first.snapshot_id
    assert _log(home)[-1]["outcome"] == "busy"
