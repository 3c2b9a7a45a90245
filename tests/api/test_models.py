"""Model pages for data scientists, over a real MLflow run of the world's model."""

from __future__ import annotations

import json
import re

from experiments import tracking
from experiments.promotion import governance_dir
from features.contract import PROTECTED_COLUMNS
from models import MODEL_NAME


def test_models_api_reports_the_champion_with_its_metrics(models_service):
    service = models_service
    response = service.client.get("/api/models", headers=service.headers("scientist"))
    assert response.status_code == 200, response.text
    body = response.json()
    champion = body["champion"]
    assert body["model_name"] == MODEL_NAME
    found = tracking.version_by_alias(
        tracking_uri=service.settings.tracking_uri, model_name=MODEL_NAME, alias="champion"
    )
    assert champion["version"] == found.version and champion["run_id"] == found.run_id
    logged, _, _ = tracking.run_values(
        tracking_uri=service.settings.tracking_uri, run_id=found.run_id
    )
    assert champion["metrics"] == logged
    assert "model" in {row["model"] for row in champion["holdout"]}
    assert "plots/calibration.png" in champion["plots"] and champion["has_model_card"]
    assert body["scores_model_version"] == "1"
    entry = service.audit_rows(action="read_models")[-1]
    assert entry["actor"] == "scientist" and entry["outcome"] == "allowed"


def test_models_page_shows_the_card_and_serves_the_plots(models_service):
    service = models_service
    service.sign_in("scientist")
    page = service.client.get("/models")
    assert page.status_code == 200
    assert "Model card" in page.text and "<table>" in page.text
    plots = re.findall(r'src="(/models/champion/plots/[^"]+\.png)"', page.text)
    assert plots
    image = service.client.get(plots[0])
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")
    assert service.client.get("/models/champion/plots/missing.png").status_code == 404


def test_features_are_pseudonymised_and_carry_no_protected_characteristics(models_service, scores):
    service = models_service
    response = service.client.get(
        "/api/features", params={"offset": 10, "limit": 5}, headers=service.headers("scientist")
    )
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == len(scores) and len(body["rows"]) == 5
    assert all(len(row) == len(body["columns"]) for row in body["rows"])
    assert set(body["household_ids"]) <= set(scores["household_id"])
    # Whole words of a feature name, as models._estimator checks them ("agencies" is not "age").
    protected = set(PROTECTED_COLUMNS) | {"age"}
    words = {word for column in body["columns"] for word in column.split("_")}
    assert not any(
        f"_{marker}_" in f"_{column}_" for column in body["columns"] for marker in protected
    )
    assert not words & {"sex", "ethnicity", "disability", "age"}
    assert service.audit_rows(action="read_features")[-1]["actor"] == "scientist"


def test_features_download_is_for_data_scientists_and_audited(models_service, scores):
    service = models_service
    service.sign_in("manager")
    assert service.client.get("/models/features.csv").status_code == 403
    service.sign_in("scientist")
    response = service.client.get("/models/features.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0].startswith("household_id,") and len(lines) == len(scores) + 1
    entries = service.audit_rows(action="read_features")
    assert [entry["outcome"] for entry in entries[-2:]] == ["refused", "allowed"]


def test_models_page_and_api_show_the_fairness_audit_with_verdicts(models_service):
    service = models_service
    body = service.client.get("/api/models", headers=service.headers("scientist")).json()
    rows = body["champion"]["fairness"]
    attributes = {row["attribute"] for row in rows}
    assert attributes == {"sex", "ethnicity", "disability", "age_band", "locality"}
    references = [row for row in rows if row["verdict"] == "reference"]
    assert len(references) == len(attributes)  # one reference group per attribute
    small = [row for row in rows if row["verdict"] == "not gated (small)"]
    assert all(row["households"] < 100 or row["positives"] < 10 for row in small)
    for row in rows:
        assert {"households", "base_rate", "false_negative_rate", "recall_at_k"} <= set(row)
        assert row["verdict"] in ("reference", "passes", "not gated (small)") or row[
            "verdict"
        ].startswith("fails: ")
    assert "plots/fairness_audit.png" in body["champion"]["plots"]

    service.sign_in("scientist")
    page = service.client.get("/models").text
    assert "Fairness gate (" in page and "Predicted/observed ratio" in page
    first = next(row for row in rows if row["verdict"] == "passes")
    assert f"<td>{first['group']}</td>" in page
    assert 'src="/models/champion/plots/fairness_audit.png"' in page


def test_models_page_shows_the_findings_accepted_at_the_champions_promotion(models_service):
    service = models_service
    version = service.client.get("/api/models", headers=service.headers("scientist")).json()[
        "champion"
    ]["version"]
    accepted = {
        "finding": "age_band=65+:recall_at_k",
        "attribute": "age_band",
        "group": "65+",
        "metric": "recall_at_k",
        "text": "age_band=65+: recall at k ratio 0.28 is below 0.80 (adjusted p = 0.001)",
        "ratio": 0.28,
        "bound": 0.8,
        "p_value": 0.001,
        "reason": "Need differs by age <b>see minute 7</b>",
        "review_by": "2027-03-31",
        "source": "command line",
        "accepted_by": "ann",
        "accepted_at": "2026-11-22T09:00:00+00:00",
    }
    folder = governance_dir(service.home, version=version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "accepted_findings.json").write_text(json.dumps([accepted]))
    service.app.state.service.models_cache.clear()

    service.sign_in("scientist")
    page = service.client.get("/models").text
    panel = page.split("Fairness findings accepted at promotion", 1)[1].split("</table>", 1)[0]
    assert "<td>age_band=65+:recall_at_k</td>" in panel and "<td>2027-03-31</td>" in panel
    assert "<td>ann</td>" in panel and "0.2800" in panel
    # The reason is the council's text, shown as text.
    assert "Need differs by age &lt;b&gt;see minute 7&lt;/b&gt;" in panel
    # The JSON API carries the same acceptance for the champion.
    models = service.client.get("/api/models", headers=service.headers("scientist")).json()
    assert models["champion"]["accepted_findings"] == [accepted]
