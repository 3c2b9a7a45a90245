"""The audit log: append-only, hash-chained, complete under concurrent writers."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing

import pytest

from api import service_db
from api.audit import AuditEntry, AuditWriter, read_entries, record_now, verify_chain


@pytest.fixture
def db(tmp_path) -> service_db.ServiceDB:
    return service_db.open_service_db(tmp_path)


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
