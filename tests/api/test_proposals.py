"""Proposals and decisions: accept, override, waitlist, reject; the rules re-checked; cases opened;
optimistic concurrency; override records with what was shown."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from contextlib import closing

import pandas as pd
import pytest

from api import service_db
from api.pipeline import current_tables
from api.routes._decisions import worker_problem
from api.routes._proposals import capacity_now
from features.contract import table_dtypes
from features.needs import NeedsSettings, need_label


def _proposal(service, username="manager") -> dict:
    headers = service.headers(username)
    proposal_id = service.client.get("/api/proposals", headers=headers).json()[0]["proposal_id"]
    return service.client.get(f"/api/proposals/{proposal_id}", headers=headers).json()


def _decide(service, proposal, row, *, username="manager", **fields):
    body = {"household_id": row["household_id"], "version": row["version"]} | fields
    return service.client.post(
        f"/api/proposals/{proposal['proposal_id']}/decisions",
        json=body,
        headers=service.headers(username),
    )


def _assigned(proposal, worker_id=None) -> list[dict]:
    return [
        row
        for row in proposal["rows"]
        if row["status"] == "assigned" and (worker_id is None or row["worker_id"] == worker_id)
    ]


def _stored_decisions(service) -> list[dict]:
    with closing(sqlite3.connect(service_db.service_db_path(service.home))) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute("SELECT * FROM decisions")]


def test_weekly_proposal_is_the_weekly_runs_rows_for_the_locality(service, world, weekly_proposal):
    proposal = _proposal(service)
    expected = weekly_proposal.loc[weekly_proposal["locality"] == world.locality]
    assert proposal["locality"] == world.locality and proposal["source"] == "weekly run"
    assert [row["household_id"] for row in proposal["rows"]] == expected["household_id"].tolist()
    assert [row["status"] for row in proposal["rows"]] == expected["status"].tolist()
    assert all(row["version"] == 1 and row["decision"] is None for row in proposal["rows"])
    # Opening it again gives the same stored proposal, not a second copy.
    assert _proposal(service)["proposal_id"] == proposal["proposal_id"]


def test_accepting_opens_a_case_the_key_worker_then_sees(service, world):
    proposal = _proposal(service)
    worker_id = world.users["keyworker"]["worker_id"]
    row = _assigned(proposal, worker_id)[0]
    household = f"/api/households/{row['household_id']}"
    assert service.client.get(household, headers=service.headers("keyworker")).status_code == 404

    response = _decide(service, proposal, row, action="accept")
    assert response.status_code == 200, response.text
    assert response.json()["decision"] == "accept"
    assert response.json()["version"] == row["version"] + 1

    cases = service_db.decided_cases(service.settings)
    assert cases.dtypes.astype(str).to_dict() == table_dtypes("cases")
    case = cases.set_index("household_id").loc[row["household_id"]]
    assert case["worker_id"] == worker_id
    assert case["complexity_points"] == row["points"]
    assert case["opened_at"] == world.as_of and pd.isna(case["closed_at"])

    caseload = service.client.get("/api/caseload", headers=service.headers("keyworker")).json()
    assert row["household_id"] in {
        household["household_id"] for household in caseload["households"]
    }
    seen = service.client.get(household, headers=service.headers("keyworker"))
    assert seen.status_code == 200 and worker_id in seen.json()["key_workers"]


def _make_room(service, proposal, worker_id: str) -> None:
    """Waitlist the rows the proposal gave the worker: their room is then free for an override."""
    for held in _assigned(proposal, worker_id):
        waitlisted = _decide(service, proposal, held, action="waitlist", reason="to make room")
        assert waitlisted.status_code == 200, waitlisted.text


def test_override_is_recorded_with_what_was_shown(service):
    proposal = _proposal(service)
    row = next(r for r in _assigned(proposal) if r["worker_id"] != "KW9001")
    chosen = "KW9001"
    _make_room(service, proposal, chosen)
    response = _decide(
        service,
        proposal,
        row,
        action="override",
        worker_id=chosen,
        reason="knows the family already",
    )
    assert response.status_code == 200, response.text
    assert response.json()["decided_worker"] == chosen
    stored = _stored_decisions(service)[-1]
    record = json.loads(stored["override_record"])
    assert record["decision"] == "changed_worker" and record["overridden"] is True
    assert record["proposed_worker"] == row["worker_id"] and record["chosen_worker"] == chosen
    assert record["shown_risk"] == pytest.approx(row["risk"])
    assert record["shown_reasons"] == row["reasons"]
    assert record["reason"] == "knows the family already" and record["manager"] == "manager"
    audit = service.audit_rows(action="decide", outcome="allowed")[-1]
    assert audit["target"] == f"household:{row['household_id']}"
    assert "knows the family already" in audit["purpose"]
    assert (
        service_db.decided_cases(service.settings)
        .set_index("household_id")
        .loc[row["household_id"], "worker_id"]
        == chosen
    )


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"action": "override", "worker_id": "KW9001"}, "reason", "reason is required"),
        ({"action": "waitlist"}, "reason", "reason is required"),
        ({"action": "override", "reason": "x"}, "worker_id", "needs worker_id"),
        ({"action": "override", "worker_id": "KW9003", "reason": "x"}, "worker_id", "not active"),
        ({"action": "override", "worker_id": "KW0001", "reason": "x"}, "worker_id", "works in"),
        (
            {"action": "override", "worker_id": "KW7777", "reason": "x"},
            "worker_id",
            "no key worker",
        ),
        ({"action": "accept", "worker_id": "KW9001"}, "worker_id", "only for an override"),
    ],
)
def test_broken_rules_are_refused_naming_the_field(service, fields, field, words):
    proposal = _proposal(service)
    row = next(r for r in _assigned(proposal) if r["worker_id"] != "KW9001")
    response = _decide(service, proposal, row, **fields)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")
    assert words in response.json()["detail"]
    after = _proposal(service)
    assert (
        next(r for r in after["rows"] if r["household_id"] == row["household_id"])["decision"]
        is None
    )
    assert service.audit_rows(action="decide", outcome="failed")


def test_an_override_beyond_the_workers_free_points_is_refused(service):
    proposal = _proposal(service)
    # KW9002 has 12 points; fill them, then try one more household.
    target = "KW9002"
    # KW9002 has no domestic-abuse skill; the second row must be an override (not already proposed
    # to KW9002), so that the capacity check is what answers.
    small = [
        row
        for row in proposal["rows"]
        if row["decision"] is None
        and row["points"] <= 12
        and "domestic_abuse" not in (row["needs"] or "")
    ]
    first = small[0]
    second = next(row for row in small[1:] if row["worker_id"] != target)
    # Rows the proposal gave KW9002 hold its room: waitlist them, so only `first` fills it.
    for held in _assigned(proposal, target):
        if held["household_id"] not in (first["household_id"], second["household_id"]):
            _decide(service, proposal, held, action="waitlist", reason="to make room")
    action = "accept" if first["worker_id"] == target else "override"
    extra = {} if action == "accept" else {"worker_id": target, "reason": "has the time"}
    assert _decide(service, proposal, first, action=action, **extra).status_code == 200
    response = _decide(
        service, proposal, second, action="override", worker_id=target, reason="also"
    )
    assert response.status_code == 422
    assert "points free" in response.json()["detail"]


def test_safeguarding_needs_a_worker_with_domestic_abuse_skill(service, world):
    week = service.app.state.service.weeks.current()
    row = {"locality": world.locality, "needs": "domestic_abuse;debt"}
    assert "domestic-abuse" in worker_problem(week, service.settings, row=row, worker_id="KW9002")
    assert worker_problem(week, service.settings, row=row, worker_id="KW9001") is None


def test_waitlist_and_reject_open_no_case(service):
    proposal = _proposal(service)
    first, second = _assigned(proposal)[:2]
    assert (
        _decide(service, proposal, first, action="waitlist", reason="family away").status_code
        == 200
    )
    assert _decide(service, proposal, second, action="reject", reason="declined").status_code == 200
    assert service_db.decided_cases(service.settings).empty
    records = [json.loads(row["override_record"]) for row in _stored_decisions(service)]
    assert [record["decision"] for record in records] == ["not_allocated", "not_allocated"]


def test_deciding_a_row_twice_gives_409_and_keeps_the_first(service):
    proposal = _proposal(service)
    row = _assigned(proposal)[0]
    assert _decide(service, proposal, row, action="accept").status_code == 200
    late = _decide(service, proposal, row, username="manager2", action="reject", reason="no")
    assert late.status_code == 409
    assert "already decided" in late.json()["detail"]
    stored = next(r for r in _proposal(service)["rows"] if r["household_id"] == row["household_id"])
    assert stored["decision"] == "accept" and stored["decided_by"] == "manager"


def test_two_managers_deciding_at_once_one_wins(service):
    proposal = _proposal(service)
    row = _assigned(proposal)[0]
    for username in ("manager", "manager2"):
        service.headers(username)
    start, statuses = threading.Barrier(2), {}

    def decide(username: str, action: str, reason: str) -> None:
        start.wait()
        response = _decide(service, proposal, row, username=username, action=action, reason=reason)
        statuses[username] = response.status_code

    threads = [
        threading.Thread(target=decide, args=("manager", "accept", "")),
        threading.Thread(target=decide, args=("manager2", "waitlist", "not this week")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses.values()) == [200, 409]
    assert len(_stored_decisions(service)) == 1


def test_a_new_proposal_counts_the_cases_decisions_opened(service, world):
    proposal = _proposal(service)
    row = _assigned(proposal)[0]
    assert _decide(service, proposal, row, action="accept").status_code == 200
    response = service.client.post("/api/proposals", json={}, headers=service.headers("manager"))
    assert response.status_code == 201, response.text
    fresh = response.json()
    assert fresh["source"] == "manager re-run" and fresh["locality"] == world.locality
    assert row["household_id"] not in {r["household_id"] for r in fresh["rows"]}
    worker = next(w for w in fresh["workers"] if w["worker_id"] == row["worker_id"])
    week = service.app.state.service.weeks.current()
    assert worker["points_before"] == int(week.open_points.get(row["worker_id"], 0)) + row["points"]
    # The weekly job sees the same case through api.pipeline (contract format, counted as open).
    cases = current_tables(service.settings)["cases"]
    assert row["household_id"] in set(cases.loc[cases["closed_at"].isna(), "household_id"])


def test_locks_are_honoured_or_reported(service, world):
    proposal = _proposal(service)
    waiting = next(row for row in proposal["rows"] if row["status"] == "waitlisted")
    locks = [{"household_id": waiting["household_id"], "worker_id": "KW9003", "kind": "assign"}]
    response = service.client.post(
        "/api/proposals", json={"locks": locks}, headers=service.headers("manager")
    )
    assert response.status_code == 201
    report = response.json()["summary"]["lock_report"]
    assert report[0]["status"] == "infeasible" and "not active" in report[0]["reason"]
    assert response.json()["locks"] == locks


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"locks": [{"household_id": "H1", "worker_id": "KW9001", "kind": "swap"}]}, "kind"),
        (
            {"locks": [{"household_id": "", "worker_id": "KW9001", "kind": "assign"}]},
            "household_id",
        ),
        ({"locks": [], "extra": 1}, "extra"),
    ],
)
def test_bad_proposal_input_is_422_naming_the_field(service, body, field):
    response = service.client.post("/api/proposals", json=body, headers=service.headers("manager"))
    assert response.status_code == 422
    assert field in response.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"action": "adopt"}, "action"), ({"action": "accept", "version": 0}, "version")],
)
def test_bad_decision_input_is_422_naming_the_field(service, fields, field):
    proposal = _proposal(service)
    response = _decide(service, proposal, proposal["rows"][0], **fields)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(field)


def test_an_override_into_room_the_proposal_gave_others_is_refused_and_accept_all_fits(service):
    """The room check counts the rows this proposal still gives the worker: an override that
    would push them over is refused with the reason, and accepting the rest then fits."""
    proposal = _proposal(service)
    target = "KW9001"
    row = next(r for r in _assigned(proposal) if r["worker_id"] != target)
    response = _decide(
        service, proposal, row, action="override", worker_id=target, reason="knows them"
    )
    assert response.status_code == 422
    assert "points free" in response.json()["detail"]
    csrf = service.sign_in("manager")
    accepted = service.client.post(
        f"/proposals/{proposal['proposal_id']}/accept-remaining",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert accepted.status_code == 303, accepted.text
    rows = service_db.proposal_rows(service.db.read(), proposal["proposal_id"])
    assert all(r["decision"] == "accept" for r in rows if r["status"] == "assigned")
    week = service.app.state.service.weeks.current()
    team = capacity_now(service.db, week=week, locality=proposal["locality"], rows=rows)
    assert team and all(worker["free_points"] >= 0 for worker in team)


def test_a_safeguarding_need_the_council_adds_is_enforced_on_overrides(service, world):
    """[needs] safeguarding is one setting: the service's check uses it as the optimiser does."""
    week = service.app.state.service.weeks.current()
    wider = dataclasses.replace(
        service.settings, needs=NeedsSettings(safeguarding=("domestic_abuse", "parenting"))
    )
    row = {"locality": world.locality, "needs": "parenting;debt"}
    assert worker_problem(week, service.settings, row=row, worker_id="KW9002") is None
    refusal = worker_problem(week, wider, row=row, worker_id="KW9002")
    assert "parenting skill (safeguarding)" in refusal
    assert worker_problem(week, wider, row=row, worker_id="KW9001") is None


def test_each_need_is_shown_with_the_records_behind_it(service):
    proposal = _proposal(service)
    row = next(r for r in proposal["rows"] if r["needs"])
    assert len(row["needs_evidence"]) == len(row["needs"])
    for need, evidence in zip(row["needs"], row["needs_evidence"], strict=True):
        assert evidence.startswith(need_label(need) + ": "), (need, evidence)
    household = service.client.get(
        f"/api/households/{row['household_id']}", headers=service.headers("manager")
    ).json()
    assert household["needs_evidence"] == row["needs_evidence"]
    service.sign_in("manager")
    page = service.client.get(f"/proposals/{proposal['proposal_id']}").text
    assert row["needs_evidence"][0].replace("'", "&#39;") in page
