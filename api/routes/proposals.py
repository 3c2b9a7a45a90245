"""Proposals and decisions: the JSON API and the manager's pages (logic in _proposals)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse

from api import access, service_db
from api.audit import audited
from api.database import ConflictError
from api.deps import DB, ApiCaller, Audit, FormSession, PageSession, SettingsDep, Week
from api.routes import render
from api.routes._decisions import accept_remaining, apply_decision
from api.routes._overrides import override_rates
from api.routes._proposals import (
    RuleBroken,
    capacity_now,
    generate_proposal,
    proposal_document,
    read_proposal,
    weekly_proposal,
)
from api.schemas import (
    IDENTIFIER,
    DecisionIn,
    Message,
    ProposalCreate,
    ProposalHeader,
    ProposalOut,
    ProposalRowOut,
)

router = APIRouter()

ProposalId = Annotated[str, Path(pattern=IDENTIFIER, max_length=64)]
REFUSALS = {
    401: {"model": Message, "description": "Not signed in."},
    403: {"model": Message, "description": "Your role may not do this."},
    404: {"model": Message, "description": "No such proposal (or row) open to you."},
}


# --- JSON API -----------------------------------------------------------------------------------


@router.get(
    "/api/proposals",
    response_model=list[ProposalHeader],
    responses=REFUSALS,
    tags=["proposals"],
    summary="Your locality's proposals, newest first (this week's weekly run included)",
)
def list_proposals(principal: ApiCaller, week: Week, db: DB, audit: Audit) -> list[dict]:
    with audited(
        audit, principal, action="read_proposal", target="proposals", purpose="allocation review"
    ):
        locality = access.check_proposal_create(principal)
    weekly_proposal(db, week=week, locality=locality)
    return service_db.proposals_of_locality(db.read(), locality=locality)


@router.post(
    "/api/proposals",
    response_model=ProposalOut,
    status_code=201,
    responses=REFUSALS | {422: {"model": Message, "description": "Bad input or locks."}},
    tags=["proposals"],
    summary="Run this week's allocation for your locality now (optionally with locks)",
)
def create_proposal(
    body: ProposalCreate,
    principal: ApiCaller,
    settings: SettingsDep,
    week: Week,
    db: DB,
    audit: Audit,
) -> dict:
    locks = [lock.model_dump() for lock in body.locks]
    with audited(
        audit,
        principal,
        action="create_proposal",
        target=f"locality:{principal.locality or '-'}",
        purpose="allocation review",
    ) as detail:
        locality = access.check_proposal_create(principal)
        detail |= {"as_of": week.as_of_text, "locks": len(locks)}
    proposal_id = generate_proposal(
        settings, db, week=week, locality=locality, locks=locks, created_by=principal.username
    )
    return proposal_document(db, proposal_id=proposal_id, week=week)


@router.get(
    "/api/proposals/{proposal_id}",
    response_model=ProposalOut,
    responses=REFUSALS,
    tags=["proposals"],
    summary="A proposal with its rows, each with its version and decision",
)
def get_proposal(
    proposal_id: ProposalId, principal: ApiCaller, week: Week, db: DB, audit: Audit
) -> dict:
    return read_proposal(
        principal=principal, proposal_id=proposal_id, db=db, audit=audit, week=week
    )


@router.post(
    "/api/proposals/{proposal_id}/decisions",
    response_model=ProposalRowOut,
    responses=REFUSALS
    | {
        409: {"model": Message, "description": "The row was decided or changed meanwhile."},
        422: {"model": Message, "description": "Bad input, or a rule the decision would break."},
    },
    tags=["proposals"],
    summary="Accept, override (to another worker), waitlist or reject one row",
)
def post_decision(
    proposal_id: ProposalId,
    body: DecisionIn,
    principal: ApiCaller,
    settings: SettingsDep,
    week: Week,
    db: DB,
    audit: Audit,
) -> dict:
    return apply_decision(
        principal=principal,
        proposal_id=proposal_id,
        decision=body,
        settings=settings,
        week=week,
        db=db,
        audit=audit,
    )


# --- pages --------------------------------------------------------------------------------------

OUTCOMES = {
    "decided": "Decision recorded.",
    "accepted": "The remaining rows were accepted.",
    "rerun": "A new proposal was prepared for your locality.",
}


@router.get("/proposal", include_in_schema=False)
def current_proposal_page(request: Request, session: PageSession, week: Week, db: DB, audit: Audit):
    principal = session.principal
    with audited(
        audit, principal, action="read_proposal", target="proposals", purpose="allocation review"
    ):
        locality = access.check_proposal_create(principal)
    header = weekly_proposal(db, week=week, locality=locality)
    if header is None:
        return render(
            request, "proposal_missing.html", session=session, week=week, locality=locality
        )
    return RedirectResponse(f"/proposals/{header['proposal_id']}", status_code=303)


def _proposal_page(request, session, *, proposal_id, week, db, audit, status_code=200, **extra):
    proposal = read_proposal(
        principal=session.principal, proposal_id=proposal_id, db=db, audit=audit, week=week
    )
    rows = proposal["rows"]
    last_week = service_db.decisions_of_locality(
        db.read(), locality=proposal["locality"], before=proposal["as_of"], limit=200
    )
    team = week.workers.loc[
        (week.workers["locality"] == proposal["locality"]) & week.workers["active"], "worker_id"
    ].tolist()
    return render(
        request,
        "proposal.html",
        session=session,
        status_code=status_code,
        proposal=proposal,
        assigned=[row for row in rows if row["status"] == "assigned"],
        waitlisted=[row for row in rows if row["status"] == "waitlisted"],
        undecided=sum(row["decision"] is None for row in rows),
        capacity=capacity_now(db, week=week, locality=proposal["locality"], rows=rows),
        last_week=last_week,
        team=team,
        outcome=OUTCOMES.get(request.query_params.get("outcome", "")),
        **extra,
    )


@router.get("/proposals/{proposal_id}", include_in_schema=False)
def proposal_page(
    request: Request,
    proposal_id: ProposalId,
    session: PageSession,
    week: Week,
    db: DB,
    audit: Audit,
):
    return _proposal_page(request, session, proposal_id=proposal_id, week=week, db=db, audit=audit)


@router.post("/proposals/{proposal_id}/decide", include_in_schema=False)
def decide_form(
    request: Request,
    proposal_id: ProposalId,
    session: FormSession,
    settings: SettingsDep,
    week: Week,
    db: DB,
    audit: Audit,
    household_id: Annotated[str, Form(pattern=IDENTIFIER, max_length=64)],
    action: Annotated[str, Form(max_length=16)],
    version: Annotated[int, Form(ge=1, le=1_000_000)],
    worker_id: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
):
    try:
        decision = DecisionIn(
            household_id=household_id,
            action=action,
            version=version,
            worker_id=worker_id or None,
            reason=reason,
        )
        apply_decision(
            principal=session.principal,
            proposal_id=proposal_id,
            decision=decision,
            settings=settings,
            week=week,
            db=db,
            audit=audit,
        )
    except (RuleBroken, ConflictError, ValueError) as failure:
        status = 409 if isinstance(failure, ConflictError) else 422
        return _proposal_page(
            request,
            session,
            proposal_id=proposal_id,
            week=week,
            db=db,
            audit=audit,
            status_code=status,
            error=_failure_text(failure),
            error_row=household_id,
        )
    return RedirectResponse(
        f"/proposals/{proposal_id}?outcome=decided#row-{household_id}", status_code=303
    )


def _failure_text(failure: Exception) -> str:
    if isinstance(failure, RuleBroken):
        return failure.message
    if hasattr(failure, "errors"):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in failure.errors()
        )
    return str(failure)


@router.post("/proposals/{proposal_id}/accept-remaining", include_in_schema=False)
def accept_remaining_form(
    request: Request,
    proposal_id: ProposalId,
    session: FormSession,
    settings: SettingsDep,
    week: Week,
    db: DB,
    audit: Audit,
):
    result = accept_remaining(
        principal=session.principal,
        proposal_id=proposal_id,
        settings=settings,
        week=week,
        db=db,
        audit=audit,
    )
    if result["not_done"]:
        return _proposal_page(
            request,
            session,
            proposal_id=proposal_id,
            week=week,
            db=db,
            audit=audit,
            status_code=409,
            not_done=result["not_done"],
            accepted_count=len(result["accepted"]),
        )
    return RedirectResponse(f"/proposals/{proposal_id}?outcome=accepted", status_code=303)


@router.post("/proposal/rerun", include_in_schema=False)
def rerun_form(
    request: Request,
    session: FormSession,
    settings: SettingsDep,
    week: Week,
    db: DB,
    audit: Audit,
):
    principal = session.principal
    with audited(
        audit,
        principal,
        action="create_proposal",
        target=f"locality:{principal.locality or '-'}",
        purpose="allocation review",
    ) as detail:
        locality = access.check_proposal_create(principal)
        detail["as_of"] = week.as_of_text
    proposal_id = generate_proposal(
        settings, db, week=week, locality=locality, locks=[], created_by=principal.username
    )
    return RedirectResponse(f"/proposals/{proposal_id}?outcome=rerun", status_code=303)


@router.get("/decisions", include_in_schema=False)
def decisions_page(request: Request, session: PageSession, db: DB, audit: Audit):
    principal = session.principal
    with audited(
        audit, principal, action="read_proposal", target="decisions", purpose="allocation review"
    ):
        locality = access.check_proposal_create(principal)
    decisions = service_db.decisions_of_locality(db.read(), locality=locality, limit=500)
    return render(
        request,
        "decisions.html",
        session=session,
        decisions=decisions,
        locality=locality,
        rates=override_rates(decisions),
    )
