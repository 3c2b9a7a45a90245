"""Who sees what: every role against every endpoint, allowed and refused, and the audit trail.

Refusals follow api.access: 403 when the role may never do it (independent of any id), 404 when
a household or proposal is outside the caller's scope, worded exactly like an unknown id.
"""

from __future__ import annotations

import pandas as pd
import pytest

ROLES_USERS = ("farworker", "manager", "farmanager", "scientist", "admin")


def _proposal_id(service) -> str:
    response = service.client.get("/api/proposals", headers=service.headers("manager"))
    assert response.status_code == 200
    return response.json()[0]["proposal_id"]


# (path, {username: expected status}) for the read endpoints; {} keys absent = not tested here.
MATRIX = [
    ("/api/caseload", {"farworker": 200, "manager": 403, "scientist": 403, "admin": 403}),
    (
        "/api/localities/Hanley/households?top=5",
        {"farworker": 403, "manager": 200, "farmanager": 403, "scientist": 403, "admin": 403},
    ),
    (
        "/api/proposals",
        {"farworker": 403, "manager": 200, "farmanager": 200, "scientist": 403, "admin": 403},
    ),
    ("/api/models", {"farworker": 403, "manager": 403, "farmanager": 403, "admin": 403}),
    ("/api/features?limit=2", {"farworker": 403, "manager": 403, "scientist": 200, "admin": 403}),
    ("/api/users", {"farworker": 403, "manager": 403, "scientist": 403, "admin": 200}),
    ("/api/audit", {"farworker": 403, "manager": 403, "scientist": 403, "admin": 200}),
    ("/api/audit/verify", {"farworker": 403, "manager": 403, "scientist": 403, "admin": 200}),
]


@pytest.mark.parametrize(("path", "expected"), MATRIX, ids=[path for path, _ in MATRIX])
def test_role_matrix_of_reads(service, path, expected):
    for username, status in expected.items():
        response = service.client.get(path, headers=service.headers(username))
        assert response.status_code == status, (username, response.text)
        if status >= 400:
            assert response.json()["detail"], username


def test_every_api_endpoint_needs_a_token(service):
    paths = [path for path, _ in MATRIX] + ["/api/households/HX", "/api/me"]
    for path in paths:
        response = service.client.get(path)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
    bogus = {"Authorization": "Bearer not-a-token"}
    assert service.client.get("/api/caseload", headers=bogus).status_code == 401


def test_household_reads_by_role(service, ids):
    get = service.client.get
    expected = {
        ("farworker", "own"): 200,
        ("farworker", "team"): 404,
        ("farworker", "far"): 404,
        ("manager", "team"): 200,
        ("manager", "far"): 404,
        ("farmanager", "far"): 200,
        ("farmanager", "team"): 404,
        ("scientist", "team"): 403,
        ("admin", "own"): 403,
    }
    for (username, which), status in expected.items():
        response = get(f"/api/households/{ids[which]}", headers=service.headers(username))
        assert response.status_code == status, (username, which)


def test_out_of_scope_and_unknown_households_are_indistinguishable(service, ids):
    for username, hidden in (("farworker", "team"), ("manager", "far")):
        headers = service.headers(username)
        out_of_scope = service.client.get(f"/api/households/{ids[hidden]}", headers=headers)
        unknown = service.client.get(f"/api/households/{ids['unknown']}", headers=headers)
        assert out_of_scope.status_code == unknown.status_code == 404
        # Same words apart from the id itself, so nothing tells the two apart.
        assert out_of_scope.json()["detail"].replace(ids[hidden], "X") == unknown.json()[
            "detail"
        ].replace(ids["unknown"], "X")


def test_reads_are_audited_with_outcome(service, ids):
    service.client.get(f"/api/households/{ids['own']}", headers=service.headers("farworker"))
    service.client.get(f"/api/households/{ids['team']}", headers=service.headers("farworker"))
    service.client.get(f"/api/households/{ids['team']}", headers=service.headers("scientist"))
    entries = service.audit_rows(action="read_household")
    outcomes = {(row["actor"], row["target"], row["outcome"]) for row in entries}
    assert ("farworker", f"household:{ids['own']}", "allowed") in outcomes
    assert ("farworker", f"household:{ids['team']}", "refused") in outcomes
    assert ("scientist", f"household:{ids['team']}", "refused") in outcomes
    assert all(row["at"] and row["purpose"] for row in entries)


def test_purpose_given_by_the_caller_is_the_audit_why(service, ids):
    response = service.client.get(
        f"/api/households/{ids['own']}",
        params={"purpose": "preparing a home visit"},
        headers=service.headers("farworker"),
    )
    assert response.status_code == 200
    entry = service.audit_rows(action="read_household", actor="farworker")[-1]
    assert entry["purpose"] == "preparing a home visit"


def test_caseload_is_the_callers_own_and_matches_the_open_cases(service, world, scores):
    worker_id = world.users["farworker"]["worker_id"]
    response = service.client.get("/api/caseload", headers=service.headers("farworker"))
    assert response.status_code == 200
    body = response.json()
    assert body["worker_id"] == worker_id
    expected = set(scores.loc[scores["open_case_worker"] == worker_id, "household_id"])
    assert {household["household_id"] for household in body["households"]} == expected
    risks = [household["risk"] for household in body["households"]]
    assert risks == sorted(risks, reverse=True)
    entry = service.audit_rows(action="read_caseload")[-1]
    assert entry["actor"] == "farworker" and entry["outcome"] == "allowed"


def test_locality_list_is_the_managers_top_households_in_rank_order(service, world, scores):
    response = service.client.get(
        f"/api/localities/{world.locality}/households",
        params={"top": 7},
        headers=service.headers("manager"),
    )
    body = response.json()
    expected = (
        scores.loc[scores["locality"] == world.locality]
        .assign(rank=lambda frame: frame["rank"].astype(int))
        .sort_values("rank")["household_id"]
        .head(7)
        .tolist()
    )
    assert [household["household_id"] for household in body["households"]] == expected
    assert body["households_in_locality"] == int((scores["locality"] == world.locality).sum())


def test_household_record_has_reasons_changes_and_timeline(service, ids, world, scores):
    response = service.client.get(
        f"/api/households/{ids['team']}", headers=service.headers("manager")
    )
    body = response.json()
    row = scores.set_index("household_id").loc[ids["team"]]
    assert body["risk"] == pytest.approx(float(row["risk"]))
    assert " | ".join(body["reasons"]) == (
        row["reasons"] if isinstance(row["reasons"], str) else ""
    )
    assert body["what_changed"]["previous_as_of"] == str(
        (world.as_of - pd.Timedelta(days=7)).date()
    )
    assert body["what_changed"]["risk_then"] is not None
    dates = [entry["date"] for entry in body["timeline"]]
    assert dates == sorted(dates, reverse=True)
    assert all(entry["shared"] <= body["as_of"] for entry in body["timeline"])
    # The timeline never names anyone: people are "a child" or "an adult" at most.
    assert {entry["about"] for entry in body["timeline"]} <= {None, "a child", "an adult"}


def test_a_manager_sees_only_their_own_localitys_proposals(service):
    proposal_id = _proposal_id(service)
    paths = [f"/api/proposals/{proposal_id}"]
    assert service.client.get(paths[0], headers=service.headers("manager")).status_code == 200
    assert service.client.get(paths[0], headers=service.headers("farmanager")).status_code == 404
    assert service.client.get(paths[0], headers=service.headers("farworker")).status_code == 403
    unknown = service.client.get(
        "/api/proposals/2025-01-01-x-0", headers=service.headers("manager")
    )
    assert unknown.status_code == 404


def test_only_managers_decide_and_only_in_their_locality(service):
    proposal_id = _proposal_id(service)
    row = service.client.get(
        f"/api/proposals/{proposal_id}", headers=service.headers("manager")
    ).json()["rows"][0]
    decision = {"household_id": row["household_id"], "action": "accept", "version": row["version"]}
    path = f"/api/proposals/{proposal_id}/decisions"
    assert (
        service.client.post(path, json=decision, headers=service.headers("farworker")).status_code
        == 403
    )
    assert (
        service.client.post(path, json=decision, headers=service.headers("admin")).status_code
        == 403
    )
    assert (
        service.client.post(path, json=decision, headers=service.headers("farmanager")).status_code
        == 404
    )
    refused = service.audit_rows(action="decide", outcome="refused")
    assert {row["actor"] for row in refused} == {"farworker", "admin", "farmanager"}
    assert (
        service.client.get(
            f"/api/proposals/{proposal_id}", headers=service.headers("manager")
        ).json()["rows"][0]["decision"]
        is None
    )


def test_only_managers_prepare_proposals(service):
    for username in ("farworker", "scientist", "admin"):
        response = service.client.post("/api/proposals", json={}, headers=service.headers(username))
        assert response.status_code == 403
