"""The programme page and its JSON endpoint: who may see them, the empty state, real results."""

from __future__ import annotations

from experiments.simulation import SimulationSettings, simulate, write_simulation


def test_programme_is_for_managers_and_data_scientists(service):
    for username in ("manager", "scientist"):
        response = service.client.get("/api/programme", headers=service.headers(username))
        assert response.status_code == 200, response.text
        assert response.json() == {"available": False}
    refused = service.client.get("/api/programme", headers=service.headers("farworker"))
    assert refused.status_code == 403
    service.sign_in("farworker")
    assert service.client.get("/programme").status_code == 403


def test_programme_page_shows_the_latest_simulation(service):
    service.sign_in("manager")
    empty = service.client.get("/programme")
    assert empty.status_code == 200 and "No simulation has been run yet" in empty.text
    settings = SimulationSettings(
        weeks=4,
        households=600,
        seeds=(0, 1),
        policies=("none",),
        history_weeks=60,
        pre_weeks=8,
        rollout="staggered",
        late_start_week=2,
        follow_up_weeks=2,
    )
    write_simulation(simulate(settings), service.home / "programme")
    page = service.client.get("/programme")
    assert page.status_code == 200
    assert "Early and late wards" in page.text and "Cost avoided by agency" in page.text
    assert "the 2 follow-up weeks after" in page.text
    image = service.client.get("/programme/plots/crises.png")
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert service.client.get("/programme/plots/missing.png").status_code == 404
    body = service.client.get("/api/programme", headers=service.headers("scientist")).json()
    assert body["available"] and body["settings"]["weeks"] == 4 and body["did"]
