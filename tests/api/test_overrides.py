"""Manager overrides: recorded with what the screen showed, and exported for evaluation."""

from __future__ import annotations

import csv
import io
import json

from models.explain import risk_band


def _proposal(service) -> dict:
    headers = service.headers("manager")
    proposal_id = service.client.get("/api/proposals", headers=headers).json()[0]["proposal_id"]
    return service.client.get(f"/api/proposals/{proposal_id}", headers=headers).json()


def _decide(service, proposal, row, **fields):
    body = {"household_id": row["household_id"], "version": row["version"]} | fields
    response = service.client.post(
        f"/api/proposals/{proposal['proposal_id']}/decisions",
        json=body,
        headers=service.headers("manager"),
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_decisions_are_exported_with_the_risk_band_and_reasons_that_were_shown(service):
    proposal = _proposal(service)
    assigned = [row for row in proposal["rows"] if row["status"] == "assigned"]
    # The proposal gave KW9001's room away: the household KW9001 loses makes room for the override.
    dropped = max(
        (row for row in assigned if row["worker_id"] == "KW9001"), key=lambda row: row["points"]
    )
    moved = next(
        row
        for row in assigned
        if row["worker_id"] != "KW9001" and row["points"] <= dropped["points"]
    )
    kept = next(row for row in assigned if row not in (moved, dropped))
    _decide(service, proposal, dropped, action="reject", reason="moving away")
    _decide(service, proposal, moved, action="override", worker_id="KW9001", reason="knows them")
    _decide(service, proposal, kept, action="accept")

    # The audit log keeps what the manager saw, with the decision.
    entry = next(
        entry
        for entry in service.audit_rows(action="decide", outcome="allowed")
        if entry["target"] == f"household:{moved['household_id']}"
    )
    detail = json.loads(entry["detail"])
    assert detail["shown_band"] == moved["band"] == risk_band(moved["risk"])
    assert detail["shown_reasons"] == moved["reasons"] and detail["overridden"] is True

    response = service.client.get("/api/overrides", headers=service.headers("scientist"))
    assert response.status_code == 200, response.text
    body = response.json()
    by_household = {row["household_id"]: row for row in body["decisions"]}
    assert set(by_household) == {row["household_id"] for row in (moved, kept, dropped)}
    exported = by_household[moved["household_id"]]
    assert exported["decision"] == "changed_worker" and exported["overridden"] is True
    assert exported["proposed_worker"] == moved["worker_id"]
    assert exported["chosen_worker"] == "KW9001" and exported["reason"] == "knows them"
    assert exported["shown_band"] == moved["band"]
    assert exported["shown_reasons"] == " | ".join(moved["reasons"])
    assert abs(exported["shown_risk"] - moved["risk"]) < 1e-12
    assert exported["model_version"] == proposal["model_version"]
    assert by_household[kept["household_id"]]["overridden"] is False
    assert by_household[dropped["household_id"]]["decision"] == "not_allocated"
    assert body["overridden"] == 2
    overall = next(rate for rate in body["rates"] if rate["dimension"] == "all")
    assert overall["decisions"] == 3 and abs(overall["override_rate"] - 2 / 3) < 1e-12
    assert service.audit_rows(action="read_models", target="overrides")[-1]["actor"] == "scientist"

    service.sign_in("scientist")
    download = service.client.get("/models/overrides.csv")
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert {row["household_id"] for row in rows} == set(by_household)


def test_only_data_scientists_export_decisions(service):
    response = service.client.get("/api/overrides", headers=service.headers("manager"))
    assert response.status_code == 403
    assert service.audit_rows(action="read_models", target="overrides")[-1]["outcome"] != "allowed"
