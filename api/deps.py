"""Everything a route depends on, as `Annotated` aliases in one place.

The state behind them is one `ServiceState` per process (api.state): the service database, its
audit writer and the week in memory (api.week). Callers of the API authenticate with
`Authorization: Bearer <token>`; pages use a session cookie and, for every form post, a CSRF
secret bound to that session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import auth
from api.access import Principal
from api.audit import AuditWriter
from api.database import ServiceDB
from api.settings import Settings
from api.state import ServiceState
from api.week import LoadedWeek

SESSION_COOKIE = "rebalance_session"
SIGN_IN_COOKIE = "rebalance_sign_in"


class NotSignedIn(Exception):
    """No valid credentials: 401 for the API, a redirect to the sign-in page for pages."""


class CsrfRefused(Exception):
    """A form post without the session's CSRF secret."""


# Trivial providers are `async def` so FastAPI calls them on the event loop instead of handing
# each one to a worker thread.


async def get_state(request: Request) -> ServiceState:
    return request.app.state.service


State = Annotated[ServiceState, Depends(get_state)]


async def get_settings(state: State) -> Settings:
    return state.settings


async def get_db(state: State) -> ServiceDB:
    return state.db


async def get_week(state: State) -> LoadedWeek:
    week = state.weeks.fresh()
    if week is not None:
        return week
    # Checking for a new run touches the disk and may load one: off the event loop.
    return await run_in_threadpool(state.weeks.current)


async def get_audit(state: State) -> AuditWriter:
    return state.audit


SettingsDep = Annotated[Settings, Depends(get_settings)]
DB = Annotated[ServiceDB, Depends(get_db)]
Week = Annotated[LoadedWeek, Depends(get_week)]
Audit = Annotated[AuditWriter, Depends(get_audit)]


# --- who is calling -----------------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    description="A token from POST /api/token, sent as `Authorization: Bearer <token>`.",
)


# Token lookups are one indexed SQLite read (tens of microseconds): done on the event loop, they
# save a hand-off to a worker thread on every request.


async def api_principal(
    db: DB,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The API caller, from a bearer token (401 without a valid one)."""
    if credentials is None:
        raise NotSignedIn()
    found = auth.token_principal(db, token=credentials.credentials, kind="api")
    if found is None:
        raise NotSignedIn()
    return found[0]


@dataclass(frozen=True)
class Session:
    """A signed-in page visitor: who they are, their session token and its CSRF secret."""

    principal: Principal
    token: str
    csrf: str


def session_from_cookie(request: Request, db: ServiceDB) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    found = auth.token_principal(db, token=token, kind="session")
    return None if found is None else Session(principal=found[0], token=token, csrf=found[1])


async def page_session(request: Request, db: DB) -> Session:
    """The page visitor, from the session cookie (redirect to sign-in without a valid one)."""
    session = session_from_cookie(request, db)
    if session is None:
        raise NotSignedIn()
    return session


async def checked_form_session(
    session: Annotated[Session, Depends(page_session)],
    csrf_token: Annotated[str, Form(max_length=256)] = "",
) -> Session:
    """The page visitor of a form post, which must carry the session's CSRF secret."""
    if not auth.same_secret(session.csrf, csrf_token):
        raise CsrfRefused()
    return session


async def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ApiCaller = Annotated[Principal, Depends(api_principal)]
PageSession = Annotated[Session, Depends(page_session)]
FormSession = Annotated[Session, Depends(checked_form_session)]
ClientAddress = Annotated[str, Depends(client_address)]
