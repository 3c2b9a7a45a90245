"""The JSON the API accepts and returns (pydantic models; they are also the OpenAPI schema).

Inputs are strict: unknown fields are refused, strings have length limits and identifiers a
pattern, so bad input is a 422 naming the field rather than anything deeper in the service.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.database import ROLES
from api.service_db import DECISION_ACTIONS

IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Identifier = Field(pattern=IDENTIFIER, min_length=1, max_length=64)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- signing in --------------------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")
    username: str
    role: Literal[ROLES]  # type: ignore[valid-type]


class Me(BaseModel):
    username: str
    role: Literal[ROLES]  # type: ignore[valid-type]
    worker_id: str | None
    locality: str | None


class Message(BaseModel):
    detail: str


# --- households ---------------------------------------------------------------------------------


class TimelineEntry(BaseModel):
    date: str = Field(description="When it happened (YYYY-MM-DD).")
    shared: str = Field(description="When the agency shared it (YYYY-MM-DD).")
    agency: str
    what: str
    about: str | None = Field(description='"a child" or "an adult", never who.')
    crisis: bool


class WhatChanged(BaseModel):
    previous_as_of: str = Field(description="The week compared with (the previous weekly run).")
    risk_then: float | None
    risk_now: float
    band_then: str | None
    band_now: str
    risk_change: float | None
    reasons_appeared: list[str]
    reasons_faded: list[str]
    new_records: list[TimelineEntry]


class HouseholdOut(BaseModel):
    household_id: str
    locality: str
    as_of: str
    horizon_weeks: int
    risk: float = Field(description="Calibrated probability of a crisis within the horizon.")
    band: str
    rank: int = Field(description="1 = highest risk in the city this week.")
    needs: list[str]
    needs_evidence: list[str] = Field(
        default_factory=list,
        description="The records behind each need, one sentence a need, in the needs' order.",
    )
    reasons: list[str]
    model_version: str
    key_workers: list[str] = Field(description="Workers with an open case for the household.")
    what_changed: WhatChanged
    timeline: list[TimelineEntry]


class HouseholdSummary(BaseModel):
    household_id: str
    locality: str
    risk: float
    band: str
    rank: int
    needs: list[str]
    needs_evidence: list[str] = Field(
        default_factory=list,
        description="The records behind each need, one sentence a need, in the needs' order.",
    )
    reasons: list[str]
    key_workers: list[str]
    risk_change: float | None
    new_records: int | None = Field(description="Records shared since last week (caseload only).")


class CaseloadOut(BaseModel):
    worker_id: str
    as_of: str
    households: list[HouseholdSummary]


class LocalityOut(BaseModel):
    locality: str
    as_of: str
    households_in_locality: int
    households: list[HouseholdSummary]


# --- proposals and decisions --------------------------------------------------------------------


class LockIn(Strict):
    household_id: str = Identifier
    worker_id: str = Identifier
    kind: Literal["assign", "exclude"]


class ProposalCreate(Strict):
    locks: list[LockIn] = Field(default_factory=list, max_length=2000)


class ProposalRowOut(BaseModel):
    household_id: str
    position: int
    locality: str
    risk: float
    band: str
    needs: list[str]
    needs_evidence: list[str] = Field(
        default_factory=list,
        description="The records behind each need, one sentence a need, in the needs' order.",
    )
    reasons: list[str]
    points: int
    status: Literal["assigned", "waitlisted"]
    worker_id: str | None
    value: float
    explanation: str
    version: int = Field(description="Send it back with a decision (optimistic concurrency).")
    decision: Literal[DECISION_ACTIONS] | None  # type: ignore[valid-type]
    decided_worker: str | None
    decision_reason: str | None
    decided_by: str | None
    decided_at: str | None


class ProposalOut(BaseModel):
    proposal_id: str
    locality: str
    as_of: str
    source: str
    created_by: str
    created_at: str
    model_version: str | None
    summary: dict
    workers: list[dict]
    locks: list[dict]
    rows: list[ProposalRowOut]


class ProposalHeader(BaseModel):
    proposal_id: str
    locality: str
    as_of: str
    source: str
    created_by: str
    created_at: str


class DecisionIn(Strict):
    household_id: str = Identifier
    action: Literal[DECISION_ACTIONS]  # type: ignore[valid-type]
    version: int = Field(ge=1, le=1_000_000, description="The row's version as last read.")
    worker_id: str | None = Field(
        default=None,
        pattern=IDENTIFIER,
        max_length=64,
        description="The worker to allocate to (override only).",
    )
    reason: str = Field(
        default="",
        max_length=500,
        description="Why; required for override, waitlist and reject.",
    )


# --- models, users, audit ----------------------------------------------------------------------


class ModelVersionOut(BaseModel):
    alias: str
    version: str
    run_id: str
    metrics: dict[str, float]
    holdout: list[dict]
    fairness: list[dict]
    fairness_gate: dict | None = Field(
        default=None, description="The fairness gate's verdict on this version's audit."
    )
    accepted_findings: list[dict] = Field(
        default_factory=list, description="Fairness findings accepted at promotion, with why."
    )
    fairness_files: list[str]
    plots: list[str]
    has_model_card: bool


class ModelsOut(BaseModel):
    model_name: str
    champion: ModelVersionOut | None
    challenger: ModelVersionOut | None
    scores_model_version: str | None = Field(description="The model that scored this week.")


class UserOut(BaseModel):
    username: str
    role: str
    worker_id: str | None
    locality: str | None
    active: bool
    created_at: str
    updated_at: str


class AuditEntryOut(BaseModel):
    entry_id: int
    at: str
    actor: str
    role: str
    action: str
    target: str
    outcome: str
    purpose: str
    detail: dict
    entry_hash: str


class AuditOut(BaseModel):
    entries: list[AuditEntryOut]
    next_before: int | None = Field(description="Pass as `before` for the next (older) page.")


class AuditVerifyOut(BaseModel):
    entries: int
    broken: list[int]
    intact: bool
