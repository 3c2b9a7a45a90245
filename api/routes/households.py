"""Households: one household's record, a key worker's caseload, a manager's locality list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse

from api import access
from api.deps import DB, ApiCaller, Audit, PageSession, SettingsDep, Week
from api.routes import render
from api.routes._households import read_caseload, read_household, read_locality
from api.schemas import IDENTIFIER, CaseloadOut, HouseholdOut, LocalityOut, Message

router = APIRouter()

HouseholdId = Annotated[str, Path(pattern=IDENTIFIER, max_length=64)]
Purpose = Annotated[
    str,
    Query(max_length=200, description="Why you are reading it; recorded in the audit log."),
]
Top = Annotated[int, Query(ge=1, le=5000, description="How many, highest risk first.")]
REFUSALS = {
    401: {"model": Message, "description": "Not signed in."},
    403: {"model": Message, "description": "Your role may not do this."},
    404: {"model": Message, "description": "No such household open to you."},
}


# --- JSON API -----------------------------------------------------------------------------------


@router.get(
    "/api/households/{household_id}",
    response_model=HouseholdOut,
    responses=REFUSALS,
    tags=["households"],
    summary="One household: risk, band, reasons, needs, what changed and the timeline",
)
def get_household(
    household_id: HouseholdId,
    principal: ApiCaller,
    week: Week,
    db: DB,
    audit: Audit,
    settings: SettingsDep,
    purpose: Purpose = "",
) -> dict:
    return read_household(
        principal=principal,
        household_id=household_id,
        week=week,
        db=db,
        audit=audit,
        purpose=purpose,
        horizon_weeks=settings.horizon_weeks,
    )


@router.get(
    "/api/caseload",
    response_model=CaseloadOut,
    responses=REFUSALS,
    tags=["households"],
    summary="The calling key worker's own caseload, highest risk first",
)
def get_caseload(principal: ApiCaller, week: Week, db: DB, audit: Audit) -> dict:
    return read_caseload(principal=principal, week=week, db=db, audit=audit)


@router.get(
    "/api/localities/{locality}/households",
    response_model=LocalityOut,
    responses=REFUSALS,
    tags=["households"],
    summary="A locality's households by risk (its manager only)",
)
def get_locality_households(
    locality: Annotated[str, Path(min_length=1, max_length=64)],
    principal: ApiCaller,
    week: Week,
    db: DB,
    audit: Audit,
    top: Top = 50,
) -> dict:
    return read_locality(
        principal=principal, locality=locality, top=top, week=week, db=db, audit=audit
    )


# --- pages --------------------------------------------------------------------------------------


@router.get("/caseload", include_in_schema=False)
def caseload_page(request: Request, session: PageSession, week: Week, db: DB, audit: Audit):
    caseload = read_caseload(principal=session.principal, week=week, db=db, audit=audit)
    return render(request, "caseload.html", session=session, caseload=caseload)


@router.get("/households/{household_id}", include_in_schema=False)
def household_page(
    request: Request,
    household_id: HouseholdId,
    session: PageSession,
    week: Week,
    db: DB,
    audit: Audit,
    settings: SettingsDep,
):
    household = read_household(
        principal=session.principal,
        household_id=household_id,
        week=week,
        db=db,
        audit=audit,
        purpose="",
        horizon_weeks=settings.horizon_weeks,
    )
    return render(request, "household.html", session=session, household=household)


@router.get("/locality", include_in_schema=False)
def locality_page(
    request: Request, session: PageSession, week: Week, db: DB, audit: Audit, top: Top = 100
):
    principal = session.principal
    if principal.role != access.LOCALITY_MANAGER:
        access.check_locality(principal, "")
    listing = read_locality(
        principal=principal, locality=principal.locality, top=top, week=week, db=db, audit=audit
    )
    return render(request, "locality.html", session=session, listing=listing)


@router.get("/", include_in_schema=False)
def home(session: PageSession) -> RedirectResponse:
    return RedirectResponse(access.HOME_PAGES[session.principal.role], status_code=303)
