"""Household reads: the kept bodies, the fast path, and what may never leak through them."""

from __future__ import annotations

import json
import re
import shutil
import time

import pandas as pd
import pytest

from api.routes._households import household_detail
from api.schemas import HouseholdOut


@pytest.fixture(scope="module")
def ids(world, scores) -> dict[str, str]:
    """One household on farworker's caseload, one in the manager's locality without a case."""
    farworker = world.users["farworker"]["worker_id"]
    own = scores.loc[scores["open_case_worker"] == farworker, "household_id"].iloc[0]
    team = scores.loc[
        (scores["locality"] == world.locality) & scores["open_case_worker"].isna(), "household_id"
    ].iloc[0]
    return {"own": own, "team": team, "unknown": "HDOESNOTEXIST"}


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
        page = re.sub(r'name="csrf_token" value="[^"]*"', "", response.text)
        answers.append((username, household, response.status_code, page))
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
    record = HouseholdOut.model_validate_json(response.content)
    week = service.app.state.service.weeks.current()
    expected = household_detail(
        week,
        household_id=ids["own"],
        workers=[world.users["farworker"]["worker_id"]],
        horizon_weeks=service.settings.horizon_weeks,
    )
    assert record.model_dump() == HouseholdOut.model_validate(expected).model_dump()
    assert response.json() == json.loads(json.dumps(expected))


def test_a_kept_body_never_reaches_someone_outside_the_households_scope(service, ids):
    _fast(service)
    manager = service.client.get(
        f"/api/households/{ids['team']}", headers=service.headers("manager")
    )
    assert manager.status_code == 200
    week = service.app.state.service.weeks.current()
    assert len(week.bodies) >= 1, "the manager's read should have kept the body"
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


def test_a_decision_shows_at_once_in_kept_bodies_and_opens_the_household(service, world):
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


def test_a_new_weekly_run_replaces_the_kept_bodies(service, ids, world):
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
