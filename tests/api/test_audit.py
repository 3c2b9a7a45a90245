"""The audit log: append-only, hash-chained, complete under concurrent writers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from contextlib import closing

import pytest

from api import database
from api.audit import (
    AuditEntry,
    AuditUnavailable,
    AuditWriter,
    read_entries,
    record_now,
    verify_chain,
)


@pytest.fixture
def db(tmp_path) -> database.ServiceDB:
    return database.open_service_db(tmp_path)


def _entry(number: int) -> AuditEntry:
    return AuditEntry(
        actor=f"user{number % 3}",
        role="key_worker",
        action="read_household",
        target=f"household:H{number:05d}",
        purpose="casework",
        detail={"n": number},
    )


def test_entries_cannot_be_changed_or_removed(db):
    record_now(db, _entry(1))
    with closing(sqlite3.connect(db.path)) as connection:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            connection.execute("UPDATE audit SET actor = 'someone else'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            connection.execute("DELETE FROM audit")
    assert read_entries(db.read())[0]["actor"] == "user1"


def test_the_hash_chain_shows_an_edit_made_behind_the_services_back(db):
    for number in range(5):
        record_now(db, _entry(number))
    assert verify_chain(db.read()) == {"entries": 5, "broken": [], "intact": True}
    with closing(sqlite3.connect(db.path)) as connection:
        connection.execute("DROP TRIGGER audit_is_append_only_update")
        connection.execute("UPDATE audit SET target = 'household:H99999' WHERE entry_id = 3")
        connection.commit()
    result = verify_chain(db.read())
    assert result["intact"] is False and result["broken"] == [3]


def test_concurrent_writers_lose_nothing_and_keep_the_chain(db):
    writer = AuditWriter(db)
    threads = [
        threading.Thread(
            target=lambda start=start: [writer.record(_entry(n)) for n in range(start, start + 25)]
        )
        for start in range(0, 200, 25)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = read_entries(db.read(), limit=1000)
    assert sorted(entry["detail"]["n"] for entry in entries) == list(range(200))
    assert verify_chain(db.read())["intact"]


def test_filters_and_paging(db):
    for number in range(10):
        record_now(db, _entry(number))
    first = read_entries(db.read(), limit=4)
    older = read_entries(db.read(), limit=4, before_id=first[-1]["entry_id"])
    assert [e["entry_id"] for e in first + older] == list(range(10, 2, -1))
    assert {e["actor"] for e in read_entries(db.read(), actor="user1")} == {"user1"}
    assert [e["target"] for e in read_entries(db.read(), target="household:H00004")] == [
        "household:H00004"
    ]


def test_unknown_actions_are_refused():
    with pytest.raises(ValueError, match="unknown audit action"):
        AuditEntry(actor="a", role="admin", action="peek", target="x")


def test_the_admin_api_pages_through_the_log(service):
    headers = service.headers("admin")
    for _ in range(3):
        service.client.get("/api/users", headers=headers)
    page = service.client.get("/api/audit", params={"limit": 2}, headers=headers).json()
    assert len(page["entries"]) == 2 and page["next_before"] == page["entries"][-1]["entry_id"]
    older = service.client.get(
        "/api/audit", params={"limit": 2, "before": page["next_before"]}, headers=headers
    ).json()
    assert all(entry["entry_id"] < page["next_before"] for entry in older["entries"])
    only = service.client.get(
        "/api/audit", params={"action": "read_users"}, headers=headers
    ).json()["entries"]
    assert len(only) == 3 and {entry["actor"] for entry in only} == {"admin"}
    bad = service.client.get("/api/audit", params={"action": "peek"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("action")


def test_concurrent_awaited_and_threaded_entries_share_durable_commits_in_order(db):
    """Group commit: 300 entries from coroutines and threads at once, in fewer transactions;
    each caller returns only once its entry is committed, and each caller's entries keep the
    order it wrote them in."""
    writer = AuditWriter(db)
    seen_committed: list[bool] = []

    def committed(number: int) -> bool:
        with closing(sqlite3.connect(db.path)) as connection:  # another connection: on disk
            rows = connection.execute("SELECT detail FROM audit").fetchall()
            return any(json.loads(row[0])["n"] == number for row in rows)

    async def one_caller(start: int) -> None:
        for number in range(start, start + 20):
            await writer.record_async(_entry(number))
            seen_committed.append(committed(number))

    async def callers() -> None:
        await asyncio.gather(*(one_caller(start) for start in range(0, 200, 20)))

    threads = [
        threading.Thread(
            target=lambda start=start: [writer.record(_entry(n)) for n in range(start, start + 20)]
        )
        for start in range(200, 300, 20)
    ]
    for thread in threads:
        thread.start()
    asyncio.run(callers())
    for thread in threads:
        thread.join()

    entries = read_entries(db.read(), limit=1000)[::-1]
    numbers = [entry["detail"]["n"] for entry in entries]
    assert sorted(numbers) == list(range(300))
    for start in range(0, 300, 20):
        mine = [n for n in numbers if start <= n < start + 20]
        assert mine == list(range(start, start + 20))
    assert all(seen_committed) and len(seen_committed) == 200
    assert writer.batches < 300
    assert verify_chain(db.read()) == {"entries": 300, "broken": [], "intact": True}


def test_when_the_log_cannot_be_written_every_waiter_is_told(db, monkeypatch):
    writer = AuditWriter(db)

    @contextlib.contextmanager
    def broken_write():
        raise sqlite3.OperationalError("disk I/O error")
        yield

    monkeypatch.setattr(db, "write", broken_write)

    async def three() -> list:
        calls = [writer.record_async(_entry(n)) for n in range(3)]
        return await asyncio.gather(*calls, return_exceptions=True)

    assert all(isinstance(outcome, AuditUnavailable) for outcome in asyncio.run(three()))
    with pytest.raises(AuditUnavailable):
        writer.record(_entry(9))
    assert read_entries(db.read()) == []


def test_a_household_read_is_refused_data_when_the_log_cannot_be_written(service, scores, world):
    household = scores.loc[scores["locality"] == world.locality, "household_id"].iloc[0]
    headers = service.headers("manager")
    assert service.client.get(f"/api/households/{household}", headers=headers).status_code == 200

    async def unavailable(entry) -> None:
        raise AuditUnavailable("the audit log could not be written; nothing was shown")

    service.app.state.service.audit.record_async = unavailable
    response = service.client.get(f"/api/households/{household}", headers=headers)
    assert response.status_code == 503 and list(response.json()) == ["detail"]
    service.sign_in("manager")
    page = service.client.get(f"/households/{household}")
    assert page.status_code == 503 and "Timeline across agencies" not in page.text
