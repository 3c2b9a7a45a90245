"""Household reads: published and made records, the fast path, and what may never leak."""

from __future__ import annotations

import re
import shutil
import time

import pandas as pd
import pytest

from api import pipeline, records_db
from api.published import publish_records
from api.records_db import RECORDS_FILE, PublishedRecords
from api.schemas import HouseholdOut
from api.week import load_week


def _fast(service) -> None:
    """Serve household reads by the fast path: the week is loaded and not due for a check."""
    service.app.state.service.weeks.recheck_seconds = 3600
    service.app.state.service.weeks.current()


def _routes_only(service) -> None:
    """Every read finds the week due for a check, so the fast path hands it to the routes."""
    service.app.state.service.weeks.recheck_seconds = 0


def _answers(service, ids) -> list[tuple]:
    cases = [
        ("farworker", f"/api/households/{ids['own']}?purpose=home%20visit"),
        ("farworker", f"/api/households/{ids['team']}"),
        ("farworker", f"/api/households/{ids['unknown']}"),
        ("manager", f"/api/households/{ids['team']}"),
        ("manager", f"/api/households/{ids['own']}"),
        ("scientist", f"/api/households/{ids['team']}"),
    ]
    answers = []
    for username, path in cases:
        response = service.client.get(path, headers=service.headers(username))
        answers.append((username, path, response.status_code, response.json()))
    for username, household in (("manager", ids["team"]), ("farworker", ids["team"])):
        service.sign_in(username)
        response = service.client.get(f"/households/{household}", follow_redirects=False)
        # Each service has its own session secret: the page is the same apart from it.
        answers.append((username, household, response.status_code, _without_csrf(response.text)))
    return answers


def test_the_fast_path_answers_exactly_as_the_routes_do(make_service, ids):
    fast, routes = make_service(), make_service()
    _fast(fast)
    _routes_only(routes)
    fast_answers, route_answers = _answers(fast, ids), _answers(routes, ids)
    assert [answer[2] for answer in fast_answers] == [200, 404, 404, 200, 404, 403, 200, 404]
    assert fast_answers == route_answers
    audited = [
        (row["actor"], row["target"], row["outcome"], row["purpose"])
        for row in fast.audit_rows(action="read_household")
    ]
    assert audited == [
        (row["actor"], row["target"], row["outcome"], row["purpose"])
        for row in routes.audit_rows(action="read_household")
    ]
    assert len(audited) == len(fast_answers)
    assert audited[0][3] == "home visit"


def test_bad_requests_are_left_to_the_routes(service, ids):
    _fast(service)
    headers = service.headers("manager")
    too_long = service.client.get(
        f"/api/households/{ids['team']}", params={"purpose": "x" * 201}, headers=headers
    )
    assert too_long.status_code == 422 and too_long.json()["detail"].startswith("purpose")
    assert service.client.get(f"/api/households/{ids['team']}").status_code == 401
    wrong_scheme = {"Authorization": headers["Authorization"].replace("Bearer", "Basic")}
    assert (
        service.client.get(f"/api/households/{ids['team']}", headers=wrong_scheme).status_code
        == 401
    )
    assert service.client.get("/api/households/-bad-id", headers=headers).status_code == 422
    assert service.audit_rows(action="read_household") == []


def test_the_body_is_the_documented_record(service, ids, world):
    _fast(service)
    response = service.client.get(
        f"/api/households/{ids['own']}", headers=service.headers("farworker")
    )
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    record = HouseholdOut.model_validate_json(response.content).model_dump()
    week = service.app.state.service.weeks.current()
    assert week.published is not None, "the world's weekly job published its records"
    # Against the one-household functions (the published record is made in bulk).
    row = week.rows.get(ids["own"])
    assert record["key_workers"] == [world.users["farworker"]["worker_id"]]
    assert (record["risk"], record["band"], record["rank"]) == (
        row["risk"],
        row["band"],
        row["rank"],
    )
    assert " | ".join(record["reasons"]) == row["reasons"]
    assert record["timeline"] == week.household_timeline(ids["own"])
    assert record["what_changed"]["new_records"] == week.new_records(ids["own"])
    assert record["what_changed"]["risk_then"] == week.previous_rows.get(ids["own"])["risk"]
    assert record["timeline"], "a household on a caseload has records"


def test_published_and_made_records_are_the_same(make_service, world, scores):
    published, made = make_service(), make_service()
    (made.settings.week_dir(world.as_of) / RECORDS_FILE).unlink()
    assert published.app.state.service.weeks.current().published is not None
    assert made.app.state.service.weeks.current().published is None
    households = scores.loc[scores["locality"] == world.locality, "household_id"].iloc[::40]
    for service in (published, made):
        _fast(service)
        service.sign_in("manager")
    for household in households:
        path = f"/api/households/{household}"
        answers = [
            service.client.get(path, headers=service.headers("manager"))
            for service in (published, made)
        ]
        assert answers[0].status_code == 200 and answers[0].content == answers[1].content
        pages = [
            service.client.get(f"/households/{household}").text for service in (published, made)
        ]
        assert _without_csrf(pages[0]) == _without_csrf(pages[1])
    assert len(made.app.state.service.weeks.current().made_records) == len(households)


def _without_csrf(page: str) -> str:
    return re.sub(r'name="csrf_token" value="[^"]*"', "", page)


def test_a_week_published_from_other_files_is_not_read(service, world, ids):
    week_dir = service.settings.week_dir(world.as_of)
    previous = service.settings.week_dir(world.as_of - pd.Timedelta(days=7)) / "scores.csv"
    scores = pd.read_csv(previous, dtype={"household_id": "str"})
    scores.loc[scores["household_id"] == ids["team"], "risk"] = 0.5
    scores.to_csv(previous, index=False)
    week = load_week(service.settings, week_dir=week_dir)
    assert week.published is None, "last week's scores changed: the records are stale"
    _fast(service)
    body = service.client.get(
        f"/api/households/{ids['team']}", headers=service.headers("manager")
    ).json()
    assert body["what_changed"]["risk_then"] == pytest.approx(0.5)
    # Publishing again makes them from the files as they are now.
    path, made = pipeline.publish_week(service.settings, as_of=world.as_of, processes=1)
    assert made == len(week.rows.position) and path == week_dir / RECORDS_FILE
    assert load_week(service.settings, week_dir=week_dir).published is not None
    assert pipeline.publish_week(service.settings, as_of=world.as_of)[1] == 0


def test_a_running_service_takes_up_records_published_after_it_loaded_the_week(service, world):
    (service.settings.week_dir(world.as_of) / RECORDS_FILE).unlink()
    assert service.app.state.service.weeks.current().published is None
    pipeline.publish_week(service.settings, as_of=world.as_of, processes=1)
    service.app.state.service.weeks.recheck_seconds = 0
    deadline = time.monotonic() + 60
    while service.app.state.service.weeks.current().published is None:
        assert time.monotonic() < deadline, "the published records were never taken up"
        time.sleep(0.05)


def test_publishing_a_week_removes_earlier_weeks_records(service, world):
    earlier = world.as_of - pd.Timedelta(days=7)
    path, made = pipeline.publish_week(service.settings, as_of=earlier, processes=1)
    assert made > 0 and path.is_file()
    current, made = pipeline.publish_week(service.settings, as_of=world.as_of, processes=1)
    assert made == 0, "this week was already published from the same files"
    assert current.is_file() and not path.exists()


def test_a_failed_publish_leaves_the_published_week_as_it_was(service, world, monkeypatch):
    week = load_week(service.settings, week_dir=service.settings.week_dir(world.as_of))
    path = week.week_dir / RECORDS_FILE
    before = path.read_bytes()
    made, compressed = [], records_db._compressed

    def compress_until_full(data: bytes) -> bytes:
        if len(made) == 100:  # 50 households: the first chunk of 40 is written by then
            raise OSError(28, "No space left on device")
        made.append(data)
        return compressed(data)

    monkeypatch.setattr(records_db, "_compressed", compress_until_full)
    with pytest.raises(OSError, match="No space left"):
        publish_records(week, path=path, key={"another": "key"}, processes=1, chunk_size=40)
    assert path.read_bytes() == before
    assert [item.name for item in week.week_dir.iterdir() if "partial" in item.name] == []


def test_records_made_in_several_processes_are_those_made_in_one(service, world, tmp_path):
    week = load_week(service.settings, week_dir=service.settings.week_dir(world.as_of))
    one, two = tmp_path / "one.db", tmp_path / "two.db"
    publish_records(week, path=one, key=week.records_key, processes=1)
    publish_records(week, path=two, key=week.records_key, processes=2, chunk_size=300)
    readers = [PublishedRecords(path, key=week.records_key) for path in (one, two)]
    for household_id in week.rows.position:
        first, second = (reader.get(household_id) for reader in readers)
        assert first is not None and first == second


def test_a_record_never_reaches_someone_outside_the_households_scope(service, ids):
    _fast(service)
    manager = service.client.get(
        f"/api/households/{ids['team']}", headers=service.headers("manager")
    )
    assert manager.status_code == 200
    assert service.app.state.service.weeks.current().published is not None
    worker = service.client.get(
        f"/api/households/{ids['team']}", headers=service.headers("farworker")
    )
    assert worker.status_code == 404
    assert list(worker.json()) == ["detail"] and "timeline" not in worker.text
    service.sign_in("farworker")
    page = service.client.get(f"/households/{ids['team']}")
    assert page.status_code == 404 and "Timeline across agencies" not in page.text
    refused = service.audit_rows(action="read_household", actor="farworker")
    assert [row["outcome"] for row in refused] == ["refused", "refused"]


def _proposal(service) -> dict:
    headers = service.headers("manager")
    proposal_id = service.client.get("/api/proposals", headers=headers).json()[0]["proposal_id"]
    return service.client.get(f"/api/proposals/{proposal_id}", headers=headers).json()


def test_a_decision_shows_at_once_in_the_record_and_opens_the_household(service, world):
    _fast(service)
    worker_id = world.users["keyworker"]["worker_id"]
    proposal = _proposal(service)
    row = next(
        row
        for row in proposal["rows"]
        if row["status"] == "assigned" and row["worker_id"] == worker_id
    )
    household = row["household_id"]
    path = f"/api/households/{household}"
    before = service.client.get(path, headers=service.headers("manager"))
    assert worker_id not in before.json()["key_workers"]
    service.sign_in("manager")
    assert (
        worker_id
        not in service.client.get(f"/households/{household}").text.split("Key worker")[1][:80]
    )
    assert service.client.get(path, headers=service.headers("keyworker")).status_code == 404

    decision = service.client.post(
        f"/api/proposals/{proposal['proposal_id']}/decisions",
        json={"household_id": household, "version": row["version"], "action": "accept"},
        headers=service.headers("manager"),
    )
    assert decision.status_code == 200, decision.text

    after = service.client.get(path, headers=service.headers("keyworker"))
    assert after.status_code == 200 and worker_id in after.json()["key_workers"]
    assert (
        service.client.get(path, headers=service.headers("manager")).json()["key_workers"]
        == (after.json()["key_workers"])
    )
    page = service.client.get(f"/households/{household}")
    assert worker_id in page.text.split("Key worker")[1][:80]


def test_a_new_weekly_run_replaces_the_records(service, ids, world):
    _fast(service)
    path, headers = f"/api/households/{ids['team']}", service.headers("manager")
    first = service.client.get(path, headers=headers).json()
    assert first["as_of"] == str(world.as_of.date())

    later = world.as_of + pd.Timedelta(days=7)
    week_dir = service.settings.week_dir(later)
    shutil.copytree(service.settings.week_dir(world.as_of), week_dir)
    scores = pd.read_csv(week_dir / "scores.csv", dtype={"household_id": "str"})
    changed_risk = 0.987 if first["risk"] < 0.5 else 0.012
    scores.loc[scores["household_id"] == ids["team"], "risk"] = changed_risk
    scores.to_csv(week_dir / "scores.csv", index=False)

    service.app.state.service.weeks.recheck_seconds = 0
    deadline = time.monotonic() + 60
    while (now := service.client.get(path, headers=headers).json())["as_of"] != str(later.date()):
        assert time.monotonic() < deadline, "the new week was never served"
        time.sleep(0.05)
    assert now["risk"] == pytest.approx(changed_risk)
    assert now["what_changed"]["risk_then"] == pytest.approx(first["risk"])
