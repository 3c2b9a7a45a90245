"""Households: one household's record, a key worker's caseload, a manager's locality list.

Every response here is household-level data, so every one is checked by api.access and written
to the audit log (allowed or refused) before anything is returned.
"""

from __future__ import annotations

import re
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse

from api import access, service_db
from api.audit import AuditWriter, audited
from api.deps import (
    DB,
    ApiCaller,
    Audit,
    LoadedWeek,
    PageSession,
    SettingsDep,
    Week,
    risk_band,
    split_needs,
    split_reasons,
)
from api.routes import render
from api.schemas import IDENTIFIER, CaseloadOut, HouseholdOut, LocalityOut, Message
from api.service_db import ServiceDB

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


# --- shared helpers ---------------------------------------------------------------------------


def key_workers(week: LoadedWeek, db: ServiceDB, household_id: str) -> list[str]:
    """Workers with an open case for the household: partners' records, then managers' decisions."""
    workers = []
    open_worker = week.scores.at[household_id, "open_case_worker"]
    if isinstance(open_worker, str) and open_worker:
        workers.append(open_worker)
    for case in service_db.decided_cases_of_household(db.read(), household_id=household_id):
        if week.decided_case_open(household_id=household_id, opened_at=case["opened_at"]):
            workers.append(case["worker_id"])
    return sorted(set(workers))


def household_scope(
    week: LoadedWeek, db: ServiceDB, household_id: str
) -> access.HouseholdScope | None:
    if household_id not in week.scores.index:
        return None
    return access.HouseholdScope(
        household_id=household_id,
        locality=str(week.scores.at[household_id, "locality"]),
        key_workers=frozenset(key_workers(week, db, household_id)),
    )


def caseload_ids(week: LoadedWeek, db: ServiceDB, worker_id: str) -> list[str]:
    decided = [
        case["household_id"]
        for case in service_db.decided_cases_of_worker(db.read(), worker_id=worker_id)
        if case["household_id"] in week.scores.index
        and week.decided_case_open(household_id=case["household_id"], opened_at=case["opened_at"])
    ]
    return sorted(set(week.caseloads.get(worker_id, ())) | set(decided))


def _previous_row(week: LoadedWeek, household_id: str) -> pd.Series | None:
    if week.previous_scores is None or household_id not in week.previous_scores.index:
        return None
    return week.previous_scores.loc[household_id]


def _reason_kind(text: str) -> str:
    # "3 call-outs, the latest 5 weeks ago" is the same reason as last week's "... 4 weeks ago":
    # compare the wording, not the figures, so only genuinely new or gone reasons are listed.
    return re.sub(r"[£\d][\d,.]*", "#", text)


def what_changed(week: LoadedWeek, household_id: str) -> dict:
    """This week's score against the previous weekly run's, and the records shared since."""
    now, then = week.scores.loc[household_id], _previous_row(week, household_id)
    reasons_now = split_reasons(now["reasons"])
    reasons_then = [] if then is None else split_reasons(then["reasons"])
    kinds_now = {_reason_kind(text) for text in reasons_now}
    kinds_then = {_reason_kind(text) for text in reasons_then}
    risk_then = None if then is None else float(then["risk"])
    since = week.previous_as_of or week.as_of - pd.Timedelta(days=7)
    return {
        "previous_as_of": since.date().isoformat(),
        "risk_then": risk_then,
        "risk_now": float(now["risk"]),
        "band_then": None if risk_then is None else risk_band(risk_then),
        "band_now": risk_band(float(now["risk"])),
        "risk_change": None if risk_then is None else float(now["risk"]) - risk_then,
        "reasons_appeared": [
            text
            for text in reasons_now
            if then is not None and _reason_kind(text) not in kinds_then
        ],
        "reasons_faded": [text for text in reasons_then if _reason_kind(text) not in kinds_now],
        "new_records": week.new_records(household_id),
    }


def household_detail(
    week: LoadedWeek, *, household_id: str, workers: list[str], horizon_weeks: int
) -> dict:
    row = week.scores.loc[household_id]
    return {
        "household_id": household_id,
        "locality": str(row["locality"]),
        "as_of": week.as_of_text,
        "horizon_weeks": horizon_weeks,
        "risk": float(row["risk"]),
        "band": risk_band(float(row["risk"])),
        "rank": int(row["rank"]),
        "needs": split_needs(row["needs"]),
        "reasons": split_reasons(row["reasons"]),
        "model_version": str(row["model_version"]),
        "key_workers": workers,
        "what_changed": what_changed(week, household_id),
        "timeline": week.household_timeline(household_id),
    }


def household_summary(
    week: LoadedWeek, *, household_id: str, workers: list[str], with_changes: bool
) -> dict:
    row, then = week.scores.loc[household_id], _previous_row(week, household_id)
    return {
        "household_id": household_id,
        "locality": str(row["locality"]),
        "risk": float(row["risk"]),
        "band": risk_band(float(row["risk"])),
        "rank": int(row["rank"]),
        "needs": split_needs(row["needs"]),
        "reasons": split_reasons(row["reasons"]),
        "key_workers": workers,
        "risk_change": None if then is None else float(row["risk"]) - float(then["risk"]),
        "new_records": len(week.new_records(household_id)) if with_changes else None,
    }


def _default_purpose(principal: access.Principal) -> str:
    return "casework" if principal.role == access.KEY_WORKER else "allocation review"


# --- the three reads, shared by the API and the pages -------------------------------------------


def read_household(
    *,
    principal: access.Principal,
    household_id: str,
    week: LoadedWeek,
    db: ServiceDB,
    audit: AuditWriter,
    purpose: str,
    horizon_weeks: int,
) -> dict:
    with audited(
        audit,
        principal,
        action="read_household",
        target=f"household:{household_id}",
        purpose=purpose or _default_purpose(principal),
    ) as detail:
        detail["as_of"] = week.as_of_text
        scope = household_scope(week, db, household_id)
        access.check_household(principal, household_id=household_id, scope=scope)
    return household_detail(
        week,
        household_id=household_id,
        workers=sorted(scope.key_workers),
        horizon_weeks=horizon_weeks,
    )


def read_caseload(
    *, principal: access.Principal, week: LoadedWeek, db: ServiceDB, audit: AuditWriter
) -> dict:
    target = f"caseload:{principal.worker_id or '-'}"
    with audited(
        audit, principal, action="read_caseload", target=target, purpose="casework"
    ) as detail:
        worker_id = access.check_caseload(principal)
        household_ids = caseload_ids(week, db, worker_id)
        detail |= {"as_of": week.as_of_text, "households": household_ids}
    households = [
        household_summary(
            week,
            household_id=household_id,
            workers=key_workers(week, db, household_id),
            with_changes=True,
        )
        for household_id in household_ids
    ]
    households.sort(key=lambda summary: (-summary["risk"], summary["household_id"]))
    return {"worker_id": worker_id, "as_of": week.as_of_text, "households": households}


def read_locality(
    *,
    principal: access.Principal,
    locality: str,
    top: int,
    week: LoadedWeek,
    db: ServiceDB,
    audit: AuditWriter,
) -> dict:
    with audited(
        audit,
        principal,
        action="read_locality",
        target=f"locality:{locality}",
        purpose="allocation review",
    ) as detail:
        access.check_locality(principal, locality)
        in_locality = week.scores.loc[week.scores["locality"] == locality].sort_values("rank")
        chosen = in_locality["household_id"].head(top).tolist()
        detail |= {"as_of": week.as_of_text, "households": len(chosen), "top": top}
    households = [
        household_summary(
            week,
            household_id=household_id,
            workers=key_workers(week, db, household_id),
            with_changes=False,
        )
        for household_id in chosen
    ]
    return {
        "locality": locality,
        "as_of": week.as_of_text,
        "households_in_locality": len(in_locality),
        "households": households,
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
