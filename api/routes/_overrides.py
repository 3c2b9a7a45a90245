"""Managers' decisions for evaluation: every decision with what was shown, proposed and chosen,
and how often decisions differed from the proposal."""

from __future__ import annotations

import json

import pandas as pd

from api import service_db
from api.database import ServiceDB
from experiments.overrides import summarise_overrides
from models.explain import risk_band


def override_export(db: ServiceDB, *, since: str | None = None) -> pd.DataFrame:
    """Every decision with what was shown and what was proposed and chosen, for evaluation.

    One row per decision (oldest first): ids, week, locality, model version, shown risk, band
    and reasons, proposed and chosen worker, the override record's decision and whether it
    differs from the proposal, the manager's reason, who and when.
    """
    rows = service_db.decisions_for_export(db.read(), since=since)
    records = []
    for row in rows:
        override = json.loads(row["override_record"]) if row["override_record"] else {}
        records.append(
            {
                "decision_id": row["decision_id"],
                "proposal_id": row["proposal_id"],
                "as_of": row["as_of"],
                "household_id": row["household_id"],
                "locality": row["locality"],
                "model_version": row["model_version"],
                "action": row["action"],
                "decision": override.get("decision", "not proposed, not allocated"),
                "overridden": bool(override.get("overridden", False)),
                "shown_risk": row["shown_risk"],
                "shown_band": override.get("risk_band") or risk_band(row["shown_risk"]),
                "shown_reasons": " | ".join(json.loads(row["shown_reasons"])),
                "proposed_worker": row["proposed_worker"],
                "chosen_worker": row["chosen_worker"],
                "reason": row["reason"],
                "decided_by": row["decided_by"],
                "decided_at": row["decided_at"],
            }
        )
    return pd.DataFrame(records, columns=OVERRIDE_EXPORT_COLUMNS)


OVERRIDE_EXPORT_COLUMNS: tuple[str, ...] = (
    "decision_id",
    "proposal_id",
    "as_of",
    "household_id",
    "locality",
    "model_version",
    "action",
    "decision",
    "overridden",
    "shown_risk",
    "shown_band",
    "shown_reasons",
    "proposed_worker",
    "chosen_worker",
    "reason",
    "decided_by",
    "decided_at",
)


def override_rates(decisions: list[dict]) -> list[dict]:
    """How often decisions differed from the proposal, overall, by risk band and by manager."""
    records = [json.loads(row["override_record"]) for row in decisions if row["override_record"]]
    if not records:
        return []
    rates = summarise_overrides(pd.DataFrame(records))
    rates = rates.loc[rates["dimension"] != "locality"]
    return rates.astype(object).where(rates.notna(), None).to_dict("records")
