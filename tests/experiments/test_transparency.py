"""The transparency record: the card embedded, oversight and corrections stated."""

from __future__ import annotations

from experiments.transparency import transparency_record

METRICS = {
    "model_auc": 0.81,
    "holdout_model_auc": 0.8,
    "logistic_auc": 0.77,
    "rule_auc": 0.66,
    "model_recall_at_capacity": 0.31,
    "rule_recall_at_capacity": 0.18,
    "model_precision_at_top1pct": 0.42,
    "model_ece": 0.012,
}


def test_transparency_record_embeds_the_card_and_states_oversight_and_corrections():
    card = "# Model card: m\n\n## Fairness\n\nFairness gate: **passed**.\n\n### Detail\n"
    gates = [
        {"name": "minimum_auc", "passed": True, "message": "holdout AUC 0.8 >= minimum 0.7"},
        {"name": "fairness", "passed": True, "message": "all 17 judged groups pass"},
    ]
    record = transparency_record(
        model_version="7",
        model_card=card,
        metrics=METRICS,
        settings={"horizon_weeks": 26, "seed": 3},
        promotion=gates,
    )
    assert "version 7" in record
    # The card is embedded one level down, not restated.
    assert "### Fairness" in record and "#### Detail" in record and "# Model card: m" not in record
    assert "| fairness | passed | all 17 judged groups pass |" in record
    assert "Escalation model 31.0%; Problem-indicator count 18.0%" in record
    assert "a locality manager reviews it" in record
    assert "How a resident can ask for a correction" in record
    again = transparency_record(
        model_version="7",
        model_card=card,
        metrics=METRICS,
        settings={"horizon_weeks": 26, "seed": 3},
        promotion=gates,
    )
    assert record == again
