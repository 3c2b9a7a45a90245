"""Households: one household's record, a key worker's caseload, a manager's locality list.

One household's record is by far the most requested thing (staff open households all day), so
besides its routes it has a fast path, `HouseholdReads`, an ASGI middleware that answers a
signed-in GET of /api/households/{id} or /households/{id} without FastAPI's routing and
dependency solving (half the cost of a read). It calls the same functions as the routes (token
check, access check, audit, the week's kept bodies) and answers refusals through the app's own
exception handlers, so the answers are the same. Anything else (no or a bad token, a malformed
id or query, a week due for its check for a new run) goes on to the routes, which also document
the endpoint in the OpenAPI schema.
"""

from __future__ import annotations

import inspect
import re
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.security.utils import get_authorization_scheme_param

from api import access, auth
from api.access import Principal
from api.deps import (
    DB,
    ApiCaller,
    Audit,
    PageSession,
    Session,
    State,
    Week,
    session_from_cookie,
)
from api.routes import render
from api.routes._households import (
    household_json,
    household_record_html,
    read_caseload,
    read_household,
    read_locality,
)
from api.schemas import IDENTIFIER, CaseloadOut, HouseholdOut, LocalityOut, Message
from api.state import ServiceState
from api.week import LoadedWeek

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


# The household reads are coroutines: nothing in them blocks (the audit entry is awaited, the
# token and key-worker lookups are single indexed SQLite reads), so they skip the thread pool.
# They return bytes made once per week; the response model documents them and a test checks them.


async def household_json_response(
    *, principal: Principal, household_id: str, purpose: str, week: LoadedWeek, state: ServiceState
) -> Response:
    workers = await read_household(
        principal=principal,
        household_id=household_id,
        week=week,
        db=state.db,
        audit=state.audit,
        purpose=purpose,
    )
    body = household_json(week, household_id=household_id, workers=workers)
    return Response(body, media_type="application/json")


async def household_page_response(
    request: Request, *, session: Session, household_id: str, week: LoadedWeek, state: ServiceState
) -> Response:
    workers = await read_household(
        principal=session.principal,
        household_id=household_id,
        week=week,
        db=state.db,
        audit=state.audit,
        purpose="",
    )
    record = household_record_html(week, household_id=household_id, workers=workers)
    return render(
        request, "household.html", session=session, household_id=household_id, record=record
    )


@router.get(
    "/api/households/{household_id}",
    response_model=HouseholdOut,
    responses=REFUSALS,
    tags=["households"],
    summary="One household: risk, band, reasons, needs, what changed and the timeline",
)
async def get_household(
    household_id: HouseholdId,
    principal: ApiCaller,
    week: Week,
    state: State,
    purpose: Purpose = "",
) -> Response:
    return await household_json_response(
        principal=principal, household_id=household_id, purpose=purpose, week=week, state=state
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
async def household_page(
    request: Request, household_id: HouseholdId, session: PageSession, week: Week, state: State
) -> Response:
    return await household_page_response(
        request, session=session, household_id=household_id, week=week, state=state
    )


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


# --- the fast path ------------------------------------------------------------------------------

_ID = IDENTIFIER.removeprefix("^").removesuffix("$")
API_HOUSEHOLD = re.compile(f"/api/households/({_ID})")
PAGE_HOUSEHOLD = re.compile(f"/households/({_ID})")
PURPOSE_MAX_LENGTH = 200


class HouseholdReads:
    """ASGI middleware: the household reads without routing or dependency solving (see the
    module docstring); every other request, and any it cannot answer alone, goes to `app`."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        answer = None
        if scope["type"] == "http" and scope["method"] == "GET":
            answer = await _fast_answer(scope)
        if answer is None:
            await self.app(scope, receive, send)
            return
        await answer(scope, receive, send)


async def _fast_answer(scope) -> Response | None:
    api_match = API_HOUSEHOLD.fullmatch(scope["path"])
    page_match = None if api_match else PAGE_HOUSEHOLD.fullmatch(scope["path"])
    state: ServiceState = scope["app"].state.service
    week = state.weeks.fresh() if (api_match or page_match) else None
    if week is None:
        return None
    request = Request(scope)
    if api_match:
        principal, purpose = _api_caller(request, state), _purpose(request)
        if principal is None or purpose is None:
            return None
        answer = household_json_response(
            principal=principal,
            household_id=api_match[1],
            purpose=purpose,
            week=week,
            state=state,
        )
    else:
        session = session_from_cookie(request, state.db)
        if session is None or request.query_params:
            return None
        answer = household_page_response(
            request, session=session, household_id=page_match[1], week=week, state=state
        )
    try:
        return await answer
    except Exception as error:
        return await _handled(request, error)


def _api_caller(request: Request, state: ServiceState) -> Principal | None:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer":
        return None
    found = auth.token_principal(state.db, token=token, kind="api")
    return None if found is None else found[0]


def _purpose(request: Request) -> str | None:
    """The one query parameter the route takes, if that is all there is and it is valid."""
    params = request.query_params
    purposes = params.getlist("purpose")
    if len(params) != len(purposes) or len(purposes) > 1:
        return None
    purpose = purposes[0] if purposes else ""
    return purpose if len(purpose) <= PURPOSE_MAX_LENGTH else None


async def _handled(request: Request, error: Exception) -> Response:
    """The app's own answer to an error (the handlers in api.app), as the routes would get."""
    handlers = request.app.exception_handlers
    handler = next((handlers[kind] for kind in type(error).__mro__ if kind in handlers), None)
    if handler is None:
        raise error
    answer = handler(request, error)
    return await answer if inspect.isawaitable(answer) else answer
