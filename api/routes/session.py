"""Signing in and out: bearer tokens for the API, a session cookie for the pages.

The sign-in form is protected against login CSRF with a double-submit secret (a cookie and a
hidden field that must match); once signed in, every form carries the session's own secret.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from api import auth
from api.access import HOME_PAGES
from api.audit import AuditEntry, AuditWriter
from api.deps import (
    DB,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    ApiCaller,
    Audit,
    ClientAddress,
    FormSession,
    ServiceState,
    State,
)
from api.routes import render
from api.schemas import Me, Message, TokenOut

router = APIRouter()

Username = Annotated[str, Form(min_length=1, max_length=64)]
Password = Annotated[str, Form(min_length=1, max_length=1024)]


def _sign_in(state: ServiceState, *, username: str, password: str, client: str, via: str):
    """The principal, or None for wrong credentials; each attempt is audited."""
    audit = state.audit
    try:
        principal = auth.authenticate(
            state.db, username=username, password=password, client=client, policy=state.throttle
        )
    except auth.SignInThrottled as throttled:
        _audit_sign_in(audit, username=username, role="-", outcome="refused", via=via, why="paused")
        raise throttled from None
    outcome = "allowed" if principal else "refused"
    role = principal.role if principal else "-"
    _audit_sign_in(audit, username=username, role=role, outcome=outcome, via=via, why="")
    return principal


def _audit_sign_in(
    audit: AuditWriter, *, username: str, role: str, outcome: str, via: str, why: str
) -> None:
    audit.record(
        AuditEntry(
            actor=username[:64],
            role=role,
            action="sign_in",
            target=f"user:{username[:64]}",
            outcome=outcome,
            purpose="sign in",
            detail={"via": via} | ({"why": why} if why else {}),
        )
    )


# --- API ----------------------------------------------------------------------------------------


@router.post(
    "/api/token",
    response_model=TokenOut,
    responses={
        401: {"model": Message, "description": "Wrong username or password."},
        429: {"model": Message, "description": "Too many failures: see Retry-After."},
    },
    tags=["sign in"],
    summary="Exchange a username and password for a bearer token",
)
def create_token(
    username: Username, password: Password, state: State, client: ClientAddress
) -> dict:
    principal = _sign_in(state, username=username, password=password, client=client, via="api")
    if principal is None:
        raise auth.WrongCredentials()
    token, _, lifetime = auth.issue_token(state.db, principal=principal, kind="api")
    return {
        "access_token": token,
        "expires_in": lifetime,
        "username": principal.username,
        "role": principal.role,
    }


@router.delete(
    "/api/token",
    status_code=204,
    responses={401: {"model": Message, "description": "Not signed in."}},
    tags=["sign in"],
    summary="End the bearer token used for this request",
)
def delete_token(request: Request, principal: ApiCaller, db: DB, audit: Audit) -> Response:
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    auth.revoke_token(db, token=token)
    audit.record(
        AuditEntry(
            actor=principal.username,
            role=principal.role,
            action="sign_out",
            target=f"user:{principal.username}",
            purpose="sign out",
            detail={"via": "api"},
        )
    )
    return Response(status_code=204)


@router.get("/api/me", response_model=Me, tags=["sign in"], summary="Who the token belongs to")
def me(principal: ApiCaller) -> dict:
    return {
        "username": principal.username,
        "role": principal.role,
        "worker_id": principal.worker_id,
        "locality": principal.locality,
    }


# --- pages --------------------------------------------------------------------------------------


def _safe_next(target: str) -> str | None:
    """Only a path on this site (no scheme, no //host) may be a redirect target."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def sign_in_page(
    request: Request, *, status_code: int = 200, error: str = "", next_path: str = ""
) -> Response:
    secret = secrets.token_urlsafe(32)
    response = render(
        request,
        "signin.html",
        session=None,
        status_code=status_code,
        sign_in_secret=secret,
        error=error,
        next_path=_safe_next(next_path) or "",
    )
    response.set_cookie(
        SIGN_IN_COOKIE,
        secret,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=3600,
    )
    return response


@router.get("/signin", include_in_schema=False)
def sign_in_form(request: Request, next: str = "") -> Response:
    return sign_in_page(request, next_path=next[:500])


@router.post("/signin", include_in_schema=False)
def sign_in(
    request: Request,
    state: State,
    client: ClientAddress,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    sign_in_secret: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if not auth.same_secret(request.cookies.get(SIGN_IN_COOKIE), sign_in_secret):
        message = "Your sign-in form had expired. Please try again."
        return sign_in_page(request, status_code=400, error=message, next_path=next)
    if not username or not password:
        message = "Enter your username and your password."
        return sign_in_page(request, status_code=422, error=message, next_path=next)
    principal = _sign_in(state, username=username, password=password, client=client, via="page")
    if principal is None:
        message = "That username and password do not match an account."
        return sign_in_page(request, status_code=401, error=message, next_path=next)
    token, _, lifetime = auth.issue_token(state.db, principal=principal, kind="session")
    response = RedirectResponse(_safe_next(next) or HOME_PAGES[principal.role], status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        max_age=lifetime,
    )
    response.delete_cookie(SIGN_IN_COOKIE)
    return response


@router.post("/signout", include_in_schema=False)
def sign_out(session: FormSession, db: DB, audit: Audit) -> Response:
    auth.revoke_token(db, token=session.token)
    audit.record(
        AuditEntry(
            actor=session.principal.username,
            role=session.principal.role,
            action="sign_out",
            target=f"user:{session.principal.username}",
            purpose="sign out",
            detail={"via": "page"},
        )
    )
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response
