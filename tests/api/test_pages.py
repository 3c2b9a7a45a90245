"""The server-rendered pages: each role's pages, form posts with CSRF, offline and accessible."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api import service_db

API_DIR = Path(__file__).resolve().parents[2] / "api"


def _proposal_page(service):
    response = service.client.get("/proposal")
    assert response.status_code == 200, response.text
    proposal_id = re.search(r"/proposals/([^/\"]+)/accept-remaining", response.text).group(1)
    return proposal_id, response.text


def _rows(service, proposal_id):
    return service_db.proposal_rows(service.db.read(), proposal_id)


def test_manager_page_shows_rows_reasons_capacity_and_waitlist(service, world):
    service.sign_in("manager")
    proposal_id, page = _proposal_page(service)
    rows = _rows(service, proposal_id)
    for row in rows:
        assert f'id="row-{row["household_id"]}"' in page
    first_reason = next(row["reasons"] for row in rows if row["reasons"]).split(" | ")[0]
    assert first_reason.replace("'", "&#39;") in page
    assert "Key workers' capacity now" in page and "<svg" in page
    assert f"Waitlist ({sum(row['status'] == 'waitlisted' for row in rows)})" in page
    assert "Last week's decisions" in page


def test_a_decision_form_without_the_csrf_secret_changes_nothing(service):
    service.sign_in("manager")
    proposal_id, _ = _proposal_page(service)
    row = _rows(service, proposal_id)[0]
    form = {"household_id": row["household_id"], "version": row["version"], "action": "accept"}
    refused = service.client.post(f"/proposals/{proposal_id}/decide", data=form)
    assert refused.status_code == 403
    forged = service.client.post(
        f"/proposals/{proposal_id}/decide", data=form | {"csrf_token": "guess"}
    )
    assert forged.status_code == 403
    assert _rows(service, proposal_id)[0]["decision"] is None


def _waitlist_rows_of(service, proposal_id, worker_id, *, csrf) -> None:
    """The proposal gives a worker's room away; a manager waitlists those rows to make room."""
    for held in _rows(service, proposal_id):
        if held["status"] != "assigned" or held["worker_id"] != worker_id:
            continue
        response = service.client.post(
            f"/proposals/{proposal_id}/decide",
            data={
                "csrf_token": csrf,
                "household_id": held["household_id"],
                "version": held["version"],
                "action": "waitlist",
                "reason": "to make room",
            },
            follow_redirects=False,
        )
        assert response.status_code == 303


def test_override_one_row_then_accept_the_rest(service):
    csrf = service.sign_in("manager")
    proposal_id, _ = _proposal_page(service)
    _waitlist_rows_of(service, proposal_id, "KW9001", csrf=csrf)
    row = next(
        r
        for r in _rows(service, proposal_id)
        if r["status"] == "assigned" and r["worker_id"] != "KW9001"
    )
    response = service.client.post(
        f"/proposals/{proposal_id}/decide",
        data={
            "csrf_token": csrf,
            "household_id": row["household_id"],
            "version": row["version"],
            "action": "override",
            "worker_id": "KW9001",
            "reason": "already knows the family",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    remaining = service.client.post(
        f"/proposals/{proposal_id}/accept-remaining", data={"csrf_token": csrf}
    )
    assert remaining.status_code in (200, 409)
    decided = _rows(service, proposal_id)
    overridden = next(r for r in decided if r["household_id"] == row["household_id"])
    assert overridden["decision"] == "override" and overridden["decided_worker"] == "KW9001"
    undecided = [r for r in decided if r["decision"] is None]
    if remaining.status_code == 409:
        # Rows a rule stopped are listed on the page with the reason; the rest were accepted.
        assert all(r["household_id"] in remaining.text for r in undecided)
    else:
        assert undecided == []


def test_a_rule_broken_in_a_form_is_shown_on_the_page(service):
    csrf = service.sign_in("manager")
    proposal_id, _ = _proposal_page(service)
    row = _rows(service, proposal_id)[0]
    response = service.client.post(
        f"/proposals/{proposal_id}/decide",
        data={
            "csrf_token": csrf,
            "household_id": row["household_id"],
            "version": row["version"],
            "action": "override",
            "worker_id": "KW9003",
            "reason": "try",
        },
    )
    assert response.status_code == 422
    assert "not active" in response.text and "Not recorded." in response.text


def test_key_worker_pages_show_their_caseload_with_reasons_and_timeline(service, world, scores):
    service.sign_in("farworker")
    worker_id = world.users["farworker"]["worker_id"]
    own = scores.loc[scores["open_case_worker"] == worker_id, "household_id"].tolist()
    caseload = service.client.get("/caseload")
    assert caseload.status_code == 200
    assert all(f"/households/{household_id}" in caseload.text for household_id in own)
    household = service.client.get(f"/households/{own[0]}")
    assert household.status_code == 200
    assert "Timeline across agencies" in household.text and "What changed since" in household.text
    hidden = scores.loc[scores["open_case_worker"] != worker_id, "household_id"].iloc[0]
    refused = service.client.get(f"/households/{hidden}")
    assert refused.status_code == 404 and "is open to you" in refused.text


@pytest.mark.parametrize(
    ("username", "allowed", "refused"),
    [
        (
            "manager",
            ["/proposal", "/locality", "/decisions"],
            ["/caseload", "/admin/users", "/models"],
        ),
        ("farworker", ["/caseload"], ["/proposal", "/locality", "/admin/audit"]),
        (
            "admin",
            ["/admin/users", "/admin/audit", "/admin/audit?check=true"],
            ["/caseload", "/proposal"],
        ),
        ("scientist", [], ["/caseload", "/proposal", "/admin/users"]),
    ],
)
def test_each_role_reaches_its_pages_and_no_others(service, username, allowed, refused):
    service.sign_in(username)
    for path in allowed:
        assert service.client.get(path).status_code == 200, path
    for path in refused:
        response = service.client.get(path)
        assert response.status_code == 403, path
        assert response.headers["content-type"].startswith("text/html")


def test_home_sends_each_role_to_its_start_page(service):
    for username, start in (
        ("manager", "/proposal"),
        ("farworker", "/caseload"),
        ("admin", "/admin/users"),
    ):
        service.sign_in(username)
        response = service.client.get("/", follow_redirects=False)
        assert response.headers["location"] == start


def test_sign_out_ends_the_session(service):
    csrf = service.sign_in("admin")
    assert (
        service.client.post(
            "/signout", data={"csrf_token": csrf}, follow_redirects=False
        ).status_code
        == 303
    )
    assert service.client.get("/admin/users", follow_redirects=False).status_code == 303


def test_pages_send_security_headers_and_are_not_cached(service):
    service.sign_in("farworker")
    response = service.client.get("/caseload")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


def test_api_docs_list_every_endpoint_and_work_offline(service):
    page = service.client.get("/docs")
    assert page.status_code == 200
    openapi = service.client.get("/openapi.json").json()
    for path in openapi["paths"]:
        assert path in page.text
    assert set(openapi["paths"]) >= {
        "/api/token",
        "/api/households/{household_id}",
        "/api/caseload",
        "/api/localities/{locality}/households",
        "/api/proposals",
        "/api/proposals/{proposal_id}",
        "/api/proposals/{proposal_id}/decisions",
        "/api/models",
        "/api/audit",
    }


def test_templates_and_static_files_load_nothing_from_other_sites():
    files = list((API_DIR / "templates").glob("*.html")) + list((API_DIR / "static").glob("*"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "@import" not in text and "url(http" not in text, path


def test_form_fields_have_labels(service):
    service.sign_in("manager")
    _, page = _proposal_page(service)
    ids = re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', page)
    assert ids
    for field_id in ids:
        assert f'for="{field_id}"' in page, field_id


def test_decisions_page_shows_every_decision_and_the_override_rate(service):
    csrf = service.sign_in("manager")
    proposal_id, _ = _proposal_page(service)
    first, second = [r for r in _rows(service, proposal_id) if r["status"] == "assigned"][:2]
    post = f"/proposals/{proposal_id}/decide"
    common = {"csrf_token": csrf, "action": "waitlist", "reason": "family away this month"}
    service.client.post(post, data=common | {"household_id": first["household_id"], "version": 1})
    accept = {"csrf_token": csrf, "action": "accept", "household_id": second["household_id"]}
    service.client.post(post, data=accept | {"version": 1})
    page = service.client.get("/decisions")
    assert page.status_code == 200
    assert "family away this month" in page.text
    assert "How often decisions differ from the proposal" in page.text
    # One of two decisions differed from the proposal: 50% overall.
    assert re.search(r"<td>All</td><td class=\"number\">2</td>.*?50%", page.text)
